"""Property tests: whatever bytes a client sends, the EST server answers with a status, never an exception."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from estclient.testing import EstServer
from estclient.testing._auth import HttpAuthenticator
from estclient.testing._http import Exchange
from tests.estclient._server_helpers import csr_body, make_csr

OPERATIONS = ["cacerts", "simpleenroll", "simplereenroll", "csrattrs", "serverkeygen", "fullcmc", "x"]
CONTENT_TYPES = ["application/pkcs10", "application/pkcs7-mime; smime-type=CMC-request", "text/plain", ""]
AUTH = "Basic " + base64.b64encode(b"u:p").decode()


class _FakeTls:
    """Stands in for the SSLSocket: no channel binding, TLS 1.3."""

    def version(self) -> str:
        return "TLSv1.3"

    def get_channel_binding(self, kind: str) -> bytes | None:
        return None


@pytest.fixture(scope="module")
def server() -> Iterator[EstServer]:
    srv = EstServer(users={"u": "p"})  # never started: requests go straight to handle()
    yield srv
    srv.stop()


def _exchange(method: str, path: str, headers: dict[str, str], body: bytes) -> Exchange:
    tls: Any = _FakeTls()
    return Exchange(method, path, headers, body, tls, "127.0.0.1", None)


VALID_CSR = csr_body(make_csr("prop")[1])


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    op=st.sampled_from(OPERATIONS),
    label=st.one_of(st.none(), st.text(max_size=12)),
    method=st.sampled_from(["GET", "POST", "PUT"]),
    content_type=st.sampled_from(CONTENT_TYPES),
    body=st.one_of(
        st.binary(max_size=600),
        st.binary(max_size=400).map(base64.encodebytes),
        st.integers(0, len(VALID_CSR)).map(lambda n: VALID_CSR[:n]),
    ),
)
def test_any_request_gets_an_answer(
    server: EstServer, op: str, label: str | None, method: str, content_type: str, body: bytes
) -> None:
    path = f"/.well-known/est/{label}/{op}" if label is not None else f"/.well-known/est/{op}"
    reply = server.handle(_exchange(method, path, {"content-type": content_type, "authorization": AUTH}, body))
    assert 200 <= reply.status <= 599
    if reply.status >= 400:
        assert reply.content_type is not None and reply.content_type.startswith(("text/plain", "application/pkcs7"))


@settings(max_examples=250, deadline=None)
@given(header=st.one_of(st.text(max_size=300), st.from_regex(r"(Basic|Digest) [ -~]{0,200}", fullmatch=True)))
def test_any_authorization_header_is_checked_without_error(header: str) -> None:
    for scheme in ("basic", "digest"):
        user, stale = HttpAuthenticator({"u": "p"}, scheme=scheme).check(header, method="POST", path="/x")
        assert user is None
        assert isinstance(stale, bool)
