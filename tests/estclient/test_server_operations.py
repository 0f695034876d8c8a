"""The EST server's operations over real TLS, driven by a minimal raw httpx client."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import AttributeOID, ExtendedKeyUsageOID, NameOID

from estclient._csrattrs import CsrAttribute, CsrAttrOid, CsrAttrs, parse_csrattrs
from estclient.testing import EstServer, LocalCa, LocalCaBackend
from tests._support.pki import TestPki
from tests.estclient._server_helpers import certs_from, leaf_from, make_csr, post_csr, raw_client

USERS = {"estuser": "estpwd"}
AUTH = ("estuser", "estpwd")


@pytest.fixture(scope="module")
def server() -> Iterator[EstServer]:
    with EstServer(users=USERS, labels={"phones", "servers"}) as srv:
        yield srv


@pytest.fixture
def client(server: EstServer) -> Iterator[httpx.Client]:
    with raw_client(server) as c:
        yield c


def test_cacerts_returns_the_ca_as_base64_certs_only(server: EstServer, client: httpx.Client) -> None:
    response = client.get("/cacerts")
    assert response.headers["content-type"] == "application/pkcs7-mime; smime-type=certs-only"
    assert response.headers["content-transfer-encoding"] == "base64"
    assert int(response.headers["content-length"]) == len(response.content)
    certs = certs_from(response)
    assert isinstance(server.backend, LocalCaBackend)
    assert certs == [server.backend.ca.certificate]
    # RFC 2045 lines: at most 76 characters
    assert max(len(line) for line in response.content.splitlines()) <= 76


def test_cacerts_needs_no_authentication_and_ca_file_is_the_tls_anchor(server: EstServer) -> None:
    pem = server.ca_file.read_text()
    assert "BEGIN CERTIFICATE" in pem
    with raw_client(server) as c:
        assert c.get("/cacerts").status_code == 200


def test_simpleenroll_issues_a_certificate_with_subject_and_san(server: EstServer, client: httpx.Client) -> None:
    key, csr = make_csr("phone-1", dns=("phone-1.example.test",))
    response = post_csr(client, "simpleenroll", csr, auth=AUTH)
    leaf = leaf_from(response)
    assert leaf.subject == csr.subject
    assert leaf.public_key() == key.public_key()
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["phone-1.example.test"]
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert isinstance(server.backend, LocalCaBackend)
    assert leaf.issuer == server.backend.ca.certificate.subject


def test_simpleenroll_without_credentials_is_challenged(server: EstServer, client: httpx.Client) -> None:
    _, csr = make_csr()
    response = post_csr(client, "simpleenroll", csr)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith('Basic realm="estrealm"')
    assert response.headers["content-type"].startswith("text/plain")
    assert int(response.headers["content-length"]) == len(response.content)


def test_wrong_password_is_refused(server: EstServer, client: httpx.Client) -> None:
    _, csr = make_csr()
    assert post_csr(client, "simpleenroll", csr, auth=("estuser", "nope")).status_code == 401
    assert post_csr(client, "simpleenroll", csr, auth=("nobody", "estpwd")).status_code == 401


def test_connection_is_kept_alive_between_requests(server: EstServer, client: httpx.Client) -> None:
    server.clear_requests()
    for _ in range(3):
        client.get("/cacerts")
    connections = {r.connection for r in server.requests}
    assert len(connections) == 1
    assert server.count("cacerts", status=200) == 3


def test_label_paths(server: EstServer, client: httpx.Client) -> None:
    server.clear_requests()
    assert client.get("/phones/cacerts").status_code == 200
    _, csr = make_csr("labelled")
    assert post_csr(client, "simpleenroll", csr, label="servers", auth=AUTH).status_code == 200
    assert [(r.operation, r.label) for r in server.requests] == [("cacerts", "phones"), ("simpleenroll", "servers")]
    unknown = client.get("/printers/cacerts")
    assert unknown.status_code == 404
    assert "printers" in unknown.text and "phones" in unknown.text
    assert client.get("/bad%20label/cacerts").status_code == 404
    assert client.get("/a/b/cacerts").status_code == 404


def test_unknown_operation_and_wrong_method(client: httpx.Client) -> None:
    response = client.get("/getcert")
    assert response.status_code == 404
    assert "simpleenroll" in response.text
    wrong = client.post("/cacerts", content=b"")
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "GET"
    assert client.get("/simpleenroll").status_code == 405


def test_bad_request_bodies_get_400_with_reason(client: httpx.Client) -> None:
    headers = {"Content-Type": "application/pkcs10"}
    not_b64 = client.post("/simpleenroll", content=b"%%%", headers=headers, auth=AUTH)
    assert not_b64.status_code == 400
    assert "base64" in not_b64.text
    not_csr = client.post(
        "/simpleenroll", content=base64.b64encode(b"\x30\x03\x02\x01\x00"), headers=headers, auth=AUTH
    )
    assert not_csr.status_code == 400
    assert "PKCS#10" in not_csr.text
    _, csr = make_csr()
    wrong_type = client.post(
        "/simpleenroll",
        content=base64.b64encode(csr.public_bytes(serialization.Encoding.DER)),
        headers={"Content-Type": "text/plain"},
        auth=AUTH,
    )
    assert wrong_type.status_code == 400
    assert "application/pkcs10" in wrong_type.text


def test_unwrapped_base64_request_is_accepted(client: httpx.Client) -> None:
    _, csr = make_csr("one-line")
    body = base64.b64encode(csr.public_bytes(serialization.Encoding.DER))  # no line breaks at all
    response = client.post("/simpleenroll", content=body, headers={"Content-Type": "application/pkcs10"}, auth=AUTH)
    assert leaf_from(response).subject == csr.subject


def test_csr_with_empty_subject_and_no_san_is_rejected(client: httpx.Client) -> None:
    _, csr = make_csr(subject=x509.Name([]))
    response = post_csr(client, "simpleenroll", csr, auth=AUTH)
    assert response.status_code == 400
    assert "empty subject" in response.text


def test_csrattrs_204_without_requirements(client: httpx.Client) -> None:
    response = client.get("/csrattrs")
    assert response.status_code == 204
    assert response.content == b""
    assert "content-length" not in response.headers  # RFC 9110 §8.6
    assert client.get("/cacerts").status_code == 200  # the connection is still usable


def test_csrattrs_content_is_announced() -> None:
    attrs = CsrAttrs((CsrAttrOid(AttributeOID.CHALLENGE_PASSWORD), CsrAttribute.ec_public_key("secp384r1")))
    with EstServer(LocalCaBackend(csr_attributes=attrs)) as srv, raw_client(srv) as c:
        response = c.get("/csrattrs")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/csrattrs"
        assert parse_csrattrs(base64.b64decode(response.content)) == attrs


def test_pop_require_mode_announces_challenge_password() -> None:
    with EstServer(pop="require") as srv, raw_client(srv) as c:
        parsed = parse_csrattrs(base64.b64decode(c.get("/csrattrs").content))
        assert parsed.requires_challenge_password


def test_reenroll_with_the_certificate_being_renewed(server: EstServer, tmp_path: Path) -> None:
    key, csr = make_csr("renew-me", dns=("renew.example.test",))
    with raw_client(server) as c:
        first = leaf_from(post_csr(c, "simpleenroll", csr, auth=AUTH))
    cert_file, key_file = tmp_path / "c.pem", tmp_path / "c.key"
    cert_file.write_bytes(first.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    new_key, renewal = make_csr("renew-me", dns=("renew.example.test",))
    with raw_client(server, cert=cert_file, key=key_file) as c:
        server.clear_requests()
        second = leaf_from(post_csr(c, "simplereenroll", renewal))  # the certificate authenticates
        assert second.public_key() == new_key.public_key()
        assert second.subject == first.subject
        assert server.requests[-1].client_certificate == first
        _, other_subject = make_csr("someone-else", dns=("renew.example.test",))
        changed = post_csr(c, "simplereenroll", other_subject)
        assert changed.status_code == 400
        assert "subject" in changed.text
        _, other_san = make_csr("renew-me", dns=("other.example.test",))
        assert post_csr(c, "simplereenroll", other_san).status_code == 400


def test_reenroll_without_client_certificate_is_refused(client: httpx.Client) -> None:
    _, csr = make_csr()
    response = post_csr(client, "simplereenroll", csr, auth=AUTH)
    assert response.status_code == 403
    assert "TLS client certificate" in response.text


def test_given_ca_issues_and_cacerts_returns_its_chain(pki: TestPki, tmp_path: Path) -> None:
    bundle = tmp_path / "issuing-ca.pem"
    bundle.write_bytes(pki.intermediate.cert_pem + pki.root.cert_pem)
    ca = LocalCa.from_files(bundle, pki.folder / "intermediate.key")
    assert ca.chain == (pki.root.cert,)
    with pytest.raises(ValueError, match="not the private key"):
        LocalCa.from_files(bundle, pki.folder / "client.key")
    with EstServer(LocalCaBackend(ca)) as srv, raw_client(srv) as c:
        assert srv.ca_file.read_bytes() == pki.root.cert_pem
        assert set(certs_from(c.get("/cacerts"))) == {pki.intermediate.cert, pki.root.cert}
        leaf = leaf_from(post_csr(c, "simpleenroll", make_csr("x")[1]))
        assert leaf.issuer == pki.intermediate.cert.subject


def test_requested_key_usage_and_eku_are_copied(client: httpx.Client) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "web")]))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    leaf = leaf_from(post_csr(client, "simpleenroll", csr, auth=AUTH))
    assert list(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH
    ]
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False


def test_chunked_request_body_is_read(client: httpx.Client) -> None:
    from tests.estclient._server_helpers import csr_body

    _, csr = make_csr("chunked")
    body = csr_body(csr)

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(body), 100):
            yield body[i : i + 100]

    response = client.post("/simpleenroll", content=chunks(), headers={"Content-Type": "application/pkcs10"}, auth=AUTH)
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert leaf_from(response).subject == csr.subject


def test_oversized_body_is_refused_and_the_connection_closed(client: httpx.Client) -> None:
    response = client.post(
        "/simpleenroll", content=b"A" * (2 << 20), headers={"Content-Type": "application/pkcs10"}, auth=AUTH
    )
    assert response.status_code == 413
    assert response.headers["connection"] == "close"


def test_stale_digest_nonce_is_flagged() -> None:
    import time as _time

    from estclient.testing._auth import HttpAuthenticator

    auth = HttpAuthenticator(USERS, scheme="digest")
    old = auth._nonce(int(_time.time()) - 3600)
    header = f'Digest username="estuser", realm="estrealm", nonce="{old}", uri="/x", response="00", qop=auth'
    assert auth.check(header, method="POST", path="/x") == (None, True)
    assert "stale=true" in auth.challenge(stale=True)
    forged = f'Digest username="estuser", realm="estrealm", nonce="{int(_time.time())}.abc", uri="/x", response="00"'
    assert auth.check(forged, method="POST", path="/x") == (None, False)


def test_start_stop_start() -> None:
    server = EstServer().start()
    try:
        with raw_client(server) as c:
            assert c.get("/cacerts").status_code == 200
        server.stop()
        assert not server.ca_file.exists()  # the temporary folder is gone
        server.start()  # and comes back (same CA, new port)
        with raw_client(server) as c:
            assert c.get("/cacerts").status_code == 200
    finally:
        server.stop()


def test_recorded_request_keeps_headers_and_body_but_not_credentials(server: EstServer, client: httpx.Client) -> None:
    _, csr = make_csr("recorded")
    post_csr(client, "simpleenroll", csr, auth=AUTH)
    record = server.requests[-1]
    assert record.headers["content-type"] == "application/pkcs10"
    assert record.headers["authorization"] == "Basic (redacted)"
    assert x509.load_der_x509_csr(base64.b64decode(record.body)) == csr
    assert "estpwd" not in repr(record)
