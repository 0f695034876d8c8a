"""Certs-only PKCS#7: RFC 7030 Appendix A messages, rollover sets, CRLs, interop with cryptography's PKCS#7."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from hypothesis import given, settings
from hypothesis import strategies as st

from estclient import (
    CertsOnly,
    MalformedResponseError,
    _asn1,
    build_certs_only,
    decode_body,
    encode_body,
    order_chain,
    parse_certs_only,
    rollover_roles,
)
from tests._support.pki import TestPki
from tests.estclient import _vectors


def _a1() -> CertsOnly:
    return parse_certs_only(decode_body(_vectors.text("rfc7030_a1_cacerts.b64")))


def test_rfc7030_a1_cacerts_has_the_four_rollover_certificates() -> None:
    certs = _a1().certificates
    found = {(c.subject.rfc4514_string(), c.issuer.rfc4514_string(), c.serial_number) for c in certs}
    assert found == {
        ("CN=estExampleCA OwO", "CN=estExampleCA OwO", 11121883874307308188),
        ("CN=estExampleCA NwO", "CN=estExampleCA OwO", 1),
        ("CN=estExampleCA OwN", "CN=estExampleCA NwN", 2),
        ("CN=estExampleCA NwN", "CN=estExampleCA NwN", 16838569520216125969),
    }
    assert _a1().crls == ()


def test_rfc7030_a1_rollover_roles_are_classified_by_keys_and_signatures() -> None:
    roles = rollover_roles(_a1().certificates)
    assert {k: v.subject.rfc4514_string() for k, v in roles.items()} == {
        "OldWithOld": "CN=estExampleCA OwO",
        "OldWithNew": "CN=estExampleCA OwN",
        "NewWithOld": "CN=estExampleCA NwO",
        "NewWithNew": "CN=estExampleCA NwN",
    }
    assert [c.subject.rfc4514_string() for c in _a1().roots] == ["CN=estExampleCA OwO", "CN=estExampleCA NwN"]


def test_rfc7030_a3_enroll_response_chains_to_the_new_root() -> None:
    response = parse_certs_only(decode_body(_vectors.text("rfc7030_a3_simpleenroll_response.b64")))
    (leaf,) = response.certificates
    assert leaf.serial_number == 21
    chain = order_chain([*_a1().certificates, leaf], leaf)
    assert [c.subject.rfc4514_string() for c in chain] == ["CN=demostep4 1368141352", "CN=estExampleCA NwN"]


def test_single_root_is_no_rollover(pki: TestPki) -> None:
    assert rollover_roles([pki.root.cert, pki.intermediate.cert]) == {}


def test_order_chain_finds_the_leaf_without_being_told(pki: TestPki) -> None:
    shuffled = [pki.root.cert, pki.server.cert, pki.intermediate.cert]
    assert order_chain(shuffled) == [pki.server.cert, pki.intermediate.cert, pki.root.cert]
    assert order_chain([]) == []


def _crl(pki: TestPki) -> x509.CertificateRevocationList:
    now = dt.datetime.now(dt.UTC)
    revoked = (
        x509.RevokedCertificateBuilder().serial_number(pki.expired.cert.serial_number).revocation_date(now).build()
    )
    return (
        x509.CertificateRevocationListBuilder()
        .issuer_name(pki.intermediate.cert.subject)
        .last_update(now)
        .next_update(now + dt.timedelta(days=1))
        .add_revoked_certificate(revoked)
        .sign(pki.intermediate.key, hashes.SHA256())
    )


def test_build_and_parse_round_trip_with_crls(pki: TestPki) -> None:
    crl = _crl(pki)
    der = build_certs_only([pki.intermediate.cert, pki.root.cert], [crl])
    parsed = parse_certs_only(decode_body(encode_body(der)))
    # DER sorts a SET OF: the order is not kept (RFC 7030 gives it no meaning).
    assert set(parsed.certificates) == {pki.intermediate.cert, pki.root.cert}
    assert parsed.crls == (crl,)


def test_interop_with_cryptography_pkcs7(pki: TestPki) -> None:
    ours = build_certs_only([pki.server.cert, pki.intermediate.cert])
    assert set(pkcs7.load_der_pkcs7_certificates(ours)) == {pki.server.cert, pki.intermediate.cert}
    theirs = pkcs7.serialize_certificates([pki.client.cert, pki.root.cert], serialization.Encoding.DER)
    assert set(parse_certs_only(theirs).certificates) == {pki.client.cert, pki.root.cert}


def test_certificate_for_key(pki: TestPki) -> None:
    parsed = parse_certs_only(build_certs_only([pki.intermediate.cert, pki.client.cert]))
    assert parsed.certificate_for_key(pki.client.key.public_key()) == pki.client.cert
    assert parsed.certificate_for_key(pki.server.key.public_key()) is None


@pytest.mark.parametrize(
    "der",
    [
        pytest.param(b"\x30\x00", id="empty-sequence"),
        pytest.param(b"\x04\x03abc", id="octet-string"),
        pytest.param(bytes.fromhex("300d06092a864886f70d010701a000"), id="data-not-signed-data"),
    ],
)
def test_not_a_certs_only_message(der: bytes) -> None:
    with pytest.raises(MalformedResponseError) as info:
        parse_certs_only(der)
    assert "PKCS#7" in info.value.message


def test_a_broken_certificate_inside_is_reported(pki: TestPki) -> None:
    der = bytearray(build_certs_only([pki.root.cert]))
    cert_der = pki.root.cert.public_bytes(serialization.Encoding.DER)
    start = bytes(der).index(cert_der)
    assert der[start + 4] == 0x30
    der[start + 4] = 0x31  # the TBSCertificate becomes a SET: no longer a certificate
    with pytest.raises(MalformedResponseError):
        parse_certs_only(bytes(der))


def test_real_server_response_from_libest_issue_121() -> None:
    # testrfc7030.com's answer as captured in the issue: 64-column LF lines, Content-Length 581.
    body = _vectors.text("libest_issue121_simpleenroll_response.b64")
    assert len(body) == 581
    (cert,) = parse_certs_only(decode_body(body)).certificates
    assert (cert.serial_number, cert.subject.rfc4514_string()) == (17930, "CN=IntegrationTest")
    assert cert.issuer.rfc4514_string() == "CN=estExampleCA"
    assert cert.signature_algorithm_oid.dotted_string == "1.2.840.10045.4.1"  # ecdsa-with-SHA1, the quirk reported
    # The quirk of the issue: the certificate does not chain to the RFC example CA set.
    assert order_chain([*_a1().certificates, cert], cert) == [cert]


def _indefinite(der: bytes) -> bytes:
    """BER: the same element with an indefinite length (its contents unchanged) and an end-of-contents marker."""
    first = der[1]
    header = 2 + (first & 0x7F if first & 0x80 else 0)
    return der[:1] + b"\x80" + der[header:] + b"\x00\x00"


def test_ber_with_indefinite_lengths_is_accepted() -> None:
    der = decode_body(_vectors.text("rfc7030_a3_simpleenroll_response.b64"))
    # ContentInfo { OID, [0] { SignedData } } with indefinite lengths at all three outer levels, as Java CMS emits
    oid = der[4:15]
    explicit = der[15:]
    signed_data = explicit[4:]
    ber = _indefinite(b"\x30\x82\x00\x00" + oid + _indefinite(b"\xa0\x82\x00\x00" + _indefinite(signed_data)))
    assert b"\x80" in ber[:2] and ber != der
    (cert,) = parse_certs_only(ber).certificates
    assert cert.serial_number == 21


def _fast_and_full(der: bytes) -> tuple[object, object]:
    return _asn1._certs_only_fast(der), _asn1._signed_data_full(der)


@pytest.mark.parametrize(
    "name",
    ["rfc7030_a1_cacerts.b64", "rfc7030_a3_simpleenroll_response.b64", "libest_issue121_simpleenroll_response.b64"],
)
def test_plain_der_certs_only_messages_take_the_fast_split(name: str) -> None:
    # Enrollment answers are split by the TLV reader alone (asn1crypto costs about 3x as much per answer);
    # the parts must be exactly the full decoder's.
    fast, full = _fast_and_full(decode_body(_vectors.text(name)))
    assert fast is not None
    assert fast == full


def test_our_certs_only_with_crls_takes_the_fast_split(pki: TestPki) -> None:
    now = dt.datetime.now(dt.UTC)
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(pki.root.cert.subject)
        .last_update(now)
        .next_update(now + dt.timedelta(days=1))
        .sign(pki.root.key, hashes.SHA256())
    )
    fast, full = _fast_and_full(build_certs_only([pki.client.cert, pki.intermediate.cert], [crl]))
    assert fast is not None
    assert fast == full


def test_signed_or_ber_messages_go_to_the_full_decoder(pki: TestPki) -> None:
    der = decode_body(_vectors.text("rfc7030_a3_simpleenroll_response.b64"))
    oid, signed_data = der[4:15], der[15:][4:]
    ber = _indefinite(b"\x30\x82\x00\x00" + oid + _indefinite(b"\xa0\x82\x00\x00" + _indefinite(signed_data)))
    signed = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(b"x")
        .add_signer(pki.client.cert, pki.client.key, hashes.SHA256())
        .sign(serialization.Encoding.DER, [])
    )
    for message in (ber, signed):
        assert _asn1._certs_only_fast(message) is None
        assert _asn1.signed_data_decode(message) == _asn1._signed_data_full(message)


# --- the fast split against the full decoder on structured messages with BER/DER encoding variants -------------
#
# Random bytes and mutations of real messages rarely hit the encodings on which the TLV reader and asn1crypto
# could differ; these messages are built element by element, each with a tag in the low- or high-tag-number form
# (X.690 §8.1.2) and a length in the short or a long form with leading zero bytes (X.690 §8.1.3), and with
# certs-only parts swapped for near misses (signers, content, other choices, empty or odd SETs).


@st.composite
def _certs_only_variants(draw: st.DrawFn) -> bytes:
    cert = draw(st.sampled_from(_VARIANT_CERTS))
    # At most one part is a near miss and a few elements (by the order they are written) take the odd tag or
    # length form, so that most messages are otherwise ones the fast split accepts.
    odd_part = draw(st.sampled_from([None, "version", "digests", "encap", "member", "sets", "signers"]))
    odd_tags = draw(st.sets(st.integers(0, 24), max_size=1))
    odd_lengths = draw(st.sets(st.integers(0, 24), max_size=3))
    written = [0]

    def el(first: int, *parts: bytes) -> bytes:
        body = b"".join(parts)
        index, written[0] = written[0], written[0] + 1
        tag = first & 0x1F
        ident = bytes((first | 0x1F, tag)) if index in odd_tags and tag < 0x1F else bytes((first,))
        if index not in odd_lengths and len(body) < 0x80:
            return ident + bytes((len(body),)) + body
        size = len(body).to_bytes(max(1, (len(body).bit_length() + 7) // 8), "big")
        size = b"\x00" * draw(st.integers(0, 4 - len(size))) + size  # long form, maybe with leading zeros
        return ident + bytes((0x80 | len(size),)) + size + body

    def part(name: str, valid: bytes, *misses: bytes) -> bytes:
        return draw(st.sampled_from(misses)) if odd_part == name else valid

    data_oid = el(0x06, bytes.fromhex("2a864886f70d010701"))
    sha256 = el(0x30, el(0x06, bytes.fromhex("608648016503040201")))
    version = part("version", el(0x02, b"\x01"), el(0x02, b""), el(0x02, b"\x00\x01"), el(0x22, b""))
    digests = part("digests", el(0x31, sha256), el(0x31), el(0x11, sha256))
    encap = part("encap", el(0x30, data_oid), el(0x30, data_oid, el(0xA0, el(0x04, b"x"))), el(0x30))
    member = part("member", cert, el(0x30, cert[4:]), el(0x30), el(0xA0, cert[4:]), el(0x30, b"\x02\x01\x05"))
    sets = (
        [el(0xA0, member, cert)]
        if odd_part != "sets"
        else draw(
            st.lists(st.sampled_from([el(0xA0, member), el(0xA0), el(0x80), el(0xA1, member), el(0xA1), el(0x81)]))
        )
    )
    signers = part("signers", el(0x31), el(0x31, el(0x30)), el(0x11), b"")
    signed = el(0x30, version, digests, encap, *sets, signers)
    return el(0x30, el(0x06, bytes.fromhex("2a864886f70d010702")), el(0xA0, signed))


def _variant_certs() -> list[bytes]:
    der = decode_body(_vectors.text("rfc7030_a3_simpleenroll_response.b64"))
    return list(_asn1._signed_data_full(der).certificates)


_VARIANT_CERTS = _variant_certs()


@settings(max_examples=600, deadline=None)
@given(_certs_only_variants())
def test_fast_split_agrees_with_the_full_decoder_on_encoding_variants(message: bytes) -> None:
    fast = _asn1._certs_only_fast(message)
    if fast is not None:  # an Asn1Error from the full decoder is a disagreement as well
        assert fast == _asn1._signed_data_full(message)


def test_high_tag_number_form_of_the_signed_data_sequence_goes_to_the_full_decoder() -> None:
    # 0x3f 0x10 is SEQUENCE in the high-tag-number form: the TLV reader decodes it, asn1crypto refuses it inside
    # the SignedData; the fast split must not accept what the full decoder refuses.
    der = decode_body(_vectors.text("rfc7030_a3_simpleenroll_response.b64"))
    signed = der[19:]
    assert signed[:2] == b"\x30\x82"
    explicit = b"\xa0\x82" + (len(signed) + 1).to_bytes(2, "big") + b"\x3f\x10" + signed[1:]
    body = der[4:15] + explicit
    message = b"\x30\x82" + len(body).to_bytes(2, "big") + body
    assert _asn1._certs_only_fast(message) is None
    with pytest.raises(MalformedResponseError):
        parse_certs_only(message)
