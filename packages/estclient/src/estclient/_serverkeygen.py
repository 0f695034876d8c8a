"""/serverkeygen responses (RFC 7030 §4.4.2): a multipart/mixed body with the private key and the certificate.

The key part is ``application/pkcs8`` (PKCS#8; PKCS#1 RSA keys are tolerated), or
``application/pkcs7-mime; smime-type=server-generated-key``: a CMS EnvelopedData encrypted to the client
(key transport to its RSA certificate, ephemeral-static ECDH to its EC certificate (RFC 5753), or AES key wrap
with a shared key), containing a SignedData whose content
is the key (an AsymmetricKeyPackage, RFC 5958, or a bare PKCS#8). The certificate part is
``application/pkcs7-mime; smime-type=certs-only``. Parts may come in either order, each base64.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from estclient import _asn1, _cms
from estclient._b64 import decode_body, encode_body
from estclient._errors import MalformedResponseError, ServerKeyGenError
from estclient._pkcs7 import CertsOnly, build_certs_only, parse_certs_only

__all__ = [
    "ServerKeyGenResult",
    "build_serverkeygen_response",
    "parse_multipart",
    "parse_serverkeygen_response",
]

OID_KEY_PACKAGE = "2.16.840.1.101.2.1.2.78.5"  # id-ct-KP-aKeyPackage (RFC 5958)

DecryptKey = _cms.DecryptionKey  # RSA or EC private key, or the shared AES key


@dataclass(frozen=True)
class ServerKeyGenResult:
    """What /serverkeygen returns.

    Attributes:
        private_key: The key the server generated.
        certificate: The certificate for that key.
        certificates: All certificates of the certificate part (the issued one and any chain).
        encrypted: Whether the key came CMS-encrypted (else it was protected by TLS only).
    """

    private_key: PrivateKeyTypes
    certificate: x509.Certificate
    certificates: tuple[x509.Certificate, ...] = ()
    encrypted: bool = False


@dataclass(frozen=True)
class _Part:
    content_type: str
    params: dict[str, str]
    body: bytes


_PARAM = re.compile(r';\s*([A-Za-z0-9!#$%&\'*+.^_`|~-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s]*)')


def _split_content_type(value: str) -> tuple[str, dict[str, str]]:
    media, _, rest = value.partition(";")
    params = {}
    for m in _PARAM.finditer(";" + rest):
        raw = m.group(2)
        if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        params[m.group(1).lower()] = raw
    return media.strip().lower(), params


def parse_multipart(content_type: str, body: bytes) -> list[tuple[str, dict[str, str], bytes]]:
    """Split a multipart/mixed body into parts (preamble and epilogue ignored).

    Args:
        content_type: The Content-Type header (must carry the boundary).
        body: The body.

    Returns:
        ``(media type, parameters, part body)`` per part; media types lower-case, parameter names lower-case.

    Raises:
        MalformedResponseError: Not multipart, no boundary, or no closing delimiter/parts.
    """
    media, params = _split_content_type(content_type)
    if not media.startswith("multipart/"):
        raise MalformedResponseError(
            f"The /serverkeygen response has content type {media or '(none)'!r}, not multipart/mixed.",
            libest_error="EST_ERR_MULTIPART_PARSE",
        )
    boundary = params.get("boundary")
    if not boundary:
        raise MalformedResponseError(
            "The /serverkeygen response's content type has no boundary parameter.",
            libest_error="EST_ERR_MULTIPART_PARSE",
        )
    delimiter = b"--" + boundary.encode("latin-1")
    # Delimiters start a line (RFC 2046 §5.1.1); accept LF as well as CRLF line ends.
    pieces = re.split(rb"(?:^|\r?\n)" + re.escape(delimiter), body)
    parts = []
    for piece in pieces[1:]:
        if piece.startswith(b"--"):
            break
        line_end = piece.find(b"\n")
        if line_end < 0:
            continue
        content = piece[line_end + 1 :]
        header_blob, body_part = _split_headers(content)
        headers = _parse_headers(header_blob)
        ctype, cparams = _split_content_type(headers.get("content-type", "text/plain"))
        parts.append((ctype, cparams, body_part))
    if not parts:
        raise MalformedResponseError(
            f"The multipart body has no part delimited by boundary {boundary!r}.",
            libest_error="EST_ERR_MULTIPART_PARSE",
        )
    return parts


def _split_headers(content: bytes) -> tuple[bytes, bytes]:
    if content.startswith(b"\r\n"):  # no headers at all
        return b"", content[2:]
    if content.startswith(b"\n"):
        return b"", content[1:]
    found = [(i, len(sep)) for sep in (b"\r\n\r\n", b"\n\n") if (i := content.find(sep)) >= 0]
    if not found:
        return content, b""
    i, n = min(found)
    return content[:i], content[i + n :]


def _parse_headers(blob: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    last = None
    for line in blob.decode("latin-1").splitlines():
        if line[:1] in (" ", "\t") and last:
            headers[last] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        if sep:
            last = name.strip().lower()
            headers[last] = value.strip()
    return headers


def _decode_part(body: bytes, what: str) -> bytes:
    if body[:1] == b"\x30":  # binary DER (Content-Transfer-Encoding: binary) is tolerated
        try:
            _asn1.der_tag(body)
            return body
        except _asn1.Asn1Error:
            pass
    return decode_body(body, what=what)


def parse_serverkeygen_response(
    content_type: str,
    body: bytes,
    *,
    decrypt_key: DecryptKey | None = None,
) -> ServerKeyGenResult:
    """Parse a /serverkeygen response into the private key and its certificate.

    Args:
        content_type: The response's Content-Type (multipart/mixed with a boundary).
        body: The response body.
        decrypt_key: For an encrypted key part: the (RSA or EC) private key of the certificate named by the
            AsymmetricDecryptKeyIdentifier, or the symmetric (AES) key named by the DecryptKeyIdentifier.

    Returns:
        The key and certificate.

    Raises:
        MalformedResponseError: The multipart structure, a part's base64 or the certificate part is bad, or a part
            is missing.
        ServerKeyGenError: The key cannot be parsed, is encrypted but no/the wrong ``decrypt_key`` was given, or
            does not match the certificate.
    """
    key_part: _Part | None = None
    cert_part: _Part | None = None
    for ctype, params, part_body in parse_multipart(content_type, body):
        smime = params.get("smime-type", "").lower()
        part = _Part(ctype, params, part_body)
        if ctype in ("application/pkcs8", "application/pkcs1", "application/x-pkcs8"):
            key_part = part
        elif ctype in ("application/pkcs7-mime", "application/x-pkcs7-mime"):
            if smime == "" and _is_enveloped(part.body):  # a key part without its smime-type parameter
                smime = "server-generated-key"
            if smime == "server-generated-key":
                key_part = part
            elif smime == "certs-only" or (smime == "" and cert_part is None):
                cert_part = part
    if key_part is None:
        raise MalformedResponseError(
            "The /serverkeygen response has no private key part (application/pkcs8 or "
            "application/pkcs7-mime; smime-type=server-generated-key).",
            libest_error="EST_ERR_MULTIPART_PARSE",
        )
    if cert_part is None:
        raise MalformedResponseError(
            "The /serverkeygen response has no certificate part (application/pkcs7-mime; smime-type=certs-only).",
            libest_error="EST_ERR_MULTIPART_PARSE",
        )
    certs = parse_certs_only(_decode_part(cert_part.body, "certificate part"), what="/serverkeygen certificate part")
    encrypted = key_part.content_type.endswith("pkcs7-mime")
    key_der = _decode_part(key_part.body, "private key part")
    if encrypted:
        key_der = _unwrap_encrypted_key(key_der, decrypt_key)
    private_key = _load_key(key_der)
    return ServerKeyGenResult(private_key, _matching_certificate(certs, private_key), certs.certificates, encrypted)


def _is_enveloped(body: bytes) -> bool:
    try:
        content_type, _ = _asn1.content_info_decode(_decode_part(body, "part"))
    except (_asn1.Asn1Error, MalformedResponseError):
        return False
    return content_type == _asn1.OID_ENVELOPED_DATA


def _unwrap_encrypted_key(der: bytes, decrypt_key: DecryptKey | None) -> bytes:
    if decrypt_key is None:
        raise ServerKeyGenError(
            "The server sent the private key CMS-encrypted, but no decryption key was given.",
            hint="Pass decrypt_key= (the private key of the certificate whose key id was sent in the request, or "
            "the shared AES key).",
        )
    try:
        content_type, content = _cms.decrypt_enveloped(der, decrypt_key)
    except _asn1.Asn1Error as exc:
        raise ServerKeyGenError(f"The encrypted key part is not a CMS EnvelopedData ({exc}).") from None
    except _cms.CmsError as exc:
        raise ServerKeyGenError(f"The server-generated key cannot be decrypted: {exc}.") from None
    if content_type == _asn1.OID_SIGNED_DATA:
        try:
            signed = _asn1.signed_data_decode(_asn1.content_info_encode(content_type, content))
            _cms.verify_signers(signed)
        except (_asn1.Asn1Error, _cms.CmsError, ValueError) as exc:
            raise ServerKeyGenError(f"The signed key package inside the envelope is not valid ({exc}).") from None
        if signed.content is None:
            raise ServerKeyGenError("The signed key package inside the envelope has no content.")
        content_type, content = signed.content_type, signed.content
    if content_type == OID_KEY_PACKAGE:
        try:
            keys = _asn1.key_package_decode(content)
        except _asn1.Asn1Error as exc:
            raise ServerKeyGenError(f"The AsymmetricKeyPackage does not parse ({exc}).") from None
        if not keys:
            raise ServerKeyGenError("The AsymmetricKeyPackage holds no key.")
        return keys[0]
    return content


def _load_key(der: bytes) -> PrivateKeyTypes:
    try:
        return serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ServerKeyGenError(
            f"The server-generated private key does not parse as PKCS#8 or PKCS#1 ({exc}).",
            libest_error="EST_ERR_BAD_KEY",
        ) from None


def _matching_certificate(certs: CertsOnly, private_key: PrivateKeyTypes) -> x509.Certificate:
    if not certs.certificates:
        raise MalformedResponseError(
            "The /serverkeygen certificate part holds no certificate.", libest_error="EST_ERR_NO_CERTIFICATE"
        )
    public = private_key.public_key()
    try:
        match = certs.certificate_for_key(public)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        match = None
    if match is None:
        raise ServerKeyGenError(
            "The certificate returned by /serverkeygen is not for the private key returned with it.",
            hint="Report it to the EST server's operator; the response mixes up keys.",
            libest_error="EST_ERR_VALIDATION",
        )
    return match


# --- the server side --------------------------------------------------------------------------------------------


def build_serverkeygen_response(
    private_key: PrivateKeyTypes,
    certificate: x509.Certificate,
    *,
    encrypt_to: x509.Certificate | None = None,
    symmetric_key: tuple[bytes, bytes] | None = None,
    chain: Sequence[x509.Certificate] = (),
    signer_cert: x509.Certificate | None = None,
    signer_key: _cms.SigningKey | None = None,
    boundary: str | None = None,
) -> tuple[str, bytes]:
    """Build a /serverkeygen response (server side).

    Args:
        private_key: The key generated for the client.
        certificate: Its certificate.
        encrypt_to: Encrypt the key to this certificate (the client's, named by AsymmetricDecryptKeyIdentifier):
            RSA key transport (RSAES-OAEP) or, for an EC certificate, ECDH key agreement.
        symmetric_key: ``(key id, AES key)``: encrypt with this shared key (DecryptKeyIdentifier) instead.
        chain: Further certificates for the certificate part.
        signer_cert: Certificate that signs the key package inside the envelope (unsigned when None).
        signer_key: Its private key.
        boundary: The multipart boundary (random by default).

    Returns:
        ``(content type with boundary, body)``.

    Raises:
        ServerKeyGenError: The key cannot be encrypted to ``encrypt_to`` (neither RSA nor EC).
    """
    key_der = private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    if encrypt_to is not None or symmetric_key is not None:
        package = _asn1.key_package_encode([key_der])
        signed = _cms.sign_content(OID_KEY_PACKAGE, package, signer_cert=signer_cert, signer_key=signer_key)
        _, signed_content = _asn1.content_info_decode(signed)
        try:
            enveloped = _cms.encrypt_enveloped(
                _asn1.OID_SIGNED_DATA, signed_content, recipient=encrypt_to, kek=symmetric_key
            )
        except _cms.CmsError as exc:
            raise ServerKeyGenError(
                f"The generated key cannot be encrypted for the client: {exc}.",
                hint="Ask for the key with an RSA or EC certificate's key identifier, or a shared AES key.",
            ) from None
        key_type, key_body = "application/pkcs7-mime; smime-type=server-generated-key", enveloped
    else:
        key_type, key_body = "application/pkcs8", key_der
    certs_der = build_certs_only([certificate, *chain])
    boundary = boundary or "est-" + os.urandom(12).hex()
    parts = [
        (key_type, key_body),
        ("application/pkcs7-mime; smime-type=certs-only", certs_der),
    ]
    out = b""
    for ctype, der in parts:
        out += (
            f"--{boundary}\r\nContent-Type: {ctype}\r\nContent-Transfer-Encoding: base64\r\n\r\n".encode()
            + encode_body(der)
        )
    out += f"--{boundary}--\r\n".encode()
    return f"multipart/mixed; boundary={boundary}", out
