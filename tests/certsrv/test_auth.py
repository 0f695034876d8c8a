"""certsrv's httpx auth (NTLM, Kerberos, Negotiate, Basic) against the emulator's pyspnego acceptor over real TLS.

Every handshake is real: pyspnego on both sides, the MIT KDC fixture for Kerberos, channel binding computed from
the certificate the server presents on the connection, Extended Protection off / accept / required.
"""

from __future__ import annotations

import base64
import datetime as dt
import gc
import hashlib
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import spnego
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st
from spnego.channel_bindings import GssChannelBindings

import certsrv._auth as auth_module
from certsrv._auth import AUTH_PHASE_EXTENSION, BasicAuth, KerberosAuth, NegotiateAuth, NtlmAuth, parse_username
from certsrv._channel_binding import tls_server_end_point_hash
from certsrv._errors import (
    AuthenticationError,
    ConfigurationError,
    InsecureAuthenticationError,
    KerberosUnavailableError,
)
from certsrv.testing._spnego_acceptor import SpnegoAcceptor, ntlm_channel_binding
from tests._support.kerberos import Kdc
from tests._support.ntlm import NtlmUserFile
from tests._support.pki import TestPki
from tests._support.tls_http import Request, Response, RunningServer, serve_tls

DOMAIN_USER = "EXAMPLE\\alice"
UPN = "alice@EXAMPLE.TEST"
PASSWORD = "Passw0rd!"
USERS = [f"{DOMAIN_USER}:{PASSWORD}", f"{UPN}:{PASSWORD}", "EXAMPLE\\bob:B0b-s3cret!"]
MODES = ["off", "accept", "required"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@contextmanager
def serve_acceptor(
    pki: TestPki, acceptor: SpnegoAcceptor, *, delay_handshake: float = 0.0, binding_cert: bytes | None = None
) -> Iterator[RunningServer]:
    """The TLS test server authenticating every request with ``acceptor`` (state per TCP connection).

    ``binding_cert`` makes the acceptor bind to another certificate than the one TLS presents, as IIS behind a
    TLS-terminating proxy would.
    """
    der = binding_cert or pki.server.cert.public_bytes(Encoding.DER)

    def handler(req: Request) -> Response:
        if "auth" not in req.connection_state:
            req.connection_state["auth"] = acceptor.new_connection()
        if delay_handshake and req.headers.get("authorization"):
            time.sleep(delay_handshake)
        result = req.connection_state["auth"].authenticate(req.headers.get("authorization"), der)
        if not result.authenticated:
            return Response(401, list(result.headers), b"401 - Unauthorized: Access is denied")
        body = f"{result.user}|{result.mechanism}|{req.method}|{len(req.body)}".encode()
        return Response(200, list(result.headers), body)

    with serve_tls(handler, pki.server_context()) as server:
        yield server


def _client(pki: TestPki, auth: httpx.Auth) -> httpx.Client:
    return httpx.Client(verify=pki.client_context(), auth=auth)


# -- NTLM ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("binding", [True, False])
def test_ntlm_extended_protection(pki: TestPki, mode: str, binding: bool) -> None:
    with SpnegoAcceptor(users=USERS, extended_protection=mode) as acceptor, serve_acceptor(pki, acceptor) as srv:  # type: ignore[arg-type]
        auth = NtlmAuth(DOMAIN_USER, PASSWORD, channel_binding=binding)
        with _client(pki, auth) as client:
            if mode == "required" and not binding:
                with pytest.raises(AuthenticationError) as info:
                    client.get(srv.url + "/certsrv/")
                assert info.value.status_code == 401
                assert "channel binding is off" in str(info.value)
                assert acceptor.logins == 0 and acceptor.rejections == 1
            else:
                response = client.get(srv.url + "/certsrv/")
                assert response.status_code == 200
                assert response.text == "EXAMPLE\\alice|ntlm|GET|0"
                assert acceptor.logins == 1


@pytest.mark.parametrize("name", [DOMAIN_USER, UPN, "example\\ALICE"])
def test_ntlm_user_name_forms(pki: TestPki, name: str) -> None:
    with (
        SpnegoAcceptor(users=USERS, extended_protection="required") as acceptor,
        serve_acceptor(pki, acceptor) as srv,
        _client(pki, NtlmAuth(name, PASSWORD)) as client,
    ):
        response = client.get(srv.url + "/certsrv/")
    assert response.status_code == 200
    assert response.text.split("|")[0].lower() == name.lower()


def test_ntlm_with_the_user_file_fixture(pki: TestPki, ntlm_user_file: NtlmUserFile) -> None:
    with SpnegoAcceptor(extended_protection="accept") as acceptor, serve_acceptor(pki, acceptor) as srv:
        auth = NtlmAuth(f"{ntlm_user_file.domain}\\{ntlm_user_file.other_user}", ntlm_user_file.other_password)
        with _client(pki, auth) as client:
            assert client.get(srv.url + "/").text == "EXAMPLE\\bob|ntlm|GET|0"


@pytest.mark.parametrize("name", [DOMAIN_USER, UPN])
def test_ntlm_wrong_password(pki: TestPki, name: str) -> None:
    with (
        SpnegoAcceptor(users=USERS) as acceptor,
        serve_acceptor(pki, acceptor) as srv,
        _client(pki, NtlmAuth(name, "wrong-password")) as client,
        pytest.raises(AuthenticationError) as info,
    ):
        client.get(srv.url + "/certsrv/")
    assert info.value.status_code == 401
    assert info.value.scheme == "NTLM"
    assert "answered 401 to the credentials" in str(info.value)
    assert "Fix:" in str(info.value) and "wrong-password" not in str(info.value)
    assert acceptor.logins == 0


def test_ntlm_unknown_domain_is_refused(pki: TestPki) -> None:
    with (
        SpnegoAcceptor(users=USERS) as acceptor,
        serve_acceptor(pki, acceptor) as srv,
        _client(pki, NtlmAuth("OTHER\\alice", PASSWORD)) as client,
        pytest.raises(AuthenticationError),
    ):
        client.get(srv.url + "/")


def test_ntlm_connection_reuse_and_post_replay(pki: TestPki) -> None:
    with SpnegoAcceptor(users=USERS, extended_protection="required") as acceptor, serve_acceptor(pki, acceptor) as srv:
        auth = NtlmAuth(DOMAIN_USER, PASSWORD)
        with _client(pki, auth) as client:
            first = client.post(srv.url + "/certsrv/certfnsh.asp", content=b"CertRequest=" + b"A" * 3000)
            later = [client.get(srv.url + f"/certsrv/certnew.cer?ReqID={i}") for i in range(5)]
    assert first.text == "EXAMPLE\\alice|ntlm|POST|3012"
    assert all(r.status_code == 200 for r in later)
    assert auth.handshakes == 1
    assert acceptor.logins == 1 and acceptor.legs == 2
    # 401 + NEGOTIATE + AUTHENTICATE (the POST's body each time), then one request per GET
    assert len(srv.requests) == 3 + 5
    assert [len(r.body) for r in srv.requests[:3]] == [3012, 3012, 3012]
    assert all("authorization" not in r.headers for r in srv.requests[3:])


def test_ntlm_new_connection_authenticates_again(pki: TestPki) -> None:
    with SpnegoAcceptor(users=USERS) as acceptor, serve_acceptor(pki, acceptor) as srv:
        auth = NtlmAuth(DOMAIN_USER, PASSWORD)
        for _ in range(2):
            with _client(pki, auth) as client:
                assert client.get(srv.url + "/").status_code == 200
    assert auth.handshakes == 2 and acceptor.logins == 2


def test_ntlm_under_negotiate_only(pki: TestPki) -> None:
    with (
        SpnegoAcceptor(users=USERS, schemes=("Negotiate",), extended_protection="required") as acceptor,
        serve_acceptor(pki, acceptor) as srv,
        _client(pki, NtlmAuth(DOMAIN_USER, PASSWORD)) as client,
    ):
        response = client.get(srv.url + "/")
    assert response.text == "EXAMPLE\\alice|ntlm|GET|0"


def test_negotiate_falls_back_to_ntlm_scheme(pki: TestPki) -> None:
    with (
        SpnegoAcceptor(users=USERS, schemes=("NTLM",), extended_protection="required") as acceptor,
        serve_acceptor(pki, acceptor) as srv,
        _client(pki, NegotiateAuth(DOMAIN_USER, PASSWORD)) as client,
    ):
        assert client.get(srv.url + "/").text == "EXAMPLE\\alice|ntlm|GET|0"


def test_password_from_environment(pki: TestPki, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CERTSRV_PASSWORD", PASSWORD)
    with (
        SpnegoAcceptor(users=USERS) as acceptor,
        serve_acceptor(pki, acceptor) as srv,
        _client(pki, NtlmAuth(DOMAIN_USER)) as client,
    ):
        assert client.get(srv.url + "/").status_code == 200


def test_missing_password_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CERTSRV_PASSWORD", raising=False)
    with pytest.raises(ConfigurationError, match="CERTSRV_PASSWORD"):
        NtlmAuth(DOMAIN_USER)
    with pytest.raises(ConfigurationError, match="CERTSRV_PASSWORD"):
        BasicAuth(DOMAIN_USER)


def test_repr_hides_the_password() -> None:
    assert PASSWORD not in repr(NtlmAuth(DOMAIN_USER, PASSWORD))
    assert PASSWORD not in repr(BasicAuth(DOMAIN_USER, PASSWORD))


def test_scheme_not_offered(pki: TestPki) -> None:
    def basic_only(req: Request) -> Response:
        return Response(401, [("WWW-Authenticate", 'Basic realm="certsrv"')], b"")

    with (
        serve_tls(basic_only, pki.server_context()) as srv,
        _client(pki, NtlmAuth(DOMAIN_USER, PASSWORD)) as client,
        pytest.raises(AuthenticationError, match="offering basic") as info,
    ):
        client.get(srv.url + "/")
    assert "Windows Authentication" in str(info.value)


def test_handshake_legs_are_marked_for_timeouts(pki: TestPki) -> None:
    with SpnegoAcceptor(users=USERS) as acceptor, serve_acceptor(pki, acceptor, delay_handshake=2) as srv:
        auth = NtlmAuth(DOMAIN_USER, PASSWORD, handshake_timeout=0.3)
        with _client(pki, auth) as client, pytest.raises(httpx.ReadTimeout) as info:
            client.get(srv.url + "/", timeout=30)
    assert info.value.request.extensions[AUTH_PHASE_EXTENSION] == "handshake"
    assert info.value.request.extensions["timeout"]["read"] == 0.3


def test_unauthenticated_send_is_marked_challenge(pki: TestPki) -> None:
    with (
        SpnegoAcceptor(users=USERS) as acceptor,
        serve_acceptor(pki, acceptor) as srv,
        _client(pki, NtlmAuth(DOMAIN_USER, PASSWORD)) as client,
    ):
        response = client.get(srv.url + "/")
    assert response.history[0].request.extensions[AUTH_PHASE_EXTENSION] in ("challenge", "handshake")
    assert response.request.extensions[AUTH_PHASE_EXTENSION] == "handshake"


# -- Kerberos ------------------------------------------------------------------------------------------------


@pytest.mark.kerberos
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("binding", [True, False])
def test_kerberos_extended_protection(pki: TestPki, kdc: Kdc, mode: str, binding: bool) -> None:
    acceptor = SpnegoAcceptor(keytab=kdc.keytab, extended_protection=mode)  # type: ignore[arg-type]
    with (
        serve_acceptor(pki, acceptor) as srv,
        _client(pki, KerberosAuth(kdc.principal, kdc.password, channel_binding=binding)) as client,
    ):
        if mode == "required" and not binding:
            with pytest.raises(AuthenticationError) as info:
                client.get(srv.url + "/certsrv/")
            assert info.value.status_code == 401
            assert acceptor.logins == 0 and acceptor.rejections == 1
        else:
            response = client.get(srv.url + "/certsrv/")
            assert response.status_code == 200
            assert response.text == f"{kdc.principal}|kerberos|GET|0"
            # mutual authentication: the AP-REP came back on the 200 and the client verified it
            assert response.headers["www-authenticate"].startswith("Negotiate ")


@pytest.mark.kerberos
def test_kerberos_connection_reuse(pki: TestPki, kdc: Kdc) -> None:
    acceptor = SpnegoAcceptor(keytab=kdc.keytab, extended_protection="required")
    auth = KerberosAuth(kdc.principal, kdc.password)
    with serve_acceptor(pki, acceptor) as srv, _client(pki, auth) as client:
        first = client.post(srv.url + "/certsrv/certfnsh.asp", content=b"x" * 100)
        later = [client.get(srv.url + "/certsrv/certnew.cer") for _ in range(4)]
    assert first.text == f"{kdc.principal}|kerberos|POST|100"
    assert all(r.status_code == 200 for r in later)
    assert auth.handshakes == 1 and acceptor.logins == 1 and acceptor.legs == 1
    assert len(srv.requests) == 2 + 4


@pytest.mark.kerberos
@pytest.mark.parametrize("name", ["alice@example.test", "EXAMPLE.TEST\\alice", "alice"])
def test_kerberos_user_name_forms(pki: TestPki, kdc: Kdc, name: str) -> None:
    acceptor = SpnegoAcceptor(keytab=kdc.keytab)
    with serve_acceptor(pki, acceptor) as srv, _client(pki, KerberosAuth(name, kdc.password)) as client:
        assert client.get(srv.url + "/").text == f"{kdc.principal}|kerberos|GET|0"


@pytest.mark.kerberos
def test_kerberos_wrong_password(pki: TestPki, kdc: Kdc) -> None:
    acceptor = SpnegoAcceptor(keytab=kdc.keytab)
    with (
        serve_acceptor(pki, acceptor) as srv,
        _client(pki, KerberosAuth(kdc.principal, "wrong")) as client,
        pytest.raises(AuthenticationError, match="no token could be made") as info,
    ):
        client.get(srv.url + "/")
    assert info.value.scheme == "Negotiate"
    assert acceptor.legs == 0


@pytest.mark.kerberos
def test_kerberos_from_credential_cache(pki: TestPki, kdc: Kdc) -> None:
    subprocess.run(["kinit", kdc.principal], input=kdc.password + "\n", text=True, check=True, capture_output=True)
    acceptor = SpnegoAcceptor(keytab=kdc.keytab, extended_protection="required")
    with serve_acceptor(pki, acceptor) as srv, _client(pki, KerberosAuth()) as client:
        assert client.get(srv.url + "/").text == f"{kdc.principal}|kerberos|GET|0"


@pytest.mark.kerberos
def test_negotiate_picks_kerberos(pki: TestPki, kdc: Kdc) -> None:
    acceptor = SpnegoAcceptor(users=USERS, keytab=kdc.keytab, extended_protection="required")
    with serve_acceptor(pki, acceptor) as srv, _client(pki, NegotiateAuth(UPN, PASSWORD)) as client:
        assert client.get(srv.url + "/").text == f"{kdc.principal}|kerberos|GET|0"


@pytest.mark.kerberos
def test_negotiate_down_level_name_uses_ntlm(pki: TestPki, kdc: Kdc) -> None:
    acceptor = SpnegoAcceptor(users=USERS, keytab=kdc.keytab, extended_protection="required")
    with serve_acceptor(pki, acceptor) as srv, _client(pki, NegotiateAuth(DOMAIN_USER, PASSWORD)) as client:
        assert client.get(srv.url + "/").text == "EXAMPLE\\alice|ntlm|GET|0"


@pytest.mark.kerberos
def test_kerberos_only_server_refuses_ntlm_in_negotiate(pki: TestPki, kdc: Kdc) -> None:
    # An acceptor with no NTLM users at all: an NTLM token under Negotiate cannot log in.
    empty = SpnegoAcceptor(users={"EXAMPLE\\nobody": "x"}, keytab=kdc.keytab, schemes=("Negotiate",))
    with (
        serve_acceptor(pki, empty) as srv,
        _client(pki, NtlmAuth(DOMAIN_USER, PASSWORD)) as client,
        pytest.raises(AuthenticationError),
    ):
        client.get(srv.url + "/")


def test_kerberos_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth_module, "kerberos_available", lambda: False)
    with pytest.raises(KerberosUnavailableError, match=r'pip install "adcs-certsrv\[kerberos\]"'):
        KerberosAuth("alice@EXAMPLE.TEST", PASSWORD)


@pytest.mark.kerberos
@pytest.mark.parametrize("method", ["ntlm", "kerberos"])
@pytest.mark.parametrize("mode", MODES)
def test_binding_to_another_certificate_is_refused(pki: TestPki, kdc: Kdc, method: str, mode: str) -> None:
    other = pki.wrong_name.cert.public_bytes(Encoding.DER)
    acceptor = SpnegoAcceptor(users=USERS, keytab=kdc.keytab, extended_protection=mode)  # type: ignore[arg-type]
    auth: httpx.Auth = NtlmAuth(DOMAIN_USER, PASSWORD) if method == "ntlm" else KerberosAuth(UPN, PASSWORD)
    with serve_acceptor(pki, acceptor, binding_cert=other) as srv, _client(pki, auth) as client:
        if mode == "off":
            assert client.get(srv.url + "/").status_code == 200
        else:
            with pytest.raises(AuthenticationError, match="TLS-inspecting proxy"):
                client.get(srv.url + "/")
            assert acceptor.logins == 0


# -- async -------------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_async_ntlm_with_reuse(pki: TestPki) -> None:
    with SpnegoAcceptor(users=USERS, extended_protection="required") as acceptor, serve_acceptor(pki, acceptor) as srv:
        auth = NtlmAuth(DOMAIN_USER, PASSWORD)
        async with httpx.AsyncClient(verify=pki.client_context(), auth=auth) as client:
            first = await client.post(srv.url + "/certsrv/certfnsh.asp", content=b"csr")
            second = await client.get(srv.url + "/certsrv/certnew.cer")
    assert first.text == "EXAMPLE\\alice|ntlm|POST|3"
    assert second.status_code == 200
    assert auth.handshakes == 1 and acceptor.logins == 1


@pytest.mark.anyio
async def test_async_ntlm_required_without_binding_fails(pki: TestPki) -> None:
    with SpnegoAcceptor(users=USERS, extended_protection="required") as acceptor, serve_acceptor(pki, acceptor) as srv:
        auth = NtlmAuth(DOMAIN_USER, PASSWORD, channel_binding=False)
        async with httpx.AsyncClient(verify=pki.client_context(), auth=auth) as client:
            with pytest.raises(AuthenticationError):
                await client.get(srv.url + "/")


@pytest.mark.kerberos
@pytest.mark.anyio
async def test_async_kerberos(pki: TestPki, kdc: Kdc) -> None:
    acceptor = SpnegoAcceptor(keytab=kdc.keytab, extended_protection="required")
    auth = KerberosAuth(kdc.principal, kdc.password)
    with serve_acceptor(pki, acceptor) as srv:
        async with httpx.AsyncClient(verify=pki.client_context(), auth=auth) as client:
            first = await client.get(srv.url + "/")
            second = await client.get(srv.url + "/")
    assert first.text == second.text == f"{kdc.principal}|kerberos|GET|0"
    assert auth.handshakes == 1


class _ThreadRecordingKerberos(KerberosAuth):
    def __init__(self, principal: str, password: str) -> None:
        super().__init__(principal, password)
        self.threads: list[int] = []

    def _new_context(self, protocol: str, host: str, bindings: GssChannelBindings | None) -> Any:
        self.threads.append(threading.get_ident())
        return super()._new_context(protocol, host, bindings)


@pytest.mark.kerberos
@pytest.mark.anyio
async def test_async_kerberos_talks_to_the_kdc_off_the_event_loop(pki: TestPki, kdc: Kdc) -> None:
    acceptor = SpnegoAcceptor(keytab=kdc.keytab)
    auth = _ThreadRecordingKerberos(kdc.principal, kdc.password)
    with serve_acceptor(pki, acceptor) as srv:
        async with httpx.AsyncClient(verify=pki.client_context(), auth=auth) as client:
            assert (await client.get(srv.url + "/")).status_code == 200
    assert auth.threads and threading.get_ident() not in auth.threads


# -- Basic -------------------------------------------------------------------------------------------------


def test_basic_refused_over_http() -> None:
    with (
        httpx.Client(auth=BasicAuth(DOMAIN_USER, PASSWORD)) as client,
        pytest.raises(InsecureAuthenticationError, match="https://"),
    ):
        client.get("http://127.0.0.1:9/certsrv/")  # refused before any byte is sent


def test_basic_over_https(pki: TestPki) -> None:
    expected = "Basic " + base64.b64encode(f"{DOMAIN_USER}:{PASSWORD}".encode()).decode()

    def handler(req: Request) -> Response:
        if req.headers.get("authorization") == expected:
            return Response(200, [], b"ok")
        return Response(401, [("WWW-Authenticate", 'Basic realm="x"')], b"")

    with (
        serve_tls(handler, pki.server_context()) as srv,
        _client(pki, BasicAuth(DOMAIN_USER, PASSWORD)) as client,
    ):
        assert client.get(srv.url + "/").text == "ok"
        with _client(pki, BasicAuth(DOMAIN_USER, "wrong")) as client, pytest.raises(AuthenticationError) as info:
            client.get(srv.url + "/")
    assert info.value.status_code == 401 and info.value.scheme == "Basic"


# -- pieces --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "user", "domain", "form", "kerberos"),
    [
        ("EXAMPLE\\alice", "alice", "EXAMPLE", "down-level", "alice@EXAMPLE"),
        ("alice@example.test", "alice", "example.test", "upn", "alice@EXAMPLE.TEST"),
        ("alice", "alice", None, "bare", "alice"),
    ],
)
def test_parse_username(name: str, user: str, domain: str | None, form: str, kerberos: str) -> None:
    parsed = parse_username(name)
    assert (parsed.user, parsed.domain, parsed.form) == (user, domain, form)
    assert parsed.for_kerberos == kerberos
    assert parsed.for_ntlm == name


@pytest.mark.parametrize("name", ["", "EXAMPLE\\", "@REALM", "alice@", "A\\b\\c"])
def test_parse_username_rejects(name: str) -> None:
    with pytest.raises(ConfigurationError, match="DOMAIN"):
        parse_username(name)


def _self_signed(algorithm: hashes.SHA256 | hashes.SHA384 | hashes.SHA512) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cb")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, algorithm)
    )
    return cert.public_bytes(Encoding.DER)


def _sha1_labelled() -> bytes:
    """An RSA certificate relabelled sha1WithRSAEncryption (cryptography no longer signs with SHA-1).

    sha256WithRSAEncryption and sha1WithRSAEncryption OIDs have the same length, so the DER stays well formed; the
    signature no longer verifies, which the binding does not care about.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cb")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    der = cert.public_bytes(Encoding.DER)
    relabelled = der.replace(b"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0b", b"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x05")
    assert isinstance(x509.load_der_x509_certificate(relabelled).signature_hash_algorithm, hashes.SHA1)
    return relabelled


@pytest.mark.parametrize(
    ("make", "hashed_with"),
    [
        (_sha1_labelled, hashes.SHA256()),
        (lambda: _self_signed(hashes.SHA256()), hashes.SHA256()),
        (lambda: _self_signed(hashes.SHA384()), hashes.SHA384()),
        (lambda: _self_signed(hashes.SHA512()), hashes.SHA512()),
    ],
)
def test_tls_server_end_point_hash(make: Callable[[], bytes], hashed_with: hashes.HashAlgorithm) -> None:
    der = make()
    digest = hashes.Hash(hashed_with)
    digest.update(der)
    assert tls_server_end_point_hash(der) == digest.finalize()


def test_binding_of_garbage_certificate_is_typed() -> None:
    with pytest.raises(AuthenticationError, match="does not parse"):
        tls_server_end_point_hash(b"not a certificate")


def test_acceptor_challenges_and_rejects_garbage(pki: TestPki) -> None:
    der = pki.server.cert.public_bytes(Encoding.DER)
    with SpnegoAcceptor(users=USERS) as acceptor:
        conn = acceptor.new_connection()
        bare = conn.authenticate(None, der)
        assert bare.status == 401 and bare.headers == (("WWW-Authenticate", "Negotiate"), ("WWW-Authenticate", "NTLM"))
        assert bare.reason is None
        assert conn.authenticate("Basic YTpi", der).reason == "scheme 'Basic' is not offered"
        assert conn.authenticate("NTLM !!!", der).reason == "the token is not base64"
        garbage = conn.authenticate("NTLM " + base64.b64encode(b"NTLMSSP\x00\x03\x00\x00\x00junk").decode(), der)
        assert garbage.status == 401 and garbage.reason
        assert conn.user is None


def test_acceptor_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="off, accept, required"):
        SpnegoAcceptor(extended_protection="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="DOMAIN"):
        SpnegoAcceptor(users=["alice:pw"])
    with pytest.raises(ConfigurationError, match="NAME:PASSWORD"):
        SpnegoAcceptor(users=["EXAMPLE\\alice"])


def test_ntlm_channel_binding_reads_real_tokens(ntlm_user_file: NtlmUserFile) -> None:
    bindings = GssChannelBindings(application_data=b"tls-server-end-point:" + b"\x01" * 32)
    for sent in (bindings, None):
        client = spnego.client(DOMAIN_USER, PASSWORD, protocol="ntlm", channel_bindings=sent)
        server = spnego.server(protocol="ntlm")
        negotiate = client.step()
        assert negotiate is not None and ntlm_channel_binding(negotiate) is None
        challenge = server.step(negotiate)
        authenticate = client.step(challenge)
        assert authenticate is not None
        expected = hashlib.md5(bindings.pack()).digest() if sent else None
        assert ntlm_channel_binding(authenticate) == expected


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_ntlm_channel_binding_never_raises(data: bytes) -> None:
    for token in (data, b"NTLMSSP\x00\x03\x00\x00\x00" + data):
        result = ntlm_channel_binding(token)
        assert result is None or isinstance(result, bytes)


def test_acceptor_user_file_is_private_and_removed() -> None:
    acceptor = SpnegoAcceptor(users={"EXAMPLE\\alice": PASSWORD})
    path = Path(acceptor._user_file or "")
    assert path.is_file() and path.stat().st_mode & 0o777 == 0o600
    assert "EXAMPLE:alice:" in path.read_text()
    acceptor.close()
    assert not path.exists()
    dropped = SpnegoAcceptor(users={"EXAMPLE\\alice": PASSWORD})
    other = Path(dropped._user_file or "")
    del dropped
    gc.collect()
    assert not other.exists()
