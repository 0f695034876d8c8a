"""The authentication fixtures work end to end: real NTLM and Kerberos handshakes over TLS, pyspnego on both sides.

The server is the stdlib TLS test server with a pyspnego acceptor kept per TCP connection; the client is httpx
with a small test-only auth. Kerberos runs against the session's MIT KDC (``kdc`` fixture).
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from tests._support.kerberos import Kdc
from tests._support.ntlm import NtlmUserFile
from tests._support.pki import TestPki
from tests._support.spnego_http import SpnegoTestAuth, make_handler
from tests._support.tls_http import serve_tls


def _server_der(pki: TestPki) -> bytes:
    return pki.server.cert.public_bytes(Encoding.DER)


def test_ntlm_user_file_fixture(ntlm_user_file: NtlmUserFile) -> None:
    assert os.environ["NTLM_USER_FILE"] == str(ntlm_user_file.path)
    assert "EXAMPLE:alice:Passw0rd!" in ntlm_user_file.path.read_text().splitlines()
    assert ntlm_user_file.path.stat().st_mode & 0o777 == 0o600
    assert (ntlm_user_file.domain, ntlm_user_file.user, ntlm_user_file.password) == ("EXAMPLE", "alice", "Passw0rd!")


def test_unauthenticated_request_gets_both_challenges(pki: TestPki, ntlm_user_file: NtlmUserFile) -> None:
    handler, stats = make_handler(_server_der(pki))
    with serve_tls(handler, pki.server_context()) as srv, httpx.Client(verify=pki.client_context()) as client:
        response = client.get(srv.url + "/")
    assert response.status_code == 401
    assert response.headers.get_list("www-authenticate") == ["Negotiate", "NTLM"]
    assert response.headers["content-length"] == str(len(response.content))
    assert stats.legs == 0


def test_real_ntlm_handshake_and_connection_reuse(pki: TestPki, ntlm_user_file: NtlmUserFile) -> None:
    handler, stats = make_handler(_server_der(pki))
    auth = SpnegoTestAuth(ntlm_user_file.down_level_name, ntlm_user_file.password, "ntlm")
    with (
        serve_tls(handler, pki.server_context()) as srv,
        httpx.Client(verify=pki.client_context(), auth=auth) as client,
    ):
        first = client.get(srv.url + "/")
        second = client.post(srv.url + "/submit", content=b"x" * 5000)
        third = client.get(srv.url + "/again")
    assert first.status_code == 200, first.text
    assert first.text == "hello EXAMPLE\\alice GET 0"
    # The POST rides on the authenticated connection: no new challenge, the body arrives once, whole.
    assert second.status_code == 200 and second.text == "hello EXAMPLE\\alice POST 5000"
    assert third.status_code == 200
    assert auth.handshakes == 1
    assert stats.legs == 2  # NTLM NEGOTIATE + AUTHENTICATE, once
    assert stats.logins == ["EXAMPLE\\alice"]
    # 401, negotiate leg, authenticate leg, then one request each for the POST and the last GET
    assert [r.method for r in srv.requests] == ["GET", "GET", "GET", "POST", "GET"]
    assert "authorization" not in srv.requests[3].headers


def test_ntlm_upn_form(pki: TestPki, ntlm_user_file: NtlmUserFile) -> None:
    handler, stats = make_handler(_server_der(pki))
    auth = SpnegoTestAuth(ntlm_user_file.upn, ntlm_user_file.password, "ntlm")
    with (
        serve_tls(handler, pki.server_context()) as srv,
        httpx.Client(verify=pki.client_context(), auth=auth) as client,
    ):
        response = client.get(srv.url + "/")
    assert response.status_code == 200, response.text
    assert stats.logins == [ntlm_user_file.upn]


def test_ntlm_wrong_password_stays_401(pki: TestPki, ntlm_user_file: NtlmUserFile) -> None:
    handler, stats = make_handler(_server_der(pki))
    auth = SpnegoTestAuth(ntlm_user_file.down_level_name, "not-the-password", "ntlm")
    with (
        serve_tls(handler, pki.server_context()) as srv,
        httpx.Client(verify=pki.client_context(), auth=auth) as client,
    ):
        response = client.get(srv.url + "/")
    assert response.status_code == 401
    assert stats.logins == []
    assert stats.failures, "the acceptor must have rejected the AUTHENTICATE message"


def test_ntlm_unknown_domain_stays_401(pki: TestPki, ntlm_user_file: NtlmUserFile) -> None:
    handler, stats = make_handler(_server_der(pki))
    auth = SpnegoTestAuth("OTHER\\alice", ntlm_user_file.password, "ntlm")
    with (
        serve_tls(handler, pki.server_context()) as srv,
        httpx.Client(verify=pki.client_context(), auth=auth) as client,
    ):
        assert client.get(srv.url + "/").status_code == 401
    assert stats.logins == []


@pytest.mark.kerberos
def test_kdc_fixture(kdc: Kdc) -> None:
    assert os.environ["KRB5_CONFIG"] == str(kdc.krb5_config)
    assert os.environ["KRB5_KDC_PROFILE"] == str(kdc.kdc_profile)
    assert os.environ["KRB5_KTNAME"].endswith(str(kdc.keytab))
    assert kdc.process.poll() is None
    assert Path(kdc.krb5_config).read_text().count("dns_lookup_kdc = false") == 1
    assert "127.0.0.1:" in kdc.kdc_profile.read_text()


@pytest.mark.kerberos
@pytest.mark.parametrize("protocol", ["negotiate", "kerberos"])
def test_real_kerberos_handshake_and_connection_reuse(pki: TestPki, kdc: Kdc, protocol: str) -> None:
    handler, stats = make_handler(_server_der(pki))
    auth = SpnegoTestAuth(kdc.principal, kdc.password, protocol)
    with (
        serve_tls(handler, pki.server_context()) as srv,
        httpx.Client(verify=pki.client_context(), auth=auth) as client,
    ):
        first = client.get(srv.url + "/")
        second = client.post(srv.url + "/submit", content=b"csr")
    assert first.status_code == 200, first.text
    assert first.text == f"hello {kdc.principal} GET 0"
    assert second.text == f"hello {kdc.principal} POST 3"
    assert auth.handshakes == 1
    assert stats.legs == 1  # Kerberos: one AP-REQ, the AP-REP rides on the 200
    assert stats.logins == [kdc.principal]


@pytest.mark.kerberos
def test_kerberos_wrong_password_gets_no_ticket(pki: TestPki, kdc: Kdc) -> None:
    handler, stats = make_handler(_server_der(pki))
    auth = SpnegoTestAuth(kdc.principal, "not-the-password", "kerberos")
    with (
        serve_tls(handler, pki.server_context()) as srv,
        httpx.Client(verify=pki.client_context(), auth=auth) as client,
        # pyspnego lets krb5's own error through (krb5.Krb5Error; krb5 is optional, so matched by message)
        pytest.raises(Exception, match=r"integrity check failed|[Pp]reauthentication failed"),
    ):
        client.get(srv.url + "/")
    assert stats.logins == []
    assert stats.legs == 0


def test_missing_kdc_programs_name_the_debian_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests._support import kerberos

    monkeypatch.setattr(kerberos, "find_program", lambda name: None)
    reason = kerberos.unavailable_reason()
    assert reason is not None
    assert "krb5kdc" in reason and "krb5-kdc krb5-admin-server krb5-user libkrb5-dev" in reason
    monkeypatch.setenv("REQUIRE_KERBEROS", "1")
    assert kerberos.kerberos_required()
