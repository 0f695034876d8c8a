"""Helpers for the EST server tests: CSRs and a minimal raw httpx client (no estclient client code involved)."""

from __future__ import annotations

import base64
import ssl
from collections.abc import Sequence
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import AttributeOID, NameOID

from estclient.testing import EstServer

PREFIX = "/.well-known/est"


def make_csr(
    cn: str = "device-1",
    *,
    key: ec.EllipticCurvePrivateKey | None = None,
    dns: Sequence[str] = (),
    challenge_password: bytes | None = None,
    attributes: Sequence[tuple[x509.ObjectIdentifier, bytes, int]] = (),
    subject: x509.Name | None = None,
) -> tuple[ec.EllipticCurvePrivateKey, x509.CertificateSigningRequest]:
    key = key or ec.generate_private_key(ec.SECP256R1())
    name = subject if subject is not None else x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    builder = x509.CertificateSigningRequestBuilder().subject_name(name)
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False)
    if challenge_password is not None:
        builder = builder.add_attribute(AttributeOID.CHALLENGE_PASSWORD, challenge_password)
    for oid, value, tag in attributes:
        builder = builder.add_attribute(oid, value, _tag=x509.name._ASN1Type(tag))
    return key, builder.sign(key, hashes.SHA256())


def csr_body(csr: x509.CertificateSigningRequest) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding

    return base64.encodebytes(csr.public_bytes(Encoding.DER))


def tls_context(
    server: EstServer, cert: Path | None = None, key: Path | None = None, *, max_tls12: bool = False
) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    if cert is not None:
        ctx.load_cert_chain(cert, key)
    if max_tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def raw_client(server: EstServer, **kwargs: object) -> httpx.Client:
    return httpx.Client(base_url=server.url + PREFIX, verify=tls_context(server, **kwargs), timeout=10)  # type: ignore[arg-type]


def post_csr(
    client: httpx.Client,
    op: str,
    csr: x509.CertificateSigningRequest,
    *,
    label: str | None = None,
    auth: httpx.Auth | tuple[str, str] | None = None,
) -> httpx.Response:
    path = f"/{label}/{op}" if label else f"/{op}"
    return client.post(
        path,
        content=csr_body(csr),
        headers={"Content-Type": "application/pkcs10"},
        auth=auth or httpx.USE_CLIENT_DEFAULT,
    )


def certs_from(response: httpx.Response) -> list[x509.Certificate]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/pkcs7-mime")
    return pkcs7.load_der_pkcs7_certificates(base64.b64decode(response.content))


def tls_unique(response: httpx.Response) -> bytes:
    ssl_object = response.extensions["network_stream"].get_extra_info("ssl_object")
    value = ssl_object.get_channel_binding("tls-unique")
    assert isinstance(value, bytes)
    return value


def leaf_from(response: httpx.Response) -> x509.Certificate:
    """The end-entity certificate of a certs-only response (the order of a SET OF is not kept)."""
    leaves = [
        c for c in certs_from(response) if not c.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    ]
    assert len(leaves) == 1, leaves
    return leaves[0]
