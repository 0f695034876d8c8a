"""The few DER encodings (X.690) the local CA writes itself: lengths, sequences, OIDs, integers and X.509 times.

Only for structures whose every value the CA has in hand; parsing stays with cryptography. ``elements`` reads the
top-level TLVs of a constructed value the CA produced (or cryptography did), with single-byte tags.
"""

from __future__ import annotations

import datetime as dt
import functools

__all__ = ["SEQUENCE", "content", "der", "elements", "integer", "oid", "sequence", "validity", "x509_time"]

SEQUENCE = 0x30


def der(tag: int, content: bytes) -> bytes:
    """One TLV: the tag byte, the definite length in its shortest form, the content."""
    n = len(content)
    if n < 0x80:
        return bytes((tag, n)) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(size))) + size + content


def sequence(*parts: bytes) -> bytes:
    """A SEQUENCE of already encoded elements."""
    return der(SEQUENCE, b"".join(parts))


def elements(data: bytes) -> list[bytes]:
    """The TLVs inside the single TLV ``data`` (single-byte tags, definite lengths, as DER has them).

    Raises:
        ValueError: ``data`` is not one TLV whose content is a run of TLVs.
    """
    _, start, end = _header(data, 0)
    if end != len(data):
        raise ValueError("trailing bytes after the DER value")
    out: list[bytes] = []
    pos = start
    while pos < end:
        _, _, stop = _header(data, pos)
        if stop > end:
            raise ValueError("a DER element runs past its parent")
        out.append(data[pos:stop])
        pos = stop
    return out


def content(tlv: bytes) -> bytes:
    """The content of the single TLV ``tlv``."""
    _, start, end = _header(tlv, 0)
    if end != len(tlv):
        raise ValueError("trailing bytes after the DER value")
    return tlv[start:end]


def _header(data: bytes, pos: int) -> tuple[int, int, int]:
    if pos + 2 > len(data) or data[pos] & 0x1F == 0x1F:
        raise ValueError("not a DER element with a single-byte tag")
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first & 0x80:
        count = first & 0x7F
        if count == 0 or pos + count > len(data):
            raise ValueError("not a definite DER length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    else:
        length = first
    if pos + length > len(data):
        raise ValueError("a DER element runs past the data")
    return tag, pos, pos + length


@functools.lru_cache(maxsize=256)
def oid(dotted: str) -> bytes:
    """An OBJECT IDENTIFIER from its dotted form (X.690 §8.19: the first two arcs in one subidentifier, base 128)."""
    arcs = [int(a) for a in dotted.split(".")]
    body = bytearray()
    for arc in (arcs[0] * 40 + arcs[1], *arcs[2:]):
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body += bytes(reversed(chunk))
    return der(0x06, bytes(body))


def integer(value: int) -> bytes:
    """An INTEGER holding a non-negative value (a leading zero byte when the top bit would read as a sign)."""
    return der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


@functools.lru_cache(maxsize=4)
def validity(not_before: dt.datetime, not_after: dt.datetime) -> bytes:
    """An RFC 5280 Validity (a certificate authority issues many within the same second)."""
    return sequence(x509_time(not_before), x509_time(not_after))


def x509_time(moment: dt.datetime) -> bytes:
    """An RFC 5280 Time, seconds only: UTCTime up to 2049, GeneralizedTime from 2050 (§4.1.2.5).

    A naive ``moment`` is taken as UTC.

    Raises:
        ValueError: before 1950 (not representable as RFC 5280 requires) or with a fraction of a second.
    """
    if moment.tzinfo is not None and moment.tzinfo is not dt.UTC:
        moment = moment.astimezone(dt.UTC)
    if moment.microsecond or moment.year < 1950:
        raise ValueError(f"{moment} has no RFC 5280 Time in whole seconds")
    rest = f"{moment.month:02d}{moment.day:02d}{moment.hour:02d}{moment.minute:02d}{moment.second:02d}Z"
    if moment.year < 2050:
        return der(0x17, f"{moment.year % 100:02d}{rest}".encode("ascii"))
    return der(0x18, f"{moment.year:04d}{rest}".encode("ascii"))
