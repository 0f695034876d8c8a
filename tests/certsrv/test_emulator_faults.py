"""Faults on demand: slow authentication, slow enrollment, HTTP 500 and connection resets, switched at run time."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from certsrv._auth import NtlmAuth
from certsrv.testing import AdcsEmulator, Faults
from tests.certsrv._emulator_helpers import ALICE, PASSWORD, USERS, client_for, issued_request_id, submit_form


@pytest.fixture(scope="module")
def emulator() -> Iterator[AdcsEmulator]:
    with AdcsEmulator(users=USERS) as running:
        yield running


@pytest.fixture(autouse=True)
def _no_faults(emulator: AdcsEmulator) -> Iterator[None]:
    emulator.faults.clear()
    yield
    emulator.faults.clear()


def test_slow_authentication_times_out_the_first_leg(emulator: AdcsEmulator) -> None:
    emulator.faults.auth_delay = 1.0
    with client_for(emulator, NtlmAuth(ALICE, PASSWORD), timeout=0.3) as client, pytest.raises(httpx.ReadTimeout):
        client.get("/")
    emulator.faults.auth_delay = 0.0
    with client_for(emulator, NtlmAuth(ALICE, PASSWORD), timeout=5) as client:
        assert client.get("/").status_code == 200


def test_slow_enrollment_times_out_after_authentication(emulator: AdcsEmulator) -> None:
    with client_for(emulator, NtlmAuth(ALICE, PASSWORD)) as client:
        assert client.get("/").status_code == 200  # authenticated
        emulator.faults.enroll_delay = 2.0
        with pytest.raises(httpx.ReadTimeout):
            client.post("/certfnsh.asp", data=submit_form("WebServer"), timeout=0.5)


def test_slow_download(emulator: AdcsEmulator) -> None:
    with client_for(emulator, NtlmAuth(ALICE, PASSWORD)) as client:
        assert client.get("/").status_code == 200
        emulator.faults.download_delay = 2.0
        with pytest.raises(httpx.ReadTimeout):  # the seed's enrollment-timeout URL
            client.get("/certnew.p7b?ReqID=CACert&Renewal=0&Enc=bin", timeout=0.5)


def test_http_500_on_one_page(emulator: AdcsEmulator) -> None:
    emulator.faults.http_500 = {"certfnsh.asp"}
    with client_for(emulator, NtlmAuth(ALICE, PASSWORD)) as client:
        failed = client.post("/certfnsh.asp", data=submit_form("WebServer"))
        other = client.get("/certcarc.asp")
        emulator.faults.http_500.clear()
        fixed = client.post("/certfnsh.asp", data=submit_form("WebServer"))
    assert failed.status_code == 500
    assert "500 - Internal server error." in failed.text
    assert other.status_code == 200
    assert issued_request_id(fixed.text) > 0
    assert emulator.access_log.count(lambda e: e.status == 500 and e.uri_stem == "/certsrv/certfnsh.asp") == 1


def test_connection_reset(emulator: AdcsEmulator) -> None:
    emulator.faults.reset = {"certfnsh.asp"}
    with client_for(emulator, NtlmAuth(ALICE, PASSWORD)) as client:
        assert client.get("/").status_code == 200
        with pytest.raises(httpx.TransportError):
            client.post("/certfnsh.asp", data=submit_form("WebServer"))
    emulator.faults.reset = {"*"}
    with client_for(emulator, NtlmAuth(ALICE, PASSWORD)) as client, pytest.raises(httpx.TransportError):
        client.get("/")


def test_faults_given_at_construction() -> None:
    with AdcsEmulator(users=USERS, faults=Faults(http_500={"*"})) as emulator:
        with client_for(emulator, NtlmAuth(ALICE, PASSWORD)) as client:
            assert client.get("/certcarc.asp").status_code == 500
        emulator.faults.clear()
        assert emulator.faults == Faults()
