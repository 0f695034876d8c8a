"""Property tests: any bytes into any wire parser give a result or an EstError, nothing else.

Two kinds of input: arbitrary bytes, and real messages (RFC vectors, messages built from the test PKI) that are
truncated, bit-flipped or spliced, so the parsers are driven past their first checks.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from estclient import (
    CsrAttrs,
    EstError,
    _asn1,
    build_certs_only,
    build_csr,
    build_pki_data,
    build_pki_response,
    build_serverkeygen_response,
    decode_body,
    encode_body,
    encode_csrattrs,
    load_csr,
    parse_certs_only,
    parse_csrattrs,
    parse_pki_data,
    parse_pki_response,
    parse_serverkeygen_response,
    rollover_roles,
)
from estclient._serverkeygen import parse_multipart
from tests._support.pki import TestPki, issue
from tests.estclient import _vectors

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

_DECRYPT_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_KEY = ec.generate_private_key(ec.SECP256R1())


def _seeds() -> list[bytes]:
    seeds = [
        decode_body(_vectors.text("rfc7030_a1_cacerts.b64")),
        decode_body(_vectors.text("rfc7030_a3_simpleenroll_request.b64")),
        decode_body(_vectors.text("rfc7030_a3_simpleenroll_response.b64")),
        decode_body(_vectors.text("rfc7030_a4_serverkeygen_request.b64")),
    ]
    for table in ("rfc_csrattrs.json", "libest_csrattrs.json"):
        for value in _vectors.table(table).values():
            try:
                seeds.append(decode_body(value.encode()))
            except EstError:
                continue
    csr = build_csr(_KEY, "CN=seed", challenge_password="AAAAAAAAAAAAAAAA", asymmetric_decrypt_key_id=b"\x01" * 20)
    seeds.append(build_pki_data(csr, transaction_id=1))
    seeds.append(build_pki_response([], status="failed", fail_info="badRequest", status_string="no"))
    return seeds


SEEDS = _seeds()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A seed message, truncated, with flipped bytes, or with a slice of another seed spliced in."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "splice", "insert"]))
        if not data:
            break
        pos = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[pos] ^= draw(st.integers(1, 255))
        elif kind == "truncate":
            del data[pos:]
        elif kind == "splice":
            other = draw(st.sampled_from(SEEDS))
            start = draw(st.integers(0, len(other)))
            data[pos:pos] = other[start : start + draw(st.integers(0, 64))]
        else:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=4))
    return bytes(data)


INPUTS = st.one_of(st.binary(max_size=512), mutated())


def _result_or_est_error(func: Callable[[], object]) -> None:
    with contextlib.suppress(EstError):
        func()


@SETTINGS
@given(st.binary(max_size=400))
def test_decode_body(data: bytes) -> None:
    _result_or_est_error(lambda: decode_body(data))


@SETTINGS
@given(st.binary(max_size=300))
def test_body_round_trip(data: bytes) -> None:
    assert decode_body(encode_body(data)) == data if data else True


@SETTINGS
@given(INPUTS)
def test_parse_certs_only(data: bytes) -> None:
    _result_or_est_error(lambda: parse_certs_only(data))


@SETTINGS
@given(INPUTS)
def test_fast_certs_only_split_agrees_with_the_full_decoder(data: bytes) -> None:
    # Whatever the hand-written split of certs-only messages accepts, asn1crypto must decode to the same parts
    # (an Asn1Error from the full decoder here is a disagreement too, and fails the test).
    fast = _asn1._certs_only_fast(data)
    if fast is not None:
        assert fast == _asn1._signed_data_full(data)


@SETTINGS
@given(INPUTS)
def test_parse_csrattrs_and_interpretation(data: bytes) -> None:
    try:
        attrs = parse_csrattrs(data)
    except EstError:
        return
    attrs.requirements()
    for attr in attrs.attributes:
        attr.value_oids()
        attr.value_ints()
        attr.extensions()
    # What parses re-encodes to something that parses to the same model.
    assert parse_csrattrs(encode_csrattrs(attrs)) == attrs


@SETTINGS
@given(st.lists(st.sampled_from(SEEDS), max_size=3))
def test_csrattrs_of_random_vectors_interpret(chosen: list[bytes]) -> None:
    items: list[object] = []
    for der in chosen:
        try:
            items.extend(parse_csrattrs(der).items)
        except EstError:
            continue
    attrs = CsrAttrs(tuple(items))  # type: ignore[arg-type]
    _result_or_est_error(lambda: attrs.requirements())


@SETTINGS
@given(INPUTS)
def test_load_csr(data: bytes) -> None:
    _result_or_est_error(lambda: load_csr(data))


@SETTINGS
@given(INPUTS)
def test_parse_pki_data(data: bytes) -> None:
    _result_or_est_error(lambda: parse_pki_data(data))


@SETTINGS
@given(INPUTS)
def test_parse_pki_response(data: bytes) -> None:
    _result_or_est_error(lambda: parse_pki_response(data))


@SETTINGS
@given(st.text(max_size=80), st.binary(max_size=400))
def test_parse_multipart_arbitrary(content_type: str, body: bytes) -> None:
    _result_or_est_error(lambda: parse_multipart(content_type, body))
    _result_or_est_error(lambda: parse_serverkeygen_response(content_type, body))


@pytest.fixture(scope="module")
def serverkeygen_bodies(pki: TestPki) -> list[tuple[str, bytes]]:
    plain = build_serverkeygen_response(pki.client.key, pki.client.cert)
    encrypted = build_serverkeygen_response(pki.client.key, pki.client.cert, encrypt_to=_cert_for(pki))
    agreed = build_serverkeygen_response(pki.server.key, pki.server.cert, encrypt_to=_ec_cert_for(pki))
    a4 = _vectors.text("rfc7030_a4_serverkeygen_response.txt").replace(b"\n", b"\r\n")  # RFC 7030 Appendix A.4
    return [plain, encrypted, agreed, ("multipart/mixed ; boundary=estServerExampleBoundary", a4)]


def _ec_cert_for(pki: TestPki) -> x509.Certificate:
    # An EC certificate for _KEY: the key-agreement (kari) envelope is parsed and, unmutated, decrypted.
    return issue("agree", issuer=pki.intermediate, key=_KEY).cert


def _cert_for(pki: TestPki) -> x509.Certificate:
    # An RSA certificate for _DECRYPT_KEY, so the encrypted body decrypts when not mutated.
    return issue("decrypt", issuer=pki.intermediate, key=_DECRYPT_KEY).cert


@SETTINGS
@given(data=st.data())
def test_parse_serverkeygen_mutated(serverkeygen_bodies: list[tuple[str, bytes]], data: st.DataObject) -> None:
    content_type, body = data.draw(st.sampled_from(serverkeygen_bodies))
    parts = body.split(b"\r\n\r\n")
    index = data.draw(st.integers(0, len(parts) - 1))
    part = bytearray(parts[index])
    if part:
        pos = data.draw(st.integers(0, len(part) - 1))
        if data.draw(st.booleans()):
            part[pos] = data.draw(st.sampled_from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"))
        else:
            del part[pos:]
    parts[index] = bytes(part)
    mutated_body = b"\r\n\r\n".join(parts)
    keys: list[rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey] = [_DECRYPT_KEY, _KEY]
    key = data.draw(st.sampled_from(keys))
    _result_or_est_error(lambda: parse_serverkeygen_response(content_type, mutated_body, decrypt_key=key))


def test_mutation_seeds_are_valid() -> None:
    # The seeds must parse in at least one parser, or the mutation tests would start from noise.
    assert parse_certs_only(SEEDS[0]).certificates
    assert load_csr(SEEDS[1])
    assert base64.b64encode(SEEDS[2])
    assert build_certs_only([]) != b""


def test_regression_unsorted_set_values_compare_in_der_order() -> None:
    # Found by the property test: a SET whose values are not in DER order re-encodes sorted.
    inner = b"\x06\x01\x00" + b"\x31\x06" + b"\x02\x01\x02" + b"\x02\x01\x01"
    attribute = bytes([0x30, len(inner)]) + inner
    unsorted = bytes([0x30, len(attribute)]) + attribute
    attrs = parse_csrattrs(unsorted)
    assert attrs.attributes[0].values == (b"\x02\x01\x01", b"\x02\x01\x02")
    assert parse_csrattrs(encode_csrattrs(attrs)) == attrs


def test_regression_certificate_with_an_unknown_key_type(pki: TestPki) -> None:
    # Found by the property test: cryptography loads such a certificate but its public_key() raises.
    der = pki.client.cert.public_bytes(serialization.Encoding.DER)
    ec_oid = bytes.fromhex("06072a8648ce3d0201")
    odd = der.replace(ec_oid, bytes.fromhex("06072a8648ce3d027f"), 1)
    assert odd != der
    parsed = parse_certs_only(build_certs_only([x509.load_der_x509_certificate(odd)]))
    assert parsed.certificate_for_key(pki.client.key.public_key()) is None
    assert rollover_roles([*parsed.certificates, pki.root.cert, pki.root.cert]) == {}


def test_regression_certificate_with_an_invalid_version(pki: TestPki) -> None:
    # Found by the property test: cryptography raises InvalidVersion (not a ValueError) for version 6.
    der = bytearray(build_certs_only([pki.client.cert]))
    version = bytes.fromhex("a003020102")  # [0] EXPLICIT INTEGER 2 (v3)
    at = bytes(der).index(version)
    der[at + 4] = 6
    with pytest.raises(EstError, match="does not parse"):
        parse_certs_only(bytes(der))


def test_regression_certificate_with_a_negative_serial_number(pki: TestPki) -> None:
    # Found by the property test in CI: a non-positive serial (RFC 5280 forbids it, old CAs issued it) made
    # cryptography warn, which an application that turns warnings into errors (as this suite does) got as an
    # exception. Such a certificate is read, as the other packages read it.
    der = bytearray(build_certs_only([pki.client.cert]))
    serial = pki.client.cert.serial_number.to_bytes(20, "big").lstrip(b"\x00")
    head = bytes([0x02, len(serial)]) + serial
    at = bytes(der).index(head)
    der[at + 2] |= 0x80  # the INTEGER's sign bit: now negative
    (cert,) = parse_certs_only(bytes(der)).certificates  # (reading cert.serial_number still warns: cryptography's word)
    assert cert.subject == pki.client.cert.subject
