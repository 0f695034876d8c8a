"""The ``est`` command against the package's EST server over real TLS (click's CliRunner, in process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from estclient._cli_app import cli
from estclient._cli_support import ExitCode
from estclient._trust import certificate_fingerprint
from estclient.testing import EnrollmentRejected, EstServer, Fault, FaultKind, LocalCa, LocalCaBackend
from tests.estclient._server_helpers import make_csr

PASSWORD = "estpwd"
ENV = {"EST_PASSWORD": PASSWORD}


@pytest.fixture(scope="module")
def server() -> Iterator[EstServer]:
    with EstServer(users={"estuser": PASSWORD}) as srv:
        yield srv


def est(server: EstServer | None, *args: str, user: bool = True, input: str | None = None) -> Result:
    base: list[str] = []
    if server is not None:
        base = ["--server", server.url, "--ca-file", str(server.ca_file)]
        if user:
            base += ["--user", "estuser"]
    return CliRunner().invoke(cli, [*base, *args], env=ENV, input=input, catch_exceptions=False)


def _ca(server: EstServer) -> x509.Certificate:
    assert isinstance(server.backend, LocalCaBackend)
    return server.backend.ca.certificate


def test_cacerts_to_file_and_stdout(server: EstServer, tmp_path: Path) -> None:
    out = tmp_path / "ca.pem"
    result = est(server, "cacerts", "-o", str(out), user=False)
    assert result.exit_code == 0, result.output
    assert x509.load_pem_x509_certificates(out.read_bytes()) == [_ca(server)]
    printed = est(server, "cacerts", user=False)
    assert printed.exit_code == 0
    assert x509.load_pem_x509_certificates(printed.stdout.encode()) == [_ca(server)]


def test_cacerts_der_is_pkcs7(server: EstServer, tmp_path: Path) -> None:
    out = tmp_path / "ca.p7b"
    assert est(server, "cacerts", "--der", "-o", str(out)).exit_code == 0
    assert pkcs7.load_der_pkcs7_certificates(out.read_bytes()) == [_ca(server)]
    assert est(server, "cacerts", "--der").exit_code == ExitCode.USAGE  # binary needs a file


def test_bootstrap_with_fingerprint(server: EstServer, tmp_path: Path) -> None:
    out = tmp_path / "boot.pem"
    good = certificate_fingerprint(_ca(server))
    args = ["--server", server.url, "--bootstrap", "--fingerprint", good, "cacerts", "-o", str(out)]
    assert CliRunner().invoke(cli, args).exit_code == 0
    assert x509.load_pem_x509_certificates(out.read_bytes()) == [_ca(server)]
    out.unlink()
    wrong = ["--server", server.url, "--bootstrap", "--fingerprint", "AB" * 32, "cacerts", "-o", str(out)]
    result = CliRunner().invoke(cli, wrong)
    assert result.exit_code == ExitCode.TRUST
    assert not out.exists()


def test_bootstrap_asks_and_shows_fingerprints(server: EstServer, tmp_path: Path) -> None:
    out = tmp_path / "asked.pem"
    args = ["--server", server.url, "--bootstrap", "cacerts", "-o", str(out)]
    declined = CliRunner().invoke(cli, args, input="n\n")
    assert declined.exit_code == ExitCode.TRUST
    assert f"SHA-256: {certificate_fingerprint(_ca(server))}" in declined.stderr, declined.stderr  # whole, one line
    assert not out.exists()
    accepted = CliRunner().invoke(cli, args, input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert out.exists()


def test_bootstrap_only_for_cacerts(server: EstServer) -> None:
    result = CliRunner().invoke(cli, ["--server", server.url, "--bootstrap", "csrattrs"])
    assert result.exit_code == ExitCode.USAGE
    assert "cacerts" in result.stderr
    both = CliRunner().invoke(cli, ["--server", server.url, "--bootstrap", "--ca-file", str(server.ca_file), "cacerts"])
    assert both.exit_code == ExitCode.USAGE


def test_csrattrs_json(server: EstServer) -> None:
    result = est(server, "--json", "csrattrs")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"empty": True, "items": [], "challenge_password": False}


def test_enroll_with_new_key(server: EstServer, tmp_path: Path) -> None:
    key_out, cert_out = tmp_path / "dev.key", tmp_path / "dev.pem"
    result = est(
        server, "enroll", "--new-key", "ec:P-256", "--subject", "CN=phone-7,O=Example",
        "--san", "phone-7.example.test", "--key-out", str(key_out), "-o", str(cert_out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert key_out.stat().st_mode & 0o777 == 0o600
    cert = x509.load_pem_x509_certificate(cert_out.read_bytes())
    key = serialization.load_pem_private_key(key_out.read_bytes(), None)
    assert cert.public_key() == key.public_key()
    assert cert.subject.rfc4514_string() == "CN=phone-7,O=Example"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["phone-7.example.test"]


def test_enroll_with_csr_file_der_output_and_json(server: EstServer, tmp_path: Path) -> None:
    _, csr = make_csr("from-file")
    csr_file = tmp_path / "req.csr"
    csr_file.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    out = tmp_path / "cert.der"
    result = est(server, "--json", "enroll", "--csr", str(csr_file), "--der", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert x509.load_der_x509_certificate(out.read_bytes()).subject == csr.subject
    payload = json.loads(result.stdout)
    assert payload["status"] == "issued"
    assert payload["certificate"]["subject"] == "CN=from-file"


def test_reenroll_renews_with_the_client_certificate(server: EstServer, tmp_path: Path) -> None:
    key_out, cert_out = tmp_path / "k.pem", tmp_path / "c.pem"
    args = ["--new-key", "ec:P-256", "--subject", "CN=renewing", "--san", "r.example.test"]
    assert est(server, "enroll", *args, "--key-out", str(key_out), "-o", str(cert_out)).exit_code == 0
    renewed = tmp_path / "renewed.pem"
    result = est(server, "--cert", str(cert_out), "--key", str(key_out), "reenroll", "-o", str(renewed), user=False)
    assert result.exit_code == 0, result.output
    old = x509.load_pem_x509_certificate(cert_out.read_bytes())
    new = x509.load_pem_x509_certificate(renewed.read_bytes())
    assert new.subject == old.subject and new.public_key() == old.public_key()
    assert new.serial_number != old.serial_number
    assert server.requests[-1].client_certificate == old


def test_serverkeygen_writes_the_key_0600(server: EstServer, tmp_path: Path) -> None:
    key_out, cert_out = tmp_path / "gen.key", tmp_path / "gen.pem"
    result = est(server, "serverkeygen", "--subject", "CN=generated", "--key-out", str(key_out), "-o", str(cert_out))
    assert result.exit_code == 0, result.output
    assert key_out.stat().st_mode & 0o777 == 0o600
    key = serialization.load_pem_private_key(key_out.read_bytes(), None)
    assert x509.load_pem_x509_certificate(cert_out.read_bytes()).public_key() == key.public_key()


def test_fullcmc(server: EstServer, tmp_path: Path) -> None:
    out = tmp_path / "cmc.pem"
    key_out = tmp_path / "cmc.key"
    result = est(
        server, "fullcmc", "--new-key", "ec:P-256", "--subject", "CN=cmc", "--key-out", str(key_out), "-o", str(out)
    )
    assert result.exit_code == 0, result.output
    assert x509.load_pem_x509_certificate(out.read_bytes()).subject.rfc4514_string() == "CN=cmc"


def test_wrong_password_is_exit_3_and_writes_nothing(server: EstServer, tmp_path: Path) -> None:
    out, key_out = tmp_path / "x.pem", tmp_path / "x.key"
    args = ["--server", server.url, "--ca-file", str(server.ca_file), "--user", "estuser", "--json", "enroll"]
    args += ["--new-key", "ec:P-256", "--subject", "CN=x", "--key-out", str(key_out), "-o", str(out)]
    result = CliRunner().invoke(cli, args, env={"EST_PASSWORD": "wrong"})
    assert result.exit_code == ExitCode.AUTH
    assert json.loads(result.stdout)["error"] == "AuthenticationError"
    assert not out.exists() and not key_out.exists()


def test_password_prompt(server: EstServer, tmp_path: Path) -> None:
    out = tmp_path / "p.pem"
    args = ["--server", server.url, "--ca-file", str(server.ca_file), "--user", "estuser", "enroll"]
    args += ["--new-key", "ec:P-256", "--subject", "CN=prompted", "--key-out", str(tmp_path / "p.key"), "-o", str(out)]
    result = CliRunner().invoke(cli, args, env={"EST_PASSWORD": None}, input=f"{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output


def test_untrusted_server_is_exit_4(server: EstServer, tmp_path: Path) -> None:
    other = tmp_path / "other.pem"
    other.write_bytes(LocalCa.generate("Other").pem)
    out = tmp_path / "never.pem"
    result = CliRunner().invoke(cli, ["--server", server.url, "--ca-file", str(other), "cacerts", "-o", str(out)])
    assert result.exit_code == ExitCode.TRUST
    assert "fix:" in result.stderr
    assert not out.exists()


def test_usage_errors(server: EstServer, tmp_path: Path) -> None:
    csr_file = tmp_path / "r.csr"
    csr_file.write_bytes(make_csr()[1].public_bytes(serialization.Encoding.PEM))
    assert est(server, "enroll", "--csr", str(csr_file), "--new-key", "ec:P-256").exit_code == ExitCode.USAGE
    assert (
        est(server, "enroll", "--new-key", "ec:P-256", "--subject", "CN=a").exit_code == ExitCode.USAGE
    )  # no --key-out
    assert est(server, "enroll", "--new-key", "dsa:1024", "--key-out", str(tmp_path / "k")).exit_code == ExitCode.USAGE
    # "²".isdigit() is True but int("²") fails: a usage error, not a traceback
    superscript = est(
        server, "enroll", "--new-key", "rsa:\u00b2", "--subject", "CN=a", "--key-out", str(tmp_path / "k")
    )
    assert superscript.exit_code == ExitCode.USAGE, superscript.output
    assert est(server, "reenroll", "--csr", str(csr_file)).exit_code == ExitCode.USAGE  # no --cert
    assert CliRunner().invoke(cli, ["cacerts"]).exit_code == ExitCode.USAGE  # no --server


def test_pending_is_exit_8_then_approved(tmp_path: Path) -> None:
    with EstServer(users={"estuser": PASSWORD}, manual_approval=True, retry_after=1) as srv:
        assert srv.approvals is not None
        key_out, out = tmp_path / "held.key", tmp_path / "held.pem"
        first = est(
            srv, "enroll", "--new-key", "ec:P-256", "--subject", "CN=held", "--key-out", str(key_out), "-o", str(out)
        )
        assert first.exit_code == ExitCode.PENDING, first.output
        assert "retry" in first.stderr
        assert key_out.exists() and not out.exists()  # the key is kept to send the same request again
        [pending] = srv.approvals.pending()
        srv.approvals.approve(pending.request_id)
        again = est(srv, "enroll", "--key", str(key_out), "--subject", "CN=held", "-o", str(out))
        assert again.exit_code == 0, again.output
        assert out.exists()


FAULTS = [
    (Fault(FaultKind.SERVER_ERROR, status=500), ExitCode.SERVER, "ServerError"),
    (Fault(FaultKind.DROP_MID_BODY), ExitCode.CONNECTION, None),
    (Fault(FaultKind.DROP_BEFORE_RESPONSE), ExitCode.CONNECTION, None),
    (Fault(FaultKind.BAD_BASE64), ExitCode.MALFORMED, "MalformedResponseError"),
    (Fault(FaultKind.TRUNCATED_PKCS7), ExitCode.MALFORMED, "MalformedResponseError"),
    (Fault(FaultKind.WRONG_CONTENT_TYPE), ExitCode.MALFORMED, "MalformedResponseError"),
    (Fault(FaultKind.DELAY, seconds=2.0), ExitCode.CONNECTION, "EstTimeoutError"),
]


@pytest.mark.parametrize(("fault", "code", "error"), FAULTS, ids=[f[0].kind.value for f in FAULTS])
@pytest.mark.parametrize("command", ["cacerts", "enroll"])
def test_each_fault_gives_its_error_and_no_file(
    server: EstServer, tmp_path: Path, fault: Fault, code: ExitCode, error: str | None, command: str
) -> None:
    out, key_out = tmp_path / "out.pem", tmp_path / "out.key"
    args = ["--timeout", "0.5", "--json", command, "-o", str(out)]
    if command == "enroll":
        args += ["--new-key", "ec:P-256", "--subject", "CN=faulty", "--key-out", str(key_out)]
    operation = "cacerts" if command == "cacerts" else "simpleenroll"
    with server.faults(Fault(fault.kind, operations={operation}, seconds=fault.seconds, status=fault.status)):
        result = est(server, *args)
    assert result.exit_code == code, result.output
    payload = json.loads(result.stdout)
    if error is not None:
        assert payload["error"] == error
    assert payload["hint"]
    assert not out.exists() and not key_out.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary leftovers either


def test_serve_with_a_given_ca_prints_url_and_ca_file_and_serves(tmp_path: Path) -> None:
    ca = LocalCa.generate("Given CA")
    ca_cert, ca_key = tmp_path / "ca.pem", tmp_path / "ca.key"
    ca_cert.write_bytes(ca.pem)
    ca_key.write_bytes(
        ca.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    code = "import sys; from estclient._cli import main; sys.exit(main())"
    cmd = [sys.executable, "-c", code, "--json", "serve", "--port", "0", "--user", "alice"]
    cmd += ["--ca-cert", str(ca_cert), "--ca-key", str(ca_key), "--dir", str(tmp_path / "srv")]
    env = {**os.environ, "EST_PASSWORD": "pw"}
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True) as proc:
        try:
            assert proc.stdout is not None
            info = json.loads(proc.stdout.readline())
            assert info["users"] == ["alice"]
            assert Path(info["ca_file"]).read_bytes() == ca.pem  # the TLS certificate is issued by the given CA
            out = tmp_path / "got.pem"
            trust = ["--server", info["url"], "--ca-file", info["ca_file"]]
            result = CliRunner().invoke(cli, [*trust, "cacerts", "-o", str(out)])
            assert result.exit_code == 0, result.output
            assert x509.load_pem_x509_certificates(out.read_bytes()) == [ca.certificate]
            args = [*trust, "--user", "alice", "enroll", "--new-key", "ec:P-256", "--subject", "CN=via-serve"]
            args += ["--key-out", str(tmp_path / "k"), "-o", str(tmp_path / "c")]
            enrolled = CliRunner().invoke(cli, args, env={"EST_PASSWORD": "pw"})
            assert enrolled.exit_code == 0, enrolled.output
            issued = x509.load_pem_x509_certificate((tmp_path / "c").read_bytes())
            assert issued.issuer == ca.certificate.subject
            refused = CliRunner().invoke(cli, args, env={"EST_PASSWORD": "wrong"})
            assert refused.exit_code == ExitCode.AUTH
        finally:
            proc.terminate()
            proc.wait(10)
    assert proc.returncode == 0


def test_json_without_out_carries_the_pem(server: EstServer) -> None:
    result = est(server, "--json", "cacerts")
    assert result.exit_code == 0
    payload = json.loads(result.stdout)
    assert x509.load_pem_x509_certificates(payload["pem"].encode()) == [_ca(server)]
    assert payload["certificates"][0]["sha256_fingerprint"] == certificate_fingerprint(_ca(server))


def test_unwritable_output_is_a_clean_error(server: EstServer, tmp_path: Path) -> None:
    result = est(server, "cacerts", "-o", str(tmp_path / "missing-dir" / "ca.pem"))
    assert result.exit_code == ExitCode.ERROR
    assert "cannot write" in result.stderr


def test_server_on_ipv6_loopback() -> None:
    with EstServer(host="::1") as srv:
        result = CliRunner().invoke(
            cli, ["--server", f"https://[::1]:{srv.port}", "--ca-file", str(srv.ca_file), "cacerts"]
        )
        assert result.exit_code == 0, result.output


def test_csrattrs_table_lists_the_requirements() -> None:
    from cryptography.x509.oid import AttributeOID

    from estclient._csrattrs import CsrAttribute, CsrAttrOid, CsrAttrs

    attrs = CsrAttrs((CsrAttrOid(AttributeOID.CHALLENGE_PASSWORD), CsrAttribute.ec_public_key("secp384r1")))
    with EstServer(LocalCaBackend(csr_attributes=attrs)) as srv:
        result = est(srv, "csrattrs", user=False)
        assert result.exit_code == 0, result.output
        assert "1.2.840.113549.1.9.7" in result.stdout
        assert "1.2.840.10045.2.1" in result.stdout
        assert "PoP linking" in result.stdout
        as_json = json.loads(est(srv, "--json", "csrattrs", user=False).stdout)
        assert as_json["challenge_password"] is True
        assert [i["kind"] for i in as_json["items"]] == ["oid", "attribute"]


def test_server_text_with_brackets_is_shown_verbatim(tmp_path: Path) -> None:
    class _Refusing(LocalCaBackend):
        def enroll(self, csr: x509.CertificateSigningRequest, **kwargs: object) -> Any:
            raise EnrollmentRejected("[Error 403: template [CiscoRA] not allowed]", http_status=403)

    with EstServer(_Refusing()) as srv:
        result = est(srv, "enroll", "--csr", str(_csr_file(tmp_path)), user=False)
    assert result.exit_code == ExitCode.AUTH
    assert "[Error 403: template [CiscoRA] not allowed]" in result.stderr


def _csr_file(folder: Path) -> Path:
    path = folder / "req.pem"
    path.write_bytes(make_csr()[1].public_bytes(serialization.Encoding.PEM))
    return path


def test_label_digest_and_chain_options(tmp_path: Path) -> None:
    with EstServer(users={"estuser": PASSWORD}, http_auth="digest", labels={"phones"}) as srv:
        out = tmp_path / "chain.pem"
        args = ["--label", "phones", "--digest", "enroll", "--new-key", "ec:P-256", "--subject", "CN=labelled"]
        result = est(srv, *args, "--key-out", str(tmp_path / "k.pem"), "--chain", "-o", str(out))
        assert result.exit_code == 0, result.output
        certs = x509.load_pem_x509_certificates(out.read_bytes())
        assert certs[0].subject.rfc4514_string() == "CN=labelled"
        assert certs[-1] == _ca(srv)  # --chain appended the CA
        assert (srv.requests[-1].label, srv.requests[-1].status) == ("phones", 200)
        basic = est(srv, "--label", "phones", "csrattrs")  # csrattrs needs no auth: fine without --digest
        assert basic.exit_code == 0, basic.output
        unknown = est(srv, "--label", "printers", "--digest", "enroll", "--csr", str(_named_csr_file(tmp_path)))
        assert unknown.exit_code == ExitCode.SERVER, unknown.output


def test_wait_waits_out_the_pending_answer(tmp_path: Path) -> None:
    import threading

    with EstServer(users={"estuser": PASSWORD}, manual_approval=True, retry_after=1) as srv:
        approvals = srv.approvals
        assert approvals is not None

        def approve_when_held() -> None:
            for _ in range(200):
                pending = approvals.pending()
                if pending:
                    approvals.approve(pending[0].request_id)
                    return
                threading.Event().wait(0.02)

        approver = threading.Thread(target=approve_when_held)
        approver.start()
        out = tmp_path / "waited.pem"
        result = est(srv, "enroll", "--csr", str(_named_csr_file(tmp_path)), "--wait", "-o", str(out))
        approver.join()
        assert result.exit_code == 0, result.output
        assert x509.load_pem_x509_certificate(out.read_bytes()).subject.rfc4514_string() == "CN=from-file-wait"


def _named_csr_file(folder: Path) -> Path:
    _, csr = make_csr("from-file-wait")
    path = folder / "req.csr"
    path.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    return path


def test_invalid_input_files_and_server_url_are_usage_errors(server: EstServer, tmp_path: Path) -> None:
    """cli.md: exit 2 for bad options and unreadable or invalid input files, with the cause and the fix."""
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    base = ["--server", server.url]
    bad_ca = CliRunner().invoke(cli, [*base, "--ca-file", str(junk), "cacerts"], env=ENV)
    assert bad_ca.exit_code == ExitCode.USAGE, bad_ca.output
    assert "fix:" in bad_ca.stderr
    ca = ["--ca-file", str(server.ca_file)]
    bad_cert = CliRunner().invoke(cli, [*base, *ca, "--cert", str(junk), "--key", str(junk), "cacerts"], env=ENV)
    assert bad_cert.exit_code == ExitCode.USAGE, bad_cert.output
    bad_url = CliRunner().invoke(cli, ["--server", "http://est.example.test", *ca, "--json", "cacerts"], env=ENV)
    assert bad_url.exit_code == ExitCode.USAGE, bad_url.output
    assert json.loads(bad_url.stdout)["exit_code"] == ExitCode.USAGE
    bad_print = CliRunner().invoke(cli, [*base, "--bootstrap", "--fingerprint", "zz", "cacerts"], env=ENV)
    assert bad_print.exit_code == ExitCode.USAGE, bad_print.output


def test_fingerprints_and_server_texts_are_printed_verbatim_not_as_emoji(
    server: EstServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """rich turns ':CD:' into an emoji by default: a fingerprint shown that way cannot be compared."""
    import estclient._cli_app as cli_app

    fingerprint = "5B:B9:B2:CD:C1:AB:A:B:" + ":".join(["00"] * 24)
    monkeypatch.setattr(cli_app, "certificate_fingerprint", lambda cert: fingerprint)
    result = CliRunner().invoke(cli, ["--server", server.url, "--bootstrap", "cacerts"], input="n\n")
    assert result.exit_code == ExitCode.TRUST
    assert f"SHA-256: {fingerprint}" in result.stderr

    class _Refusing(LocalCaBackend):
        def enroll(self, csr: x509.CertificateSigningRequest, **kwargs: object) -> Any:
            raise EnrollmentRejected("not today :cd: :smile: :AB:", http_status=400)

    with EstServer(_Refusing()) as srv:
        refused = est(srv, "enroll", "--csr", str(_named_csr_file(tmp_path)), user=False)
    assert refused.exit_code == ExitCode.SERVER, refused.output
    assert "not today :cd: :smile: :AB:" in refused.stderr
