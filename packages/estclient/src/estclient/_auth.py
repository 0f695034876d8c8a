"""Client authentication for EST (RFC 7030 §3.2.3, §3.3.2): TLS client certificates, HTTP Basic and Digest.

A TLS client certificate is the method RFC 7030 recommends; to re-enroll, present the certificate being renewed.
HTTP Basic and Digest come from httpx; the subclasses here only make sure a password never shows up in a
``repr`` (and so never in a log line or a traceback).
"""

from __future__ import annotations

import os
import ssl
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from estclient._errors import EstError

__all__ = ["BasicAuth", "ClientCertificate", "ClientKey", "DigestAuth"]

#: Private key types a TLS client certificate can use.
ClientKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey


class BasicAuth(httpx.BasicAuth):
    """HTTP Basic authentication (RFC 7617); the password never appears in ``repr``.

    httpx sends it with every request. EST servers must be authenticated first: the client sends nothing
    before the TLS server checks of RFC 7030 §3.6 passed.

    Args:
        username: The user name.
        password: The password.
    """

    def __init__(self, username: str | bytes, password: str | bytes) -> None:
        super().__init__(username, password)
        self._username_text = username.decode("utf-8", "replace") if isinstance(username, bytes) else username

    def __repr__(self) -> str:
        """Name the scheme and user only."""
        return f"BasicAuth(username={self._username_text!r}, password=***)"


class DigestAuth(httpx.DigestAuth):
    """HTTP Digest authentication (RFC 7616, what libest's servers offer); the password never appears in ``repr``.

    Args:
        username: The user name.
        password: The password.
    """

    def __init__(self, username: str | bytes, password: str | bytes) -> None:
        super().__init__(username, password)
        self._username_text = username.decode("utf-8", "replace") if isinstance(username, bytes) else username

    def __repr__(self) -> str:
        """Name the scheme and user only."""
        return f"DigestAuth(username={self._username_text!r}, password=***)"


def _key_error(what: str) -> EstError:
    return EstError(
        f"Cannot load the TLS client key: {what}.",
        hint="Give the PEM private key that belongs to the client certificate (and its password if encrypted).",
        libest_error="EST_ERR_CLIENT_INVALID_KEY",
    )


@dataclass(frozen=True, repr=False)
class ClientCertificate:
    """A TLS client certificate with its private key (and the intermediate CA certificates to send with it).

    For ``/simplereenroll`` RFC 7030 §3.3.2 asks the client to authenticate with the certificate being renewed.

    Args:
        certificate: The client certificate.
        private_key: Its private key.
        chain: Intermediate CA certificates to send after it (issuer first), if the server needs them.

    Attributes:
        certificate: The client certificate.
        private_key: Its private key (never shown by ``repr``).
        chain: The intermediates sent with it.
    """

    certificate: x509.Certificate
    private_key: ClientKey
    chain: tuple[x509.Certificate, ...] = ()

    def __post_init__(self) -> None:
        """Check that the key belongs to the certificate."""
        object.__setattr__(self, "chain", tuple(self.chain))
        mine = self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        theirs = self.certificate.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        if mine != theirs:
            raise _key_error(
                f"the private key does not belong to the certificate {self.certificate.subject.rfc4514_string()!r}"
            )

    def __repr__(self) -> str:
        """Show the certificate's subject, never the key."""
        return f"ClientCertificate(subject={self.certificate.subject.rfc4514_string()!r})"

    @classmethod
    def from_pem(cls, certificate_pem: bytes, key_pem: bytes, *, password: bytes | None = None) -> ClientCertificate:
        """Load from PEM: the certificate (optionally followed by its intermediates) and the private key.

        Args:
            certificate_pem: PEM with the client certificate first, then any intermediates.
            key_pem: The PEM private key (PKCS#8, PKCS#1 or SEC1).
            password: The key's password, if it is encrypted.

        Returns:
            The credential.

        Raises:
            EstError: When the certificate or key cannot be loaded, or they do not belong together.
        """
        try:
            certs: Sequence[x509.Certificate] = x509.load_pem_x509_certificates(certificate_pem)
        except ValueError:
            certs = ()
        if not certs:
            raise _key_error("no PEM certificate found in the certificate data")
        try:
            key = serialization.load_pem_private_key(key_pem, password)
        except (ValueError, TypeError) as exc:
            reason = "wrong or missing password" if "password" in str(exc).lower() else "not a PEM private key"
            raise _key_error(reason) from None
        if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey)) and not (
            isinstance(key, ed448.Ed448PrivateKey)
        ):
            raise _key_error(f"unsupported key type {type(key).__name__}")
        return cls(certs[0], key, tuple(certs[1:]))

    @classmethod
    def from_files(
        cls, certificate_file: str | Path, key_file: str | Path, *, password: bytes | None = None
    ) -> ClientCertificate:
        """Load from PEM files (see :meth:`from_pem`).

        Args:
            certificate_file: PEM file with the certificate (and any intermediates after it).
            key_file: PEM file with the private key.
            password: The key's password, if it is encrypted.

        Returns:
            The credential.

        Raises:
            EstError: When a file cannot be read or does not hold what is expected.
        """
        try:
            cert_pem = Path(certificate_file).read_bytes()
            key_pem = Path(key_file).read_bytes()
        except OSError as exc:
            raise _key_error(f"cannot read {exc.filename!r}: {exc.strerror}") from None
        return cls.from_pem(cert_pem, key_pem, password=password)

    def load_into(self, context: ssl.SSLContext) -> None:
        """Install the certificate and key into an ``ssl.SSLContext``.

        The ``ssl`` module reads credentials from files only, so they are written to a private temporary
        directory (mode 0700, key file 0600) and removed right after loading.

        Args:
            context: A client-side context.
        """
        key_pem = self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        cert_pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (self.certificate, *self.chain))
        with tempfile.TemporaryDirectory(prefix="estclient-") as folder:
            cert_path = os.path.join(folder, "cert.pem")
            key_path = os.path.join(folder, "key.pem")
            with open(cert_path, "wb") as fh:
                fh.write(cert_pem)
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(key_pem)
            context.load_cert_chain(cert_path, key_path)
