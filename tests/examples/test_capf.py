"""The reference CAPF server and phone simulator end to end: phones → CAPF (TLS, CAPF protocol) → EST over TLS.

estclient's EST server with a local CA (the lab's issuing CA) stands in for the RA, so these tests do not depend
on the AD CS side. Every authentication mode with RSA and EC keys, the failures CUCM records (wrong
authentication string, unknown device, EST refusing or timing out, a late phone) with the CAPF operation code,
the certificate status and the trace lines capf_common's analyzer classifies, and a bulk run of 50 phones.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import stat
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from capf_common import (
    AuthRequest,
    AuthType,
    CapfOperationResult,
    CertificateOperation,
    CertificateStatus,
    EndSession,
    Event,
    NeedData,
    PhoneConnection,
    Reason,
    Report,
    SignCertificateRequest,
    analyze,
    build_lsc_csr,
    check_lsc,
    verify_chain,
)
from capf_online_ca.capf_server import CapfServer, CapfServerError, CapfSettings, EstSettings
from capf_online_ca.phone import ManufacturingCa, Phone, PhoneError, PhoneOutcome, reason_name, run_phones
from capf_online_ca.pki import LabPki
from capf_online_ca.registry import (
    DeviceConfig,
    DeviceRegistry,
    FailureReason,
    KeyOrder,
    Operation,
    RegistryError,
    certificate_status,
)
from capf_online_ca.trace import CapfTrace
from estclient import ClientCertificate
from estclient.testing import EstServer, Fault, FaultKind, LocalCa, LocalCaBackend, TlsIdentity

EST_USER, EST_PASSWORD = "capf", "capf-est-secret"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def lab_pki(tmp_path_factory: pytest.TempPathFactory) -> LabPki:
    return LabPki.create(tmp_path_factory.mktemp("capf-pki"))


@pytest.fixture(scope="module")
def factory(tmp_path_factory: pytest.TempPathFactory) -> ManufacturingCa:
    return ManufacturingCa.create(tmp_path_factory.mktemp("factory"))


@pytest.fixture(scope="module")
def backend(lab_pki: LabPki) -> LocalCaBackend:
    ca = LocalCa(lab_pki.issuing_ca.cert, lab_pki.issuing_ca.key, (lab_pki.root.cert,))
    return LocalCaBackend(ca)


@pytest.fixture(scope="module")
def ra(lab_pki: LabPki, backend: LocalCaBackend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EstServer]:
    """The RA's stand-in: EST over TLS with the lab RA certificate; CAPF's client certificate or Basic."""
    tls = TlsIdentity(lab_pki.ra.cert, lab_pki.ra.key, (lab_pki.issuing_ca.cert,), (lab_pki.root.cert,))
    server = EstServer(
        backend,
        tls=tls,
        users={EST_USER: EST_PASSWORD},
        client_cas=[lab_pki.root.cert, lab_pki.issuing_ca.cert],
        pop="off",
        directory=tmp_path_factory.mktemp("ra"),
    )
    with server:
        yield server


def _client_certificate(pki: LabPki) -> ClientCertificate:
    return ClientCertificate(pki.capf_client.cert, pki.capf_client.key, (pki.issuing_ca.cert,))


def _settings(
    pki: LabPki, ra: EstServer, folder: Path, factory: ManufacturingCa, *, basic: str | None = None, **est: object
) -> CapfSettings:
    if basic is None:
        est_settings = EstSettings(ra.url, pki.trust_bundle, client_certificate=_client_certificate(pki))
    else:
        est_settings = EstSettings(ra.url, pki.trust_bundle, username=EST_USER, password=basic)
    est_settings = replace(est_settings, **est)  # type: ignore[arg-type]
    return CapfSettings(
        pki.capf_server.chain_path,
        pki.capf_server.key_path,
        est_settings,
        folder,
        lsc_issuers=[pki.issuing_ca.cert],
        mic_issuers=[factory.certificate],
        port=0,
    )


def _phone(pki: LabPki, folder: Path, name: str, mode: AuthType = AuthType.PASSWORD, **kwargs: object) -> Phone:
    return Phone(name, folder / name, auth_mode=mode, trust_file=pki.trust_bundle, **kwargs)  # type: ignore[arg-type]


def _trace_text(capf: CapfServer) -> str:
    return "".join(p.read_text() for p in capf.trace.files)


def _enrollment_outcomes(report: Report, device: str) -> list[str]:
    """The analyzer's outcome of each attempt of a device (one per CAPF session: no stray "unknown" ones)."""
    return [r.outcome for r in report.requests if r.device == device]


def _assert_valid_lsc(pki: LabPki, phone: Phone) -> x509.Certificate:
    lsc = phone.lsc
    assert lsc is not None
    verify_chain([lsc, pki.issuing_ca.cert], [pki.root.cert])
    assert not [d for d in check_lsc(lsc, phone.name).deviations if d.severity == "error"]
    assert stat.S_IMODE((phone.folder / "lsc.key").stat().st_mode) == 0o600
    assert not (phone.folder / "pending.key").exists()
    return lsc


# -- installs: every authentication mode, RSA and EC ------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("mode", "key_order"),
    [
        (AuthType.PASSWORD, KeyOrder.RSA_ONLY),
        (AuthType.PASSWORD, KeyOrder.EC_ONLY),
        (AuthType.NO_PASSWORD, KeyOrder.RSA_ONLY),
        (AuthType.NO_PASSWORD, KeyOrder.EC_ONLY),
        (AuthType.MIC, KeyOrder.RSA_ONLY),
        (AuthType.MIC, KeyOrder.EC_PREFERRED),
    ],
)
async def test_install_by_mode_and_key(
    mode: AuthType,
    key_order: KeyOrder,
    lab_pki: LabPki,
    ra: EstServer,
    factory: ManufacturingCa,
    tmp_path: Path,
) -> None:
    name = "SEP74A02FC0A675"
    auth_string = "123456" if mode is AuthType.PASSWORD else None
    registry = DeviceRegistry([DeviceConfig(name, mode, auth_string, key_order=key_order)])
    mic = factory.issue_mic(name, ec.generate_private_key(ec.SECP256R1())) if mode is AuthType.MIC else None
    phone = _phone(lab_pki, tmp_path, name, mode, auth_string=auth_string or "", mic=mic)
    async with CapfServer(_settings(lab_pki, ra, tmp_path / "capf", factory), registry) as capf:
        result = await phone.run("127.0.0.1", capf.port)

    assert result.outcome is PhoneOutcome.INSTALLED, result.detail
    assert result.end_reason == Reason.UPDATE_CERTIFICATE
    lsc = _assert_valid_lsc(lab_pki, phone)
    assert result.lsc_serial == format(lsc.serial_number, "x")
    if key_order is KeyOrder.RSA_ONLY:
        assert isinstance(lsc.public_key(), rsa.RSAPublicKey) and result.key_type == "RSA 2048"
    else:
        assert isinstance(lsc.public_key(), ec.EllipticCurvePublicKey) and result.key_type == "EC secp256r1"
    record = registry[name]
    assert record.result is CapfOperationResult.CAPF_OP_SUCCESS
    assert record.status is CertificateStatus.UPGRADE_SUCCESS
    assert record.operation is CertificateOperation.NO_PENDING_OPERATION
    assert record.lsc_serial == result.lsc_serial

    trace = _trace_text(capf)
    for line in (
        "| CServiceParameters::Init() Certificate Generation Method=OnlineCA:4",
        f"|   debug 2:{name}:CA Mode is OnlineCA, Initiating Automatic Certificate Enrollment",
        f"|   debug 2:{name}:Calling enrollCertUsingEST() csr_file={tmp_path / 'capf' / 'capf' / 'csr' / name}.csr",
        f"|   debug 2:{name}:Enrollment rv = 0 (EST_ERR_NONE) with pkcs7 length = ",
        f"|   debug 2:{name}:Online Cert Signing successful",
        "|-->SetOperationStatus(Success:CAPF_OP_SUCCESS):0",
        "=>DbStatus=CERT_STATUS_UPGRADE_SUCCESS",
        f"UPDATE Device SET tkCertificateOperation=1, tkcertificatestatus='3' WHERE my_lower(name)=my_lower('{name}')",
    ):
        assert line in trace
    assert auth_string is None or auth_string not in trace
    report = analyze(capf.trace.files)
    assert report.verdict == "healthy", report.findings
    assert name in report.devices
    assert _enrollment_outcomes(report, name) == ["success"]


@pytest.mark.anyio
@pytest.mark.parametrize("key_order", [KeyOrder.RSA_ONLY, KeyOrder.EC_ONLY])
async def test_renewal_authenticated_by_existing_lsc(
    key_order: KeyOrder, lab_pki: LabPki, ra: EstServer, factory: ManufacturingCa, tmp_path: Path
) -> None:
    """A phone with an LSC renews it authenticating with that LSC ("By Existing Certificate, precedence to LSC")."""
    name = "SEP001F6C81118B"
    registry = DeviceRegistry([DeviceConfig(name, AuthType.NO_PASSWORD, key_order=key_order)])
    async with CapfServer(_settings(lab_pki, ra, tmp_path / "capf", factory), registry) as capf:
        first = await _phone(lab_pki, tmp_path, name, AuthType.NO_PASSWORD).run("127.0.0.1", capf.port)
        assert first.outcome is PhoneOutcome.INSTALLED, first.detail
        registry.add(DeviceConfig(name, AuthType.LSC, key_order=key_order))
        phone = _phone(lab_pki, tmp_path, name, AuthType.LSC)
        second = await phone.run("127.0.0.1", capf.port)
    assert second.outcome is PhoneOutcome.INSTALLED, second.detail
    assert second.lsc_serial != first.lsc_serial
    _assert_valid_lsc(lab_pki, phone)
    assert registry[name].status is CertificateStatus.UPGRADE_SUCCESS
    assert f"2:{name}:Authentication successful with certificate CN=CP-8865-{name}" in _trace_text(capf)


@pytest.mark.anyio
async def test_install_with_basic_authentication_to_the_ra(
    lab_pki: LabPki, ra: EstServer, factory: ManufacturingCa, tmp_path: Path
) -> None:
    name = "SEP0011223344AA"
    registry = DeviceRegistry([DeviceConfig(name, AuthType.NO_PASSWORD, key_order=KeyOrder.EC_ONLY)])
    before = ra.count("simpleenroll", status=200)
    settings = _settings(lab_pki, ra, tmp_path / "capf", factory, basic=EST_PASSWORD)
    async with CapfServer(settings, registry) as capf:
        result = await _phone(lab_pki, tmp_path, name, AuthType.NO_PASSWORD).run("127.0.0.1", capf.port)
    assert result.outcome is PhoneOutcome.INSTALLED, result.detail
    assert ra.count("simpleenroll", status=200) == before + 1
    assert [r.user for r in ra.requests if r.operation == "simpleenroll"][-1] == EST_USER
    assert EST_PASSWORD not in _trace_text(capf)


# -- refusals and failures, as CUCM records them -----------------------------------------------------------------


@pytest.mark.anyio
async def test_wrong_authentication_string(
    lab_pki: LabPki, ra: EstServer, factory: ManufacturingCa, tmp_path: Path
) -> None:
    name = "SEP00AABBCCDD01"
    registry = DeviceRegistry([DeviceConfig(name, AuthType.PASSWORD, "1111", key_order=KeyOrder.EC_ONLY)])
    before = ra.count("simpleenroll")
    async with CapfServer(_settings(lab_pki, ra, tmp_path / "capf", factory), registry) as capf:
        phone = _phone(lab_pki, tmp_path, name, AuthType.PASSWORD, auth_string="2222")
        result = await phone.run("127.0.0.1", capf.port)
    assert result.outcome is PhoneOutcome.REFUSED
    assert result.end_reason == Reason.INVALID_ELEMENT
    assert phone.lsc is None and ra.count("simpleenroll") == before
    record = registry[name]
    assert record.result is CapfOperationResult.CAPF_OP_FAIL_INVALID_AUTH_STR
    assert record.status is CertificateStatus.UPGRADE_FAILED_INVALID_AUTHENTICATION_STRING
    assert record.operation is CertificateOperation.INSTALL_UPGRADE  # still pending: the phone may try again
    trace = _trace_text(capf)
    assert "|-->SetOperationStatus(Failure:CAPF_OP_FAIL_INVALID_AUTH_STR):3" in trace
    assert "=>DbStatus=CERT_STATUS_UPGRADE_FAILED_INVALID_AUTHENTICATION_STRING" in trace
    assert "1111" not in trace and "2222" not in trace
    report = analyze(capf.trace.files)
    assert report.problems == ("capf-operation-failed",)
    assert report.findings[0].details["capf_result"] == "CAPF_OP_FAIL_INVALID_AUTH_STR"


@pytest.mark.anyio
async def test_unknown_device(lab_pki: LabPki, ra: EstServer, factory: ManufacturingCa, tmp_path: Path) -> None:
    registry = DeviceRegistry([DeviceConfig("SEP00AABBCCDD02", AuthType.NO_PASSWORD)])
    async with CapfServer(_settings(lab_pki, ra, tmp_path / "capf", factory), registry) as capf:
        result = await _phone(lab_pki, tmp_path, "SEP00AABBCCDD03", AuthType.NO_PASSWORD).run("127.0.0.1", capf.port)
    assert result.outcome is PhoneOutcome.UNKNOWN_DEVICE
    assert result.end_reason == Reason.UNKNOWN_DEVICE
    assert registry.unknown_attempts == ["SEP00AABBCCDD03"]
    assert registry["SEP00AABBCCDD02"].status is CertificateStatus.OPERATION_PENDING
    trace = _trace_text(capf)
    assert "2:SEP00AABBCCDD03:Device SEP00AABBCCDD03 not found in the database" in trace
    assert "2:SEP00AABBCCDD03:Sending END_SESSION msg (reason UNKNOWN_DEVICE)" in trace
    assert "SetOperationStatus" not in trace  # no database row to update
    report = analyze(capf.trace.files)
    assert report.problems == ("unknown-device",)
    (finding,) = report.findings
    assert finding.device == "SEP00AABBCCDD03"
    assert any("not found in the database" in e.text for e in finding.evidence)
    assert [r.outcome for r in report.requests if r.device == "SEP00AABBCCDD03"] == ["failure"]


@pytest.mark.anyio
async def test_ra_refuses_capf_credentials(
    lab_pki: LabPki, ra: EstServer, factory: ManufacturingCa, tmp_path: Path
) -> None:
    """The RA answers 401: libest's EST_ERR_AUTH_FAIL (22) in the trace, the analyzer names est-auth-failure."""
    name = "SEP00AABBCCDD04"
    registry = DeviceRegistry([DeviceConfig(name, AuthType.NO_PASSWORD, key_order=KeyOrder.EC_ONLY)])
    settings = _settings(lab_pki, ra, tmp_path / "capf", factory, basic="not-the-password")
    async with CapfServer(settings, registry) as capf:
        phone = _phone(lab_pki, tmp_path, name, AuthType.NO_PASSWORD)
        result = await phone.run("127.0.0.1", capf.port)
    assert result.outcome is PhoneOutcome.REFUSED and phone.lsc is None
    record = registry[name]
    assert record.result is CapfOperationResult.CAPF_OP_FAIL
    assert record.status is CertificateStatus.UPGRADE_FAILED_CA_REJECTED_CONNECTION
    trace = _trace_text(capf)
    assert f"2:{name}:Enrollment rv = 22 (EST_ERR_AUTH_FAIL) with pkcs7 length = 0" in trace
    assert f"2:{name}:Return value from enrollCertUsingEST() : 22" in trace
    assert f"2:{name}:Online Cert Signing Failed" in trace
    assert (tmp_path / "capf" / "capf" / "csr" / f"{name}.csr").exists()  # kept, as `utils capf csr list` shows
    assert "not-the-password" not in trace
    _assert_one_libest_numbering(trace)
    report = analyze(capf.trace.files)
    assert report.verdict == "problems"
    assert "est-auth-failure" in report.problems
    finding = next(f for f in report.findings if f.problem == "est-auth-failure")
    assert finding.device == name and finding.details["est_code"] == "22"


@pytest.mark.anyio
async def test_ra_timeout_then_retry(lab_pki: LabPki, ra: EstServer, factory: ManufacturingCa, tmp_path: Path) -> None:
    """The RA does not answer in time: EST_ERR_SSL_READ (35) as in the seed; the phone's next attempt succeeds."""
    name = "SEP00AABBCCDD05"
    registry = DeviceRegistry([DeviceConfig(name, AuthType.NO_PASSWORD, key_order=KeyOrder.EC_ONLY)])
    settings = _settings(lab_pki, ra, tmp_path / "capf", factory, timeout=2.0)
    async with CapfServer(settings, registry) as capf:
        phone = _phone(lab_pki, tmp_path, name, AuthType.NO_PASSWORD)
        with ra.faults(Fault(FaultKind.DELAY, operations={"simpleenroll"}, times=1, seconds=6.0)):
            failed = await phone.run("127.0.0.1", capf.port)
        assert failed.outcome is PhoneOutcome.REFUSED
        assert registry[name].status is CertificateStatus.UPGRADE_FAILED_CA_COMMUNICATION_FAILURE
        report = analyze(capf.trace.files)
        assert "ssl-read-error" in report.problems
        assert f"2:{name}:Enrollment rv = 35 (EST_ERR_SSL_READ) with pkcs7 length = 0" in _trace_text(capf)

        retried = await phone.run("127.0.0.1", capf.port, attempts=2, retry_delay=0.1)
    assert retried.outcome is PhoneOutcome.INSTALLED, retried.detail
    record = registry[name]
    assert record.status is CertificateStatus.UPGRADE_SUCCESS and record.attempts == 2
    assert _enrollment_outcomes(analyze(capf.trace.files), name) == ["failure", "success"]


@pytest.mark.anyio
async def test_phone_retries_after_ca_failure(
    lab_pki: LabPki, ra: EstServer, factory: ManufacturingCa, tmp_path: Path
) -> None:
    """A 503 from the RA fails one attempt; the phone's retry (CUCM phones retry a failed install) succeeds."""
    name = "SEP00AABBCCDD06"
    registry = DeviceRegistry([DeviceConfig(name, AuthType.NO_PASSWORD, key_order=KeyOrder.EC_ONLY)])
    async with CapfServer(_settings(lab_pki, ra, tmp_path / "capf", factory), registry) as capf:
        phone = _phone(lab_pki, tmp_path, name, AuthType.NO_PASSWORD)
        with ra.faults(Fault(FaultKind.SERVER_ERROR, operations={"simpleenroll"}, times=1, status=503)):
            result = await phone.run("127.0.0.1", capf.port, attempts=3, retry_delay=0.1)
    assert result.outcome is PhoneOutcome.INSTALLED and result.attempts == 2
    assert registry[name].attempts == 2
    trace = _trace_text(capf)
    assert "Online Cert Signing Failed" in trace
    assert f"2:{name}:Enrollment rv = 73 (EST_ERR_UNKNOWN) with pkcs7 length = 0" in trace  # libest 2.x number
    _assert_one_libest_numbering(trace)


def _assert_one_libest_numbering(trace: str) -> None:
    """A CAPF trace writes libest 2.x numbers only: no estclient (libest 3.x) number beside them."""
    assert "[libest:" not in trace, trace
    assert "(94)" not in trace, trace


@pytest.mark.anyio
async def test_late_phone(lab_pki: LabPki, ra: EstServer, factory: ManufacturingCa, tmp_path: Path) -> None:
    name = "SEP00AABBCCDD07"
    past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    registry = DeviceRegistry([DeviceConfig(name, AuthType.NO_PASSWORD, deadline=past)])
    async with CapfServer(_settings(lab_pki, ra, tmp_path / "capf", factory), registry) as capf:
        result = await _phone(lab_pki, tmp_path, name, AuthType.NO_PASSWORD).run("127.0.0.1", capf.port)
    assert result.outcome is PhoneOutcome.REFUSED
    record = registry[name]
    assert record.result is CapfOperationResult.CAPF_OP_FAIL_LATE_REQUEST
    assert record.status is CertificateStatus.UPGRADE_FAILED_USER_INITIATED_REQUEST_LATE_TIMEDOUT
    trace = _trace_text(capf)
    assert "SetOperationStatus(Failure:CAPF_OP_FAIL_LATE_REQUEST):11" in trace
    # the deadline is capf_common's check (verify_auth_response(complete_by=)): its cause and code reach the trace
    assert f"2:{name}:Authentication failed (CAPF_OP_FAIL_LATE_REQUEST): {name} asked at " in trace
    assert f"after its Operation Completes By deadline {past.isoformat()}" in record.detail
    report = analyze(capf.trace.files)
    assert [(f.problem, f.device) for f in report.findings] == [("capf-operation-failed", name)]
    assert report.findings[0].details["capf_result"] == "CAPF_OP_FAIL_LATE_REQUEST"


@pytest.mark.anyio
async def test_mic_from_an_untrusted_factory(
    lab_pki: LabPki, ra: EstServer, factory: ManufacturingCa, tmp_path: Path
) -> None:
    name = "SEP00AABBCCDD08"
    other = ManufacturingCa.create()
    registry = DeviceRegistry([DeviceConfig(name, AuthType.MIC, key_order=KeyOrder.EC_ONLY)])
    mic = other.issue_mic(name, ec.generate_private_key(ec.SECP256R1()))
    async with CapfServer(_settings(lab_pki, ra, tmp_path / "capf", factory), registry) as capf:
        result = await _phone(lab_pki, tmp_path, name, AuthType.MIC, mic=mic).run("127.0.0.1", capf.port)
    assert result.outcome is PhoneOutcome.REFUSED
    assert registry[name].result is CapfOperationResult.CAPF_OP_FAIL_INVALID_MIC
    assert registry[name].status is CertificateStatus.UPGRADE_FAILED_INVALID_MIC


# -- the other operations ---------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_fetch_delete_and_nothing_to_do(
    lab_pki: LabPki, ra: EstServer, factory: ManufacturingCa, tmp_path: Path
) -> None:
    name = "SEP00AABBCCDD09"
    registry = DeviceRegistry([DeviceConfig(name, AuthType.NO_PASSWORD, key_order=KeyOrder.EC_ONLY)])
    phone = _phone(lab_pki, tmp_path, name, AuthType.NO_PASSWORD)
    async with CapfServer(_settings(lab_pki, ra, tmp_path / "capf", factory), registry) as capf:
        installed = await phone.run("127.0.0.1", capf.port)
        assert installed.outcome is PhoneOutcome.INSTALLED

        registry.schedule(name, Operation.FETCH)
        fetched = await phone.run("127.0.0.1", capf.port)
        assert fetched.outcome is PhoneOutcome.FETCHED and fetched.end_reason == Reason.NO_ACTION
        assert registry[name].status is CertificateStatus.TROUBLESHOOT_SUCCESS
        assert f"2:{name}:Fetched LSC subject=CN=CP-8865-{name}" in _trace_text(capf)

        registry.schedule(name, Operation.DELETE)
        deleted = await phone.run("127.0.0.1", capf.port)
        assert deleted.outcome is PhoneOutcome.DELETED and phone.lsc is None
        assert registry[name].status is CertificateStatus.DELETE_SUCCESS and registry[name].lsc is None

        idle = await phone.run("127.0.0.1", capf.port)
        assert idle.outcome is PhoneOutcome.NO_ACTION and idle.end_reason == Reason.NO_ACTION

        registry.schedule(name, Operation.FETCH)
        empty = await phone.run("127.0.0.1", capf.port)
    assert empty.outcome is PhoneOutcome.FETCHED
    assert registry[name].result is CapfOperationResult.CAPF_FETCH_SUCCESS_BUT_NO_CERT


# -- many phones ------------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_bulk_50_phones_at_concurrency_10(
    lab_pki: LabPki, ra: EstServer, backend: LocalCaBackend, factory: ManufacturingCa, tmp_path: Path
) -> None:
    names = [f"SEP0000000{i:05X}" for i in range(50)]
    registry = DeviceRegistry(
        DeviceConfig(n, AuthType.PASSWORD, f"{1000 + i}", key_order=KeyOrder.EC_ONLY) for i, n in enumerate(names)
    )
    phones = [_phone(lab_pki, tmp_path, n, AuthType.PASSWORD, auth_string=f"{1000 + i}") for i, n in enumerate(names)]
    seen: list[str] = []
    async with CapfServer(_settings(lab_pki, ra, tmp_path / "capf", factory), registry) as capf:
        results = await run_phones(
            phones, "127.0.0.1", capf.port, concurrency=10, on_result=lambda r: seen.append(r.device)
        )

    assert [r.device for r in results] == names and sorted(seen) == sorted(names)
    assert all(r.outcome is PhoneOutcome.INSTALLED for r in results), [r.detail for r in results if not r.succeeded]
    serials = {r.lsc_serial for r in results}
    assert None not in serials and len(serials) == 50
    wanted = {f"CP-8865-{n}" for n in names}
    issued = [c for c in backend.issued if c.subject.rfc4514_string().removeprefix("CN=") in wanted]
    assert len(issued) == 50  # one enrollment per phone: no retry, nothing lost
    for phone in phones:
        _assert_valid_lsc(lab_pki, phone)
    assert all(r.status is CertificateStatus.UPGRADE_SUCCESS for r in registry)
    assert len(capf.outcomes) == 50
    report = analyze(capf.trace.files)
    assert report.verdict == "healthy"
    assert sorted(report.devices) == sorted(names)


# -- units: registry, trace, phone set-up ----------------------------------------------------------------------


def test_device_config_refuses_bad_input() -> None:
    with pytest.raises(RegistryError, match="SEP"):
        DeviceConfig("phone-1", AuthType.NO_PASSWORD)
    with pytest.raises(RegistryError, match="authentication string"):
        DeviceConfig("SEP001122334455", AuthType.PASSWORD)
    with pytest.raises(RegistryError, match="key size"):
        DeviceConfig("SEP001122334455", AuthType.NO_PASSWORD, key_size=1000)
    with pytest.raises(RegistryError, match="time zone"):
        DeviceConfig("SEP001122334455", AuthType.NO_PASSWORD, deadline=dt.datetime(2030, 1, 1))
    with pytest.raises(RegistryError, match="not configured"):
        DeviceRegistry()["SEP001122334455"]
    config = DeviceConfig("sep001122334455", AuthType.PASSWORD, "9876")
    assert config.name == "SEP001122334455" and "9876" not in repr(config)


def test_reason_names_are_readable() -> None:
    assert reason_name(Reason.INVALID_ELEMENT) == "INVALID_ELEMENT (7)"
    assert reason_name(7) == "INVALID_ELEMENT (7)"
    assert reason_name(250) == "250 (unknown)"
    assert reason_name(None) == "none"


def test_certificate_status_mapping() -> None:
    ok, fail = CapfOperationResult.CAPF_OP_SUCCESS, CapfOperationResult.CAPF_OP_FAIL
    assert certificate_status(Operation.INSTALL, ok) is CertificateStatus.UPGRADE_SUCCESS
    assert certificate_status(Operation.DELETE, ok) is CertificateStatus.DELETE_SUCCESS
    assert certificate_status(Operation.INSTALL, fail) is CertificateStatus.UPGRADE_FAILED
    assert (
        certificate_status(Operation.INSTALL, fail, FailureReason.CA_COMMUNICATION_FAILURE)
        is CertificateStatus.UPGRADE_FAILED_CA_COMMUNICATION_FAILURE
    )
    # Troubleshoot has no CA reasons in CUCM's table: the plain failure
    assert (
        certificate_status(Operation.FETCH, fail, FailureReason.CA_REJECTED_CONNECTION)
        is CertificateStatus.TROUBLESHOOT_FAILED
    )
    assert (
        certificate_status(Operation.DELETE, CapfOperationResult.CAPF_OP_FAIL_INVALID_LSC)
        is CertificateStatus.DELETE_FAILED_INVALID_LSC
    )
    with pytest.raises(RegistryError):
        certificate_status(Operation.NONE, ok)


def test_trace_format_and_rollover(tmp_path: Path) -> None:
    (tmp_path / "capf00000004.txt").write_text("old\n")
    trace = CapfTrace(tmp_path, max_bytes=400)
    assert trace.path.name == "capf00000005.txt"
    for i in range(10):
        trace.debug(f"line {i}", "SEP001122334455")
    trace.close()
    assert [p.name for p in trace.files][:2] == ["capf00000005.txt", "capf00000006.txt"]
    lines = trace.files[0].read_text().splitlines()
    assert lines[0].endswith(" |-->debug") and lines[2].endswith(" |<--debug")
    assert lines[1].split(" |", 1)[1] == "   debug 2:SEP001122334455:line 0"
    assert all(p.stat().st_size <= 400 for p in trace.files)


def test_phone_setup_errors(lab_pki: LabPki, tmp_path: Path) -> None:
    with pytest.raises(PhoneError, match="MIC mode needs a MIC"):
        _phone(lab_pki, tmp_path, "SEP001122334455", AuthType.MIC)
    with pytest.raises(PhoneError, match="authentication string"):
        _phone(lab_pki, tmp_path, "SEP001122334455", AuthType.PASSWORD)
    with pytest.raises(PhoneError, match="SEP"):
        _phone(lab_pki, tmp_path, "phone-7", AuthType.NO_PASSWORD)
    phone = _phone(lab_pki, tmp_path, "SEP001122334455", AuthType.PASSWORD, auth_string="4321")
    assert "4321" not in repr(phone)


# -- misbehaving phones ------------------------------------------------------------------------------------------


async def _raw_phone(
    pki: LabPki, port: int
) -> tuple[PhoneConnection, asyncio.StreamReader, asyncio.StreamWriter, Callable[[], Awaitable[Event]]]:
    context = ssl.create_default_context(cafile=pki.trust_bundle)
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="localhost")
    conn = PhoneConnection()

    async def next_event() -> Event:
        while isinstance(event := conn.next_event(), NeedData):
            conn.receive_data(await asyncio.wait_for(reader.read(65536), 10))
        return event

    return conn, reader, writer, next_event


@pytest.mark.anyio
async def test_csr_for_another_device_is_refused(
    lab_pki: LabPki, ra: EstServer, factory: ManufacturingCa, tmp_path: Path
) -> None:
    name = "SEP00AABBCCDD0A"
    registry = DeviceRegistry([DeviceConfig(name, AuthType.NO_PASSWORD, key_order=KeyOrder.EC_ONLY)])
    before = ra.count("simpleenroll")
    async with CapfServer(_settings(lab_pki, ra, tmp_path / "capf", factory), registry) as capf:
        conn, _, writer, next_event = await _raw_phone(lab_pki, capf.port)
        assert isinstance(await next_event(), AuthRequest)
        writer.write(conn.authenticate(name))
        assert isinstance(await next_event(), SignCertificateRequest)
        key = ec.generate_private_key(ec.SECP256R1())
        writer.write(conn.send_csr(build_lsc_csr("SEP00AABBCCDD0B", key)))  # somebody else's name
        end = await next_event()
        writer.close()
    assert isinstance(end, EndSession) and end.reason == Reason.INVALID_ELEMENT
    assert ra.count("simpleenroll") == before  # never forwarded to the RA
    assert registry[name].result is CapfOperationResult.CAPF_OP_FAIL_INVALID_CRENDENTIALS


@pytest.mark.anyio
async def test_phone_hanging_up_mid_session(
    lab_pki: LabPki, ra: EstServer, factory: ManufacturingCa, tmp_path: Path
) -> None:
    name = "SEP00AABBCCDD0C"
    registry = DeviceRegistry([DeviceConfig(name, AuthType.NO_PASSWORD, key_order=KeyOrder.EC_ONLY)])
    async with CapfServer(_settings(lab_pki, ra, tmp_path / "capf", factory), registry) as capf:
        conn, _, writer, next_event = await _raw_phone(lab_pki, capf.port)
        assert isinstance(await next_event(), AuthRequest)
        writer.write(conn.authenticate(name))
        assert isinstance(await next_event(), SignCertificateRequest)
        writer.close()
        await writer.wait_closed()
        for _ in range(100):  # the server notices the closed connection
            if capf.outcomes:
                break
            await asyncio.sleep(0.05)
    record = registry[name]
    assert record.result is CapfOperationResult.CAPF_OP_FAIL_PHONE_COMM_ERROR
    assert record.status is CertificateStatus.UPGRADE_FAILED_PHONE_COMMUNICATION_FAILURE
    assert capf.outcomes[0].device == name and capf.outcomes[0].est_seconds is None


@pytest.mark.anyio
async def test_phone_that_does_not_trust_capf(
    lab_pki: LabPki, ra: EstServer, factory: ManufacturingCa, tmp_path: Path
) -> None:
    registry = DeviceRegistry([DeviceConfig("SEP00AABBCCDD0D", AuthType.NO_PASSWORD)])
    phone = Phone(
        "SEP00AABBCCDD0D",
        tmp_path / "phone",
        auth_mode=AuthType.NO_PASSWORD,
        trust_file=tmp_path / "factory" / "cisco-manufacturing-ca.pem",
    )
    ManufacturingCa.create(tmp_path / "factory")
    async with CapfServer(_settings(lab_pki, ra, tmp_path / "capf", factory), registry) as capf:
        result = await phone.run("127.0.0.1", capf.port, timeout=10)
    assert result.outcome is PhoneOutcome.ERROR
    assert "CERTIFICATE_VERIFY_FAILED" in result.detail
    assert registry["SEP00AABBCCDD0D"].attempts == 0


@pytest.mark.anyio
async def test_configuration_errors_name_cause_and_fix(
    lab_pki: LabPki, ra: EstServer, factory: ManufacturingCa, tmp_path: Path
) -> None:
    settings = _settings(lab_pki, ra, tmp_path / "capf", factory)
    missing = replace(settings, est=replace(settings.est, trust_file=tmp_path / "nope.pem"))
    with pytest.raises(CapfServerError, match=r"nope\.pem.*Fix: set EstSettings\.trust_file"):
        CapfServer(missing, DeviceRegistry())
    wrong_key = replace(settings, key_file=lab_pki.ra.key_path)
    with pytest.raises(CapfServerError, match=r"cannot load CAPF's TLS certificate.*Fix:"):
        await CapfServer(wrong_key, DeviceRegistry()).start()
    async with CapfServer(settings, DeviceRegistry()) as first:
        taken = replace(settings, port=first.port, folder=tmp_path / "capf2")
        with pytest.raises(CapfServerError, match=f"cannot listen on 127.0.0.1:{first.port}.*Fix: choose a free port"):
            await CapfServer(taken, DeviceRegistry()).start()
