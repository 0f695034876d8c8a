"""A test PKI made at test time with cryptography.

``TestPki.create(folder)`` makes a root CA, an intermediate CA signed by it, a TLS server certificate for
``localhost`` / 127.0.0.1 / ::1 (issued by the intermediate), client certificates, an EST RA certificate
(extended key usage id-kp-cmcRA), and the broken variants the seed's "common problems" need:

* ``server_missing_intermediate``: the server presents its leaf alone, the client trusts only the root;
* ``self_signed``: a self-signed server certificate for localhost;
* ``wrong_name``: a certificate whose names are ``wrong-host.example.test`` only;
* ``not_yet_valid`` and ``expired``: a localhost certificate outside its validity period.

Every credential is also written as PEM files into the folder (keys mode 0600) so servers and command-line
tools can load them. :func:`issue` makes any other certificate a test needs.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

#: id-kp-cmcRA (RFC 6402): marks an EST server certificate as an RA (RFC 7030 §3.6.1).
ID_KP_CMC_RA = ObjectIdentifier("1.3.6.1.5.5.7.3.28")

_NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
_DAY = dt.timedelta(days=1)


def new_key(kind: str = "ec") -> PrivateKey:
    """Make a private key: ``"ec"`` (P-256, fast) or ``"rsa"`` (2048 bits)."""
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str, org: str = "capf-online-ca tests") -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


@dataclass(frozen=True)
class Credential:
    """A certificate with its private key and the chain above it (issuer first, root excluded)."""

    cert: x509.Certificate
    key: PrivateKey
    chain: tuple[x509.Certificate, ...] = ()
    cert_path: Path | None = None
    key_path: Path | None = None
    chain_path: Path | None = None  # leaf followed by ``chain``, as a TLS server presents it

    @property
    def cert_pem(self) -> bytes:
        """The certificate in PEM."""
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM."""
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def write(self, folder: Path, stem: str) -> Credential:
        """Write ``stem.pem``, ``stem.key`` (0600) and ``stem-chain.pem`` and return a copy that knows them."""
        folder.mkdir(parents=True, exist_ok=True)
        cert_path, key_path, chain_path = (
            folder / f"{stem}.pem",
            folder / f"{stem}.key",
            folder / f"{stem}-chain.pem",
        )
        cert_path.write_bytes(self.cert_pem)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(self.key_pem)
        chain_path.write_bytes(self.cert_pem + b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.chain))
        return Credential(self.cert, self.key, self.chain, cert_path, key_path, chain_path)


def issue(
    subject: str | x509.Name,
    *,
    issuer: Credential | None,
    key: PrivateKey | None = None,
    ca: bool = False,
    path_length: int | None = None,
    dns: tuple[str, ...] = (),
    ips: tuple[str, ...] = (),
    uris: tuple[str, ...] = (),
    eku: tuple[ObjectIdentifier, ...] = (),
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    key_kind: str = "ec",
) -> Credential:
    """Issue a certificate; ``issuer=None`` makes it self-signed.

    The chain of the result is the issuer's certificate followed by the issuer's chain, without a self-signed
    root.
    """
    key = key or new_key(key_kind)
    name = subject if isinstance(subject, x509.Name) else _name(subject)
    signer_key: CertificateIssuerPrivateKeyTypes = issuer.key if issuer else key
    issuer_name = issuer.cert.subject if issuer else name
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or _NOW - _DAY)
        .not_valid_after(not_after or _NOW + 365 * _DAY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
        )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=isinstance(key, rsa.RSAPrivateKey),
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    sans += [x509.UniformResourceIdentifier(u) for u in uris]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    cert = builder.sign(signer_key, hashes.SHA256())
    chain: tuple[x509.Certificate, ...] = ()
    if issuer is not None:
        chain = tuple(c for c in (issuer.cert, *issuer.chain) if c.issuer != c.subject)
    return Credential(cert, key, chain)


LOCALHOST_NAMES: tuple[str, ...] = ("localhost",)
LOCALHOST_IPS: tuple[str, ...] = ("127.0.0.1", "::1")
SERVER_EKU = (ExtendedKeyUsageOID.SERVER_AUTH,)
CLIENT_EKU = (ExtendedKeyUsageOID.CLIENT_AUTH,)


@dataclass
class TestPki:
    """Everything a test needs to run TLS peers that trust each other, and the broken variants."""

    __test__ = False  # not a pytest test class

    folder: Path
    root: Credential
    intermediate: Credential
    server: Credential
    client: Credential
    client_rsa: Credential
    ra: Credential
    self_signed: Credential
    wrong_name: Credential
    not_yet_valid: Credential
    expired: Credential
    other_root: Credential
    extra: dict[str, Credential] = field(default_factory=dict)

    @property
    def ca_bundle(self) -> Path:
        """PEM file with the root only: the trust anchor every test client uses."""
        return self.folder / "root.pem"

    @property
    def full_bundle(self) -> Path:
        """PEM file with the root and the intermediate."""
        return self.folder / "ca-bundle.pem"

    @classmethod
    def create(cls, folder: Path) -> TestPki:
        """Make the PKI and write it into ``folder``."""
        root = issue("Test Root CA", issuer=None, ca=True, path_length=1).write(folder, "root")
        intermediate = issue("Test Issuing CA", issuer=root, ca=True, path_length=0).write(folder, "intermediate")
        (folder / "ca-bundle.pem").write_bytes(root.cert_pem + intermediate.cert_pem)
        server = issue("localhost", issuer=intermediate, dns=LOCALHOST_NAMES, ips=LOCALHOST_IPS, eku=SERVER_EKU).write(
            folder, "server"
        )
        client = issue("alice", issuer=intermediate, eku=CLIENT_EKU).write(folder, "client")
        client_rsa = issue("bob", issuer=intermediate, eku=CLIENT_EKU, key_kind="rsa").write(folder, "client-rsa")
        ra = issue(
            "Test EST RA", issuer=intermediate, dns=LOCALHOST_NAMES, ips=LOCALHOST_IPS,
            eku=(ID_KP_CMC_RA, ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH),
        ).write(folder, "ra")  # fmt: skip
        self_signed = issue("localhost", issuer=None, dns=LOCALHOST_NAMES, ips=LOCALHOST_IPS, eku=SERVER_EKU).write(
            folder, "self-signed"
        )
        wrong_name = issue(
            "wrong-host.example.test", issuer=intermediate, dns=("wrong-host.example.test",), eku=SERVER_EKU
        ).write(folder, "wrong-name")
        not_yet_valid = issue(
            "localhost", issuer=intermediate, dns=LOCALHOST_NAMES, ips=LOCALHOST_IPS, eku=SERVER_EKU,
            not_before=_NOW + 30 * _DAY, not_after=_NOW + 395 * _DAY,
        ).write(folder, "not-yet-valid")  # fmt: skip
        expired = issue(
            "localhost", issuer=intermediate, dns=LOCALHOST_NAMES, ips=LOCALHOST_IPS, eku=SERVER_EKU,
            not_before=_NOW - 400 * _DAY, not_after=_NOW - 35 * _DAY,
        ).write(folder, "expired")  # fmt: skip
        other_root = issue("Unrelated Root CA", issuer=None, ca=True).write(folder, "other-root")
        return cls(
            folder, root, intermediate, server, client, client_rsa, ra,
            self_signed, wrong_name, not_yet_valid, expired, other_root,
        )  # fmt: skip

    @staticmethod
    def key_mode(cred: Credential) -> int:
        """The permission bits of the credential's key file."""
        assert cred.key_path is not None
        return cred.key_path.stat().st_mode & 0o777

    # -- ssl contexts -------------------------------------------------------------------------------------

    def server_context(
        self,
        cred: Credential | None = None,
        *,
        send_chain: bool = True,
        client_auth: ssl.VerifyMode = ssl.CERT_NONE,
        max_version: ssl.TLSVersion | None = None,
    ) -> ssl.SSLContext:
        """A server-side context presenting ``cred`` (default: the localhost server certificate).

        ``send_chain=False`` presents the leaf without its intermediate (the "missing issuer" problem).
        ``client_auth`` asks for client certificates, trusting this PKI's root.
        """
        cred = cred or self.server
        assert cred.cert_path
        assert cred.key_path
        assert cred.chain_path
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cred.chain_path if send_chain else cred.cert_path, cred.key_path)
        if max_version is not None:
            ctx.maximum_version = max_version
        ctx.verify_mode = client_auth
        if client_auth != ssl.CERT_NONE:
            ctx.load_verify_locations(cafile=str(self.full_bundle))
        return ctx

    def client_context(self, cred: Credential | None = None) -> ssl.SSLContext:
        """A client-side context trusting the root (and presenting ``cred`` when given)."""
        ctx = ssl.create_default_context(cafile=str(self.ca_bundle))
        if cred is not None:
            assert cred.chain_path
            assert cred.key_path
            ctx.load_cert_chain(cred.chain_path, cred.key_path)
        return ctx
