"""Builds synthetic CTL/ITL files from the documented layout (no real file is publicly available)."""

from __future__ import annotations

import struct

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from tests._support.pki import Credential

TIMESTAMP = 1_550_000_000


def _tlv(tag: int, value: bytes) -> bytes:
    return struct.pack(">BH", tag, len(value)) + value


def _public_key(cert: x509.Certificate) -> bytes:
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def _record(cred: Credential, role: int, dns: str = "cucm.example.test") -> bytes:
    cert = cred.cert
    serial = cert.serial_number.to_bytes((cert.serial_number.bit_length() + 7) // 8, "big")
    body = b"".join(
        (
            _tlv(2, dns.encode() + b"\0"),
            _tlv(3, cert.subject.rfc4514_string().encode() + b"\0"),
            _tlv(4, struct.pack(">H", role)),
            _tlv(5, cert.issuer.rfc4514_string().encode() + b"\0"),
            _tlv(6, serial),
            _tlv(7, _public_key(cert)),
            _tlv(8, cert.signature),
            _tlv(9, cert.public_bytes(serialization.Encoding.DER)),
        )
    )
    return _tlv(1, struct.pack(">H", 5 + len(body))) + body


def build_ctl(sast: Credential, others: list[tuple[Credential, int]], *, hash_id: int = 1) -> bytes:
    """Build a signed CTL file following the documented layout (usecallmanager.nz tlvfile)."""
    cert = sast.cert
    serial = cert.serial_number.to_bytes((cert.serial_number.bit_length() + 7) // 8, "big")
    signer = _tlv(4, cert.subject.rfc4514_string().encode() + b"\0") + _tlv(5, serial)
    signer += _tlv(6, cert.issuer.rfc4514_string().encode() + b"\0")
    algorithm_info = _tlv(10, b"\x00") + _tlv(11, b"\x02")
    signature_info = _tlv(8, bytes([hash_id])) + _tlv(9, algorithm_info)
    assert isinstance(sast.key, rsa.RSAPrivateKey)
    signature_length = sast.key.key_size // 8

    def header(length: int, signature: bytes) -> bytes:
        head = _tlv(1, b"\x01\x02") + _tlv(2, struct.pack(">H", length)) + _tlv(28, b"\x01\x00")
        head += _tlv(3, signer) + _tlv(7, signature_info) + _tlv(12, signature)
        head += _tlv(14, b"CTLFile.tlv\0") + _tlv(15, struct.pack(">I", TIMESTAMP))
        return head + b"\x0d" * (-len(head) % 4)

    length = len(header(0, bytes(signature_length)))
    records = _record(sast, 0) + b"".join(_record(c, role) for c, role in others)
    placeholder = header(length, bytes(signature_length))
    sig_tlv_start = placeholder.index(_tlv(12, bytes(signature_length)))
    unsigned = placeholder[:sig_tlv_start] + placeholder[sig_tlv_start + 3 + signature_length :] + records
    algorithm = {1: hashes.SHA1(), 3: hashes.SHA512()}[hash_id]
    signature = sast.key.sign(unsigned, padding.PKCS1v15(), algorithm)
    return header(length, signature) + records
