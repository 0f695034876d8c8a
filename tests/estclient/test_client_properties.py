"""Property test of the whole client: whatever a server answers, every operation returns a result or an EstError."""

from __future__ import annotations

import contextlib

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from estclient import CsrSpec, EstClient, EstError, TrustAnchors
from tests._support.pki import TestPki

KEY = ec.generate_private_key(ec.SECP256R1())
CSR = (
    x509.CertificateSigningRequestBuilder()
    .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "prop")]))
    .sign(KEY, hashes.SHA256())
)

_answers = st.lists(
    st.tuples(
        st.sampled_from([200, 202, 204, 301, 400, 401, 404, 500]),
        st.sampled_from(
            [
                "",
                "application/pkcs7-mime; smime-type=certs-only",
                "application/csrattrs",
                "text/plain",
                "multipart/mixed; boundary=x",
            ]
        ),
        st.binary(max_size=200),
        st.sampled_from(["", "0", "Wed, 21 Oct 2015 07:28:00 GMT", "soon"]),
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(answers=_answers, which=st.sampled_from(["cacerts", "csrattrs", "enroll", "spec", "keygen", "cmc"]))
def test_any_answer_gives_a_result_or_an_est_error(
    pki: TestPki, answers: list[tuple[int, str, bytes, str]], which: str
) -> None:
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        status, content_type, body, retry = queue.pop(0) if len(queue) > 1 else queue[0]
        headers = {"Content-Type": content_type} if content_type else {}
        if retry:
            headers["Retry-After"] = retry
        if 300 <= status < 400:
            headers["Location"] = "/elsewhere"
            status = 400 if request.method == "GET" else status  # keep GET redirects from looping
        return httpx.Response(status, headers=headers, content=body)

    http = httpx.Client(transport=httpx.MockTransport(handler))
    client = EstClient("https://est.test", trust=TrustAnchors(explicit=(pki.root.cert,)), http_client=http)
    with http, client, contextlib.suppress(EstError):
        if which == "cacerts":
            client.cacerts()
        elif which == "csrattrs":
            client.csrattrs()
        elif which == "enroll":
            client.simple_enroll(CSR, wait=True, max_retries=2)  # Retry-After is 0 or in the past
        elif which == "spec":
            client.simple_enroll(CsrSpec(KEY, "CN=prop"))
        elif which == "keygen":
            client.server_keygen(CSR)
        else:
            client.full_cmc(CSR)
