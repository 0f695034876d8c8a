"""Signature checks on certificates and requests, including the SHA-1 signatures of older PKIs.

cryptography's ``verify_directly_issued_by`` and ``is_signature_valid`` refuse SHA-1 signatures; EST deployments
(and RFC 7030's own examples) still carry them. These checks verify the signature itself, whatever its hash: they
answer "did this key sign this", not "is this algorithm acceptable" (policy stays with the caller).
"""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

__all__ = ["certificate_signed_by", "csr_signature_valid"]


def _verify(
    key: CertificatePublicKeyTypes,
    signature: bytes,
    data: bytes,
    hash_alg: hashes.HashAlgorithm | None,
    params: object,
) -> bool:
    try:
        if isinstance(key, rsa.RSAPublicKey) and hash_alg is not None:
            pad = params if isinstance(params, padding.PSS | padding.PKCS1v15) else padding.PKCS1v15()
            key.verify(signature, data, pad, hash_alg)
        elif isinstance(key, ec.EllipticCurvePublicKey) and hash_alg is not None:
            key.verify(signature, data, ec.ECDSA(hash_alg))
        elif isinstance(key, dsa.DSAPublicKey) and hash_alg is not None:
            key.verify(signature, data, hash_alg)
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(signature, data)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def certificate_signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether ``issuer``'s key made ``cert``'s signature and ``cert`` names ``issuer`` as its issuer."""
    if cert.issuer != issuer.subject:
        return False
    try:
        hash_alg = cert.signature_hash_algorithm
        params = cert.signature_algorithm_parameters
        key = issuer.public_key()
    except (UnsupportedAlgorithm, ValueError):
        return False
    return _verify(key, cert.signature, cert.tbs_certificate_bytes, hash_alg, params)


def csr_signature_valid(csr: x509.CertificateSigningRequest) -> bool:
    """Whether a request's self-signature verifies with its own public key (any hash, SHA-1 included)."""
    try:
        hash_alg = csr.signature_hash_algorithm
        params = csr.signature_algorithm_parameters
        key = csr.public_key()
    except (UnsupportedAlgorithm, ValueError):
        return False
    return _verify(key, csr.signature, csr.tbs_certrequest_bytes, hash_alg, params)
