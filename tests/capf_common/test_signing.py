"""CAPF authentication signatures: the bare-hash RSA quirk, ECDSA, SUDI's little-endian session id, refusals."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from capf_common import (
    AuthResponse,
    AuthType,
    CapfAuthenticationError,
    CapfOperationResult,
    CapfSignatureError,
    CertificateElement,
    HashId,
    SudiData,
    auth_data,
    make_auth_signatures,
    make_sudi_data,
    sign_auth_data,
    sudi_signed_data,
    verify_auth_response,
    verify_auth_signature,
    verify_sudi_data,
)
from tests._support.pki import issue
from tests.capf_common._protocol_support import DEVICE, phone_pki


def _digest(data: bytes, algorithm: hashes.HashAlgorithm) -> bytes:
    h = hashes.Hash(algorithm)
    h.update(data)
    return h.finalize()


def test_signed_data_layouts() -> None:
    assert auth_data("SEP1", b"\x30\x00") == b"SEP1\x00\x30\x00"
    assert sudi_signed_data(0x01020304, b"DER") == b"\x04\x03\x02\x01DER"  # little-endian session id


@pytest.mark.parametrize(("hash_id", "algorithm"), [(HashId.SHA1, hashes.SHA1()), (HashId.SHA512, hashes.SHA512())])
def test_rsa_signature_is_pkcs1_padding_around_the_bare_hash(hash_id: HashId, algorithm: hashes.HashAlgorithm) -> None:
    key = phone_pki().rsa_key
    data = auth_data(DEVICE, b"certificate")
    signature = sign_auth_data(key, data, hash_id)
    public = key.public_key().public_numbers()
    size = key.key_size // 8
    encoded = pow(int.from_bytes(signature, "big"), public.e, public.n).to_bytes(size, "big")
    digest = _digest(data, algorithm)
    assert encoded == b"\x00\x01" + b"\xff" * (size - 3 - len(digest)) + b"\x00" + digest  # no DigestInfo
    # deterministic, equal to the unblinded textbook operation
    assert signature == pow(int.from_bytes(encoded, "big"), key.private_numbers().d, public.n).to_bytes(size, "big")
    verify_auth_signature(key.public_key(), data, signature, hash_id)
    # a standard PKCS#1 v1.5 verify (with DigestInfo) refuses it, and our verify refuses a standard signature
    with pytest.raises(InvalidSignature):
        key.public_key().verify(signature, data, padding.PKCS1v15(), algorithm)
    with pytest.raises(CapfSignatureError, match="does not verify"):
        verify_auth_signature(key.public_key(), data, key.sign(data, padding.PKCS1v15(), algorithm), hash_id)


def test_rsa_signature_fails_on_other_data_or_hash() -> None:
    key = phone_pki().rsa_key
    signature = sign_auth_data(key, b"data", HashId.SHA1)
    with pytest.raises(CapfSignatureError):
        verify_auth_signature(key.public_key(), b"Data", signature, HashId.SHA1)
    with pytest.raises(CapfSignatureError):
        verify_auth_signature(key.public_key(), b"data", signature, HashId.SHA512)
    with pytest.raises(CapfSignatureError):
        verify_auth_signature(key.public_key(), b"data", signature[:-1], HashId.SHA1)


@pytest.mark.parametrize("hash_id", [HashId.SHA1, HashId.SHA256, HashId.SHA512])
def test_ec_signatures_are_standard_ecdsa(hash_id: HashId) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    signature = sign_auth_data(key, b"data", hash_id)
    algorithm = {HashId.SHA1: hashes.SHA1(), HashId.SHA256: hashes.SHA256(), HashId.SHA512: hashes.SHA512()}[hash_id]
    key.public_key().verify(signature, b"data", ec.ECDSA(algorithm))
    verify_auth_signature(key.public_key(), b"data", signature, hash_id)
    with pytest.raises(CapfSignatureError):
        verify_auth_signature(key.public_key(), b"other", signature, hash_id)
    with pytest.raises(CapfSignatureError):
        verify_auth_signature(key.public_key(), b"data", b"\x30\x00", hash_id)


def test_unsupported_keys_and_hashes() -> None:
    ed = ed25519.Ed25519PrivateKey.generate()
    with pytest.raises(CapfSignatureError, match="RSA or EC"):
        sign_auth_data(ed, b"x", HashId.SHA1)  # type: ignore[arg-type]
    with pytest.raises(CapfSignatureError, match="RSA or EC"):
        verify_auth_signature(ed.public_key(), b"x", b"sig", HashId.SHA1)
    with pytest.raises(CapfSignatureError, match="hash id 9"):
        sign_auth_data(phone_pki().rsa_key, b"x", 9)


def test_rsa_key_too_small_for_the_hash() -> None:
    # a 1024-bit key holds a SHA-512 hash; the check matters for 512-bit phone keys, simulated by a tiny modulus
    key = rsa.generate_private_key(65537, 1024)
    verify_auth_signature(key.public_key(), b"x", sign_auth_data(key, b"x", HashId.SHA512), HashId.SHA512)
    tiny = rsa.RSAPrivateNumbers(
        p=61, q=53, d=2753, dmp1=53, dmq1=49, iqmp=38, public_numbers=rsa.RSAPublicNumbers(17, 3233)
    )
    with pytest.raises(CapfSignatureError, match="too small"):
        sign_auth_data(tiny.private_key(unsafe_skip_rsa_key_validation=True), b"x", HashId.SHA1)


def test_make_auth_signatures_verify() -> None:
    pki = phone_pki()
    for cred in (pki.lsc_rsa, pki.lsc_ec):
        assert isinstance(cred.key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
        sha1, sha2 = make_auth_signatures(DEVICE, cred.cert, cred.key)
        data = auth_data(DEVICE, cred.cert.public_bytes(Encoding.DER))
        verify_auth_signature(cred.cert.public_key(), data, sha1, HashId.SHA1)
        assert sha2.hash_id == HashId.SHA512
        verify_auth_signature(cred.cert.public_key(), data, sha2.signature, HashId.SHA512)


@pytest.mark.parametrize("sudi_name", ["sudi_rsa", "sudi_ec"])
def test_sudi_data_both_sides(sudi_name: str) -> None:
    sudi = getattr(phone_pki(), sudi_name)
    value = make_sudi_data(0xDEADBEEF, sudi.cert, sudi.key)
    assert [s.hash_id for s in value.signatures] == [HashId.SHA1, HashId.SHA512]
    assert SudiData.decode(value.encode()) == value
    assert verify_sudi_data(value, 0xDEADBEEF) == sudi.cert
    with pytest.raises(CapfSignatureError, match="SUDI signature"):
        verify_sudi_data(value, 0xEFBEADDE)  # the big-endian reading of the same id is another session
    with pytest.raises(CapfSignatureError, match="no signature"):
        verify_sudi_data(SudiData(value.certificate), 0xDEADBEEF)
    with pytest.raises(CapfSignatureError, match="not DER"):
        verify_sudi_data(SudiData(b"junk", value.signatures), 0xDEADBEEF)


def test_verify_auth_response_modes_and_codes() -> None:
    pki = phone_pki()
    response = AuthResponse(device_name=DEVICE, password="secret")
    assert verify_auth_response(response, mode=AuthType.NO_PASSWORD, session_id=1) is None
    assert verify_auth_response(response, mode=AuthType.PASSWORD, session_id=1, password="secret") is None
    with pytest.raises(CapfAuthenticationError) as info:
        verify_auth_response(response, mode=AuthType.PASSWORD, session_id=1, password="Secret")
    assert info.value.capf_code == CapfOperationResult.CAPF_OP_FAIL_INVALID_AUTH_STR
    with pytest.raises(CapfAuthenticationError):
        verify_auth_response(AuthResponse(device_name=DEVICE), mode=AuthType.PASSWORD, session_id=1, password="x")
    with pytest.raises(ValueError, match="authentication string"):
        verify_auth_response(response, mode=AuthType.PASSWORD, session_id=1)
    with pytest.raises(ValueError, match="not a CUCM authentication mode"):
        verify_auth_response(response, mode=AuthType.NONE, session_id=1)
    lsc = pki.lsc_rsa
    assert isinstance(lsc.key, rsa.RSAPrivateKey)
    sha1, sha2 = make_auth_signatures(DEVICE, lsc.cert, lsc.key)
    signed = AuthResponse(
        device_name=DEVICE,
        certificate=CertificateElement.from_certificate(lsc.cert),
        signed_data=sha1,
        sha2_signed_data=sha2,
    )
    assert verify_auth_response(signed, mode=AuthType.LSC, session_id=1, lsc_issuers=[pki.capf_ca.cert]) == lsc.cert
    sha1_only = AuthResponse(device_name=DEVICE, certificate=signed.certificate, signed_data=sha1)
    assert verify_auth_response(sha1_only, mode=AuthType.LSC, session_id=1, lsc_issuers=[pki.capf_ca.cert]) == lsc.cert
    later = lsc.cert.not_valid_after_utc + dt.timedelta(days=1)
    with pytest.raises(CapfAuthenticationError, match="valid from") as info:
        verify_auth_response(signed, mode=AuthType.LSC, session_id=1, lsc_issuers=[pki.capf_ca.cert], now=later)
    assert info.value.capf_code == CapfOperationResult.CAPF_OP_FAIL_INVALID_LSC
    junk = AuthResponse(device_name=DEVICE, certificate=CertificateElement(b"junk"), signed_data=sha1)
    with pytest.raises(CapfAuthenticationError, match="not DER") as info:
        verify_auth_response(junk, mode=AuthType.LSC, session_id=1, lsc_issuers=[pki.capf_ca.cert])
    assert info.value.capf_code == CapfOperationResult.CAPF_OP_FAIL_INVALID_CRENDENTIALS
    # an issuer with the right name but another key does not count
    impostor = issue("CAPF-test", issuer=None, ca=True).cert
    assert impostor.subject == pki.capf_ca.cert.subject
    with pytest.raises(CapfAuthenticationError, match="not among the trusted"):
        verify_auth_response(signed, mode=AuthType.LSC, session_id=1, lsc_issuers=[impostor])
