"""Manual approval on the EST server: 202 + Retry-After until the test approves or denies."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from estclient.testing import EnrollmentRejected, EstServer, Issued, LocalCaBackend, Requester
from tests.estclient._server_helpers import leaf_from, make_csr, post_csr, raw_client


@pytest.fixture(scope="module")
def server() -> Iterator[EstServer]:
    with EstServer(users={"estuser": "estpwd"}, manual_approval=True, retry_after=7) as srv:
        yield srv


def test_pending_then_approved(server: EstServer) -> None:
    assert server.approvals is not None
    key, csr = make_csr("needs-approval")
    with raw_client(server) as c:
        first = post_csr(c, "simpleenroll", csr, auth=("estuser", "estpwd"))
        assert first.status_code == 202
        assert first.headers["retry-after"] == "7"
        assert "pending" in first.text
        [pending] = [p for p in server.approvals.pending() if p.subject == "CN=needs-approval"]
        assert pending.operation == "simpleenroll"
        assert pending.requester.user == "estuser"
        again = post_csr(c, "simpleenroll", csr, auth=("estuser", "estpwd"))
        assert again.status_code == 202
        assert len([p for p in server.approvals.pending() if p.subject == "CN=needs-approval"]) == 1
        server.approvals.approve(pending.request_id)
        # the retry may be a re-signed CSR for the same key and subject (PoP re-linking): still the same request
        _, resigned = make_csr("needs-approval", key=key)
        done = post_csr(c, "simpleenroll", resigned, auth=("estuser", "estpwd"))
        assert leaf_from(done).public_key() == key.public_key()


def test_denied(server: EstServer) -> None:
    assert server.approvals is not None
    _, csr = make_csr("to-be-denied")
    with raw_client(server) as c:
        assert post_csr(c, "simpleenroll", csr, auth=("estuser", "estpwd")).status_code == 202
        [pending] = server.approvals.wait_for_pending(1, timeout=5)
        server.approvals.deny(pending.request_id, "not a known device")
        response = post_csr(c, "simpleenroll", csr, auth=("estuser", "estpwd"))
        assert response.status_code == 403
        assert "not a known device" in response.text


def test_unknown_request_id(server: EstServer) -> None:
    assert server.approvals is not None
    with pytest.raises(KeyError, match="No pending request"):
        server.approvals.approve("0000")


class _PickyBackend(LocalCaBackend):
    """A backend that rejects one subject and is pending for another (as an AD CS backend might)."""

    def enroll(self, csr, *, label, requester: Requester, renewal_of):  # type: ignore[no-untyped-def]
        cn = csr.subject.rfc4514_string()
        if cn == "CN=reject-me":
            raise EnrollmentRejected("Template 'CiscoRA' is not allowed for this requester.", http_status=403)
        if cn == "CN=unavailable":
            raise EnrollmentRejected("The CA is not reachable.", http_status=503, retry_after=30)
        if cn == "CN=crash":
            raise RuntimeError("secret=hunter2 must not reach the client")
        result = super().enroll(csr, label=label, requester=requester, renewal_of=renewal_of)
        assert isinstance(result, Issued)
        return result


def test_backend_rejections_and_failures_map_to_statuses() -> None:
    with EstServer(_PickyBackend()) as srv, raw_client(srv) as c:
        rejected = post_csr(c, "simpleenroll", make_csr("reject-me")[1])
        assert rejected.status_code == 403
        assert rejected.headers["content-type"] == "text/plain; charset=utf-8"
        assert "CiscoRA" in rejected.text
        unavailable = post_csr(c, "simpleenroll", make_csr("unavailable")[1])
        assert unavailable.status_code == 503
        assert unavailable.headers["retry-after"] == "30"
        crash = post_csr(c, "simpleenroll", make_csr("crash")[1])
        assert crash.status_code == 500
        assert "hunter2" not in crash.text
        assert post_csr(c, "simpleenroll", make_csr("fine")[1]).status_code == 200


def test_retry_after_as_http_date() -> None:
    import email.utils

    with EstServer(manual_approval=True, retry_after=120, retry_after_as_date=True) as srv, raw_client(srv) as c:
        response = post_csr(c, "simpleenroll", make_csr("dated")[1])
        assert response.status_code == 202
        when = email.utils.parsedate_to_datetime(response.headers["retry-after"])
        assert when.tzinfo is not None
        assert response.headers["retry-after"].endswith("GMT")
