"""Base64 bodies: lenient decoding (RFC 8951 §3.1) and RFC 2045 encoding."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from estclient import EstError, MalformedRequestError, MalformedResponseError, decode_body, encode_body

DER = bytes(range(256)) * 3


def test_encode_uses_76_column_crlf_lines() -> None:
    body = encode_body(DER)
    lines = body.split(b"\r\n")
    assert lines[-1] == b""
    assert all(len(line) == 76 for line in lines[:-2])
    assert 0 < len(lines[-2]) <= 76
    assert b"\n" not in body.replace(b"\r\n", b"")
    assert base64.b64decode(body.replace(b"\r\n", b"")) == DER


def test_encode_empty_is_empty() -> None:
    assert encode_body(b"") == b""


@pytest.mark.parametrize(
    "transform",
    [
        pytest.param(lambda b: b, id="one-line"),
        pytest.param(lambda b: b"\n".join(b[i : i + 64] for i in range(0, len(b), 64)), id="lf-64"),
        pytest.param(lambda b: b"\r\n".join(b[i : i + 76] for i in range(0, len(b), 76)) + b"\r\n", id="crlf-76"),
        pytest.param(lambda b: b" \t".join(b[i : i + 10] for i in range(0, len(b), 10)), id="spaces-tabs"),
        pytest.param(lambda b: b + b"\x00", id="trailing-nul"),
        pytest.param(lambda b: b + b"\r\n\x00\x00", id="trailing-newline-nuls"),
        pytest.param(lambda b: b.rstrip(b"="), id="no-padding"),
        pytest.param(lambda b: b"\r\n" + b + b"\r\n\r\n", id="leading-and-trailing-blank-lines"),
    ],
)
def test_decode_is_lenient(transform: Callable[[bytes], bytes]) -> None:
    encoded = base64.b64encode(DER[:100])
    assert decode_body(transform(encoded)) == DER[:100]


def test_round_trip() -> None:
    assert decode_body(encode_body(DER)) == DER


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "empty"),
        (b" \r\n\x00", "empty"),
        (b"MIIB!!==", "not base64"),
        (b"MII=B", "not base64"),  # padding in the middle
        (b"MIIBA", "truncated"),
        (b"\x00MIIB", "not base64"),  # a NUL that is not trailing
    ],
)
def test_decode_rejects_bad_bodies(body: bytes, fragment: str) -> None:
    with pytest.raises(MalformedResponseError) as info:
        decode_body(body)
    assert fragment in info.value.message
    assert info.value.libest_error == "EST_ERR_BAD_BASE64"
    assert info.value.libest_code == 64
    assert "Fix:" in str(info.value)


def test_decode_error_class_and_name_are_selectable() -> None:
    with pytest.raises(MalformedRequestError) as info:
        decode_body(b"%%%", what="/simpleenroll request", error=MalformedRequestError)
    assert "/simpleenroll request" in str(info.value)
    assert isinstance(info.value, EstError)


def _as_specified(data: bytes) -> bytes | None:
    """RFC 8951 §3.1 leniency spelled out step by step (None: refused): the reference for the fast decoder."""
    text = re.sub(rb"[ \t\r\n\f\v]+", b"", data.rstrip(b"\x00 \t\r\n"))
    if not text or re.fullmatch(rb"[A-Za-z0-9+/]*={0,2}", text) is None:
        return None
    stripped = text.rstrip(b"=")
    if len(stripped) % 4 == 1:
        return None
    return base64.b64decode(stripped + b"=" * (-len(stripped) % 4), validate=True)


_BASE64ISH = st.lists(
    st.one_of(
        st.sampled_from([b"A", b"z", b"0", b"+", b"/", b"=", b"==", b"\r\n", b" ", b"\t", b"\x00", b"\x0b", b"-"]),
        st.binary(max_size=3),
    ),
    max_size=40,
).map(b"".join)


@settings(max_examples=300, deadline=None)
@example(b"QQ===")  # three pad characters: refused, though the data before them is fine
@example(b"QQ==QQ==")  # padding inside
@example(b"QUJD=")  # a pad character where none is due: tolerated
@example(b"==")
@example(b"QUJDRA")  # missing padding: tolerated
@example(b"QUJDR")  # an impossible length
@given(st.one_of(_BASE64ISH, st.binary(max_size=64), st.binary(max_size=48).map(encode_body)))
def test_decoding_follows_the_specified_leniency_exactly(data: bytes) -> None:
    # decode_body takes a native one-pass route for well-formed bodies; it must accept and refuse exactly what the
    # step-by-step reading accepts and refuses, and decode to the same bytes.
    expected = _as_specified(data)
    if expected is None:
        with pytest.raises(MalformedResponseError):
            decode_body(data)
    else:
        assert decode_body(data) == expected
