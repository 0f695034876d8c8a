"""Base64 bodies of EST messages (RFC 7030 §4, RFC 8951 §3, RFC 2045 §6.8).

EST sends DER as base64. Receivers are lenient (RFC 8951 §3.1): line breaks or none, CR/LF/space/tab anywhere,
trailing NUL bytes (some servers count the C string terminator). The Content-Transfer-Encoding header is to be
ignored by the caller. Senders use RFC 2045 lines: 76 characters, CRLF, which every server accepts.
"""

from __future__ import annotations

import base64
import binascii
import re

from estclient._errors import MalformedMessageError, MalformedResponseError

__all__ = ["decode_body", "encode_body"]

_WHITESPACE_BYTES = b" \t\r\n\f\v"
_ALPHABET = re.compile(rb"[A-Za-z0-9+/]*={0,2}")
_LINE = 76


def decode_body(
    data: bytes,
    *,
    what: str = "response body",
    error: type[MalformedMessageError] = MalformedResponseError,
) -> bytes:
    """Decode a base64 EST body leniently.

    Whitespace (CR, LF, space, tab) anywhere and trailing NUL bytes are ignored; missing ``=`` padding is
    tolerated. Anything else outside the base64 alphabet is an error.

    Args:
        data: The HTTP body as received.
        what: Names the body in the error message (e.g. ``"/cacerts response"``).
        error: The error class to raise (the server passes :class:`MalformedRequestError`).

    Returns:
        The decoded bytes (usually DER).

    Raises:
        MalformedResponseError: (or ``error``) when the body is empty or not base64.
    """
    text = data.rstrip(b"\x00 \t\r\n").translate(None, _WHITESPACE_BYTES)
    stripped = text.rstrip(b"=")
    if stripped and len(text) - len(stripped) <= 2 and len(stripped) % 4 != 1:
        # The common case in one native pass: the alphabet checked by binascii's strict mode on canonical padding.
        # Anything it refuses goes through the checks below, which name the fault.
        try:
            return binascii.a2b_base64(stripped + b"=" * (-len(stripped) % 4), strict_mode=True)
        except binascii.Error:
            pass
    if not text:
        raise error(f"The {what} is empty; expected base64-encoded DER.", libest_error="EST_ERR_BAD_BASE64")
    if _ALPHABET.fullmatch(text) is None:
        bad = next((i for i, ch in enumerate(text) if not _is_b64_char(ch)), None)
        where = f" (first invalid byte 0x{text[bad]:02x} at offset {bad})" if bad is not None else ""
        raise error(
            f"The {what} is not base64{where}; EST bodies are base64 DER (RFC 7030 §4).",
            libest_error="EST_ERR_BAD_BASE64",
        )
    stripped = text.rstrip(b"=")
    if len(stripped) % 4 == 1:
        raise error(f"The {what} is truncated base64 (its length is impossible).", libest_error="EST_ERR_BAD_BASE64")
    padded = stripped + b"=" * (-len(stripped) % 4)
    try:
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - the checks above catch these first
        raise error(f"The {what} is not valid base64: {exc}.", libest_error="EST_ERR_BAD_BASE64") from None


def _is_b64_char(ch: int) -> bool:
    return (65 <= ch <= 90) or (97 <= ch <= 122) or (48 <= ch <= 57) or ch in b"+/="


def encode_body(der: bytes) -> bytes:
    """Encode DER as RFC 2045 base64: 76-character lines, each ended by CRLF.

    Args:
        der: The bytes to send.

    Returns:
        The base64 body (ASCII), ending with CRLF unless ``der`` is empty.
    """
    encoded = base64.b64encode(der)
    return b"".join(encoded[i : i + _LINE] + b"\r\n" for i in range(0, len(encoded), _LINE))
