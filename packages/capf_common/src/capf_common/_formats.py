"""Certificate format conversions the CAPF Online CA chain performs, chain ordering and verification.

CAPF receives the enrolled certificate from the RA as an EST ``application/pkcs7-mime`` body (base64 of a
certs-only PKCS#7), writes it to disk, converts it "PKCS7 file to PEM format and PEM to DER" (the seed's CAPF
trace) and hands the DER certificate to the phone. The helpers here do the same steps with ``cryptography``
types, accept every encoding a peer may send (DER, PEM, bare base64 with any whitespace) and raise
:class:`~capf_common.CertificateFormatError` naming what was expected when the bytes are something else.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime
import itertools
import os
import re
import tempfile
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs7

from capf_common._asn1 import pkcs7_certificate_ders
from capf_common._errors import (
    CertificateFormatError,
    CertificateValidityError,
    ChainError,
    ChainSignatureError,
    FileWriteError,
    MissingIssuerError,
    SelfSignedCertificateError,
)

__all__ = [
    "load_pkcs7_certificates",
    "pkcs7_to_pem",
    "pkcs7_to_der",
    "certificates_to_pkcs7",
    "load_certificates",
    "load_certificate",
    "load_csr",
    "certificate_to_pem",
    "certificate_to_der",
    "order_chain",
    "verify_chain",
    "write_file_atomic",
    "write_private_key",
]

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 #]+)-----(.*?)-----END \1-----", re.DOTALL)
_BASE64_TEXT = re.compile(rb"^[A-Za-z0-9+/=\s]+$")
_PKCS7_LABELS = {b"PKCS7", b"CMS", b"PKCS #7 SIGNED DATA"}
_CERT_LABELS = {b"CERTIFICATE", b"X509 CERTIFICATE", b"TRUSTED CERTIFICATE"}
_CSR_LABELS = {b"CERTIFICATE REQUEST", b"NEW CERTIFICATE REQUEST"}


def _as_bytes(data: bytes | str) -> bytes:
    if isinstance(data, str):
        return data.encode("utf-8", "surrogateescape")
    return bytes(data)


def _pem_blocks(data: bytes) -> list[tuple[bytes, bytes]]:
    """Return ``(label, der)`` for every PEM block; raise when a block's body is not base64."""
    blocks = []
    for match in _PEM_BLOCK.finditer(data):
        label, body = match.group(1), match.group(2)
        try:
            der = base64.b64decode(b"".join(body.split()), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise CertificateFormatError(
                f"the PEM block '{label.decode('ascii')}' does not hold valid base64 ({exc}); "
                "copy the whole block again, including its BEGIN and END lines"
            ) from exc
        blocks.append((label, der))
    return blocks


def _decode_base64_body(data: bytes) -> bytes | None:
    """Decode an EST-style base64 body (any whitespace); ``None`` when the text is not base64."""
    stripped = data.strip()
    if not stripped or not _BASE64_TEXT.match(stripped):
        return None
    try:
        return base64.b64decode(b"".join(stripped.split()), validate=True)
    except (binascii.Error, ValueError):
        return None


_NON_POSITIVE_SERIAL = "Parsed a serial number which wasn't positive"


def _validated(cert: x509.Certificate, what: str) -> x509.Certificate:
    """Parse the lazily decoded fields now, so a malformed certificate fails here with our error."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_NON_POSITIVE_SERIAL)
            cert.subject.rfc4514_string()
            cert.issuer.rfc4514_string()
            _ = (cert.version, cert.serial_number, cert.not_valid_before_utc, cert.not_valid_after_utc)
    except (ValueError, x509.InvalidVersion) as exc:
        raise CertificateFormatError(f"{what} is not a valid X.509 certificate ({exc})") from exc
    return cert


def _load_der_certificate(der: bytes, what: str) -> x509.Certificate:
    with warnings.catch_warnings():
        # AD CS and old CAs issue non-positive serial numbers; they are read, not rejected
        warnings.filterwarnings("ignore", message=_NON_POSITIVE_SERIAL)
        try:
            cert = x509.load_der_x509_certificate(der)
        except (ValueError, x509.InvalidVersion) as exc:
            raise CertificateFormatError(f"{what} is not a valid X.509 certificate ({exc})") from exc
    return _validated(cert, what)


def _pkcs7_der_to_certs(der: bytes) -> list[x509.Certificate]:
    try:
        with warnings.catch_warnings():
            # OpenSSL and libest write the certificate SET unsorted (BER, not DER); that is expected here.
            warnings.filterwarnings("ignore", message="PKCS#7 certificates could not be parsed as DER")
            warnings.filterwarnings("ignore", message=_NON_POSITIVE_SERIAL)
            certs = pkcs7.load_der_pkcs7_certificates(der)
    except (ValueError, UnsupportedAlgorithm, x509.InvalidVersion) as exc:
        try:
            ders = pkcs7_certificate_ders(der)
        except ValueError:
            raise CertificateFormatError(
                f"the data is not a certs-only PKCS#7 (CMS SignedData) structure ({exc}); an EST /simpleenroll or "
                "/cacerts response or an AD CS certnew.p7b file is expected"
            ) from exc
        certs = [_load_der_certificate(c, "a certificate in the PKCS#7 bundle") for c in ders]
    if not certs:
        raise CertificateFormatError("the PKCS#7 structure holds no certificate; the CA returned an empty bundle")
    return [_validated(c, "a certificate in the PKCS#7 bundle") for c in certs]


def load_pkcs7_certificates(data: bytes | str) -> list[x509.Certificate]:
    """Read the certificates of a certs-only PKCS#7 in DER, PEM or EST base64 form.

    Args:
        data: The PKCS#7 as DER bytes, as a PEM block (``-----BEGIN PKCS7-----`` or ``CMS``), or as the bare
            base64 body of an EST response (line breaks, spaces and tabs anywhere are tolerated).

    Returns:
        The certificates in the order the bundle holds them (use :func:`order_chain` for leaf → root).

    Raises:
        CertificateFormatError: The data is none of these encodings or holds no certificate.
    """
    raw = _as_bytes(data)
    if raw[:1] == b"\x30":
        return _pkcs7_der_to_certs(raw)
    blocks = _pem_blocks(raw)
    if blocks:
        for label, der in blocks:
            if label in _PKCS7_LABELS:
                return _pkcs7_der_to_certs(der)
        labels = ", ".join(sorted({label.decode("ascii") for label, _ in blocks}))
        raise CertificateFormatError(
            f"the PEM data holds {labels} but no PKCS7 block; pass a -----BEGIN PKCS7----- file "
            "(use load_certificates for PEM certificates)"
        )
    decoded = _decode_base64_body(raw)
    if decoded is None:
        raise CertificateFormatError(
            "the data is neither DER (starting with 0x30), PEM nor base64; expected a PKCS#7 certs-only bundle"
        )
    return _pkcs7_der_to_certs(decoded)


def certificate_to_pem(cert: x509.Certificate) -> bytes:
    """Encode a certificate as PEM.

    Args:
        cert: The certificate.

    Returns:
        The ``-----BEGIN CERTIFICATE-----`` block.
    """
    return cert.public_bytes(serialization.Encoding.PEM)


def certificate_to_der(cert: x509.Certificate) -> bytes:
    """Encode a certificate as DER (the form CAPF hands to the phone).

    Args:
        cert: The certificate.

    Returns:
        The DER bytes.
    """
    return cert.public_bytes(serialization.Encoding.DER)


def pkcs7_to_pem(data: bytes | str) -> bytes:
    """Convert a PKCS#7 bundle to concatenated PEM certificates, ordered leaf → root where they form a chain.

    Args:
        data: The PKCS#7 in any form :func:`load_pkcs7_certificates` accepts.

    Returns:
        The PEM certificates, one block after the other.

    Raises:
        CertificateFormatError: The data is not a PKCS#7 bundle.
    """
    certs = load_pkcs7_certificates(data)
    with contextlib.suppress(ChainError):
        certs = order_chain(certs)
    return b"".join(certificate_to_pem(c) for c in certs)


def pkcs7_to_der(data: bytes | str, *, public_key_of: x509.CertificateSigningRequest | None = None) -> bytes:
    """Extract the enrolled (leaf) certificate of a PKCS#7 bundle as DER, as CAPF does for the phone.

    Args:
        data: The PKCS#7 in any form :func:`load_pkcs7_certificates` accepts.
        public_key_of: When given, the certificate whose public key matches this CSR is chosen (RFC 7030 leaves
            the order of the certificates open); otherwise the leaf of the ordered chain.

    Returns:
        The DER encoding of the chosen certificate.

    Raises:
        CertificateFormatError: The data is not a PKCS#7 bundle, or no certificate matches the CSR's key.
        ChainError: No CSR is given and the certificates do not form one chain.
    """
    certs = load_pkcs7_certificates(data)
    if public_key_of is not None:
        wanted = public_key_of.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        for cert in certs:
            try:
                key = cert.public_key()
            except (ValueError, UnsupportedAlgorithm):
                continue  # a key type cryptography cannot read is not the phone's key
            spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
            if spki == wanted:
                return certificate_to_der(cert)
        raise CertificateFormatError(
            "no certificate in the PKCS#7 carries the public key of the CSR; the CA answered for another request"
        )
    return certificate_to_der(order_chain(certs)[0])


def certificates_to_pkcs7(certs: Sequence[x509.Certificate], *, pem: bool = False) -> bytes:
    """Build a certs-only PKCS#7 bundle (as an EST server or AD CS ``certnew.p7b`` returns it).

    Args:
        certs: The certificates to include, in order.
        pem: ``True`` for a ``-----BEGIN PKCS7-----`` block, ``False`` for DER.

    Returns:
        The encoded bundle.

    Raises:
        CertificateFormatError: ``certs`` is empty.
    """
    if not certs:
        raise CertificateFormatError("a PKCS#7 bundle needs at least one certificate")
    encoding = serialization.Encoding.PEM if pem else serialization.Encoding.DER
    return pkcs7.serialize_certificates(list(certs), encoding)


def load_certificates(data: bytes | str) -> list[x509.Certificate]:
    """Read every certificate from PEM text, a single DER certificate or a PKCS#7 bundle.

    Args:
        data: PEM (any number of ``CERTIFICATE`` or ``PKCS7`` blocks), DER certificate, or DER/base64 PKCS#7.

    Returns:
        The certificates in file order.

    Raises:
        CertificateFormatError: Nothing in the data is a certificate.
    """
    raw = _as_bytes(data)
    blocks = _pem_blocks(raw)
    if blocks:
        certs: list[x509.Certificate] = []
        for label, der in blocks:
            if label in _CERT_LABELS:
                certs.append(_load_der_certificate(der, "the CERTIFICATE block"))
            elif label in _PKCS7_LABELS:
                certs.extend(_pkcs7_der_to_certs(der))
        if not certs:
            labels = ", ".join(sorted({label.decode("ascii") for label, _ in blocks}))
            raise CertificateFormatError(f"the PEM data holds {labels} but no certificate")
        return certs
    if raw[:1] == b"\x30":
        try:
            return [_load_der_certificate(raw, "the DER data")]
        except CertificateFormatError:
            return _pkcs7_der_to_certs(raw)
    decoded = _decode_base64_body(raw)
    if decoded is not None:
        try:
            return [_load_der_certificate(decoded, "the base64 data")]
        except CertificateFormatError:
            return _pkcs7_der_to_certs(decoded)
    raise CertificateFormatError("the data is neither PEM, DER nor base64; expected X.509 certificates")


def load_certificate(data: bytes | str) -> x509.Certificate:
    """Read exactly one certificate (PEM or DER), such as an LSC file.

    Args:
        data: A PEM ``CERTIFICATE`` block or DER bytes.

    Returns:
        The certificate.

    Raises:
        CertificateFormatError: The data holds no certificate or more than one.
    """
    certs = load_certificates(data)
    if len(certs) != 1:
        raise CertificateFormatError(
            f"expected one certificate but found {len(certs)}; pass the device certificate alone "
            "(use load_certificates for bundles)"
        )
    return certs[0]


def load_csr(data: bytes | str) -> x509.CertificateSigningRequest:
    """Read a PKCS#10 certificate signing request in PEM, DER or bare base64 form.

    Args:
        data: The CSR (``-----BEGIN CERTIFICATE REQUEST-----``, DER, or the base64 body of an EST request).

    Returns:
        The CSR.

    Raises:
        CertificateFormatError: The data is not a CSR.
    """
    raw = _as_bytes(data)
    blocks = _pem_blocks(raw)
    if blocks:
        ders = [der for label, der in blocks if label in _CSR_LABELS]
        if not ders:
            labels = ", ".join(sorted({label.decode("ascii") for label, _ in blocks}))
            raise CertificateFormatError(f"the PEM data holds {labels} but no CERTIFICATE REQUEST block")
        der = ders[0]
    elif raw[:1] == b"\x30":
        der = raw
    else:
        decoded = _decode_base64_body(raw)
        if decoded is None:
            raise CertificateFormatError("the data is neither PEM, DER nor base64; expected a PKCS#10 CSR")
        der = decoded
    try:
        csr = x509.load_der_x509_csr(der)
        csr.subject.rfc4514_string()
        csr.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CertificateFormatError(f"the data is not a valid PKCS#10 certificate signing request ({exc})") from exc
    return csr


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def order_chain(certs: Iterable[x509.Certificate]) -> list[x509.Certificate]:
    """Order certificates leaf → root (duplicates dropped).

    The leaf is the one certificate that issued none of the others; each next certificate is the issuer of the
    previous one (name and signature checked).

    Args:
        certs: The certificates in any order, e.g. from a PKCS#7 bundle.

    Returns:
        The certificates from the leaf to the top-most one present.

    Raises:
        ChainError: The set is empty, has more than one leaf, or holds certificates outside the chain.
    """
    unique: list[x509.Certificate] = []
    for cert in certs:
        if cert not in unique:
            unique.append(cert)
    if not unique:
        raise ChainError("no certificates to order; the bundle is empty")
    leaves = [c for c in unique if not any(o is not c and _issued_by(o, c) for o in unique)]
    if len(leaves) != 1:
        names = "; ".join(c.subject.rfc4514_string() for c in leaves) or "none (the certificates form a loop)"
        raise ChainError(f"the certificates do not form one chain: the possible leaves are {names}")
    chain = [leaves[0]]
    remaining = [c for c in unique if c is not leaves[0]]
    while remaining:
        current = chain[-1]
        if _issued_by(current, current):  # self-signed: the top of the chain
            break
        parent = next((c for c in remaining if _issued_by(current, c)), None)
        if parent is None:
            break
        chain.append(parent)
        remaining.remove(parent)
    if remaining:
        extra = "; ".join(c.subject.rfc4514_string() for c in remaining)
        raise ChainError(f"the certificates do not form one chain: {extra} is not on the path from the leaf")
    return chain


def _utc(value: datetime.datetime) -> datetime.datetime:
    return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)


def verify_chain(
    certs: Sequence[x509.Certificate],
    trust_anchors: Sequence[x509.Certificate],
    *,
    now: datetime.datetime | None = None,
) -> list[x509.Certificate]:
    """Check that a chain leads from its leaf to one of the trust anchors, with valid signatures and dates.

    This is the check CiscoRA's curl makes against the IIS certificate, and CAPF against an LSC; it names the
    seed's problems: a missing issuer, a self-signed server certificate, a certificate outside its validity
    period (often a clock/NTP problem). It does not check names, key usages or revocation.

    Args:
        certs: The chain, leaf first or in any order (it is ordered with :func:`order_chain`).
        trust_anchors: The trusted certificates (e.g. the CAPF-trust store): roots, or intermediate CAs. The first
            certificate of the path that is in this list ends it, so the certificates above it (the root the
            chain carries, say) need not be trusted.
        now: The time to check against (default: the current UTC time).

    Returns:
        The verified path from the leaf to the trust anchor (the anchor included, nothing above it).

    Raises:
        MissingIssuerError: An issuer on the path is neither in the chain nor a trust anchor.
        SelfSignedCertificateError: The path ends in a self-signed certificate that is not trusted.
        CertificateValidityError: A certificate on the path is not yet valid or has expired at ``now``.
        ChainSignatureError: A signature on the path does not verify.
        ChainError: The certificates do not form one chain.
    """
    checked_at = _utc(now) if now is not None else datetime.datetime.now(datetime.UTC)
    path = order_chain(certs)
    anchors = list(trust_anchors)
    # the first trusted certificate on the path ends it (trusting an intermediate CA is legitimate)
    trusted = next((index for index, cert in enumerate(path) if cert in anchors), None)
    if trusted is not None:
        del path[trusted + 1 :]
    while True:
        top = path[-1]
        if top in anchors:
            break
        anchor = next((a for a in anchors if top.issuer == a.subject), None)
        if anchor is not None:
            if not _issued_by(top, anchor):
                raise ChainSignatureError(
                    f"the signature of '{top.subject.rfc4514_string()}' does not verify with the trust anchor "
                    f"'{anchor.subject.rfc4514_string()}'; the trust store holds a different certificate under "
                    "that name: upload the CA certificate that really issued it"
                )
            path.append(anchor)
            break
        if top.issuer == top.subject:
            if len(path) == 1:
                raise SelfSignedCertificateError(
                    f"'{top.subject.rfc4514_string()}' is a self-signed certificate and not a trust anchor; "
                    "self-signed server certificates are not supported: issue the certificate from the CA"
                )
            raise MissingIssuerError(
                f"the chain ends in the root '{top.subject.rfc4514_string()}', which is not trusted; upload that "
                "root certificate to the trust store (CAPF-trust and CallManager-trust)",
                issuer=top.subject.rfc4514_string(),
            )
        raise MissingIssuerError(
            f"the issuer '{top.issuer.rfc4514_string()}' of '{top.subject.rfc4514_string()}' is neither in the "
            "chain nor a trust anchor; add that CA certificate to the chain the server sends or to the trust "
            "store (CAPF-trust and CallManager-trust)",
            issuer=top.issuer.rfc4514_string(),
        )
    for cert, issuer in itertools.pairwise(path):
        if not _issued_by(cert, issuer):
            raise ChainSignatureError(
                f"the signature of '{cert.subject.rfc4514_string()}' does not verify with the key of "
                f"'{issuer.subject.rfc4514_string()}'"
            )
    for cert in path:
        not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
        if checked_at < not_before or checked_at > not_after:
            state = "is not yet valid" if checked_at < not_before else "has expired"
            raise CertificateValidityError(
                f"'{cert.subject.rfc4514_string()}' {state}: valid from {not_before.isoformat()} to "
                f"{not_after.isoformat()}, checked at {checked_at.isoformat()}; if the dates look right, the "
                "clock is wrong: check NTP on CUCM and the CA",
                subject=cert.subject.rfc4514_string(),
                not_before=not_before,
                not_after=not_after,
                checked_at=checked_at,
            )
    return path


def write_file_atomic(path: str | os.PathLike[str], data: bytes, *, private: bool = False) -> Path:
    """Write a file atomically: a temporary file in the same folder, flushed, then renamed over the target.

    Readers see either the old or the new content, never a partial file.

    Args:
        path: The file to write.
        data: The content.
        private: ``True`` for secrets such as private keys: the file gets mode 0600 from its creation on.
            Otherwise 0644.

    Returns:
        The path written.

    Raises:
        FileWriteError: The folder is missing or not writable, or the path is a folder (an ``OSError`` too).
    """
    target = Path(path)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise _write_error(target, exc) from exc
    try:
        os.fchmod(fd, 0o600 if private else 0o644)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        if isinstance(exc, OSError):
            raise _write_error(target, exc) from exc
        raise
    return target


def _write_error(target: Path, exc: OSError) -> FileWriteError:
    reason = exc.strerror or type(exc).__name__
    if target.is_dir():
        fix = "pass a file name, not a folder"
    elif not target.parent.is_dir():
        fix = f"create the folder {target.parent} first"
    else:
        fix = f"check that the folder {target.parent} is writable and has free space"
    return FileWriteError(exc.errno or 0, f"cannot write {target}: {reason}; {fix}", str(target))


def write_private_key(path: str | os.PathLike[str], key: PrivateKeyTypes, *, password: bytes | None = None) -> Path:
    """Write a private key as PKCS#8 PEM, atomically and with mode 0600.

    Args:
        path: The key file.
        key: The private key.
        password: Encrypt the key with this password (best available encryption) when given.

    Returns:
        The path written.

    Raises:
        FileWriteError: The file cannot be written.
    """
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    return write_file_atomic(path, pem, private=True)
