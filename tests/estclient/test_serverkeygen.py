"""/serverkeygen multipart: plain, PKCS#1, CMS-encrypted keys (RSA key transport, AES key wrap), odd layouts."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from estclient import (
    MalformedResponseError,
    ServerKeyGenError,
    build_certs_only,
    build_serverkeygen_response,
    csr_challenge_password,
    decode_body,
    load_csr,
    order_chain,
    parse_certs_only,
    parse_serverkeygen_response,
)
from estclient._serverkeygen import parse_multipart
from tests._support.pki import Credential, TestPki, issue
from tests.estclient import _vectors


def _pem_body(der: bytes) -> bytes:
    return base64.encodebytes(der)  # 76-column LF lines


def _rfc_shaped(
    key_part: tuple[str, bytes], cert_part: tuple[str, bytes], *, newline: bytes = b"\r\n", binary: bool = False
) -> bytes:
    """A body laid out like RFC 7030 Appendix A.4: preamble, two parts, epilogue."""
    n = newline
    out = b"This is the preamble. It is to be ignored." + n
    for ctype, body in (key_part, cert_part):
        out += b"--estServerExampleBoundary" + n
        out += b"Content-Type: " + ctype.encode() + n + b"Content-Transfer-Encoding: base64" + n + n
        out += (body if binary else body.replace(b"\n", n).rstrip(n)) + n
    out += b"--estServerExampleBoundary--" + n + b"This is the epilogue. It is also to be ignored." + n
    return out


CT = "multipart/mixed; boundary=estServerExampleBoundary"
B = b"--estServerExampleBoundary"


def _key_der(cred: Credential, fmt: serialization.PrivateFormat = serialization.PrivateFormat.PKCS8) -> bytes:
    return cred.key.private_bytes(serialization.Encoding.DER, fmt, serialization.NoEncryption())


def _certs(cred: Credential) -> bytes:
    return _pem_body(build_certs_only([cred.cert, *cred.chain]))


@pytest.mark.parametrize("newline", [b"\r\n", b"\n"], ids=["crlf", "lf"])
def test_rfc_shaped_plain_pkcs8(pki: TestPki, newline: bytes) -> None:
    body = _rfc_shaped(
        ("application/pkcs8", _pem_body(_key_der(pki.client))),
        ("application/pkcs7-mime; smime-type=certs-only", _certs(pki.client)),
        newline=newline,
    )
    result = parse_serverkeygen_response(CT, body)
    assert result.certificate == pki.client.cert
    assert result.private_key.public_key() == pki.client.key.public_key()
    assert result.encrypted is False
    assert pki.intermediate.cert in result.certificates


def test_parts_in_either_order_with_quoted_boundary_and_pkcs1(pki: TestPki) -> None:
    body = _rfc_shaped(
        ("application/pkcs7-mime; smime-type=certs-only", _certs(pki.client_rsa)),
        ("application/pkcs8", _pem_body(_key_der(pki.client_rsa, serialization.PrivateFormat.TraditionalOpenSSL))),
    )
    result = parse_serverkeygen_response('Multipart/Mixed; BOUNDARY="estServerExampleBoundary"', body)
    assert result.certificate == pki.client_rsa.cert
    assert isinstance(result.private_key, rsa.RSAPrivateKey)


def test_binary_der_parts_are_tolerated(pki: TestPki) -> None:
    body = _rfc_shaped(
        ("application/pkcs8", _key_der(pki.client)),
        ("application/pkcs7-mime; smime-type=certs-only", build_certs_only([pki.client.cert])),
        binary=True,
    )
    assert parse_serverkeygen_response(CT, body).certificate == pki.client.cert


def test_build_and_parse_plain(pki: TestPki) -> None:
    content_type, body = build_serverkeygen_response(pki.client.key, pki.client.cert, chain=pki.client.chain)
    assert content_type.startswith("multipart/mixed; boundary=est-")
    parts = parse_multipart(content_type, body)
    assert [p[0] for p in parts] == ["application/pkcs8", "application/pkcs7-mime"]
    assert parts[1][1] == {"smime-type": "certs-only"}
    result = parse_serverkeygen_response(content_type, body)
    assert result.certificate == pki.client.cert and not result.encrypted


def test_encrypted_to_the_clients_rsa_certificate(pki: TestPki) -> None:
    content_type, body = build_serverkeygen_response(
        pki.client.key, pki.client.cert, encrypt_to=pki.client_rsa.cert, signer_cert=pki.ra.cert, signer_key=_ec(pki.ra)
    )
    assert "smime-type=server-generated-key" in body.decode()
    result = parse_serverkeygen_response(content_type, body, decrypt_key=_rsa(pki.client_rsa))
    assert result.encrypted is True
    assert result.private_key.public_key() == pki.client.key.public_key()
    with pytest.raises(ServerKeyGenError, match="no decryption key"):
        parse_serverkeygen_response(content_type, body)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(ServerKeyGenError, match="cannot be decrypted") as info:
        parse_serverkeygen_response(content_type, body, decrypt_key=other)
    assert info.value.libest_error == "EST_ERR_ENC_PRIV_KEY_CMS"


def test_encrypted_with_a_shared_aes_key(pki: TestPki) -> None:
    kek = os.urandom(32)
    content_type, body = build_serverkeygen_response(pki.client.key, pki.client.cert, symmetric_key=(b"kek-1", kek))
    result = parse_serverkeygen_response(content_type, body, decrypt_key=kek)
    assert result.encrypted and result.certificate == pki.client.cert
    with pytest.raises(ServerKeyGenError, match="symmetric key"):
        parse_serverkeygen_response(content_type, body, decrypt_key=os.urandom(32))


def test_encrypted_to_the_clients_ec_certificate_by_key_agreement(pki: TestPki) -> None:
    content_type, body = build_serverkeygen_response(
        pki.client_rsa.key, pki.client_rsa.cert, encrypt_to=pki.client.cert
    )
    result = parse_serverkeygen_response(content_type, body, decrypt_key=_ec(pki.client))
    assert result.encrypted and result.certificate == pki.client_rsa.cert
    with pytest.raises(ServerKeyGenError, match="EC key"):
        parse_serverkeygen_response(content_type, body, decrypt_key=ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(ServerKeyGenError):  # an RSA key cannot open a key-agreement envelope
        parse_serverkeygen_response(content_type, body, decrypt_key=_rsa(pki.client_rsa))


def test_cannot_encrypt_to_an_ed25519_certificate(pki: TestPki) -> None:
    edkey = ed25519.Ed25519PrivateKey.generate()
    cert = issue("ed", issuer=pki.intermediate, key=edkey).cert  # type: ignore[arg-type]
    with pytest.raises(ServerKeyGenError, match="RSA or EC keys only"):
        build_serverkeygen_response(pki.client.key, pki.client.cert, encrypt_to=cert)


def test_key_that_does_not_match_the_certificate(pki: TestPki) -> None:
    body = _rfc_shaped(
        ("application/pkcs8", _pem_body(_key_der(pki.client))),
        ("application/pkcs7-mime; smime-type=certs-only", _certs(pki.server)),
    )
    with pytest.raises(ServerKeyGenError, match="not for the private key"):
        parse_serverkeygen_response(CT, body)


@pytest.mark.parametrize(
    ("content_type", "body", "fragment"),
    [
        ("application/pkcs7-mime", b"MIIB", "not multipart"),
        ("multipart/mixed", b"--x\r\n\r\nMIIB\r\n--x--", "no boundary"),
        (CT, b"no delimiter here", "no part"),
        (
            CT,
            B + b"\r\nContent-Type: application/pkcs8\r\n\r\nAAAA\r\n" + B + b"--",
            "no certificate part",
        ),
        (
            CT,
            B + b"\r\nContent-Type: text/plain\r\n\r\nhello\r\n" + B + b"--",
            "no private key part",
        ),
    ],
)
def test_malformed_multipart(content_type: str, body: bytes, fragment: str) -> None:
    with pytest.raises(MalformedResponseError, match=fragment) as info:
        parse_serverkeygen_response(content_type, body)
    assert info.value.libest_error == "EST_ERR_MULTIPART_PARSE"


def test_key_part_that_is_not_a_key(pki: TestPki) -> None:
    body = _rfc_shaped(
        ("application/pkcs8", _pem_body(b"\x30\x03\x02\x01\x00")),
        ("application/pkcs7-mime; smime-type=certs-only", _certs(pki.client)),
    )
    with pytest.raises(ServerKeyGenError, match="does not parse") as info:
        parse_serverkeygen_response(CT, body)
    assert info.value.libest_error == "EST_ERR_BAD_KEY"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command is not installed")
@pytest.mark.parametrize("recipient", ["client_rsa", "client"], ids=["rsa-key-transport", "ec-key-agreement"])
def test_openssl_decrypts_our_envelope(pki: TestPki, tmp_path: Path, recipient: str) -> None:
    cred: Credential = getattr(pki, recipient)
    content_type, body = build_serverkeygen_response(pki.server.key, pki.server.cert, encrypt_to=cred.cert)
    key_part = next(p for p in parse_multipart(content_type, body) if p[1].get("smime-type") == "server-generated-key")
    envelope = tmp_path / "key.p7m"
    envelope.write_bytes(base64.b64decode(key_part[2]))
    assert cred.cert_path is not None and cred.key_path is not None
    out = subprocess.run(
        [
            "openssl",
            "cms",
            "-decrypt",
            "-inform",
            "DER",
            "-in",
            str(envelope),
            "-recip",
            str(cred.cert_path),
            "-inkey",
            str(cred.key_path),
            "-binary",
        ],
        capture_output=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr.decode()
    # The decrypted content is the SignedData holding the key package; it contains the PKCS#8 key.
    assert _key_der(pki.server) in out.stdout


def _rsa(cred: Credential) -> rsa.RSAPrivateKey:
    assert isinstance(cred.key, rsa.RSAPrivateKey)
    return cred.key


def _ec(cred: Credential) -> ec.EllipticCurvePrivateKey:
    assert isinstance(cred.key, ec.EllipticCurvePrivateKey)
    return cred.key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command is not installed")
@pytest.mark.parametrize("recipient", ["client_rsa", "client"], ids=["rsa-key-transport", "ec-key-agreement"])
def test_we_decrypt_an_openssl_envelope(pki: TestPki, tmp_path: Path, recipient: str) -> None:
    cred: Credential = getattr(pki, recipient)
    assert cred.cert_path is not None
    plain = tmp_path / "key.der"
    plain.write_bytes(_key_der(pki.server))
    out = subprocess.run(
        ["openssl", "cms", "-encrypt", "-binary", "-aes256", "-outform", "DER", "-in", str(plain), str(cred.cert_path)],
        capture_output=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr.decode()
    body = _rfc_shaped(
        ("application/pkcs7-mime; smime-type=server-generated-key", _pem_body(out.stdout)),
        ("application/pkcs7-mime; smime-type=certs-only", _certs(pki.server)),
    )
    result = parse_serverkeygen_response(CT, body, decrypt_key=cred.key)
    assert result.encrypted and result.certificate == pki.server.cert


def test_parts_without_smime_type_are_told_apart_by_content(pki: TestPki) -> None:
    content_type, body = build_serverkeygen_response(pki.server.key, pki.server.cert, encrypt_to=pki.client.cert)
    stripped = body.replace(b"; smime-type=server-generated-key", b"").replace(b"; smime-type=certs-only", b"")
    assert b"smime-type" not in stripped
    result = parse_serverkeygen_response(content_type, stripped, decrypt_key=_ec(pki.client))
    assert result.encrypted and result.certificate == pki.server.cert


# RFC 7030 Appendix A.4, the /serverkeygen example as printed (LF line ends); provenance in data/README.md.
A4_CT = "multipart/mixed ; boundary=estServerExampleBoundary"  # the RFC's header value, space before ';' included


def _a4_body(newline: bytes = b"\n") -> bytes:
    return _vectors.text("rfc7030_a4_serverkeygen_response.txt").replace(b"\n", newline)


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"], ids=["as-printed-lf", "crlf"])
def test_rfc7030_a4_response_key_matches_its_certificate(newline: bytes) -> None:
    body = _a4_body(newline)
    parts = parse_multipart(A4_CT, body)
    assert [(media, params) for media, params, _ in parts] == [
        ("application/pkcs8", {}),
        ("application/pkcs7-mime", {"smime-type": "certs-only"}),
    ]
    result = parse_serverkeygen_response(A4_CT, body)
    assert result.encrypted is False
    assert isinstance(result.private_key, rsa.RSAPrivateKey) and result.private_key.key_size == 2048
    assert result.private_key.public_key() == result.certificate.public_key()
    assert result.certificate.subject.rfc4514_string() == "CN=serverside key generated response"
    assert result.certificate.serial_number == 22
    assert result.certificates == (result.certificate,)


def test_rfc7030_a4_certificate_chains_to_the_a1_new_root() -> None:
    roots = parse_certs_only(decode_body(_vectors.text("rfc7030_a1_cacerts.b64"))).certificates
    leaf = parse_serverkeygen_response(A4_CT, _a4_body()).certificate
    chain = order_chain([*roots, leaf], leaf)
    assert [c.subject.rfc4514_string() for c in chain] == [
        "CN=serverside key generated response",
        "CN=estExampleCA NwN",
    ]


def test_rfc7030_a4_key_with_the_a3_certificate_is_refused() -> None:
    a3_certs = _vectors.text("rfc7030_a3_simpleenroll_response.b64")
    head, _, _ = _a4_body().partition(b"Content-Type: application/pkcs7-mime")
    body = head + b"Content-Type: application/pkcs7-mime; smime-type=certs-only\n\n" + a3_certs
    body += b"--estServerExampleBoundary--\n"
    with pytest.raises(ServerKeyGenError, match="not for the private key"):
        parse_serverkeygen_response(A4_CT, body)


def test_rfc7030_a4_request_is_a_signed_csr_for_another_key() -> None:
    csr = load_csr(decode_body(_vectors.text("rfc7030_a4_serverkeygen_request.b64")))  # checks the signature
    cn = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    serial = csr.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value
    assert (cn, serial) == ("serverKeyGen req by client in demo step 12 1368141955", "PID:Widget SN:10")
    assert csr_challenge_password(csr) == "dFsAXmJnjokBtDvr"  # the tls-unique PoP value
    # The server generated a fresh key: the one returned is not the key in the request.
    assert csr.public_key() != parse_serverkeygen_response(A4_CT, _a4_body()).private_key.public_key()
