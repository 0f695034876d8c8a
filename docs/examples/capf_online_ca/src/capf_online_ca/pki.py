"""The lab's own PKI: the AD CS issuing CA, and the TLS identities of IIS, the RA and CAPF.

A real deployment gets these from its enterprise PKI; the lab makes them on start so that one command on a fresh
machine runs the whole chain. The broken IIS certificates that reproduce the seed's common problems are made
here too.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from capf_common import write_file_atomic, write_private_key

_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Identity:
    """A certificate, its key and the PEM files they are written to."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    cert_path: Path
    key_path: Path
    chain_path: Path  # the certificate followed by its issuers (not the root), as a TLS server presents it


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "test"),
            x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "lab"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _issue(
    cn: str,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    dns: tuple[str, ...] = (),
    ips: tuple[str, ...] = (),
    eku: tuple[x509.ObjectIdentifier, ...] = (),
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    now = dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    issuer_cert, issuer_key = issuer if issuer else (None, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer_cert.subject if issuer_cert else _name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - _DAY)
        .not_valid_after(not_after or now + 730 * _DAY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer_cert is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    return builder.sign(issuer_key, hashes.SHA256()), key


#: The IIS certificate variants, by the lab fault that needs them.
IIS_VARIANTS = ("good", "self-signed", "hostname-mismatch", "not-yet-valid")


@dataclass(frozen=True)
class LabPki:
    """The lab's certificates, written under one folder."""

    folder: Path
    root: Identity  # "Lab Root CA": the CA AD CS chains to
    issuing_ca: Identity  # "Lab Issuing CA": the AD CS CA that signs the LSCs
    iis: dict[str, Identity]  # IIS TLS certificate per variant (see IIS_VARIANTS)
    ra: Identity  # the RA's (EST server's) TLS certificate
    capf_server: Identity  # CAPF's TLS server certificate (port 3804)
    capf_client: Identity  # CAPF's TLS client certificate towards the RA (EST)

    @property
    def trust_bundle(self) -> Path:
        """PEM with the root only: what CAPF, the RA and the phones trust."""
        return self.folder / "lab-root.pem"

    @property
    def ca_chain_bundle(self) -> Path:
        """PEM with the issuing CA then the root."""
        return self.folder / "lab-ca-chain.pem"

    @classmethod
    def create(cls, folder: Path, host: str = "localhost") -> LabPki:
        """Make the PKI for services on ``host`` (and 127.0.0.1) and write it into ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        now = dt.datetime.now(dt.UTC)
        root = _issue("Lab Root CA", None, ca=True)
        issuing = _issue("Lab Issuing CA", root, ca=True)
        server_eku = (ExtendedKeyUsageOID.SERVER_AUTH,)

        def server(
            signer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
            not_before: dt.datetime | None = None,
            not_after: dt.datetime | None = None,
        ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
            return _issue(
                host,
                signer,
                eku=server_eku,
                dns=(host,),
                ips=("127.0.0.1",),
                not_before=not_before,
                not_after=not_after,
            )

        def save(stem: str, pair: tuple[x509.Certificate, ec.EllipticCurvePrivateKey], chain: bool = True) -> Identity:
            cert, key = pair
            cert_path, key_path, chain_path = (
                folder / f"{stem}.pem",
                folder / f"{stem}.key",
                folder / f"{stem}-chain.pem",
            )
            write_file_atomic(cert_path, _pem(cert))
            write_private_key(key_path, key)
            write_file_atomic(chain_path, _pem(cert) + (_pem(issuing[0]) if chain else b""))
            return Identity(cert, key, cert_path, key_path, chain_path)

        root_id = save("lab-root", root, chain=False)
        issuing_id = save("lab-issuing-ca", issuing, chain=False)
        write_file_atomic(folder / "lab-ca-chain.pem", _pem(issuing[0]) + _pem(root[0]))
        iis = {
            "good": save("iis", server(issuing)),
            "self-signed": save("iis-self-signed", server(None), chain=False),
            "hostname-mismatch": save("iis-wrong-name", _issue("lab-dc", issuing, eku=server_eku, dns=("lab-dc",))),
            "not-yet-valid": save(
                "iis-not-yet-valid",
                server(issuing, not_before=now + 30 * _DAY, not_after=now + 400 * _DAY),
            ),
        }
        ra = save("ra", server(issuing))
        capf_server = save("capf", server(issuing))
        capf_client = save("capf-est-client", _issue("CAPF-lab", issuing, eku=(ExtendedKeyUsageOID.CLIENT_AUTH,)))
        return cls(folder, root_id, issuing_id, iis, ra, capf_server, capf_client)
