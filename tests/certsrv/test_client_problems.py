"""Each of the seed's "common problems" reproduced against the emulator gives its typed error, cause and fix."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from certsrv import (
    AuthenticationTimeoutError,
    CertsrvClient,
    EnrollmentTimeoutError,
    HostnameMismatchError,
    Issued,
    NameResolutionError,
    RetrievalTimeoutError,
    SelfSignedServerCertificateError,
    ServerCertificateExpiredError,
    ServerCertificateNotYetValidError,
    ServerUnreachableError,
    Timeouts,
    UnexpectedResponseError,
    UntrustedServerChainError,
)
from certsrv.testing import AdcsEmulator
from tests._support.pki import Credential, TestPki
from tests.certsrv._emulator_helpers import ALICE, PASSWORD, USERS, csr_pem


def _emulator(cert: Credential, *, chain: bool) -> AdcsEmulator:
    assert cert.cert_path is not None and cert.chain_path is not None and cert.key_path is not None
    return AdcsEmulator(
        users=USERS, tls_cert_file=cert.chain_path if chain else cert.cert_path, tls_key_file=cert.key_path
    )


def _client(url: str, pki: TestPki, **kwargs: object) -> CertsrvClient:
    return CertsrvClient(url, auth="ntlm", username=ALICE, password=PASSWORD, ca_file=pki.ca_bundle, **kwargs)  # type: ignore[arg-type]


def test_working_chain_for_comparison(pki: TestPki) -> None:
    with _emulator(pki.server, chain=True) as emu, _client(emu.url, pki) as client:
        assert isinstance(client.submit(csr_pem(), "WebServer"), Issued)


def test_missing_issuer_is_named(pki: TestPki) -> None:
    with (
        _emulator(pki.server, chain=False) as emu,
        _client(emu.url, pki) as client,
        pytest.raises(UntrustedServerChainError) as info,
    ):
        client.authenticate()
    error = info.value
    assert error.missing_issuer == pki.intermediate.cert.subject.rfc4514_string()
    assert "Test Issuing CA" in str(error) and "ca_file" in str(error)
    assert error.host == "localhost"


def test_untrusted_root_is_named(pki: TestPki) -> None:
    with (
        _emulator(pki.server, chain=True) as emu,
        CertsrvClient(emu.url, auth="ntlm", username=ALICE, password=PASSWORD, ca_file=pki.other_root.cert_path) as c,
        pytest.raises(UntrustedServerChainError) as info,
    ):
        c.authenticate()
    assert info.value.missing_issuer == pki.root.cert.subject.rfc4514_string()


def test_untrusted_chain_with_the_system_trust_store(pki: TestPki) -> None:
    # ca_file=None: the missing issuer is looked for among the system store's CAs, some of which cryptography
    # reads only with a deprecation warning (e.g. a non-positive serial); the user must get the typed error
    with (
        _emulator(pki.server, chain=True) as emu,
        CertsrvClient(emu.url, auth="ntlm", username=ALICE, password=PASSWORD) as client,
        pytest.raises(UntrustedServerChainError) as info,
    ):
        client.authenticate()
    assert info.value.missing_issuer == pki.root.cert.subject.rfc4514_string()


def test_self_signed_server_certificate(pki: TestPki) -> None:
    with (
        _emulator(pki.self_signed, chain=False) as emu,
        _client(emu.url, pki) as client,
        pytest.raises(SelfSignedServerCertificateError) as info,
    ):
        client.authenticate()
    assert "not supported" in str(info.value)
    assert "issue the IIS" in str(info.value)


def test_host_name_mismatch_shows_the_names(pki: TestPki) -> None:
    with (
        _emulator(pki.wrong_name, chain=True) as emu,
        _client(emu.url, pki) as client,
        pytest.raises(HostnameMismatchError) as info,
    ):
        client.authenticate()
    assert info.value.names == ("wrong-host.example.test",)
    assert "'localhost'" in str(info.value) and "wrong-host.example.test" in str(info.value)


def test_not_yet_valid_shows_clock_and_dates(pki: TestPki) -> None:
    with (
        _emulator(pki.not_yet_valid, chain=True) as emu,
        _client(emu.url, pki) as client,
        pytest.raises(ServerCertificateNotYetValidError) as info,
    ):
        client.authenticate()
    error = info.value
    assert error.not_before == pki.not_yet_valid.cert.not_valid_before_utc
    assert error.not_before is not None and error.local_time < error.not_before
    assert abs(error.local_time - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
    assert "local clock" in str(error) and "NTP" in str(error)


def test_expired_shows_clock_and_dates(pki: TestPki) -> None:
    with (
        _emulator(pki.expired, chain=True) as emu,
        _client(emu.url, pki) as client,
        pytest.raises(ServerCertificateExpiredError) as info,
    ):
        client.authenticate()
    assert info.value.not_after == pki.expired.cert.not_valid_after_utc
    assert info.value.not_after is not None and info.value.not_after < info.value.local_time


def test_name_resolution_failure(pki: TestPki) -> None:
    with (
        _client("https://lab-dcc.no-such-domain.invalid/certsrv", pki) as client,
        pytest.raises(NameResolutionError) as info,
    ):
        client.authenticate()
    assert info.value.host == "lab-dcc.no-such-domain.invalid"
    assert "name resolution failed for lab-dcc.no-such-domain.invalid" in str(info.value)


@pytest.fixture(scope="module")
def faulty() -> Iterator[AdcsEmulator]:
    with AdcsEmulator(users=USERS) as emu:
        yield emu


def test_authentication_timeout_names_phase_and_limit(faulty: AdcsEmulator) -> None:
    faulty.faults.auth_delay = 0.6
    try:
        with (
            CertsrvClient(
                faulty.url, auth="ntlm", username=ALICE, password=PASSWORD, ca_file=faulty.ca_file,
                timeouts=Timeouts(authentication=0.2),
            ) as client,
            pytest.raises(AuthenticationTimeoutError) as info,
        ):  # fmt: skip
            client.submit(csr_pem(), "WebServer")
    finally:
        faulty.faults.clear()
    assert (info.value.phase, info.value.limit) == ("authentication", 0.2)
    assert "timeout during authentication" in str(info.value) and "0.2 s" in str(info.value)


def test_enrollment_timeout_names_phase_and_limit(faulty: AdcsEmulator) -> None:
    with CertsrvClient(
        faulty.url, auth="ntlm", username=ALICE, password=PASSWORD, ca_file=faulty.ca_file,
        timeouts=Timeouts(enrollment=0.2),
    ) as client:  # fmt: skip
        client.authenticate()
        faulty.faults.enroll_delay = 0.6
        try:
            with pytest.raises(EnrollmentTimeoutError) as info:
                client.submit(csr_pem(), "WebServer")
        finally:
            faulty.faults.clear()
    assert (info.value.phase, info.value.limit) == ("enrollment", 0.2)
    assert "certfnsh.asp" in str(info.value)


def test_slow_enrollment_within_a_raised_limit(faulty: AdcsEmulator) -> None:
    faulty.faults.enroll_delay = 0.3
    try:
        with CertsrvClient(
            faulty.url, auth="ntlm", username=ALICE, password=PASSWORD, ca_file=faulty.ca_file,
            timeouts=Timeouts(enrollment=5),
        ) as client:  # fmt: skip
            assert isinstance(client.submit(csr_pem(), "WebServer"), Issued)
    finally:
        faulty.faults.clear()


def test_retrieval_timeout(faulty: AdcsEmulator) -> None:
    faulty.faults.download_delay = 0.6
    try:
        with (
            CertsrvClient(
                faulty.url, auth="ntlm", username=ALICE, password=PASSWORD, ca_file=faulty.ca_file,
                timeouts=Timeouts(retrieval=0.2),
            ) as client,
            pytest.raises(RetrievalTimeoutError) as info,
        ):  # fmt: skip
            client.get_ca_chain(renewal=0)
    finally:
        faulty.faults.clear()
    assert info.value.phase == "retrieval"


def test_server_error_500(faulty: AdcsEmulator) -> None:
    faulty.faults.http_500 = {"certfnsh.asp"}
    try:
        with (
            CertsrvClient(faulty.url, auth="ntlm", username=ALICE, password=PASSWORD, ca_file=faulty.ca_file) as c,
            pytest.raises(UnexpectedResponseError) as info,
        ):
            c.submit(csr_pem(), "WebServer")
    finally:
        faulty.faults.clear()
    assert info.value.status == 500
    assert "event logs" in str(info.value)


def test_connection_reset(faulty: AdcsEmulator) -> None:
    faulty.faults.reset = {"certnew.cer"}
    try:
        with (
            CertsrvClient(faulty.url, auth="ntlm", username=ALICE, password=PASSWORD, ca_file=faulty.ca_file) as c,
            pytest.raises(ServerUnreachableError) as info,
        ):
            c.submit(csr_pem(), "WebServer")
    finally:
        faulty.faults.clear()
    assert "without answering" in str(info.value)
