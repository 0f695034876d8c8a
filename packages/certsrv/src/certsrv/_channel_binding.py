"""TLS channel binding (RFC 5929 ``tls-server-end-point``), shared by the client auth and the emulator's acceptor.

The binding is the hash of the server's certificate (DER), made with the hash of the certificate's signature
algorithm, except that MD5 and SHA-1 are replaced by SHA-256 (RFC 5929 §4.1). A signature without a separate
hash (Ed25519, Ed448) also uses SHA-256, as Windows does. In GSS-API and NTLM it travels as the application data
``b"tls-server-end-point:" + hash`` of a channel-bindings structure; IIS Extended Protection compares it with
the certificate it presented, so a TLS-terminating proxy in between makes it fail.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from spnego.channel_bindings import GssChannelBindings

from certsrv._errors import AuthenticationError

PREFIX = b"tls-server-end-point:"


def tls_server_end_point_hash(cert_der: bytes) -> bytes:
    """The RFC 5929 hash of a DER certificate (SHA-256 for MD5/SHA-1 or hash-less signatures)."""
    try:
        cert = x509.load_der_x509_certificate(cert_der)
        algorithm = cert.signature_hash_algorithm
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise AuthenticationError(
            f"cannot compute the channel binding: the server certificate does not parse ({exc})",
            hint="check the server's TLS certificate, or turn channel binding off if the server does not need it",
        ) from exc
    if algorithm is None or isinstance(algorithm, hashes.MD5 | hashes.SHA1):
        algorithm = hashes.SHA256()
    digest = hashes.Hash(algorithm)
    digest.update(cert_der)
    return digest.finalize()


def channel_bindings(cert_der: bytes) -> GssChannelBindings:
    """The GSS channel-bindings structure pyspnego takes, for a server certificate."""
    return GssChannelBindings(application_data=PREFIX + tls_server_end_point_hash(cert_der))
