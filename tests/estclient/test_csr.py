"""Building requests that meet /csrattrs; PoP challenge values; reading requests back on the server side."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtensionOID, NameOID, ObjectIdentifier
from hypothesis import given, settings
from hypothesis import strategies as st

from estclient import (
    CsrAttribute,
    CsrAttrOid,
    CsrAttrs,
    CsrBuildError,
    CsrTemplate,
    MalformedRequestError,
    NameTemplateAttribute,
    RequestedExtension,
    build_csr,
    csr_challenge_password,
    csr_decrypt_key_ids,
    decode_body,
    key_for,
    load_csr,
    parse_csrattrs,
    parse_subject,
    pop_challenge,
)
from estclient._sigs import csr_signature_valid
from tests.estclient import _vectors

RFC = _vectors.table("rfc_csrattrs.json")
CHALLENGE_PASSWORD = ObjectIdentifier("1.2.840.113549.1.9.7")
SMIME_CAPABILITIES = ObjectIdentifier("1.2.840.113549.1.9.15")


def _attrs(name: str) -> CsrAttrs:
    return parse_csrattrs(decode_body(RFC[name].encode()))


def test_pop_challenge_is_base64_of_tls_unique() -> None:
    assert pop_challenge(bytes(12)) == "AAAAAAAAAAAAAAAA"
    assert len(pop_challenge(b"\xfa\xba\xc2\x8a\xbf\xfb\xf8\x46\x2e\xe7\x4f\x84")) == 16
    with pytest.raises(CsrBuildError) as info:
        pop_challenge(b"")
    assert info.value.libest_error == "EST_ERR_AUTH_FAIL_TLSUID"


def test_rfc7030_a3_request_reads_back_its_challenge_and_verifies() -> None:
    csr = load_csr(decode_body(_vectors.text("rfc7030_a3_simpleenroll_request.b64")))
    assert csr_challenge_password(csr) == "+rrCir/7+EYu50T4"
    assert csr.subject.rfc4514_string() == "CN=demostep4 1368141352"


def test_tampered_request_fails_the_signature_check() -> None:
    der = bytearray(decode_body(_vectors.text("rfc7030_a3_simpleenroll_request.b64")))
    der[der.index(b"+rrCir")] ^= 0x01
    with pytest.raises(MalformedRequestError, match="signature") as info:
        load_csr(bytes(der))
    assert info.value.libest_error == "EST_ERR_BAD_PKCS10"
    assert load_csr(bytes(der), verify_signature=False).subject  # still parses without the check


def test_key_for_follows_the_server() -> None:
    p384 = key_for(_attrs("rfc9908_5.2"))
    assert isinstance(p384, ec.EllipticCurvePrivateKey) and p384.curve.name == "secp384r1"
    brainpool = key_for(_attrs("rfc7030_A.2"))
    assert isinstance(brainpool, ec.EllipticCurvePrivateKey) and brainpool.curve.name == "brainpoolP384r1"
    default = key_for(None)
    assert isinstance(default, ec.EllipticCurvePrivateKey) and default.curve.name == "secp256r1"
    assert isinstance(key_for(None, default="ed25519"), ed25519.Ed25519PrivateKey)


def test_key_for_rsa_size() -> None:
    key = key_for(CsrAttrs((CsrAttribute.rsa_key(2048),)))
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048


def test_build_csr_applies_the_rfc_example() -> None:
    attrs = _attrs("rfc9908_5.2")
    key = key_for(attrs)
    challenge = pop_challenge(bytes(range(12)))
    csr = build_csr(
        key,
        "CN=phone1,O=Example",
        requirements=attrs,
        sans=["phone1.example", "10.1.2.3"],
        challenge_password=challenge,
    )
    assert csr.is_signature_valid
    assert isinstance(csr.signature_hash_algorithm, hashes.SHA384)
    assert csr_challenge_password(csr) == challenge
    # PrintableString (tag 0x13), as libest and Bouncy Castle send it
    assert b"\x13\x10" + challenge.encode() in csr.public_bytes(serialization.Encoding.DER)
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["phone1.example"]
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "phone1"


def test_a_key_that_does_not_match_is_refused() -> None:
    attrs = _attrs("rfc9908_5.2")  # secp384r1
    wrong = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(CsrBuildError, match="secp384r1") as info:
        build_csr(wrong, "CN=x", requirements=attrs)
    assert "key_for" in info.value.hint
    assert build_csr(wrong, "CN=x", requirements=attrs, check_key=False).is_signature_valid


def test_caller_choices_win() -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    csr = build_csr(key, x509.Name([]), requirements=_attrs("rfc9908_5.2"), hash_algorithm="sha512")
    assert isinstance(csr.signature_hash_algorithm, hashes.SHA512)
    with pytest.raises(CsrBuildError, match="sha1"):
        build_csr(key, "CN=x", hash_algorithm="sha1", check_key=False)
    with pytest.raises(CsrBuildError, match="not supported"):
        build_csr(key, "CN=x", hash_algorithm="md5")


def test_server_extensions_with_values_are_included() -> None:
    req = _attrs("rfc9908_5.1")
    csr = build_csr(ec.generate_private_key(ec.SECP256R1()), "CN=acp", requirements=req)
    ext = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert ext.critical is True
    other = ext.value.get_values_for_type(x509.OtherName)
    assert other and b"acp.example.com" in other[0].value


def _template(*extensions: RequestedExtension) -> CsrAttrs:
    return CsrAttrs(
        (
            CsrTemplate(
                subject=((NameTemplateAttribute(NameOID.ORGANIZATION_NAME, "Example"),),),
                key_algorithm=ObjectIdentifier("1.2.840.10045.2.1"),
                key_parameters=bytes.fromhex("06082a8648ce3d030107"),  # secp256r1
                extensions=extensions,
            ),
        )
    )


def test_template_extensions_are_filled_in() -> None:
    attrs = _template(
        RequestedExtension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME),
        RequestedExtension(ExtensionOID.KEY_USAGE, critical=True),
        RequestedExtension(ExtensionOID.SUBJECT_KEY_IDENTIFIER),
    )
    key = key_for(attrs)
    csr = build_csr(key, None, requirements=attrs, sans=["dev.example", "email:ops@example.com"])
    assert csr.subject.rfc4514_string() == "O=Example"
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == ["ops@example.com"]
    usage = csr.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and not usage.value.key_encipherment
    assert csr.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value == (
        x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    )


def test_template_extension_the_library_cannot_fill() -> None:
    attrs = _template(RequestedExtension(ExtensionOID.CERTIFICATE_POLICIES))
    with pytest.raises(CsrBuildError, match=ExtensionOID.CERTIFICATE_POLICIES.dotted_string):
        build_csr(key_for(attrs), "CN=x", requirements=attrs)
    policies = x509.CertificatePolicies([x509.PolicyInformation(ObjectIdentifier("1.2.3.4"), None)])
    csr = build_csr(key_for(attrs), "CN=x", requirements=attrs, extensions=[(policies, False)])
    assert csr.extensions.get_extension_for_class(x509.CertificatePolicies).value == policies


def test_template_subject_left_open_needs_a_subject() -> None:
    attrs = CsrAttrs((CsrTemplate(subject=((NameTemplateAttribute(NameOID.COMMON_NAME),),)),))
    with pytest.raises(CsrBuildError, match="open"):
        build_csr(ec.generate_private_key(ec.SECP256R1()), None, requirements=attrs)


def test_serverkeygen_decrypt_key_identifiers_round_trip() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = build_csr(key, "CN=x", asymmetric_decrypt_key_id=b"\x01" * 20)
    assert csr.is_signature_valid
    assert csr_decrypt_key_ids(csr) == (None, b"\x01" * 20)
    assert csr.attributes.get_attribute_for_oid(SMIME_CAPABILITIES)
    csr = build_csr(key, "CN=x", decrypt_key_id=b"kek-1")
    assert csr_decrypt_key_ids(csr) == (b"kek-1", None)
    assert csr_decrypt_key_ids(build_csr(key, "CN=x")) == (None, None)


def test_raw_attributes_and_ed25519() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    mac = CsrAttribute(ObjectIdentifier("1.3.6.1.1.1.1.22"), (b"\x16\x1100:11:22:33:44:55",))
    csr = build_csr(key, "CN=x", attributes=[mac], challenge_password="pässwort")
    assert csr.is_signature_valid
    assert csr_challenge_password(csr) == "pässwort"  # not printable: UTF8String
    assert csr.attributes.get_attribute_for_oid(mac.oid).value == b"00:11:22:33:44:55"
    with pytest.raises(CsrBuildError, match="255"):
        build_csr(key, "CN=x", challenge_password="x" * 256)
    with pytest.raises(CsrBuildError, match="no values"):
        build_csr(key, "CN=x", attributes=[CsrAttribute(mac.oid, ())])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("CN=phone1,O=Example", "CN=phone1,O=Example"),
        ("/O=Example/CN=phone1", "CN=phone1,O=Example"),
        ("/O=A, B/CN=x+y", "CN=x\\+y,O=A\\, B"),
        ("phone1", "CN=phone1"),
    ],
)
def test_parse_subject(text: str, expected: str) -> None:
    assert parse_subject(text).rfc4514_string() == expected


@pytest.mark.parametrize("text", ["=x", "/CN", "XX=1"])
def test_parse_subject_rejects(text: str) -> None:
    with pytest.raises(CsrBuildError, match="not a distinguished name"):
        parse_subject(text)


def test_challenge_password_absent_or_not_text() -> None:
    assert csr_challenge_password(build_csr(ec.generate_private_key(ec.SECP256R1()), "CN=x")) is None
    odd = CsrAttribute(CHALLENGE_PASSWORD, (b"\x04\x02\xff\xfe",))  # an OCTET STRING that is not UTF-8
    csr = build_csr(ec.generate_private_key(ec.SECP256R1()), "CN=x", attributes=[odd])
    assert csr_challenge_password(csr) is None


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command is not installed")
def test_openssl_verifies_a_re_signed_request(tmp_path: Path) -> None:
    attrs = CsrAttrs((CsrAttrOid(CHALLENGE_PASSWORD), CsrAttribute.ec_public_key("secp384r1")))
    csr = build_csr(
        key_for(attrs),
        "CN=openssl",
        requirements=attrs,
        challenge_password=pop_challenge(bytes(12)),
        asymmetric_decrypt_key_id=b"\x02" * 20,
    )
    path = tmp_path / "req.der"
    path.write_bytes(csr.public_bytes(serialization.Encoding.DER))
    out = subprocess.run(
        ["openssl", "req", "-inform", "DER", "-in", str(path), "-verify", "-noout", "-text"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "AAAAAAAAAAAAAAAA" in out.stdout
    assert "verify OK" in (out.stdout + out.stderr)


_POOL = [
    CsrAttrOid(CHALLENGE_PASSWORD),
    CsrAttrOid(ObjectIdentifier("1.3.6.1.1.1.1.22")),  # macAddress
    CsrAttrOid(ObjectIdentifier("1.2.3.4.5")),  # unknown
    CsrAttrOid(ObjectIdentifier("1.2.840.10045.4.3.2")),  # ecdsa-with-SHA256
    CsrAttrOid(ObjectIdentifier("1.2.840.10045.4.3.4")),  # ecdsa-with-SHA512
    CsrAttrOid(ObjectIdentifier("1.2.840.10045.4.1")),  # ecdsa-with-SHA1: refused with a typed error
    CsrAttrOid(ObjectIdentifier("2.16.840.1.101.3.4.2.2")),  # sha384
    CsrAttrOid(ObjectIdentifier("1.3.101.112")),  # Ed25519
    CsrAttrOid(ObjectIdentifier("1.3.36.3.3.2.8.1.1.7")),  # brainpoolP256r1
    CsrAttribute.ec_public_key("secp384r1"),
    CsrAttribute.ec_public_key("secp256r1"),
    CsrAttribute.extension_request(
        [x509.Extension(ExtensionOID.BASIC_CONSTRAINTS, True, x509.BasicConstraints(ca=False, path_length=None))]
    ),
    CsrAttribute(ObjectIdentifier("1.2.840.113549.1.9.14"), (bytes.fromhex("06072b060101010116"),)),  # legacy form
    CsrTemplate(extensions=(RequestedExtension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME),)),
]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(_POOL), max_size=5))
def test_a_key_made_for_the_requirements_always_meets_them(items: list[object]) -> None:
    attrs = parse_csrattrs(CsrAttrs(tuple(items)).encode())  # type: ignore[arg-type]
    req = attrs.requirements()
    key = key_for(attrs)
    if req.hash_algorithm == "sha1" and not isinstance(key, ed25519.Ed25519PrivateKey):
        with pytest.raises(CsrBuildError, match="sha1"):  # the only refusal possible with this pool
            build_csr(key, "CN=prop", requirements=attrs, sans=["prop.example"])
        return
    csr = build_csr(key, "CN=prop", requirements=attrs, sans=["prop.example"])
    assert csr_signature_valid(csr)
    if req.curve and isinstance(key, ec.EllipticCurvePrivateKey):
        assert key.curve.name == req.curve
    for wanted in req.extensions:
        assert csr.extensions.get_extension_for_oid(wanted.oid)
