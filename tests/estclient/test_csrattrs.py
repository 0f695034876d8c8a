"""CsrAttrs: RFC 7030 / RFC 8951 / RFC 9908 examples, libest's vectors, templates, interpretation."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtensionOID, NameOID, ObjectIdentifier

from estclient import (
    CsrAttribute,
    CsrAttrOid,
    CsrAttrs,
    CsrAttrsError,
    CsrTemplate,
    MalformedResponseError,
    NameTemplateAttribute,
    RequestedExtension,
    decode_body,
    encode_csrattrs,
    parse_csrattrs,
)
from tests.estclient import _vectors

RFC = _vectors.table("rfc_csrattrs.json")
LIBEST = _vectors.table("libest_csrattrs.json")

CHALLENGE_PASSWORD = ObjectIdentifier("1.2.840.113549.1.9.7")
MAC_ADDRESS = ObjectIdentifier("1.3.6.1.1.1.1.22")
EXTENSION_REQUEST = ObjectIdentifier("1.2.840.113549.1.9.14")


def _parse(b64: str) -> CsrAttrs:
    return parse_csrattrs(decode_body(b64.encode()))


def test_rfc7030_section_4_5_2_example_is_tolerated() -> None:
    # RFC 9908 §5.2: this example wrongly puts macAddress (not an X.509 extension) in extensionRequest.
    attrs = _parse(RFC["rfc7030_4.5.2"])
    assert [type(i).__name__ for i in attrs.items] == ["CsrAttrOid", "CsrAttribute", "CsrAttribute", "CsrAttrOid"]
    ext_req = attrs.attribute(EXTENSION_REQUEST)
    assert ext_req is not None
    assert ext_req.value_oids() == (MAC_ADDRESS,)
    assert ext_req.extensions() == ()
    req = attrs.requirements()
    assert (req.key_type, req.curve, req.hash_algorithm, req.challenge_password) == ("ec", "secp384r1", "sha384", True)
    assert req.signature_algorithm == ObjectIdentifier("1.2.840.10045.4.3.3")
    assert req.other_attributes == (MAC_ADDRESS,)
    assert req.extensions == ()


def test_rfc9908_corrected_example_means_the_same() -> None:
    old = _parse(RFC["rfc7030_4.5.2"]).requirements()
    new = _parse(RFC["rfc9908_5.2"])
    assert new.oids == (CHALLENGE_PASSWORD, MAC_ADDRESS, ObjectIdentifier("1.2.840.10045.4.3.3"))
    assert new.requirements() == old


def test_rfc7030_appendix_a2_six_entries() -> None:
    attrs = _parse(RFC["rfc7030_A.2"])
    assert len(attrs.items) == 6
    first = attrs.attribute(ObjectIdentifier("2.999.1"))
    second = attrs.attribute(ObjectIdentifier("2.999.2"))
    assert first is not None and second is not None
    assert first.values == (b"\x13\x19Parse SET as 2.999.1 data",)
    assert second.value_oids() == (ObjectIdentifier("2.999.3"), ObjectIdentifier("2.999.4"))
    req = attrs.requirements()
    assert (req.key_type, req.curve, req.hash_algorithm, req.challenge_password) == (
        "ec",
        "brainpoolP384r1",
        "sha384",
        True,
    )


def test_rfc9908_5_1_extension_with_a_concrete_value() -> None:
    req = _parse(RFC["rfc9908_5.1"]).requirements()
    (ext,) = req.extensions
    assert ext.oid == ExtensionOID.SUBJECT_ALTERNATIVE_NAME
    assert ext.critical is True
    assert ext.value is not None and b"acp.example.com" in ext.value


def test_rfc9908_5_4_rsa_key_size() -> None:
    req = _parse(RFC["rfc9908_5.4"]).requirements()
    assert (req.key_type, req.key_size, req.hash_algorithm, req.challenge_password) == ("rsa", 4096, "sha256", True)


@pytest.mark.parametrize(
    ("name", "curve", "hash_name", "others"),
    [
        ("rfc9908_5.5", "secp384r1", "sha384", ("2.5.4.5",)),
        ("rfc9908_5.6", "secp521r1", "sha512", ("1.2.840.113549.1.9.20", "0.9.2342.19200300.100.1.5", "2.5.4.5")),
    ],
)
def test_rfc9908_subject_attribute_requests(name: str, curve: str, hash_name: str, others: tuple[str, ...]) -> None:
    req = _parse(RFC[name]).requirements()
    assert (req.curve, req.hash_algorithm) == (curve, hash_name)
    assert tuple(o.dotted_string for o in req.other_attributes) == others


@pytest.mark.parametrize("name", sorted(RFC))
def test_rfc_examples_re_encode_byte_for_byte(name: str) -> None:
    der = decode_body(RFC[name].encode())
    assert encode_csrattrs(parse_csrattrs(der)) == der


@pytest.mark.parametrize(
    ("name", "items", "pop"),
    [
        ("TEST_ATTR_POP", 1, True),
        ("TEST_ATTR_NOPOP", 5, False),
        ("TEST_ATTR_NOPOPPOP", 6, True),
        ("TEST_ATTR1", 4, True),
        ("TEST_ATTR2", 0, False),
        ("TEST_ATTR3", 4, True),
        ("TEST_ATTR_250POP", 7, True),
    ],
)
def test_libest_vectors(name: str, items: int, pop: bool) -> None:
    attrs = _parse(LIBEST[name])
    assert len(attrs.items) == items
    assert attrs.requires_challenge_password is pop
    assert attrs.encode() == decode_body(LIBEST[name].encode())


def test_libest_empty_sequence_means_no_requirements() -> None:
    attrs = _parse(LIBEST["TEST_ATTR2"])
    assert attrs.is_empty
    assert attrs == CsrAttrs()


def test_libest_all_types_vector_ignores_the_stray_boolean() -> None:
    attrs = _parse(LIBEST["TEST_ALL_ATTR"])
    assert attrs.ignored == (b"\x01\x01\x00",)
    odd = attrs.attribute(ObjectIdentifier("2.999.2"))
    assert odd is not None and len(odd.values) > 5  # BOOLEAN, INTEGER, OIDs, ENUMERATED, strings of every kind


@pytest.mark.parametrize("name", ["TEST_ATTR7", "TEST_ATTR8"])
def test_libest_invalid_vectors_give_typed_errors(name: str) -> None:
    with pytest.raises(MalformedResponseError) as info:
        _parse(LIBEST[name])
    assert isinstance(info.value, CsrAttrsError)
    assert info.value.libest_error == "EST_ERR_BAD_ASN1_HEX"


def test_template_round_trip_and_precedence() -> None:
    key_usage = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
    template = CsrTemplate(
        subject=(
            (NameTemplateAttribute(NameOID.ORGANIZATION_NAME, "Example Inc."),),
            (NameTemplateAttribute(NameOID.COMMON_NAME),),
        ),
        key_algorithm=ObjectIdentifier("1.2.840.10045.2.1"),
        key_parameters=bytes.fromhex("06052b81040022"),  # secp384r1
        extensions=(
            RequestedExtension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME),
            RequestedExtension(ExtensionOID.KEY_USAGE, True, key_usage.public_bytes()),
        ),
        attributes=(CsrAttribute(CHALLENGE_PASSWORD, (b"\x13\x00",)),),
    )
    attrs = CsrAttrs((CsrAttrOid(ObjectIdentifier("1.2.840.10045.4.3.4")), template, CsrAttribute.rsa_key(4096)))
    parsed = parse_csrattrs(encode_csrattrs(attrs))
    assert parsed == attrs
    req = parsed.requirements()
    assert req.from_template is True
    # RFC 9908 §4: with a template, every other element is ignored (no RSA, no SHA-512).
    assert (req.key_type, req.curve, req.key_size, req.hash_algorithm) == ("ec", "secp384r1", None, None)
    assert req.challenge_password is True
    assert [e.oid for e in req.extensions] == [ExtensionOID.SUBJECT_ALTERNATIVE_NAME, ExtensionOID.KEY_USAGE]
    assert req.extensions[0].value is None
    name = template.subject_name({NameOID.COMMON_NAME: "phone1"})
    assert name is not None and name.rfc4514_string() == "CN=phone1,O=Example Inc."
    with pytest.raises(ValueError, match="commonName"):
        template.subject_name()


def test_builders_for_servers() -> None:
    attrs = CsrAttrs(
        (
            CsrAttrOid(CHALLENGE_PASSWORD),
            CsrAttribute.ec_public_key("secp521r1"),
            CsrAttribute.extension_request(
                [x509.Extension(ExtensionOID.BASIC_CONSTRAINTS, True, x509.BasicConstraints(False, None))]
            ),
            CsrAttrOid(ObjectIdentifier("2.16.840.1.101.3.4.2.3")),
        )
    )
    req = parse_csrattrs(attrs.encode()).requirements()
    assert (req.key_type, req.curve, req.hash_algorithm, req.challenge_password) == ("ec", "secp521r1", "sha512", True)
    (ext,) = req.extensions
    assert ext.oid == ExtensionOID.BASIC_CONSTRAINTS and ext.critical
    with pytest.raises(ValueError, match="unknown curve"):
        CsrAttribute.ec_public_key("nope")
    with pytest.raises(ValueError, match="CsrTemplate"):
        CsrAttribute.extension_request([RequestedExtension(ExtensionOID.KEY_USAGE)])


def test_unknown_elements_are_kept_but_not_interpreted() -> None:
    attrs = CsrAttrs(
        (CsrAttrOid(ObjectIdentifier("1.2.3.4")), CsrAttribute(ObjectIdentifier("1.2.3.5"), (b"\x05\x00",)))
    )
    req = parse_csrattrs(attrs.encode()).requirements()
    assert req.other_attributes == (ObjectIdentifier("1.2.3.4"),)
    assert req.key_type is None and req.extensions == ()


def test_encoding_refuses_an_attribute_without_values() -> None:
    with pytest.raises(CsrAttrsError, match="no values"):
        encode_csrattrs([CsrAttribute(MAC_ADDRESS, ())])
    with pytest.raises(CsrAttrsError, match="cannot be encoded"):
        encode_csrattrs([CsrAttribute(MAC_ADDRESS, (b"\x04\x05ab",))])


@pytest.mark.parametrize(
    "der",
    [
        pytest.param(b"\x31\x00", id="set-not-sequence"),
        pytest.param(b"\x30\x03\x06\x01", id="truncated"),
        pytest.param(b"\x30\x00\x00", id="trailing-byte"),
        pytest.param(b"\x30\x05\x30\x03\x06\x01\x2a", id="attribute-without-values"),
        pytest.param(b"\x30\x09\x30\x07\x06\x01\x2a\x31\x02\x05\x01", id="bad-value-length"),
    ],
)
def test_malformed_der(der: bytes) -> None:
    with pytest.raises(CsrAttrsError):
        parse_csrattrs(der)
