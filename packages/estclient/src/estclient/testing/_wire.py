"""The server's use of the package's wire core: CSR attributes, server-generated keys and CMC messages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import AttributeOID

from estclient._cmc import CmcRequest, build_pki_response, parse_pki_data
from estclient._csr import csr_decrypt_key_ids
from estclient._csrattrs import CsrAttrOid, CsrAttrs, encode_csrattrs
from estclient._errors import ServerKeyGenError
from estclient._serverkeygen import build_serverkeygen_response
from estclient.testing._backend import EnrollmentRejected, IssuedWithKey

__all__ = [
    "KeyProtection",
    "cmc_failure",
    "cmc_request",
    "cmc_success",
    "serverkeygen_response",
    "encode_csr_attributes",
    "key_protection",
    "with_challenge_password",
]


def encode_csr_attributes(attrs: CsrAttrs) -> bytes:
    """DER of the CSR attributes announced by ``/csrattrs``."""
    return encode_csrattrs(attrs)


def with_challenge_password(attrs: CsrAttrs | None) -> CsrAttrs:
    """Add the challengePassword OID (the server wants PoP linking, RFC 7030 §3.5) unless it is there."""
    attrs = attrs or CsrAttrs()
    if AttributeOID.CHALLENGE_PASSWORD in attrs.oids:
        return attrs
    return CsrAttrs((CsrAttrOid(AttributeOID.CHALLENGE_PASSWORD), *attrs.items))


@dataclass(frozen=True)
class KeyProtection:
    """How a server-generated key is protected beyond TLS: encrypted to a certificate or with a shared AES key."""

    recipient: x509.Certificate | None = None
    symmetric_key: tuple[bytes, bytes] | None = None

    @property
    def encrypted(self) -> bool:
        """True when the key is CMS-encrypted."""
        return self.recipient is not None or self.symmetric_key is not None


def key_protection(
    csr: x509.CertificateSigningRequest,
    client_certificate: x509.Certificate | None,
    symmetric_keys: Mapping[bytes, bytes],
) -> KeyProtection:
    """Find how a server-generated key is to be encrypted (RFC 7030 §4.4.1).

    Args:
        csr: The request; its DecryptKeyIdentifier or AsymmetricDecryptKeyIdentifier attribute asks for encryption.
        client_certificate: The TLS client certificate (the asymmetric recipient, when its key identifier matches).
        symmetric_keys: The server's shared AES keys by key identifier.

    Returns:
        The protection (none when the CSR asks for none: the key is then protected by TLS only).

    Raises:
        EnrollmentRejected: The CSR asks for encryption with a key the server does not have (RFC 7030 §4.4.1:
            the request MUST then fail).
    """
    key_id, wanted = csr_decrypt_key_ids(csr)
    if key_id is not None:
        if key_id in symmetric_keys:
            return KeyProtection(symmetric_key=(key_id, symmetric_keys[key_id]))
        raise EnrollmentRejected(
            f"The CSR asks for the generated key encrypted with the shared key {key_id.hex()} (DecryptKeyIdentifier), "
            "which this server does not hold; use a key identifier the server was given, or ask for no encryption."
        )
    if wanted is None:
        return KeyProtection()
    if client_certificate is not None:
        try:
            ski = client_certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        except x509.ExtensionNotFound:
            ski = x509.SubjectKeyIdentifier.from_public_key(client_certificate.public_key()).digest
        if ski == wanted:
            return KeyProtection(recipient=client_certificate)
    raise EnrollmentRejected(
        f"The CSR asks for the generated key encrypted to key identifier {wanted.hex()}, but the TLS client "
        "certificate has another subjectKeyIdentifier (or none was presented); connect with the certificate whose "
        "key should decrypt it (RFC 7030 §4.4.1.2)."
    )


def serverkeygen_response(result: IssuedWithKey, protection: KeyProtection) -> tuple[str, bytes]:
    """Build the multipart/mixed ``/serverkeygen`` response: (content type with boundary, body).

    Raises:
        EnrollmentRejected: The key cannot be encrypted to the recipient (e.g. its key is not RSA).
    """
    try:
        return build_serverkeygen_response(
            result.private_key,
            result.certificate,
            encrypt_to=protection.recipient,
            symmetric_key=protection.symmetric_key,
            chain=result.chain,
        )
    except ServerKeyGenError as exc:
        raise EnrollmentRejected(f"{exc.message} {exc.hint}") from None


def cmc_request(der: bytes) -> CmcRequest:
    """Parse a CMC Full PKI Request (raises MalformedRequestError for bad bytes)."""
    return parse_pki_data(der)


def cmc_success(certs: Sequence[x509.Certificate], body_list: Sequence[int]) -> bytes:
    """A CMC Full PKI Response with status success carrying ``certs``."""
    return build_pki_response(certs, status="success", body_list=body_list)


def cmc_failure(reason: str, body_list: Sequence[int]) -> bytes:
    """A CMC Full PKI Response with status failed (badRequest) and ``reason`` as the status string."""
    return build_pki_response([], status="failed", fail_info="badRequest", status_string=reason, body_list=body_list)
