"""Trust anchors, host name matching, TLS error diagnosis and credentials (unit level, no network)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from hypothesis import given, settings
from hypothesis import strategies as st

from estclient import (
    AsyncEstClient,
    BasicAuth,
    BootstrapError,
    CertificateValidityError,
    ClientCertificate,
    CsrSpec,
    DigestAuth,
    EstClient,
    EstError,
    HostnameMismatchError,
    ProtocolVersionError,
    RaAuthorizationError,
    SelfSignedServerError,
    ServerTrustError,
    TrustAnchors,
    UntrustedServerError,
)
from estclient._tls_errors import error_from_verification
from estclient._trust import build_ssl_context, host_matches
from tests._support.pki import ID_KP_CMC_RA, TestPki, issue

NOW = dt.datetime.now(dt.UTC)


def cert_with(*names: x509.GeneralName, pki: TestPki) -> x509.Certificate:
    dns = tuple(str(n.value) for n in names if isinstance(n, x509.DNSName))
    ips = tuple(str(n.value) for n in names if isinstance(n, x509.IPAddress))
    return issue("host", issuer=pki.intermediate, dns=dns, ips=ips).cert


@pytest.mark.parametrize(
    ("names", "host", "expected"),
    [
        (("est.example.com",), "est.example.com", True),
        (("est.example.com",), "EST.Example.com.", True),
        (("est.example.com",), "other.example.com", False),
        (("*.example.com",), "est.example.com", True),
        (("*.example.com",), "a.b.example.com", False),
        (("*.example.com",), "example.com", False),
        (("*.com",), "example.com", False),
        (("e*.example.com",), "est.example.com", False),
        (("est.example.com",), "127.0.0.1", False),
    ],
)
def test_dns_host_matching(pki: TestPki, names: tuple[str, ...], host: str, expected: bool) -> None:
    cert = cert_with(*(x509.DNSName(n) for n in names), pki=pki)
    assert host_matches(cert, host) is expected


def test_ip_host_matching(pki: TestPki) -> None:
    cert = cert_with(x509.IPAddress(ipaddress.ip_address("::1")), x509.DNSName("localhost"), pki=pki)
    assert host_matches(cert, "::1")
    assert host_matches(cert, "[::1]")
    assert not host_matches(cert, "127.0.0.1")
    assert host_matches(pki.server.cert, "127.0.0.1")


def test_common_name_is_not_used(pki: TestPki) -> None:
    no_san = issue("est.example.com", issuer=pki.intermediate).cert
    assert not host_matches(no_san, "est.example.com")


@settings(max_examples=200, deadline=None)
@given(host=st.text(max_size=40))
def test_host_matching_never_raises(pki: TestPki, host: str) -> None:
    assert host_matches(pki.server.cert, host) in (True, False)


# -- anchors ---------------------------------------------------------------------------------------------------


def test_anchors_must_exist() -> None:
    with pytest.raises(EstError) as info:
        TrustAnchors()
    assert "TrustAnchors.explicit_anchors" in info.value.hint
    with pytest.raises(BootstrapError):
        TrustAnchors(explicit=(), bootstrap_fingerprints=frozenset({"00" * 32}), system_store=True)


def test_anchors_from_pem_file_and_errors(pki: TestPki) -> None:
    anchors = TrustAnchors.explicit_anchors(pki.full_bundle)
    assert anchors.explicit == (pki.root.cert, pki.intermediate.cert)
    with pytest.raises(EstError) as info:
        TrustAnchors.explicit_anchors(pki.folder / "missing.pem")
    assert "missing.pem" in str(info.value)
    assert pki.root.key_path is not None
    with pytest.raises(EstError):
        TrustAnchors.explicit_anchors(pki.root.key_path)  # a key, not a certificate


def test_kind_of_anchor(pki: TestPki) -> None:
    from cryptography.hazmat.primitives import serialization

    anchors = TrustAnchors(explicit=(pki.root.cert,), implicit=(pki.other_root.cert,))
    assert anchors.kind_of(pki.root.cert.public_bytes(serialization.Encoding.DER)) == "explicit"
    assert anchors.kind_of(pki.other_root.cert.public_bytes(serialization.Encoding.DER)) == "implicit"
    assert anchors.kind_of(None) == "implicit"


def test_authorize_server_rules(pki: TestPki) -> None:
    from cryptography.hazmat.primitives import serialization

    root_der = pki.root.cert.public_bytes(serialization.Encoding.DER)
    explicit = TrustAnchors(explicit=(pki.root.cert,))
    implicit = TrustAnchors(implicit=(pki.root.cert,))
    ra = issue("RA", issuer=pki.intermediate, dns=("ra.test",), eku=(ID_KP_CMC_RA, ExtendedKeyUsageOID.SERVER_AUTH))
    assert explicit.authorize_server("localhost", pki.server.cert, root_der) == "explicit"
    assert implicit.authorize_server("localhost", pki.server.cert, root_der) == "implicit"
    assert explicit.authorize_server("est.test", ra.cert, root_der) == "explicit"
    with pytest.raises(RaAuthorizationError):
        implicit.authorize_server("est.test", ra.cert, root_der)
    with pytest.raises(HostnameMismatchError) as info:
        explicit.authorize_server("est.test", pki.server.cert, root_der)
    assert info.value.names == ("localhost", "127.0.0.1", "::1")


def test_ssl_context_settings(pki: TestPki) -> None:
    ctx = build_ssl_context(TrustAnchors(explicit=(pki.root.cert,)), maximum_version=ssl.TLSVersion.TLSv1_2)
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.maximum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.verify_flags & ssl.VERIFY_X509_PARTIAL_CHAIN
    boot = build_ssl_context(TrustAnchors.bootstrap(fingerprints={"ab" * 32}))
    assert boot.verify_mode == ssl.CERT_NONE


def test_pop_always_refuses_tls13_only() -> None:
    trust = TrustAnchors.system()
    with pytest.raises(ProtocolVersionError):
        EstClient("https://est.test", trust=trust, pop_linking="always", tls_minimum_version=ssl.TLSVersion.TLSv1_3)
    with pytest.raises(ProtocolVersionError):
        EstClient("https://est.test", trust=trust, pop_linking="always", tls_maximum_version=ssl.TLSVersion.TLSv1_3)


@pytest.mark.parametrize("url", ["http://est.test", "https://", "est.test:8443", "ftp://est.test"])
def test_non_https_urls_are_refused(url: str) -> None:
    with pytest.raises(EstError) as info:
        EstClient(url, trust=TrustAnchors.system())
    assert "HTTPS" in info.value.hint


@pytest.mark.parametrize(
    "url",
    [
        "https://alice:s3cret@est.example.com/",
        "http://alice:s3cret@est.example.com/",
        "https://alice:s3cret@est.example.com:8443/.well-known/est?x=1",
    ],
)
@pytest.mark.parametrize("client", [EstClient, AsyncEstClient])
def test_credentials_in_the_url_are_refused_without_repeating_them(url: str, client: type[EstClient]) -> None:
    """user:password@ would be dropped silently (a confusing 401 later) and the error would echo the password."""
    with pytest.raises(EstError) as info:
        client(url, trust=TrustAnchors.system())
    assert "s3cret" not in str(info.value) and "s3cret" not in repr(info.value.args)
    assert "auth=" in info.value.hint or "HTTPS" in info.value.hint


@pytest.mark.parametrize("url", ["https://est.example.com/?label=phones", "https://est.example.com/#x"])
def test_query_and_fragment_are_refused(url: str) -> None:
    with pytest.raises(EstError) as info:
        EstClient(url, trust=TrustAnchors.system())
    assert "label=" in info.value.hint


# -- verification failures ---------------------------------------------------------------------------------------


def test_missing_issuer_is_named(pki: TestPki) -> None:
    err = error_from_verification(20, "unable to get local issuer certificate", "localhost", [pki.server.cert])
    assert isinstance(err, UntrustedServerError)
    assert err.missing_issuer == pki.intermediate.cert.subject.rfc4514_string()


def test_untrusted_root_in_chain(pki: TestPki) -> None:
    chain = [pki.server.cert, pki.intermediate.cert, pki.root.cert]
    err = error_from_verification(19, "self-signed certificate in certificate chain", "localhost", chain)
    assert isinstance(err, UntrustedServerError)
    assert err.missing_issuer == pki.root.cert.subject.rfc4514_string()


def test_self_signed_and_validity_and_unknown(pki: TestPki) -> None:
    assert isinstance(error_from_verification(18, "self-signed", "h", [pki.self_signed.cert]), SelfSignedServerError)
    expired = error_from_verification(10, "certificate has expired", "h", [pki.expired.cert], now=NOW)
    assert isinstance(expired, CertificateValidityError) and expired.state == "expired"
    later = error_from_verification(9, "not yet valid", "h", [pki.not_yet_valid.cert], now=NOW)
    assert isinstance(later, CertificateValidityError) and later.state == "not_yet_valid"
    other = error_from_verification(7, "certificate signature failure", "h", [])
    assert type(other) is ServerTrustError and "signature failure" in str(other)


# -- credentials -------------------------------------------------------------------------------------------------


def test_credentials_never_show_secrets(pki: TestPki) -> None:
    assert "s3cret" not in repr(BasicAuth("alice", "s3cret")) and "alice" in repr(BasicAuth("alice", "s3cret"))
    assert "s3cret" not in repr(DigestAuth("alice", "s3cret"))
    credential = ClientCertificate(pki.client.cert, pki.client.key)
    assert "alice" in repr(credential) and "Key" not in repr(credential)
    spec = repr(CsrSpec(pki.client.key, "CN=x"))
    assert spec.startswith("CsrSpec(subject='CN=x', key=") and "BEGIN" not in spec


def test_client_certificate_loading(pki: TestPki) -> None:
    assert pki.client.chain_path is not None and pki.client.key_path is not None
    credential = ClientCertificate.from_files(pki.client.chain_path, pki.client.key_path)
    assert credential.certificate == pki.client.cert
    assert credential.chain == (pki.intermediate.cert,)
    with pytest.raises(EstError) as info:
        ClientCertificate(pki.client.cert, ec.generate_private_key(ec.SECP256R1()))
    assert info.value.libest_error == "EST_ERR_CLIENT_INVALID_KEY"
    with pytest.raises(EstError):
        ClientCertificate.from_pem(pki.client.cert_pem, b"not a key")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    credential.load_into(ctx)  # the temporary files are gone afterwards; the context keeps the credential
