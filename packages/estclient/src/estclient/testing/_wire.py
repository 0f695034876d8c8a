"""The server's use of the package's wire core: CSR attributes, server-generated keys and CMC messages."""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import AttributeOID, ObjectIdentifier

from estclient._csrattrs import CsrAttrOid, CsrAttrs, encode_csrattrs
from estclient.testing._backend import EnrollmentRejected

__all__ = [
    "encode_csr_attributes",
    "key_recipient",
    "with_challenge_password",
]

#: id-aa-asymmDecryptKeyID (RFC 7030 §4.4.1.2): the client asks for the key encrypted to its own key.
OID_ASYMM_DECRYPT_KEY_ID = ObjectIdentifier("1.2.840.113549.1.9.16.2.54")
#: id-aa-decryptKeyID (RFC 4108): the client asks for the key encrypted with a shared symmetric key.
OID_DECRYPT_KEY_ID = ObjectIdentifier("1.2.840.113549.1.9.16.2.37")


def encode_csr_attributes(attrs: CsrAttrs) -> bytes:
    """DER of the CSR attributes announced by ``/csrattrs``."""
    return encode_csrattrs(attrs)


def with_challenge_password(attrs: CsrAttrs | None) -> CsrAttrs:
    """Add the challengePassword OID (the server wants PoP linking, RFC 7030 §3.5) unless it is there."""
    attrs = attrs or CsrAttrs()
    if AttributeOID.CHALLENGE_PASSWORD in attrs.oids:
        return attrs
    return CsrAttrs((CsrAttrOid(AttributeOID.CHALLENGE_PASSWORD), *attrs.items))


def _attribute(csr: x509.CertificateSigningRequest, oid: ObjectIdentifier) -> bytes | None:
    try:
        return csr.attributes.get_attribute_for_oid(oid).value
    except x509.AttributeNotFound:
        return None


def key_recipient(
    csr: x509.CertificateSigningRequest, client_certificate: x509.Certificate | None
) -> x509.Certificate | None:
    """Find who a server-generated key is to be encrypted to (RFC 7030 §4.4.1).

    Returns:
        The TLS client certificate whose subjectKeyIdentifier the CSR's AsymmetricDecryptKeyIdentifier names, or
        None when the CSR asks for no encryption (the key is then protected by TLS only).

    Raises:
        EnrollmentRejected: The CSR asks for encryption with a key the server does not have (RFC 7030 §4.4.1:
            the request MUST then fail), or for symmetric-key encryption, which this server does not offer.
    """
    if _attribute(csr, OID_DECRYPT_KEY_ID) is not None:
        raise EnrollmentRejected(
            "The CSR asks for the generated key encrypted with a symmetric key (DecryptKeyIdentifier), which this "
            "server does not hold; ask for AsymmetricDecryptKeyIdentifier encryption or for an unencrypted key."
        )
    wanted = _attribute(csr, OID_ASYMM_DECRYPT_KEY_ID)
    if wanted is None:
        return None
    if client_certificate is not None:
        try:
            ski = client_certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        except x509.ExtensionNotFound:
            ski = x509.SubjectKeyIdentifier.from_public_key(client_certificate.public_key()).digest
        if ski == wanted:
            return client_certificate
    raise EnrollmentRejected(
        f"The CSR asks for the generated key encrypted to key identifier {wanted.hex()}, but the TLS client "
        "certificate has another subjectKeyIdentifier (or none was presented); connect with the certificate whose "
        "key should decrypt it (RFC 7030 §4.4.1.2)."
    )
