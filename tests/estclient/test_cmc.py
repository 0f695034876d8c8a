"""/fullcmc: PKIData requests and PKIResponse answers, signed and unsigned, CMC failure codes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ObjectIdentifier

from estclient import (
    CmcControl,
    CmcFailError,
    MalformedRequestError,
    MalformedResponseError,
    build_certs_only,
    build_csr,
    build_pki_data,
    build_pki_response,
    parse_pki_data,
    parse_pki_response,
)
from tests._support.pki import Credential, TestPki

TRANSACTION_ID = ObjectIdentifier("1.3.6.1.5.5.7.7.5")


def _ec(cred: Credential) -> ec.EllipticCurvePrivateKey:
    assert isinstance(cred.key, ec.EllipticCurvePrivateKey)
    return cred.key


def test_unsigned_request_round_trip() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = build_csr(key, "CN=cmc")
    request = parse_pki_data(build_pki_data(csr, req_id=7, transaction_id=42))
    assert request.csr == csr
    assert request.body_part_ids == (7,)
    assert request.signers == ()
    (control,) = request.controls
    assert control.oid == TRANSACTION_ID and control.values == (b"\x02\x01\x2a",)


def test_signed_request_with_several_csrs(pki: TestPki) -> None:
    csrs = [build_csr(ec.generate_private_key(ec.SECP256R1()), f"CN=d{i}") for i in range(2)]
    extra = CmcControl(9, ObjectIdentifier("1.2.3.4"), (b"\x05\x00",))
    der = build_pki_data(csrs, controls=[extra], signer_cert=pki.client.cert, signer_key=_ec(pki.client))
    request = parse_pki_data(der)
    assert [c for _, c in request.requests] == csrs
    assert request.body_part_ids == (1, 2)
    assert request.signers == (pki.client.cert,)
    assert request.controls == (extra,)


def test_success_response_signed_by_the_ra(pki: TestPki) -> None:
    der = build_pki_response([pki.client.cert, pki.intermediate.cert], signer_cert=pki.ra.cert, signer_key=_ec(pki.ra))
    certs = parse_pki_response(der)
    assert pki.client.cert in certs.certificates
    assert pki.ra.cert in certs.certificates  # the signer's certificate travels with the response
    assert certs.certificate_for_key(pki.client.key.public_key()) == pki.client.cert


def test_simple_pki_response_is_accepted(pki: TestPki) -> None:
    assert parse_pki_response(build_certs_only([pki.client.cert])).certificates == (pki.client.cert,)


@pytest.mark.parametrize(("fail_info", "code"), [("badRequest", 2), ("badIdentity", 7), (9, 9), ("authDataFail", 13)])
def test_failure_is_raised_with_its_code(fail_info: str | int, code: int) -> None:
    der = build_pki_response([], status="failed", fail_info=fail_info, status_string="refused by policy")
    with pytest.raises(CmcFailError) as info:
        parse_pki_response(der, http_status=400)
    err = info.value
    assert (err.fail_info, err.status, err.status_string, err.http_status) == (code, "failed", "refused by policy", 400)
    assert err.fail_info_name == CmcFailError.FAIL_INFO_NAMES[code]
    assert err.libest_error == "EST_ERR_CA_ENROLL_FAIL"
    assert "refused by policy" in str(err) and "Fix:" in str(err)


@pytest.mark.parametrize("status", ["noSupport", "pending", "popRequired"])
def test_other_non_success_statuses(status: str) -> None:
    der = build_pki_response([], status=status)  # type: ignore[arg-type]
    with pytest.raises(CmcFailError) as info:
        parse_pki_response(der)
    assert info.value.status == status and info.value.fail_info is None


def test_fail_info_table_is_rfc5272() -> None:
    assert CmcFailError.FAIL_INFO_NAMES[0] == "badAlg"
    assert CmcFailError.FAIL_INFO_NAMES[11] == "internalCAError"
    assert sorted(CmcFailError.FAIL_INFO_NAMES) == list(range(14))


def test_tampered_signature_is_refused(pki: TestPki) -> None:
    der = bytearray(build_pki_response([pki.client.cert], signer_cert=pki.ra.cert, signer_key=_ec(pki.ra)))
    der[-5] ^= 0x01  # inside the ECDSA signature at the end of the SignerInfo
    with pytest.raises(MalformedResponseError, match="signature"):
        parse_pki_response(bytes(der))


def test_request_errors() -> None:
    with pytest.raises(MalformedRequestError, match="not id-cct-PKIData"):
        parse_pki_data(build_certs_only([]))
    with pytest.raises(MalformedRequestError, match="SignedData"):
        parse_pki_data(b"\x30\x00")
    with pytest.raises(MalformedRequestError, match="no PKCS#10"):
        parse_pki_data(build_pki_data([]))


def test_response_errors() -> None:
    with pytest.raises(MalformedResponseError, match="SignedData"):
        parse_pki_response(b"\x04\x00")
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(MalformedResponseError, match="not id-cct-PKIResponse"):
        parse_pki_response(build_pki_data(build_csr(key, "CN=x")))


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command is not installed")
def test_openssl_verifies_the_signed_response(pki: TestPki, tmp_path: Path) -> None:
    der = build_pki_response([pki.client.cert], signer_cert=pki.ra.cert, signer_key=_ec(pki.ra))
    path = tmp_path / "resp.der"
    path.write_bytes(der)
    out = subprocess.run(
        [
            "openssl",
            "cms",
            "-verify",
            "-inform",
            "DER",
            "-in",
            str(path),
            "-noverify",  # checks the signature; the chain is a TLS concern, not the CMS layer's
            "-binary",
        ],
        capture_output=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr.decode()
    assert b"Verification successful" in out.stderr
