"""Windows authentication on the emulator: NTLM and Kerberos with Extended Protection off, accept and required."""

from __future__ import annotations

import httpx
import pytest

from certsrv import AuthenticationError
from certsrv._auth import KerberosAuth, NtlmAuth
from certsrv.testing import AdcsEmulator, ExtendedProtection
from tests._support.kerberos import Kdc
from tests.certsrv._emulator_helpers import ALICE, PASSWORD, USERS, client_for


@pytest.mark.parametrize(
    ("mode", "binding", "accepted"),
    [
        ("off", True, True),
        ("off", False, True),
        ("accept", True, True),
        ("accept", False, True),
        ("required", True, True),
        ("required", False, False),
    ],
)
def test_ntlm_extended_protection(mode: ExtendedProtection, binding: bool, accepted: bool) -> None:
    with AdcsEmulator(users=USERS, extended_protection=mode) as emulator:
        with client_for(emulator, NtlmAuth(ALICE, PASSWORD, channel_binding=binding)) as client:
            if accepted:
                assert client.get("/certrqxt.asp").status_code == 200
                assert client.get("/certcarc.asp").status_code == 200  # same connection, no new handshake
            else:
                with pytest.raises(AuthenticationError):
                    client.get("/certrqxt.asp")
        statuses = [(e.status, e.username) for e in emulator.access_log.entries]
    if accepted:
        assert statuses == [(401, ""), (401, ""), (200, ALICE), (200, ALICE)]
    else:
        assert statuses[-1][0] == 401
        assert all(status == 401 for status, _ in statuses)


def test_wrong_password_is_logged_as_logon_failure() -> None:
    with AdcsEmulator(users=USERS) as emulator:
        with client_for(emulator, NtlmAuth(ALICE, "wrong")) as client, pytest.raises(AuthenticationError):
            client.get("/")
        last = emulator.access_log.entries[-1]
    assert (last.status, last.substatus, last.win32_status, last.username) == (401, 1, 1326, "")


def test_basic_when_enabled() -> None:
    with AdcsEmulator(users=USERS, auth=("negotiate", "ntlm", "basic")) as emulator, client_for(emulator) as client:
        challenge = client.get("/")
        ok = client.get("/", auth=httpx.BasicAuth("alice", PASSWORD))  # bare name: the default domain
        bad = client.get("/", auth=httpx.BasicAuth(ALICE, "nope"))
    assert challenge.headers.get_list("www-authenticate") == ["Negotiate", "NTLM", 'Basic realm="localhost"']
    assert ok.status_code == 200
    assert bad.status_code == 401
    assert [e.username for e in emulator.access_log.entries] == ["", ALICE, ""]


@pytest.mark.kerberos
@pytest.mark.parametrize(
    ("mode", "binding", "accepted"),
    [("off", False, True), ("accept", False, True), ("required", True, True), ("required", False, False)],
)
def test_kerberos_extended_protection(kdc: Kdc, mode: ExtendedProtection, binding: bool, accepted: bool) -> None:
    with AdcsEmulator(users=USERS, keytab=kdc.keytab, extended_protection=mode) as emulator:
        with client_for(emulator, KerberosAuth(kdc.principal, kdc.password, channel_binding=binding)) as client:
            if accepted:
                assert client.get("/certcarc.asp").status_code == 200
                assert client.get("/certrqxt.asp").status_code == 200
            else:
                with pytest.raises(AuthenticationError):
                    client.get("/certcarc.asp")
        entries = emulator.access_log.entries
    if accepted:
        assert [(e.status, e.username) for e in entries] == [(401, ""), (200, kdc.principal), (200, kdc.principal)]
    else:
        assert entries[-1].status == 401


def test_negotiate_only_provider_still_takes_ntlm_inside_negotiate() -> None:
    """IIS with only the Negotiate provider: the challenge offers Negotiate alone; NTLM rides inside it."""
    with AdcsEmulator(users=USERS, auth=("negotiate",)) as emulator:
        with client_for(emulator) as anonymous:
            assert anonymous.get("/").headers.get_list("www-authenticate") == ["Negotiate"]
        with client_for(emulator, NtlmAuth(ALICE, PASSWORD)) as client:
            assert client.get("/certrqxt.asp").status_code == 200
        assert emulator.access_log.entries[-1].username == ALICE
