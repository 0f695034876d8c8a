"""CTL/ITL parsing and printing against synthetic files built from the documented layout (no real file exists)."""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capf_common import CtlFormatError, CtlRole, format_ctl, parse_ctl
from tests._support.pki import Credential, TestPki, issue
from tests.capf_common._ctl_support import TIMESTAMP, build_ctl


@pytest.fixture(scope="module")
def sast(pki: TestPki) -> Credential:
    return issue("SAST-ADMIN", issuer=pki.intermediate, key_kind="rsa")


@pytest.fixture(scope="module")
def ctl_bytes(pki: TestPki, sast: Credential) -> bytes:
    return build_ctl(sast, [(pki.server, int(CtlRole.CCM_TFTP)), (pki.ra, int(CtlRole.CAPF)), (pki.client, 99)])


def test_header_and_records_are_read(ctl_bytes: bytes, sast: Credential, pki: TestPki) -> None:
    ctl = parse_ctl(ctl_bytes)
    header = ctl.header
    assert header.version == "1.2"
    assert header.signer_version == "1.0"
    assert header.signer_name == sast.cert.subject.rfc4514_string()
    assert header.serial_number == sast.cert.serial_number.to_bytes(len(header.serial_number), "big")
    assert header.hash_algorithm == 1
    assert header.signature_modulus == 2
    assert len(header.signature) == 256
    assert header.filename == "CTLFile.tlv"
    assert header.timestamp == dt.datetime.fromtimestamp(TIMESTAMP, dt.UTC)
    assert header.header_length % 4 == 0
    assert [r.role for r in ctl.records] == [CtlRole.SAST, CtlRole.CCM_TFTP, CtlRole.CAPF, 99]
    assert ctl.records[2].x509_certificate() == pki.ra.cert
    assert ctl.records[1].dns_name == "cucm.example.test"
    assert ctl.signer() is ctl.records[0]
    assert ctl.verify_signature() is True


def test_sha512_signed_file(pki: TestPki, sast: Credential) -> None:
    ctl = parse_ctl(build_ctl(sast, [(pki.server, int(CtlRole.TVS))], hash_id=3))
    assert ctl.header.hash_algorithm == 3
    assert ctl.verify_signature() is True


def test_tampered_file_fails_signature(ctl_bytes: bytes) -> None:
    tampered = bytearray(ctl_bytes)
    tampered[-40] ^= 0xFF  # inside the last certificate
    ctl = parse_ctl(bytes(tampered))
    assert ctl.verify_signature() is False
    assert "INVALID" in format_ctl(ctl)


def test_format_prints_roles_and_signature(ctl_bytes: bytes) -> None:
    text = format_ctl(parse_ctl(ctl_bytes))
    for expected in (
        "Version:          1.2",
        "SAST",
        "CCM+TFTP",
        "CAPF",
        "unknown (99)",
        "valid",
        "Records:          4",
    ):
        assert expected in text


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda b: b[:8], "too short"),
        (lambda b: b"\x02" + b[1:], "VERSION tag"),
        (lambda b: b[:5] + b"\x03" + b[6:], "HEADER_LENGTH"),
        (lambda b: b[:8] + b"\xff\xff" + b[10:], "outside the file"),
        (lambda b: b[: parse_ctl(b).header.header_length] + b"\x02\x00\x02\x00\x10", "RECORD_LENGTH"),
        (lambda b: b[: parse_ctl(b).header.header_length] + b"\x01\x00\x02\xff\xf0", "outside the file"),
        (lambda b: b[: parse_ctl(b).header.header_length + 30], "outside the file"),
        (lambda b: b[: parse_ctl(b).header.header_length] + b"\x01\x00\x02\x00\x0a\x04\x00\x01\x00\x00", "ROLE"),
        (lambda b: b[: parse_ctl(b).header.header_length] + b"\x01\x00\x02\x00\x0a\x09\x00\x09\x00\x00", "claims"),
    ],
)
def test_malformed_files_raise_with_offset(ctl_bytes: bytes, mutate: object, match: str) -> None:
    assert callable(mutate)
    with pytest.raises(CtlFormatError, match=match) as info:
        parse_ctl(mutate(ctl_bytes))
    assert "at byte" in str(info.value) and info.value.offset >= 0


def test_unknown_tags_are_kept(ctl_bytes: bytes) -> None:
    length = parse_ctl(ctl_bytes).header.header_length
    extra = b"\x01\x00\x02\x00\x0b" + b"\x63\x00\x03abc"
    ctl = parse_ctl(ctl_bytes[:length] + extra)
    assert ctl.records[0].unknown == ((0x63, b"abc"),)
    assert ctl.verify_signature() is None  # the signer record is gone


def test_x509_certificate_is_none_for_bad_der(ctl_bytes: bytes) -> None:
    length = parse_ctl(ctl_bytes).header.header_length
    ctl = parse_ctl(ctl_bytes[:length] + b"\x01\x00\x02\x00\x0b" + b"\x09\x00\x03abc")
    assert ctl.records[0].x509_certificate() is None
    assert isinstance(ctl.records[0].certificate, bytes)


@settings(max_examples=250, deadline=None)
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes_give_a_result_or_a_ctl_error(data: bytes) -> None:
    with contextlib.suppress(CtlFormatError):
        format_ctl(parse_ctl(data))


@settings(max_examples=200, deadline=None)
@given(
    cut=st.integers(min_value=0, max_value=4000),
    position=st.integers(min_value=0, max_value=4000),
    value=st.integers(0, 255),
)
def test_mutated_valid_files_give_a_result_or_a_ctl_error(
    ctl_bytes: bytes, cut: int, position: int, value: int
) -> None:
    mutated = bytearray(ctl_bytes[: max(cut, 1)])
    mutated[position % len(mutated)] = value
    with contextlib.suppress(CtlFormatError):
        format_ctl(parse_ctl(bytes(mutated)))


@settings(max_examples=250, deadline=None)
@given(edits=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1, max_size=3))
def test_files_with_changed_bytes_give_a_result_or_a_ctl_error(ctl_bytes: bytes, edits: list[tuple[int, int]]) -> None:
    mutated = bytearray(ctl_bytes)
    for position, value in edits:
        mutated[position % len(mutated)] = value
    with contextlib.suppress(CtlFormatError):
        ctl = parse_ctl(bytes(mutated))
        format_ctl(ctl)
        assert ctl.verify_signature() in (True, False, None)
        for record in ctl.records:
            record.x509_certificate()
