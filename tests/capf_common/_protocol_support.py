"""Shared helpers for the CAPF protocol tests: a small phone PKI and a pump that moves bytes between the roles."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from capf_common import CapfServerConnection, ConnectionClosed, Event, NeedData, PhoneConnection
from tests._support.pki import Credential, issue, new_key

DEVICE = "SEP001122334455"


@dataclass(frozen=True)
class PhonePki:
    """CAPF's CA (issues LSCs), a stand-in Cisco manufacturing CA (MIC, SUDI), and the phone's credentials."""

    capf_ca: Credential
    mic_ca: Credential
    other_ca: Credential
    lsc_rsa: Credential
    lsc_ec: Credential
    lsc_expired: Credential
    lsc_other_device: Credential
    mic_rsa: Credential
    mic_ec: Credential
    sudi_rsa: Credential
    sudi_ec: Credential
    rsa_key: rsa.RSAPrivateKey
    """A spare RSA key (the "generated" key in install tests)."""


@functools.cache
def phone_pki() -> PhonePki:
    """Build the PKI once per test process (RSA key generation is the slow part)."""
    capf_ca = issue("CAPF-test", issuer=None, ca=True)
    mic_ca = issue("Cisco Manufacturing CA (test)", issuer=None, ca=True)
    other_ca = issue("Some other CA", issuer=None, ca=True)
    now = dt.datetime.now(dt.UTC)
    rsa_key = new_key("rsa")
    assert isinstance(rsa_key, rsa.RSAPrivateKey)
    return PhonePki(
        capf_ca=capf_ca,
        mic_ca=mic_ca,
        other_ca=other_ca,
        lsc_rsa=issue(DEVICE, issuer=capf_ca, key_kind="rsa", uris=(DEVICE,)),
        lsc_ec=issue(f"CP-8865-{DEVICE}", issuer=capf_ca),
        lsc_expired=issue(
            DEVICE, issuer=capf_ca, not_before=now - dt.timedelta(days=30), not_after=now - dt.timedelta(days=1)
        ),
        lsc_other_device=issue("SEP00AABBCCDDEE", issuer=capf_ca),
        mic_rsa=issue(f"CP-8865-{DEVICE}", issuer=mic_ca, key_kind="rsa"),
        mic_ec=issue(f"CP-8865-{DEVICE}", issuer=mic_ca),
        sudi_rsa=issue("PID:CP-8865 SN:FCH00000001", issuer=mic_ca, key_kind="rsa"),
        sudi_ec=issue("PID:CP-8865 SN:FCH00000002", issuer=mic_ca),
        rsa_key=rsa_key,
    )


def deliver(data: bytes, to: CapfServerConnection | PhoneConnection, *, chunk: int = 0) -> list[Event]:
    """Feed ``data`` to a connection (in ``chunk``-byte pieces when set) and return every event it yields."""
    events: list[Event] = []
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)] if chunk else [data]
    for piece in pieces:
        to.receive_data(piece)
        while not isinstance(event := to.next_event(), NeedData):
            events.append(event)
            if isinstance(event, ConnectionClosed):  # repeats forever, like h11's
                break
    return events


def make_csr(device_name: str, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> x509.CertificateSigningRequest:
    """The CSR a phone makes for its new key: CN = device name."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, device_name)])
    return x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())


def issue_lsc(ca: Credential, device_name: str, public_key: object) -> x509.Certificate:
    """What the CA behind CAPF does with the phone's key: a one-year LSC, CN = device name."""
    assert isinstance(public_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey)
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, device_name)]))
        .issuer_name(ca.cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(ca.key, hashes.SHA256())
    )
