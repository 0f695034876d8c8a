"""Code tables: CAPF results, AXL status/operation, libest numbers per release, curl, AD CS, IIS."""

from __future__ import annotations

import pytest

from capf_common import (
    ADCS_HRESULTS,
    CURL_ERRORS,
    IIS_WIN32_STATUS,
    LIBEST_ERROR_NAMES,
    PROBLEMS,
    CapfOperationResult,
    CertificateOperation,
    CertificateStatus,
    est_error_code,
    est_error_name,
    libest_table,
)


def test_capf_results_match_cisco_table() -> None:
    assert CapfOperationResult(0) is CapfOperationResult.CAPF_OP_SUCCESS
    assert CapfOperationResult(3) is CapfOperationResult.CAPF_OP_FAIL_INVALID_AUTH_STR
    assert CapfOperationResult(6) is CapfOperationResult.CAPF_OP_FAIL_INVALID_CRENDENTIALS
    assert CapfOperationResult(11) is CapfOperationResult.CAPF_OP_FAIL_LATE_REQUEST
    assert 9 not in {r.value for r in CapfOperationResult}
    assert "authentication string" in CapfOperationResult.CAPF_OP_FAIL_INVALID_AUTH_STR.action()
    assert CapfOperationResult.CAPF_OP_SUCCESS.action() == ""


def test_certificate_status_and_operation_match_the_seed_sql() -> None:
    # the seed: UPDATE Device SET tkCertificateOperation=1, tkcertificatestatus='3' after an upgrade success
    assert CertificateOperation(1) is CertificateOperation.NO_PENDING_OPERATION
    assert CertificateStatus(3) is CertificateStatus.UPGRADE_SUCCESS
    assert CertificateStatus(3).label == "Upgrade Success"
    assert CertificateStatus.UPGRADE_FAILED_CA_COMMUNICATION_FAILURE.label == "Upgrade Failed: CA Communication Failure"
    assert CertificateOperation.INSTALL_UPGRADE.label == "Install/Upgrade"
    labels = [s.label for s in CertificateStatus]
    assert not any(label.startswith("Troubleshoot Failed: CA") for label in labels)
    assert len(labels) == 34


@pytest.mark.parametrize(
    ("version", "name", "number"),
    [
        # the anchors published per release (capf-protocol.md §4.2)
        ("1.0.0", "EST_ERR_BAD_PKCS10", 8),
        ("1.0.0", "EST_ERR_AUTH_FAIL", 18),
        ("1.0.0", "EST_ERR_SSL_READ", 31),
        ("1.0.0", "EST_ERR_CACERT_VERIFICATION", 53),
        ("1.0.0", "EST_ERR_UNKNOWN", 59),
        ("1.1.0", "EST_ERR_BAD_PKCS10", 9),
        ("1.1.0", "EST_ERR_AUTH_FAIL", 19),
        ("1.1.0", "EST_ERR_SSL_READ", 32),
        ("1.1.0", "EST_ERR_SSL_CONNECT", 35),
        ("1.1.0", "EST_ERR_IP_GETADDR", 39),
        ("1.1.0", "EST_ERR_FQDN_MISMATCH", 50),
        ("1.1.0", "EST_ERR_CACERT_VERIFICATION", 55),
        ("1.1.0", "EST_ERR_UNKNOWN", 65),
        ("2.2.0", "EST_ERR_AUTH_FAIL", 22),
        ("2.2.0", "EST_ERR_SSL_READ", 35),
        ("2.2.0", "EST_ERR_FQDN_MISMATCH", 53),
        ("2.1.0", "EST_ERR_UNKNOWN", 73),
        ("3.2.0", "EST_ERR_AUTH_FAIL", 22),
        ("3.2.0", "EST_ERR_SSL_READ", 35),
        ("3.2.0", "EST_ERR_CACERT_VERIFICATION", 60),
        ("3.2.0", "EST_ERR_UNKNOWN", 94),
    ],
)
def test_libest_numbers_per_release(version: str, name: str, number: int) -> None:
    assert est_error_name(number, version) == name
    assert est_error_code(name, version) == number
    assert est_error_code(name.removeprefix("EST_ERR_"), version) == number


def test_libest_defaults_to_cucm_12_5_release_and_shares_codes_up_to_54() -> None:
    assert libest_table(None) == "2"
    assert est_error_name(35) == "EST_ERR_SSL_READ"
    assert est_error_name(0, "1.0") == "EST_ERR_NONE"
    for code in range(55):
        assert LIBEST_ERROR_NAMES["2"][code] == LIBEST_ERROR_NAMES["3"][code]
    assert est_error_name(60, "1.1") is None  # 56-64 of 1.1.0 are not known
    assert est_error_name(500) is None
    assert est_error_code("EST_ERR_SRP_PWD_BAD", "1.0") is None
    assert len(set(LIBEST_ERROR_NAMES["3"].values())) == len(LIBEST_ERROR_NAMES["3"]) == 95


@pytest.mark.parametrize("version", ["", "abc", "0.9", "1.2"])
def test_libest_unknown_versions_are_refused(version: str) -> None:
    with pytest.raises(ValueError, match="libest version"):
        libest_table(version)


def test_curl_adcs_and_iis_codes_point_to_known_problems() -> None:
    assert CURL_ERRORS[6].problem == "dns"
    assert CURL_ERRORS[60].name.startswith("CURLE_SSL_CACERT")
    assert ADCS_HRESULTS[0x80094800].name == "CERTSRV_E_UNSUPPORTED_CERT_TYPE"
    assert ADCS_HRESULTS[0x80094800].problem == "template-typo"
    assert IIS_WIN32_STATUS[2148074254].name == "SEC_E_NO_CREDENTIALS"  # the seed's normal NTLM challenge
    for table in (CURL_ERRORS, ADCS_HRESULTS, IIS_WIN32_STATUS):
        for info in table.values():
            assert info.problem is None or info.problem in PROBLEMS
