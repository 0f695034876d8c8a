"""The lab's RA (EST server over AD CS) end to end: estclient → RA → certsrv → AD CS emulator, over real TLS with NTLM.

Each of the seed's common problems is reproduced with its lab fault; the RA's error.log and the IIS log must then
be named correctly by capf_common's analyzer, and the RA's configuration by ``certsrv check``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from capf_common import analyze
from capf_online_ca.adcs import RA_TEMPLATE, LabAdcs, start_adcs
from capf_online_ca.faults import FAULTS, LabFault, UnknownFaultError, get_fault
from capf_online_ca.nginx_log import curl_error
from capf_online_ca.pki import LabPki
from capf_online_ca.ra import LabRa, certsrv_check_arguments, ra_settings, start_ra
from capf_online_ca.ra_backend import AdcsSettings
from certsrv import NameResolutionError, UntrustedServerChainError
from certsrv._cli_app import cli as certsrv_cli
from certsrv.testing import Policy
from estclient import (
    AuthenticationError,
    ClientCertificate,
    EnrollResult,
    EstClient,
    EstError,
    Pending,
    TrustAnchors,
)
from tests._support.kerberos import Kdc


@pytest.fixture(scope="module")
def lab_pki(tmp_path_factory: pytest.TempPathFactory) -> LabPki:
    return LabPki.create(tmp_path_factory.mktemp("lab-pki"))


@pytest.fixture(scope="module")
def healthy(lab_pki: LabPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LabAdcs, LabRa]]:
    folder = tmp_path_factory.mktemp("lab")
    with start_adcs(lab_pki, folder) as adcs, start_ra(lab_pki, folder, ra_settings(adcs, connections=1)) as ra:
        yield adcs, ra


def _capf_client(pki: LabPki, ra: LabRa) -> EstClient:
    identity = ClientCertificate(pki.capf_client.cert, pki.capf_client.key, (pki.issuing_ca.cert,))
    return EstClient(ra.url, trust=TrustAnchors.explicit_anchors(ra.trust_file), client_certificate=identity)


def _csr(name: str) -> x509.CertificateSigningRequest:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    return x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())


def _enroll(pki: LabPki, ra: LabRa, name: str) -> EnrollResult:
    with _capf_client(pki, ra) as client:
        result = client.simple_enroll(_csr(name))
    assert isinstance(result, EnrollResult)
    return result


def _check(settings: AdcsSettings, fault: LabFault | None) -> dict[str, object]:
    args, env = certsrv_check_arguments(settings, fault)
    result = CliRunner().invoke(certsrv_cli, args, env=env)
    data: dict[str, object] = json.loads(result.output)
    return data


# -- the healthy chain -------------------------------------------------------------------------------------------


def test_enrollment_through_the_ra_is_issued_by_adcs(lab_pki: LabPki, healthy: tuple[LabAdcs, LabRa]) -> None:
    adcs, ra = healthy
    result = _enroll(lab_pki, ra, "SEP74A02FC0A675")

    issuing = adcs.ca_chain[0]
    result.certificate.verify_directly_issued_by(issuing)
    assert result.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "SEP74A02FC0A675"
    assert issuing in result.chain
    request = adcs.emulator.ca.requests[-1]
    assert request.template == RA_TEMPLATE
    assert request.requester == adcs.username
    assert any(
        e.uri_stem == "/certsrv/certfnsh.asp" and e.username == adcs.username for e in adcs.emulator.access_log.entries
    )
    assert "CiscoRA+1.0" in adcs.iis_log.read_text()


def test_cacerts_serves_the_adcs_chain_fetched_at_start(lab_pki: LabPki, healthy: tuple[LabAdcs, LabRa]) -> None:
    adcs, ra = healthy
    with _capf_client(lab_pki, ra) as client:
        served = client.cacerts().certificates
    assert set(served) == set(adcs.ca_chain)
    log = ra.error_log.read_text()
    assert "login_to_certsrv_ca: Secure connection to MS CertServ completed successfully using the following URL" in log
    chain_url = f"{adcs.url}/certnew.p7b?ReqID=CACert&Renewal=0&Enc=bin"
    assert (
        f"retrieve_cacerts: Secure connection to MS CertServ completed successfully using the following URL {chain_url}"
        in log
    )
    assert "ra_certsrv_ca_plugin_postconf: CA Cert chain retrieved from CA, will be passed to EST" in log
    stems = [(e.uri_stem, e.uri_query) for e in adcs.emulator.access_log.entries]
    assert ("/certsrv/certnew.p7b", "ReqID=CACert&Renewal=0&Enc=bin") in stems


def test_each_enrollment_costs_two_iis_requests(lab_pki: LabPki, healthy: tuple[LabAdcs, LabRa]) -> None:
    adcs, ra = healthy
    _enroll(lab_pki, ra, "SEPWARMUP0000")  # the one connection is authenticated (one-time login) by now
    before = len(adcs.emulator.access_log.entries)
    for index in range(3):
        _enroll(lab_pki, ra, f"SEP00000000000{index}")
    added = adcs.emulator.access_log.entries[before:]
    assert [e.uri_stem for e in added] == ["/certsrv/certfnsh.asp", "/certsrv/certnew.cer"] * 3
    assert all(e.status == 200 for e in added)


def test_concurrent_enrollments_share_the_pool_of_authenticated_connections(lab_pki: LabPki, tmp_path: Path) -> None:
    with start_adcs(lab_pki, tmp_path) as adcs, start_ra(lab_pki, tmp_path, ra_settings(adcs, connections=3)) as ra:
        with ThreadPoolExecutor(max_workers=6) as pool:
            results = list(pool.map(lambda i: _enroll(lab_pki, ra, f"SEP{i:012d}"), range(18)))
        serials = {r.certificate.serial_number for r in results}
        ids = [r.request_id for r in adcs.emulator.ca.requests]
        logins = adcs.emulator.access_log.count(lambda e: e.uri_stem == "/certsrv/" and e.status == 200)
    assert len(serials) == 18
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 18
    assert 1 <= logins <= 3  # one login per pooled connection, never one per enrollment


def test_healthy_logs_show_no_problem(lab_pki: LabPki, healthy: tuple[LabAdcs, LabRa]) -> None:
    adcs, ra = healthy
    _enroll(lab_pki, ra, "SEP111111111111")
    report = analyze([ra.error_log, adcs.iis_log])
    assert report.problems == ()
    assert report.verdict == "healthy"
    assert _check(ra.settings, None)["ok"] is True
    assert adcs.password not in ra.error_log.read_text()


def test_restart_keeps_serving(lab_pki: LabPki, tmp_path: Path) -> None:
    with start_adcs(lab_pki, tmp_path) as adcs, start_ra(lab_pki, tmp_path, ra_settings(adcs)) as ra:
        port = ra.port
        _enroll(lab_pki, ra, "SEP222222222222")
        ra.restart()
        assert ra.port == port
        _enroll(lab_pki, ra, "SEP333333333333")
        assert ra.error_log.read_text().count("CA Cert chain retrieved from CA, will be passed to EST") == 2


@pytest.mark.kerberos
def test_ra_logs_in_with_kerberos(lab_pki: LabPki, tmp_path: Path, kdc: Kdc) -> None:
    with start_adcs(lab_pki, tmp_path, keytab=kdc.keytab) as adcs:
        settings = replace(ra_settings(adcs), auth="kerberos", username=kdc.principal, password=kdc.password)
        with start_ra(lab_pki, tmp_path, settings) as ra:
            _enroll(lab_pki, ra, "SEP777777777777")
        assert adcs.emulator.ca.requests[-1].requester == kdc.principal
        assert "CA Cert chain retrieved from CA, will be passed to EST" in ra.error_log.read_text()


def test_basic_authentication_and_its_failure(lab_pki: LabPki, tmp_path: Path) -> None:
    with (
        start_adcs(lab_pki, tmp_path) as adcs,
        start_ra(lab_pki, tmp_path, ra_settings(adcs), est_users={"capf": "capf-secret"}) as ra,
    ):
        trust = TrustAnchors.explicit_anchors(ra.trust_file)
        with EstClient(ra.url, trust=trust, auth=("capf", "capf-secret")) as client:
            assert isinstance(client.simple_enroll(_csr("SEP444444444444")), EnrollResult)
        with EstClient(ra.url, trust=trust, auth=("capf", "wrong")) as client, pytest.raises(EstError):
            client.simple_enroll(_csr("SEP555555555555"))
        log = ra.error_log.read_text()
        assert "***EST [WARNING][est_enroll_auth:" in log
        assert "capf-secret" not in log
        assert "wrong" not in log
        assert "est-auth-failure" in analyze([ra.error_log]).problems


def test_pending_request_is_fetched_not_submitted_again(lab_pki: LabPki, tmp_path: Path) -> None:
    with (
        start_adcs(lab_pki, tmp_path, policy=Policy.PENDING) as adcs,
        start_ra(lab_pki, tmp_path, ra_settings(adcs)) as ra,
        _capf_client(lab_pki, ra) as client,
    ):
        csr = _csr("SEP666666666666")
        first = client.simple_enroll(csr)
        assert isinstance(first, Pending)
        (request,) = adcs.emulator.ca.requests
        adcs.emulator.approve(request.request_id)
        second = client.simple_enroll(csr)
        assert isinstance(second, EnrollResult)
        assert len(adcs.emulator.ca.requests) == 1
        assert second.certificate == adcs.emulator.ca.get(request.request_id).certificate  # type: ignore[union-attr]


# -- the seed's common problems ------------------------------------------------------------------------------------


#: What the RA's answer to the EST client must name for each fault (certsrv's typed error's cause).
_RA_ANSWER_NAMES = {
    "missing-issuer": "untrusted server certificate chain",
    "self-signed": "self-signed server certificate",
    "hostname-mismatch": "host name mismatch",
    "dns": "name resolution failed",
    "not-yet-valid": "not yet valid",
    "template-typo": "template",
    "auth-timeout": "timeout during authentication",
    "enroll-timeout": "timeout during enrollment",
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_fault_is_logged_and_named_by_both_diagnostics(lab_pki: LabPki, tmp_path: Path, name: str) -> None:
    fault = get_fault(name)
    with start_adcs(lab_pki, tmp_path, fault=fault) as adcs:
        settings = ra_settings(adcs, fault)
        with (
            start_ra(lab_pki, tmp_path, settings) as ra,
            _capf_client(lab_pki, ra) as client,
            pytest.raises(EstError) as raised,
        ):
            client.simple_enroll(_csr("SEP001F6C81118B"))
        log = ra.error_log.read_text()
        answer = raised.value.message  # the RA's answer names the actual cause, not always "did not answer in time"
        assert _RA_ANSWER_NAMES[name] in answer, answer
        assert ("did not answer in time" in answer) == name.endswith("-timeout"), answer
        assert settings.password not in answer
        if name == "template-typo":  # 401 as CiscoRA answers, but its text points at the template, not credentials
            assert isinstance(raised.value, AuthenticationError) and raised.value.status == 401
            assert "the CA offers: CiscoRA" in answer and "not a credential problem" in answer, answer
            assert "Online CA Template" in answer, answer
        report = analyze([ra.error_log, adcs.iis_log])
        assert report.problems == (fault.analyzer_problem,), report.problems
        check = _check(settings, fault)
    assert check["problem"] == fault.check_problem
    if name == "template-typo":
        assert "CA Cert chain retrieved from CA, will be passed to EST" in log  # the start-up worked
    elif name == "enroll-timeout":  # the login worked, the CA chain did not come in time: the seed's excerpt
        assert "login_to_certsrv_ca: Secure connection to MS CertServ completed successfully" in log
        limit_ms = round((fault.ra_retrieval_timeout or 0) * 1000)
        assert (
            "nginx: [warn] retrieve_cacerts: Curl request failed with return code 28 (Operation timed out after "
            f"{limit_ms} milliseconds with 0 bytes received)"
        ) in log
        assert (
            f"nginx: [warn] retrieve_cacerts: URL used: {settings.url}/certnew.p7b?ReqID=CACert&Renewal=0&Enc=bin"
            in log
        )
        assert "nginx: [warn] ra_certsrv_ca_plugin_postconf: Unable to retrieve CA Cert chain from CA" in log
        assert "ra_certsrv_enroll: URL used:" in log  # and the enrollment itself timed out too
    else:
        assert "ra_certsrv_ca_plugin_postconf: Unable to retrieve CA Cert chain from CA" in log
        assert f"nginx: [warn] login_to_certsrv_ca: URL used: {settings.url}" in log
        assert "nginx: [error] retrieve_cacerts: Unable to execute login to certsrv with curl" in log
    assert settings.password not in log


def test_fault_lines_carry_the_seed_curl_codes(lab_pki: LabPki, tmp_path: Path) -> None:
    fault = get_fault("missing-issuer")
    with (
        start_adcs(lab_pki, tmp_path, fault=fault) as adcs,
        start_ra(lab_pki, tmp_path, ra_settings(adcs, fault)) as ra,
    ):
        pass
    assert (
        "nginx: [warn] login_to_certsrv_ca: Curl call for MS CA login failed with return code 60 "
        "(SSL certificate problem: unable to get local issuer certificate)"
    ) in ra.error_log.read_text()


def test_curl_codes_of_certsrv_errors() -> None:
    assert curl_error(NameResolutionError("lab-dcc.invalid")) == (
        6,
        "Could not resolve: lab-dcc.invalid (Domain name not found)",
    )
    assert curl_error(UntrustedServerChainError(host="h", missing_issuer="CN=x"))[0] == 60


def test_unknown_fault_names_the_known_ones() -> None:
    with pytest.raises(UnknownFaultError, match="missing-issuer"):
        get_fault("missing-root")
