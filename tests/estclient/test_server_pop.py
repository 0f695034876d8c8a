"""Proof-of-possession linking on the EST server (RFC 7030 §3.5): challengePassword = base64(tls-unique)."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from estclient.testing import EstServer
from tests.estclient._server_helpers import leaf_from, make_csr, post_csr, raw_client, tls_unique


@pytest.fixture(scope="module")
def server() -> Iterator[EstServer]:
    with EstServer(pop="require") as srv:
        yield srv


def test_require_mode_caps_tls_at_1_2(server: EstServer) -> None:
    with raw_client(server) as c:
        c.get("/cacerts")
        assert server.requests[-1].tls_version == "TLSv1.2"


def test_linked_csr_on_the_same_connection_is_accepted(server: EstServer) -> None:
    with raw_client(server) as c:
        first = c.get("/cacerts")
        password = base64.b64encode(tls_unique(first))
        _, csr = make_csr("linked", challenge_password=password)
        response = post_csr(c, "simpleenroll", csr)
        assert leaf_from(response).subject == csr.subject
        assert server.requests[-1].connection == server.requests[-2].connection


def test_csr_linked_to_another_connection_is_refused(server: EstServer) -> None:
    with raw_client(server) as c:
        password = base64.b64encode(tls_unique(c.get("/cacerts")))
    _, csr = make_csr("stale-link", challenge_password=password)
    with raw_client(server) as other:
        response = post_csr(other, "simpleenroll", csr)
    assert response.status_code == 400
    assert "PoP linking failed" in response.text
    assert "tls-unique" in response.text


def test_missing_challenge_password_is_refused_in_require_mode(server: EstServer) -> None:
    with raw_client(server) as c:
        response = post_csr(c, "simpleenroll", make_csr()[1])
    assert response.status_code == 400
    assert "PoP linking is required" in response.text


def test_verify_mode_accepts_unlinked_csrs_but_checks_linked_ones() -> None:
    with EstServer(pop="verify", max_tls_version=None) as srv, raw_client(srv, max_tls12=True) as c:
        assert post_csr(c, "simpleenroll", make_csr()[1]).status_code == 200
        wrong = post_csr(c, "simpleenroll", make_csr(challenge_password=b"AAAAAAAAAAAAAAAA")[1])
        assert wrong.status_code == 400
        right = base64.b64encode(tls_unique(wrong))
        assert post_csr(c, "simpleenroll", make_csr(challenge_password=right)[1]).status_code == 200


def test_off_mode_ignores_the_challenge_password() -> None:
    with EstServer(pop="off") as srv, raw_client(srv) as c:
        assert post_csr(c, "simpleenroll", make_csr(challenge_password=b"a real password")[1]).status_code == 200


def test_invalid_mode_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="pop must be"):
        EstServer(pop="sometimes")  # type: ignore[arg-type]
