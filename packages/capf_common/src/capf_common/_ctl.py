"""Read-only parser and printer for CTL/ITL files (``CTLFile.tlv``, ``ITLFile.tlv``, ``ITLSEP<MAC>.tlv``).

Cisco does not publish the layout; this follows the third-party description (usecallmanager.nz ``tlvfile``):
a header of TLVs (``u8 tag, u16 big-endian length, value``; the padding tag 13 is a single byte without a
length; tags 3, 7 and 9 are containers whose value is more TLVs), then one record per certificate and role,
each starting with a RECORD_LENGTH TLV that counts the whole record. The header signature (RSA PKCS#1 v1.5) covers
the whole file without the signature TLV; the signer is the SAST record whose serial number the header names.
"""

from __future__ import annotations

import datetime
import enum
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from capf_common._errors import CtlFormatError

__all__ = ["CtlRole", "CtlHeader", "CtlRecord", "CtlFile", "parse_ctl", "format_ctl"]


class CtlRole(enum.IntEnum):
    """The role (function) of a certificate in a CTL/ITL record."""

    SAST = 0
    CCM = 1
    CCM_TFTP = 2
    TFTP = 3
    CAPF = 4
    APP_SERVER = 7
    TVS = 21


_HASHES: dict[int, type[hashes.HashAlgorithm]] = {1: hashes.SHA1, 2: hashes.SHA256, 3: hashes.SHA512}
_HASH_NAMES = {1: "SHA-1", 2: "SHA-256", 3: "SHA-512"}
_CONTAINERS = {3, 7, 9}
_PADDING = 13


@dataclass(frozen=True)
class CtlHeader:
    """The header of a CTL/ITL file.

    Attributes:
        version: The header version, e.g. ``"1.2"``.
        header_length: The header's length in bytes (signature included).
        signer_version: ``"1.0"`` or ``"1.1"`` (1.1 enables EC and HTTPS provisioning), ``None`` if absent.
        signer_name: The signer's subject (as the file writes it), ``None`` if absent.
        issuer_name: The signer's issuer, ``None`` if absent.
        serial_number: The signer certificate's serial number (raw bytes).
        hash_algorithm: 1 = SHA-1, 2 = SHA-256, 3 = SHA-512; ``None`` if absent.
        signature_algorithm: The signature algorithm number, ``None`` if absent.
        signature_modulus: Index into 64/128/256/512-byte signatures, ``None`` if absent.
        signature: The signature bytes.
        filename: The file name recorded in the header.
        timestamp: The signing time (UTC), ``None`` if absent.
        unknown: Tags this parser does not know, as ``(tag, value)``.
    """

    version: str
    header_length: int
    signer_version: str | None = None
    signer_name: str | None = None
    issuer_name: str | None = None
    serial_number: bytes = b""
    hash_algorithm: int | None = None
    signature_algorithm: int | None = None
    signature_modulus: int | None = None
    signature: bytes = b""
    filename: str | None = None
    timestamp: datetime.datetime | None = None
    unknown: tuple[tuple[int, bytes], ...] = ()


@dataclass(frozen=True)
class CtlRecord:
    """One certificate entry of a CTL/ITL file.

    Attributes:
        length: The record length in bytes.
        role: The role (:class:`CtlRole`, or the raw number when unknown), ``None`` if absent.
        dns_name: The DNS name, ``None`` if absent.
        subject_name: The certificate's subject as the file writes it.
        issuer_name: The certificate's issuer as the file writes it.
        serial_number: The serial number (raw bytes).
        public_key: The public key (PKCS#1 RSAPublicKey DER or an uncompressed EC point).
        signature: The certificate's signature.
        certificate: The certificate DER, ``None`` if absent.
        ip_address: The IP address bytes, ``None`` if absent.
        certificate_hash: The certificate hash, ``None`` if absent.
        hash_algorithm: The hash algorithm number of ``certificate_hash``, ``None`` if absent.
        unknown: Tags this parser does not know, as ``(tag, value)``.
    """

    length: int
    role: CtlRole | int | None = None
    dns_name: str | None = None
    subject_name: str | None = None
    issuer_name: str | None = None
    serial_number: bytes = b""
    public_key: bytes = b""
    signature: bytes = b""
    certificate: bytes | None = None
    ip_address: bytes | None = None
    certificate_hash: bytes | None = None
    hash_algorithm: int | None = None
    unknown: tuple[tuple[int, bytes], ...] = ()

    def x509_certificate(self) -> x509.Certificate | None:
        """The record's certificate parsed, or ``None`` when absent or not valid DER."""
        if self.certificate is None:
            return None
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Parsed a serial number which wasn't positive")
                cert = x509.load_der_x509_certificate(self.certificate)
                _ = (cert.version, cert.not_valid_before_utc, cert.not_valid_after_utc)
        except (ValueError, x509.InvalidVersion):
            return None
        return cert


@dataclass(frozen=True)
class CtlFile:
    """A parsed CTL/ITL file.

    Attributes:
        header: The header.
        records: The records in file order.
        signed_data: The bytes the header signature covers (the file without its signature TLV).
    """

    header: CtlHeader
    records: tuple[CtlRecord, ...]
    signed_data: bytes = field(default=b"", repr=False)

    def signer(self) -> CtlRecord | None:
        """The SAST record whose serial number the header names (the file's signer), if present."""
        for record in self.records:
            if record.role == CtlRole.SAST and record.serial_number == self.header.serial_number:
                return record
        return None

    def verify_signature(self) -> bool | None:
        """Check the header signature with the signer record's certificate.

        Returns:
            ``True`` when it verifies, ``False`` when it does not, ``None`` when it cannot be checked (no signer
            record with a certificate, or an unknown hash algorithm).
        """
        signer = self.signer()
        cert = signer.x509_certificate() if signer is not None else None
        algorithm = _HASHES.get(self.header.hash_algorithm or 0)
        if cert is None or algorithm is None:
            return None
        try:
            key = cert.public_key()
        except (ValueError, UnsupportedAlgorithm):
            return None
        try:
            if isinstance(key, rsa.RSAPublicKey):
                key.verify(self.header.signature, self.signed_data, padding.PKCS1v15(), algorithm())
            elif isinstance(key, ec.EllipticCurvePublicKey):
                key.verify(self.header.signature, self.signed_data, ec.ECDSA(algorithm()))
            else:
                return None
        except (InvalidSignature, ValueError, UnsupportedAlgorithm):
            return False
        return True


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def u8(self, offset: int, end: int) -> int:
        if offset + 1 > end:
            raise CtlFormatError("truncated: a tag byte is missing", offset=offset)
        return self.data[offset]

    def u16(self, offset: int, end: int) -> int:
        if offset + 2 > end:
            raise CtlFormatError("truncated: a 2-byte length or value is cut off", offset=offset)
        return int.from_bytes(self.data[offset : offset + 2], "big")

    def tlvs(self, start: int, end: int, *, padding_tag: bool) -> Iterator[tuple[int, int, bytes]]:
        """Yield ``(offset, tag, value)``; containers are entered, padding skipped."""
        offset = start
        while offset < end:
            tag = self.u8(offset, end)
            if padding_tag and tag == _PADDING:
                offset += 1
                continue
            length = self.u16(offset + 1, end)
            value_start = offset + 3
            if tag in _CONTAINERS and padding_tag:
                if value_start + length > end:
                    raise CtlFormatError(f"container tag {tag} claims {length} bytes beyond the header", offset=offset)
                offset = value_start
                continue
            if value_start + length > end:
                raise CtlFormatError(
                    f"tag {tag} claims {length} bytes but only {end - value_start} remain", offset=offset
                )
            yield offset, tag, self.data[value_start : value_start + length]
            offset = value_start + length


def _text(value: bytes) -> str:
    return value.rstrip(b"\x00").decode("utf-8", "replace")


def _version(value: bytes, offset: int, what: str) -> str:
    if len(value) != 2:
        raise CtlFormatError(f"{what} must be 2 bytes (major, minor), not {len(value)}", offset=offset)
    return f"{value[0]}.{value[1]}"


def _small(value: bytes, offset: int, what: str, size: int) -> int:
    if len(value) != size:
        raise CtlFormatError(f"{what} must be {size} byte(s), not {len(value)}", offset=offset)
    return int.from_bytes(value, "big")


def parse_ctl(data: bytes) -> CtlFile:
    """Parse a CTL or ITL file (read-only).

    Args:
        data: The file content.

    Returns:
        The header and records.

    Raises:
        CtlFormatError: The bytes do not follow the layout (wrong first tags, lengths beyond the data, a
            record without RECORD_LENGTH, wrongly sized fixed fields); the message gives the byte offset.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CtlFormatError(f"expected bytes, got {type(data).__name__}", offset=0)
    raw = bytes(data)
    reader = _Reader(raw)
    size = len(raw)
    if size < 10:
        raise CtlFormatError(f"{size} bytes is too short for a CTL/ITL header (10 bytes at least)", offset=0)
    if raw[0] != 1 or reader.u16(1, size) != 2:
        raise CtlFormatError("not a CTL/ITL file: it must start with the VERSION tag (01 00 02)", offset=0)
    version = f"{raw[3]}.{raw[4]}"
    if raw[5] != 2 or reader.u16(6, size) != 2:
        raise CtlFormatError("the HEADER_LENGTH tag (02 00 02) must follow the version", offset=5)
    header_length = reader.u16(8, size)
    if not 10 <= header_length <= size:
        raise CtlFormatError(f"header length {header_length} is outside the file (size {size})", offset=8)
    values: dict[str, object] = {}
    unknown: list[tuple[int, bytes]] = []
    signature_span: tuple[int, int] | None = None
    for offset, tag, value in reader.tlvs(10, header_length, padding_tag=True):
        if tag == 28:
            values["signer_version"] = _version(value, offset, "SIGNER_VERSION")
        elif tag == 4:
            values["signer_name"] = _text(value)
        elif tag == 5:
            values["serial_number"] = value
        elif tag == 6:
            values["issuer_name"] = _text(value)
        elif tag == 8:
            values["hash_algorithm"] = _small(value, offset, "HASH_ALGORITHM", 1)
        elif tag == 10:
            values["signature_algorithm"] = _small(value, offset, "SIGNATURE_ALGORITHM", 1)
        elif tag == 11:
            values["signature_modulus"] = _small(value, offset, "SIGNATURE_MODULUS", 1)
        elif tag == 12:
            values["signature"] = value
            signature_span = (offset, offset + 3 + len(value))
        elif tag == 14:
            values["filename"] = _text(value)
        elif tag == 15:
            seconds = _small(value, offset, "TIMESTAMP", 4)
            values["timestamp"] = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
        else:
            unknown.append((tag, value))
    header = CtlHeader(version=version, header_length=header_length, unknown=tuple(unknown), **values)  # type: ignore[arg-type]
    records = []
    offset = header_length
    while offset < size:
        if reader.u8(offset, size) != 1 or reader.u16(offset + 1, size) != 2:
            raise CtlFormatError("a record must start with RECORD_LENGTH (01 00 02)", offset=offset)
        length = reader.u16(offset + 3, size)
        end = offset + length
        if length < 5 or end > size:
            raise CtlFormatError(f"record length {length} is outside the file (size {size})", offset=offset + 3)
        records.append(_record(reader, offset, end, length))
        offset = end
    signed = raw if signature_span is None else raw[: signature_span[0]] + raw[signature_span[1] :]
    return CtlFile(header, tuple(records), signed)


def _record(reader: _Reader, start: int, end: int, length: int) -> CtlRecord:
    values: dict[str, object] = {}
    unknown: list[tuple[int, bytes]] = []
    for offset, tag, value in reader.tlvs(start + 5, end, padding_tag=False):
        if tag == 2:
            values["dns_name"] = _text(value)
        elif tag == 3:
            values["subject_name"] = _text(value)
        elif tag == 4:
            number = _small(value, offset, "ROLE", 2)
            values["role"] = CtlRole(number) if number in CtlRole._value2member_map_ else number
        elif tag == 5:
            values["issuer_name"] = _text(value)
        elif tag == 6:
            values["serial_number"] = value
        elif tag == 7:
            values["public_key"] = value
        elif tag == 8:
            values["signature"] = value
        elif tag == 9:
            values["certificate"] = value
        elif tag == 10:
            values["ip_address"] = value
        elif tag == 11:
            values["certificate_hash"] = value
        elif tag == 12:
            values["hash_algorithm"] = _small(value, offset, "HASH_ALGORITHM", 1) if len(value) == 1 else None
        else:
            unknown.append((tag, value))
    return CtlRecord(length=length, unknown=tuple(unknown), **values)  # type: ignore[arg-type]


def _role_name(role: CtlRole | int | None) -> str:
    if role is None:
        return "-"
    if isinstance(role, CtlRole):
        return role.name.replace("_", "+" if role == CtlRole.CCM_TFTP else "-")
    return f"unknown ({role})"


def format_ctl(ctl: CtlFile) -> str:
    """Render a parsed CTL/ITL file as text (what ``capf ctl show`` prints).

    Args:
        ctl: The parsed file.

    Returns:
        Header, signature status and one block per record.
    """
    h = ctl.header
    verified = ctl.verify_signature()
    lines = [
        f"Version:          {h.version}",
        f"Header length:    {h.header_length} bytes",
        f"Signer version:   {h.signer_version or '-'}",
        f"Signer:           {h.signer_name or '-'}",
        f"Issuer:           {h.issuer_name or '-'}",
        f"Serial number:    {h.serial_number.hex() or '-'}",
        f"Hash algorithm:   {_HASH_NAMES.get(h.hash_algorithm or 0, str(h.hash_algorithm))}",
        f"Signature:        {len(h.signature)} bytes, "
        + {True: "valid", False: "INVALID", None: "not checked (no signer certificate)"}[verified],
        f"File name:        {h.filename or '-'}",
        f"Timestamp:        {h.timestamp.isoformat() if h.timestamp else '-'}",
        f"Records:          {len(ctl.records)}",
    ]
    for number, record in enumerate(ctl.records, start=1):
        cert = record.x509_certificate()
        lines += [
            "",
            f"Record {number} ({record.length} bytes)",
            f"  Role:           {_role_name(record.role)}",
            f"  Subject:        {record.subject_name or '-'}",
            f"  Issuer:         {record.issuer_name or '-'}",
            f"  Serial number:  {record.serial_number.hex() or '-'}",
            f"  DNS name:       {record.dns_name or '-'}",
            "  Certificate:    "
            + (
                f"{len(record.certificate or b'')} bytes, valid until {cert.not_valid_after_utc.date().isoformat()}"
                if cert is not None
                else ("not valid DER" if record.certificate else "-")
            ),
        ]
    return "\n".join(lines)
