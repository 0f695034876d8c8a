"""Fault injection on the EST server: each fault changes the answer the way a broken server or network would."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest

from estclient._b64 import decode_body
from estclient._errors import MalformedResponseError
from estclient._pkcs7 import parse_certs_only
from estclient.testing import EstServer, Fault, FaultKind
from tests.estclient._server_helpers import PREFIX, certs_from, leaf_from, make_csr, post_csr, raw_client, tls_context

AUTH = ("estuser", "estpwd")


@pytest.fixture(scope="module")
def server() -> Iterator[EstServer]:
    with EstServer(users={"estuser": "estpwd"}) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _clean(server: EstServer) -> Iterator[None]:
    server.clear_faults()
    server.clear_requests()
    yield
    server.clear_faults()


def test_server_error(server: EstServer) -> None:
    server.inject(Fault(FaultKind.SERVER_ERROR, status=502, times=1))
    with raw_client(server) as c:
        response = c.get("/cacerts")
        assert response.status_code == 502
        assert response.headers["content-type"].startswith("text/plain")
        assert "502" in response.text
        assert c.get("/cacerts").status_code == 200  # used up after one response
    assert [r.fault for r in server.requests] == [FaultKind.SERVER_ERROR, None]


def test_server_error_skips_the_backend(server: EstServer) -> None:
    server.inject(Fault(FaultKind.SERVER_ERROR, operations={"simpleenroll"}))
    backend_issued = len(server.backend.issued)  # type: ignore[attr-defined]
    with raw_client(server) as c:
        assert post_csr(c, "simpleenroll", make_csr()[1], auth=AUTH).status_code == 503
        assert c.get("/cacerts").status_code == 200  # other operations are untouched
    assert len(server.backend.issued) == backend_issued  # type: ignore[attr-defined]


def test_401_challenges_are_never_faulted(server: EstServer) -> None:
    server.inject(Fault(FaultKind.SERVER_ERROR, operations={"simpleenroll"}, times=1))
    with raw_client(server) as c:
        _, csr = make_csr()
        assert post_csr(c, "simpleenroll", csr).status_code == 401
        assert post_csr(c, "simpleenroll", csr, auth=AUTH).status_code == 503


def test_delay_makes_a_short_read_timeout_expire(server: EstServer) -> None:
    server.inject(Fault(FaultKind.DELAY, seconds=1.0, times=1))
    impatient = httpx.Client(base_url=server.url + PREFIX, verify=tls_context(server), timeout=0.2)
    with impatient, pytest.raises(httpx.ReadTimeout):
        impatient.get("/cacerts")
    server.inject(Fault(FaultKind.DELAY, seconds=0.2, times=1))
    with raw_client(server) as c:
        assert certs_from(c.get("/cacerts"))  # a patient client gets the normal answer
    assert server.requests[-1].fault is FaultKind.DELAY


def test_drop_mid_body(server: EstServer) -> None:
    server.inject(Fault(FaultKind.DROP_MID_BODY, operations={"simpleenroll"}, times=1))
    with raw_client(server) as c:
        with pytest.raises(httpx.RemoteProtocolError):
            post_csr(c, "simpleenroll", make_csr()[1], auth=AUTH)
        assert leaf_from(post_csr(c, "simpleenroll", make_csr()[1], auth=AUTH))  # a new connection works


def test_drop_before_response(server: EstServer) -> None:
    server.inject(Fault(FaultKind.DROP_BEFORE_RESPONSE, times=1))
    with raw_client(server) as c, pytest.raises(httpx.RemoteProtocolError):
        c.get("/cacerts")
    assert server.requests[-1].status == 0


def test_bad_base64(server: EstServer) -> None:
    server.inject(Fault(FaultKind.BAD_BASE64, times=1))
    with raw_client(server) as c:
        response = c.get("/cacerts")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/pkcs7-mime")
    with pytest.raises(MalformedResponseError, match="not base64"):
        decode_body(response.content)


def test_truncated_pkcs7(server: EstServer) -> None:
    server.inject(Fault(FaultKind.TRUNCATED_PKCS7, operations={"simpleenroll"}, times=1))
    with raw_client(server) as c:
        response = post_csr(c, "simpleenroll", make_csr()[1], auth=AUTH)
    assert response.status_code == 200
    der = decode_body(response.content)  # valid base64 ...
    with pytest.raises(MalformedResponseError):  # ... of half a PKCS#7
        parse_certs_only(der)


def test_wrong_content_type(server: EstServer) -> None:
    server.inject(Fault(FaultKind.WRONG_CONTENT_TYPE, times=1))
    with raw_client(server) as c:
        response = c.get("/cacerts")
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert parse_certs_only(base64.b64decode(response.content)).certificates  # the body itself is intact


def test_faults_context_manager_and_order(server: EstServer) -> None:
    with (
        server.faults(
            Fault(FaultKind.SERVER_ERROR, status=500, operations={"csrattrs"}),
            Fault(FaultKind.SERVER_ERROR, status=504),
        ),
        raw_client(server) as c,
    ):
        assert c.get("/csrattrs").status_code == 500
        assert c.get("/cacerts").status_code == 504
    with raw_client(server) as c:
        assert c.get("/cacerts").status_code == 200


def test_invalid_times() -> None:
    with EstServer() as srv, pytest.raises(ValueError, match="at least 1"):
        srv.inject(Fault(FaultKind.DELAY, times=0))


def test_drop_mid_body_of_an_empty_answer_drops_before_it(server: EstServer) -> None:
    server.inject(Fault(FaultKind.DROP_MID_BODY, operations={"csrattrs"}, times=1))
    with raw_client(server) as c, pytest.raises(httpx.RemoteProtocolError):
        c.get("/csrattrs")  # a 204 has no body to cut
    assert server.requests[-1].fault is FaultKind.DROP_BEFORE_RESPONSE
