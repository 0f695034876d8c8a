"""CertsrvClient against a small real TLS peer serving the fixture pages: page shapes the emulator does not make."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from cryptography.hazmat.primitives import serialization

from certsrv import (
    AuthenticationError,
    CertsrvClient,
    Issued,
    RequestFailedError,
    TemplateNotFoundError,
    UnexpectedResponseError,
    UnrecognizedPageError,
)
from tests._support.pki import TestPki
from tests._support.tls_http import Request, Response, RunningServer, serve_tls
from tests.certsrv._emulator_helpers import csr_pem
from tests.certsrv._pages_data import LANGUAGES, page

Route = Callable[[Request], Response]


@pytest.fixture
def routes() -> dict[str, Route]:
    return {}


@pytest.fixture
def peer(pki: TestPki, routes: dict[str, Route]) -> Iterator[RunningServer]:
    def handler(request: Request) -> Response:
        stem = request.path.split("?")[0]
        route = routes.get(stem)
        if route is None:
            return Response(
                404, [("Content-Type", "text/html")], b"<html><title>404 - File or directory not found.</title></html>"
            )
        return route(request)

    with serve_tls(handler, pki.server_context()) as server:
        yield server


def _html(body: bytes) -> Route:
    return lambda _request: Response(200, [("Content-Type", "text/html")], body)


def _client(peer: RunningServer, pki: TestPki) -> CertsrvClient:
    return CertsrvClient(peer.url + "/certsrv", ca_file=pki.ca_bundle)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_no_template_information_lists_offered_templates(
    peer: RunningServer, pki: TestPki, routes: dict[str, Route], lang: str
) -> None:
    routes["/certsrv/certfnsh.asp"] = _html(page("certfnsh_denied_no_template", lang))
    routes["/certsrv/certrqxt.asp"] = _html(page("certrqxt", lang))
    with _client(peer, pki) as client, pytest.raises(TemplateNotFoundError) as info:
        client.submit(csr_pem(), "CiscoRa")
    assert info.value.hresult == 0x80094801
    assert info.value.request_id == 79
    assert info.value.offered == ("CiscoRA", "WebServer", "User")
    assert [r.path for r in peer.requests] == ["/certsrv/certfnsh.asp", "/certsrv/certrqxt.asp"]


def test_template_error_when_the_listing_fails_too(peer: RunningServer, pki: TestPki, routes: dict[str, Route]) -> None:
    routes["/certsrv/certfnsh.asp"] = _html(page("certfnsh_denied_template"))
    with _client(peer, pki) as client, pytest.raises(TemplateNotFoundError) as info:
        client.submit(csr_pem(), "Nope")
    assert info.value.offered is None
    assert "could not be read" in str(info.value)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_error_page_is_a_request_failure(
    peer: RunningServer, pki: TestPki, routes: dict[str, Route], lang: str
) -> None:
    routes["/certsrv/certfnsh.asp"] = _html(page("certfnsh_error", lang))
    with _client(peer, pki) as client, pytest.raises(RequestFailedError) as info:
        client.submit(csr_pem(), "WebServer")
    assert info.value.hresult == 0x8009310B
    assert "CRYPT_E_ASN1_BADTAG" in str(info.value)


def test_the_submit_post_is_the_browser_form(peer: RunningServer, pki: TestPki, routes: dict[str, Route]) -> None:
    cert = pki.client.cert
    routes["/certsrv/certfnsh.asp"] = _html(page("certfnsh_issued"))
    routes["/certsrv/certnew.cer"] = lambda _r: Response(
        200, [("Content-Type", "application/octet-stream")], cert.public_bytes(serialization.Encoding.PEM)
    )
    with _client(peer, pki) as client:
        result = client.submit(csr_pem(), "CiscoRA", {"ccm": "SEP001F6C81118B"})
    assert result == Issued(77, cert)
    post, get = peer.requests
    assert post.method == "POST"
    assert post.headers["content-type"] == "application/x-www-form-urlencoded"
    assert post.body.startswith(b"Mode=newreq&CertRequest=-----BEGIN+CERTIFICATE+REQUEST-----")
    assert b"CertAttrib=CertificateTemplate%3ACiscoRA%0D%0AUserAgent%3AMozilla%2F5.0" in post.body
    assert b"%0D%0Accm%3ASEP001F6C81118B%0D%0A&FriendlyType=Saved-Request+Certificate+%28" in post.body
    assert post.body.endswith(b"&ThumbPrint=&TargetStoreFlags=0&SaveCert=yes")
    assert post.headers["user-agent"].startswith("Mozilla/5.0")
    assert get.path == "/certsrv/certnew.cer?ReqID=77&Enc=bin"


def test_redirect_is_reported_with_its_target(peer: RunningServer, pki: TestPki, routes: dict[str, Route]) -> None:
    routes["/certsrv/certrqxt.asp"] = lambda _r: Response(302, [("Location", "https://sso.example.test/login")], b"")
    with _client(peer, pki) as client, pytest.raises(UnexpectedResponseError) as info:
        client.list_templates()
    assert info.value.status == 302
    assert "sso.example.test/login" in str(info.value)


def test_401_without_credentials_names_the_offered_schemes(
    peer: RunningServer, pki: TestPki, routes: dict[str, Route]
) -> None:
    routes["/certsrv/certrqxt.asp"] = lambda _r: Response(
        401, [("WWW-Authenticate", "Negotiate"), ("WWW-Authenticate", "NTLM")], page("unauth_401", "de")
    )
    with _client(peer, pki) as client, pytest.raises(AuthenticationError) as info:
        client.list_templates()
    assert "Negotiate, NTLM" in str(info.value)
    assert "401 - Nicht autorisiert" in str(info.value)


def test_unknown_page_raises_with_the_url(peer: RunningServer, pki: TestPki, routes: dict[str, Route]) -> None:
    routes["/certsrv/certfnsh.asp"] = _html(b"<html><body>Please log in</body></html>")
    with _client(peer, pki) as client, pytest.raises(UnrecognizedPageError) as info:
        client.submit(csr_pem(), "WebServer")
    assert info.value.url is not None and info.value.url.endswith("/certsrv/certfnsh.asp")
    assert info.value.body == b"<html><body>Please log in</body></html>"


def test_404_names_the_path(peer: RunningServer, pki: TestPki) -> None:
    with _client(peer, pki) as client, pytest.raises(UnexpectedResponseError) as info:
        client.get_ca_info()
    assert info.value.status == 404
    assert "/certsrv" in str(info.value)


def test_anonymous_access_on_certsrv_is_warned_about(
    peer: RunningServer, pki: TestPki, routes: dict[str, Route], caplog: pytest.LogCaptureFixture
) -> None:
    # IIS with Anonymous and Windows authentication both on answers 200 without a challenge
    routes["/certsrv/"] = _html(b"<html><P ID=locPageTitle> Welcome</html>")
    routes["/certsrv/certrqxt.asp"] = _html(page("certrqxt"))
    with (
        CertsrvClient(
            peer.url + "/certsrv",
            auth="ntlm",
            username="EXAMPLE\\alice",
            password="S3cr3t-Value",
            ca_file=pki.ca_bundle,
        ) as c,
        caplog.at_level("WARNING", logger="certsrv.client"),
    ):
        assert [t.name for t in c.list_templates()] == ["CiscoRA", "WebServer", "User"]
    assert "anonymous access is enabled" in caplog.text
    assert "S3cr3t-Value" not in caplog.text
