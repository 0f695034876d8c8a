"""The ``certsrv`` command against the AD CS emulator over real TLS: client commands, ``emulate`` and ``check``.

``check`` must name each of the seed's common problems: the test PKI's broken certificates reproduce the TLS
ones, a name under ``.invalid`` the DNS one, a closed port the TCP one, a wrong password and a slow 401 the
authentication ones, and a typo the template one.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography import x509

from certsrv._cli_app import cli, write_atomic
from certsrv.testing import AdcsEmulator, CertificateTemplate, Policy
from tests._support.pki import Credential, TestPki
from tests.certsrv._emulator_helpers import ALICE, PASSWORD, USERS, csr_pem

TEMPLATES = [CertificateTemplate("WebServer"), CertificateTemplate("Manual", policy=Policy.PENDING)]


def _run(args: list[str], password: str = PASSWORD) -> Result:
    return CliRunner().invoke(cli, args, env={"CERTSRV_PASSWORD": password}, catch_exceptions=False)


def _base(url: str, ca_file: Path | str, *extra: str) -> list[str]:
    return ["--url", url, "--auth", "ntlm", "--user", ALICE, "--ca-file", str(ca_file), *extra]


@pytest.fixture(scope="module")
def emulator() -> Iterator[AdcsEmulator]:
    with AdcsEmulator(users=USERS, templates=TEMPLATES, renewals=1) as running:
        yield running


def test_submit_retrieve_and_downloads(emulator: AdcsEmulator, tmp_path: Path) -> None:
    csr = tmp_path / "phone.csr"
    csr.write_text(csr_pem("SEP74A02FC0A675"))
    out = tmp_path / "phone.pem"
    result = _run(
        _base(
            emulator.url,
            emulator.ca_file,
            "--json",
            "submit",
            "--csr",
            str(csr),
            "--template",
            "WebServer",
            "-o",
            str(out),
        )
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["status"] == "issued"
    cert = x509.load_pem_x509_certificate(out.read_bytes())
    assert cert.subject.rfc4514_string() == "CN=SEP74A02FC0A675"

    again = tmp_path / "again.der"
    result = _run(
        _base(emulator.url, emulator.ca_file, "retrieve", "--id", str(data["request_id"]), "-o", str(again), "--der")
    )
    assert result.exit_code == 0, result.output
    assert x509.load_der_x509_certificate(again.read_bytes()) == cert

    ca = tmp_path / "ca.pem"
    assert _run(_base(emulator.url, emulator.ca_file, "ca-cert", "-o", str(ca))).exit_code == 0
    assert x509.load_pem_x509_certificate(ca.read_bytes()) == emulator.ca.ca_certificate()
    old = _run(_base(emulator.url, emulator.ca_file, "ca-cert", "--renewal", "0"))
    assert x509.load_pem_x509_certificate(old.stdout_bytes) == emulator.ca.ca_certificate(0)
    chain = _run(_base(emulator.url, emulator.ca_file, "ca-chain"))
    assert set(x509.load_pem_x509_certificates(chain.stdout_bytes)) == set(emulator.ca.ca_chain())
    base = _run(_base(emulator.url, emulator.ca_file, "crl"))
    assert x509.load_pem_x509_crl(base.stdout_bytes).extensions.get_extension_for_class(x509.CRLNumber)
    delta = _run(_base(emulator.url, emulator.ca_file, "--json", "crl", "--delta"))
    assert json.loads(delta.output)["type"] == "delta"


def test_pending_exit_code_then_retrieve(emulator: AdcsEmulator, tmp_path: Path) -> None:
    csr = tmp_path / "req.csr"
    csr.write_text(csr_pem())
    out = tmp_path / "cert.pem"
    result = _run(
        _base(
            emulator.url,
            emulator.ca_file,
            "--json",
            "submit",
            "--csr",
            str(csr),
            "--template",
            "Manual",
            "-o",
            str(out),
        )
    )
    assert result.exit_code == 7
    request_id = json.loads(result.output)["request_id"]
    assert not out.exists()
    assert (
        _run(_base(emulator.url, emulator.ca_file, "retrieve", "--id", str(request_id), "-o", str(out))).exit_code == 7
    )
    emulator.approve(request_id)
    assert (
        _run(_base(emulator.url, emulator.ca_file, "retrieve", "--id", str(request_id), "-o", str(out))).exit_code == 0
    )
    assert x509.load_pem_x509_certificate(out.read_bytes())


def test_error_exit_codes(emulator: AdcsEmulator, tmp_path: Path) -> None:
    csr = tmp_path / "req.csr"
    csr.write_text(csr_pem())
    out = tmp_path / "x.pem"
    denied = _run(
        _base(
            emulator.url, emulator.ca_file, "--json", "submit", "--csr", str(csr), "--template", "Nope", "-o", str(out)
        )
    )
    assert denied.exit_code == 6
    assert "Nope" in json.loads(denied.output)["message"]
    wrong = _run(_base(emulator.url, emulator.ca_file, "templates"), password="wrong")
    assert wrong.exit_code == 4
    assert PASSWORD not in wrong.output and "wrong" not in wrong.output.split("error:")[0]


def test_submit_passes_request_attributes(emulator: AdcsEmulator, tmp_path: Path) -> None:
    csr = tmp_path / "req.csr"
    csr.write_text(csr_pem())
    args = ["--json", "submit", "--csr", str(csr), "--template", "WebServer", "-o", str(tmp_path / "c.pem")]
    result = _run(_base(emulator.url, emulator.ca_file, *args, "--attr", "SAN:dns=phone.example.test"))
    assert result.exit_code == 0, result.output
    row = emulator.ca.get(json.loads(result.output)["request_id"])
    assert row is not None
    assert row.attributes["SAN"] == "dns=phone.example.test"
    assert row.template == "WebServer"
    bad = _run(_base(emulator.url, emulator.ca_file, *args, "--attr", "no-colon"))
    assert bad.exit_code == 2


def test_templates_listing(emulator: AdcsEmulator) -> None:
    result = _run(_base(emulator.url, emulator.ca_file, "--json", "templates"))
    assert [t["name"] for t in json.loads(result.output)["templates"]] == ["WebServer", "Manual"]


def test_server_text_is_printed_literally_not_as_emoji() -> None:
    # rich turns ":CD:" into an emoji unless told not to; what the CA says must reach the user unchanged.
    templates = [CertificateTemplate("WebServer", display_name="Web :CD: Server")]
    with AdcsEmulator(users=USERS, templates=templates) as running:
        result = _run(_base(running.url, running.ca_file, "templates"))
    assert result.exit_code == 0, result.output
    assert "Web :CD: Server" in result.output


def test_write_atomic_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "out.pem"
    target.write_bytes(b"old content that is longer")
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.pem"]


def test_emulate_prints_url_and_ca_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["--json", "emulate", "--port", "0", "--user", "EXAMPLE\\alice:Passw0rd!", "--template", "CiscoRA:pending",
         "--language", "de", "--extended-protection", "required", "--serve-for", "0.2", "--fail-500", "certfnsh.asp",
         "--log-file", str(tmp_path / "iis.log")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(result.output.splitlines()) == 1  # one JSON line for a supervising process
    data = json.loads(result.output)
    assert data["url"].startswith("https://localhost:") and data["url"].endswith("/certsrv")
    assert data["templates"] == ["CiscoRA"]
    assert data["ca_file"].endswith("ca.pem")
    assert (tmp_path / "iis.log").read_text().startswith("#Software: Microsoft Internet Information Services")


def test_emulate_rejects_bad_users() -> None:
    result = CliRunner().invoke(cli, ["emulate", "--user", "alice:pw", "--serve-for", "0"])
    assert result.exit_code == 2
    assert "DOMAIN\\NAME:PASSWORD" in result.output


# -- check: each seed problem named ---------------------------------------------------------------------------


def _check(
    url: str, ca_file: Path | str, template: str = "WebServer", password: str = PASSWORD, *extra: str
) -> tuple[int, dict[str, object]]:
    result = _run(_base(url, ca_file, "--json", *extra, "check", "--template", template), password=password)
    return result.exit_code, json.loads(result.output)


def _emulator_with(cred: Credential, *, send_chain: bool = True) -> AdcsEmulator:
    assert cred.chain_path and cred.cert_path and cred.key_path
    return AdcsEmulator(
        users=USERS,
        templates=TEMPLATES,
        tls_cert_file=cred.chain_path if send_chain else cred.cert_path,
        tls_key_file=cred.key_path,
    )


def test_check_all_good(pki: TestPki) -> None:
    with _emulator_with(pki.server) as emulator:
        code, report = _check(emulator.url, pki.ca_bundle)
    assert code == 0, report
    assert report["ok"] is True
    steps = report["steps"]
    assert isinstance(steps, list)
    assert [s["id"] for s in steps] == [
        "dns", "tcp", "tls", "missing-issuer", "self-signed", "hostname-mismatch", "validity", "authentication",
        "template", "enrollment",
    ]  # fmt: skip
    assert {s["status"] for s in steps} == {"ok"}


@pytest.mark.parametrize(
    ("name", "send_chain", "problem", "code", "words"),
    [
        ("server", False, "missing-issuer", 14, "Test Issuing CA"),
        ("self_signed", True, "self-signed", 15, "self-signed"),
        ("wrong_name", True, "hostname-mismatch", 16, "wrong-host.example.test"),
        ("not_yet_valid", True, "not-yet-valid", 17, "not yet valid"),
        ("expired", True, "expired", 17, "expired"),
    ],
)
def test_check_names_tls_problems(
    pki: TestPki, name: str, send_chain: bool, problem: str, code: int, words: str
) -> None:
    cred = getattr(pki, name)
    with _emulator_with(cred, send_chain=send_chain) as emulator:
        exit_code, report = _check(emulator.url, pki.ca_bundle)
    assert exit_code == code, report
    assert report["failed_step"] == (problem if code != 17 else "validity")
    assert report["problem"] == problem
    failed = next(s for s in report["steps"] if s["status"] == "failed")  # type: ignore[attr-defined]
    assert words in failed["detail"]
    assert failed["fix"]


def test_check_dns(pki: TestPki) -> None:
    code, report = _check("https://adcs-lab-dcc.invalid/certsrv", pki.ca_bundle)
    assert (code, report["failed_step"]) == (11, "dns")
    steps = report["steps"]
    assert isinstance(steps, list)
    assert {s["status"] for s in steps[1:]} == {"skipped"}


def test_check_tcp(pki: TestPki) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code, report = _check(f"https://127.0.0.1:{port}/certsrv", pki.ca_bundle)
    assert (code, report["failed_step"]) == (12, "tcp")


def test_check_wrong_password(pki: TestPki) -> None:
    with _emulator_with(pki.server) as emulator:
        code, report = _check(emulator.url, pki.ca_bundle, password="not-the-password")
    assert (code, report["failed_step"], report["problem"]) == (18, "authentication", "authentication")


def test_check_authentication_timeout(pki: TestPki) -> None:
    with _emulator_with(pki.server) as emulator:
        emulator.faults.auth_delay = 4.0
        code, report = _check(emulator.url, pki.ca_bundle, "WebServer", PASSWORD, "--timeout", "1.5")
        emulator.faults.clear()
    assert (code, report["failed_step"], report["problem"]) == (18, "authentication", "auth-timeout")


def test_check_enrollment_timeout_on_the_ca_chain(pki: TestPki) -> None:
    """The seed's "CES enrollment timeout": authenticated, then certnew.p7b?ReqID=CACert does not answer in time."""
    with _emulator_with(pki.server) as emulator:
        emulator.faults.download_delay = 4.0
        code, report = _check(emulator.url, pki.ca_bundle, "WebServer", PASSWORD, "--timeout", "1.5")
        emulator.faults.clear()
    assert (code, report["failed_step"], report["problem"]) == (20, "enrollment", "enroll-timeout")


def test_check_test_enrollment(pki: TestPki) -> None:
    with _emulator_with(pki.server) as emulator:
        result = _run(_base(emulator.url, pki.ca_bundle, "--json", "check", "--template", "WebServer", "--test-enroll"))
        assert result.exit_code == 0, result.output
        assert len(emulator.ca.requests) == 1
        emulator.faults.enroll_delay = 4.0
        args = _base(emulator.url, pki.ca_bundle, "--json", "--timeout", "1.5", "check", "--template", "WebServer")
        slow = _run([*args, "--test-enroll"])
        emulator.faults.clear()
    report = json.loads(slow.output)
    assert (slow.exit_code, report["problem"]) == (20, "enroll-timeout")


def test_check_template_typo(pki: TestPki) -> None:
    with _emulator_with(pki.server) as emulator:
        code, report = _check(emulator.url, pki.ca_bundle, template="WebSrever")
    assert (code, report["failed_step"]) == (19, "template")
    failed = report["steps"][-2]  # type: ignore[index]
    assert failed["id"] == "template"
    assert "WebServer, Manual" in failed["detail"]


def test_check_human_output(pki: TestPki) -> None:
    with _emulator_with(pki.server, send_chain=False) as emulator:
        result = _run(_base(emulator.url, pki.ca_bundle, "check", "--template", "WebServer"))
    assert result.exit_code == 14
    assert "FAILED" in result.output and "missing-issuer" in result.output and "fix:" in result.output


# -- credentials, client certificates, the documented contract ---------------------------------------------------


def test_password_prompt_when_the_environment_has_none(emulator: AdcsEmulator) -> None:
    result = CliRunner().invoke(
        cli, _base(emulator.url, emulator.ca_file, "templates"), input=f"{PASSWORD}\n", env={"CERTSRV_PASSWORD": None}
    )
    assert result.exit_code == 0, result.output
    assert "Password for EXAMPLE\\alice" in result.output
    assert "WebServer" in result.output
    assert PASSWORD not in result.output  # the prompt hides the input


def test_no_secret_in_output_or_logs(emulator: AdcsEmulator, caplog: pytest.LogCaptureFixture) -> None:
    secret = "Wr0ng-S3cret-Value"
    with caplog.at_level("DEBUG"):
        refused = _run(_base(emulator.url, emulator.ca_file, "--json", "templates"), password=secret)
        accepted = _run(_base(emulator.url, emulator.ca_file, "templates"))
    assert refused.exit_code == 4, refused.output
    assert json.loads(refused.output)["error"] == "authentication"
    assert accepted.exit_code == 0, accepted.output
    for text in (refused.output, accepted.output, caplog.text):
        assert secret not in text and PASSWORD not in text


def test_client_certificate_authentication(pki: TestPki, tmp_path: Path) -> None:
    from tests._support.tls_http import Request, Response, serve_tls
    from tests.certsrv._pages_data import page

    seen: list[bool] = []

    def handler(request: Request) -> Response:
        seen.append(request.tls.getpeercert() is not None)
        return Response(200, [("Content-Type", "text/html")], page("certrqxt"))

    assert pki.client.cert_path and pki.client.key_path
    combined = tmp_path / "client.pem"
    combined.write_bytes(pki.client.cert_path.read_bytes() + pki.client.key_path.read_bytes())
    with serve_tls(handler, pki.server_context(client_auth=ssl.CERT_REQUIRED)) as server:
        args = ["--url", f"https://localhost:{server.port}/certsrv", "--auth", "cert", "--client-cert", str(combined),
                "--ca-file", str(pki.ca_bundle), "--json", "templates"]  # fmt: skip
        result = CliRunner().invoke(cli, args, env={"CERTSRV_PASSWORD": None})
        without = CliRunner().invoke(cli, args[:4] + args[6:], env={"CERTSRV_PASSWORD": None})
    assert result.exit_code == 0, result.output
    assert "WebServer" in result.output
    assert seen and all(seen)
    assert without.exit_code == 2 and "client certificate" in without.output  # --auth cert needs --client-cert


DOC = Path(__file__).parents[2] / "docs" / "certsrv" / "cli.md"


def test_documented_check_steps_and_exit_codes_match_the_code() -> None:
    from certsrv import _cli_app
    from certsrv._cli_check import STEPS

    text = DOC.read_text(encoding="utf-8")
    steps_table = text.split("| step id |", 1)[1].split("\n\n", 1)[0]
    documented = [
        (m.group(1), int(m.group(2))) for m in re.finditer(r"^\| `([a-z-]+)` \|.*\| (\d+) \|$", steps_table, re.M)
    ]
    assert documented == [(step_id, code) for step_id, _, code in STEPS]

    codes_table = text.split("## Exit codes", 1)[1]
    documented_codes = {int(m.group(1)) for m in re.finditer(r"^\| (\d+) \|", codes_table, re.M)}
    constants = {value for name, value in vars(_cli_app).items() if name.startswith("EXIT_") and isinstance(value, int)}
    assert constants and constants <= documented_codes
    assert f"| {min(c for _, _, c in STEPS)}-{max(c for _, _, c in STEPS)} |" in codes_table


def test_texts_with_rich_markup_are_printed_verbatim(tmp_path: Path) -> None:
    # template names, display names and messages come from the user or the CA: "[/x]" is text, not rich markup
    csr = tmp_path / "req.csr"
    csr.write_text(csr_pem())
    templates = [CertificateTemplate("WebServer", display_name="Web [/Server] [bold]x")]
    with AdcsEmulator(users=USERS, templates=templates) as emu:
        listing = _run(_base(emu.url, emu.ca_file, "templates"))
        refused = _run(
            _base(
                emu.url,
                emu.ca_file,
                "submit",
                "--csr",
                str(csr),
                "--template",
                "[/Web]Server",
                "-o",
                str(tmp_path / "x.pem"),
            )
        )
        checked = _run(_base(emu.url, emu.ca_file, "check", "--template", "[/Web]Server"))
    assert listing.exit_code == 0, listing.output
    assert "Web [/Server] [bold]x" in listing.output
    assert refused.exit_code == 6, refused.output
    assert "'[/Web]Server'" in refused.output
    assert checked.exit_code == 19, checked.output
    assert "[/Web]Server" in checked.output


def test_check_text_columns_align_on_the_visible_text(pki: TestPki) -> None:
    # the status column is padded on what the reader sees ("ok", "FAILED", "skipped"), not on rich's colour markup
    with _emulator_with(pki.server, send_chain=False) as emulator:
        result = _run(_base(emulator.url, pki.ca_bundle, "check", "--template", "WebServer"))
    assert result.exit_code == 14, result.output
    columns = set()
    for line in result.output.splitlines():
        status = line.split(" ", 1)[0]
        if status in ("ok", "FAILED", "skipped"):
            step_id = line.split()[1]
            columns.add(line.index(f" {step_id} ("))
    assert len(columns) == 1, result.output
    statuses = {line.split(" ", 1)[0] for line in result.output.splitlines()}
    assert {"ok", "FAILED", "skipped"} <= statuses


def test_check_auth_timeout_states_the_problem_once_and_one_fix(pki: TestPki) -> None:
    with _emulator_with(pki.server) as emulator:
        emulator.faults.auth_delay = 4.0
        args = _base(emulator.url, pki.ca_bundle, "--timeout", "1.5", "check", "--template", "WebServer")
        result = _run(args)
        emulator.faults.clear()
    assert result.exit_code == 18, result.output
    assert result.output.count("timeout during authentication") == 1, result.output
    assert "Fix:" not in result.output, result.output
    assert result.output.count("fix:") == 1, result.output
    assert "1.5 s" in result.output


@pytest.mark.parametrize("phase", ["connect", "authentication", "enrollment", "retrieval"])
def test_timeout_hint_names_options_the_command_has(phase: str) -> None:
    from certsrv import CertsrvTimeoutError

    hint = str(CertsrvTimeoutError(phase=phase, limit=10.0)).split("Fix:", 1)[1]
    named = set(re.findall(r"--[a-z-]+", hint))
    assert named == {f"--timeout-{phase}"}
    options = {opt for param in cli.params for opt in param.opts}
    assert named <= options
    assert f"Timeouts({phase}=SECONDS)" in hint
    assert f"| `--timeout-{phase}` |" in DOC.read_text(encoding="utf-8")


def test_per_phase_timeout_options(pki: TestPki) -> None:
    with _emulator_with(pki.server) as emulator:
        emulator.faults.auth_delay = 4.0
        # only authentication is limited to 1.5 s: the check reports auth-timeout with that limit
        code, report = _check(emulator.url, pki.ca_bundle, "WebServer", PASSWORD, "--timeout-authentication", "1.5")
        emulator.faults.clear()
        emulator.faults.download_delay = 4.0
        # a short authentication limit does not limit the CA chain download; --timeout-retrieval does
        slow_ok, _ = _check(emulator.url, pki.ca_bundle, "WebServer", PASSWORD, "--timeout-authentication", "1.5")
        slow_bad, slow_report = _check(emulator.url, pki.ca_bundle, "WebServer", PASSWORD, "--timeout-retrieval", "1.5")
        emulator.faults.clear()
    assert (code, report["problem"]) == (18, "auth-timeout"), report
    failed = next(s for s in report["steps"] if s["status"] == "failed")  # type: ignore[attr-defined]
    assert "1.5 s" in failed["detail"] and "--timeout-authentication" in failed["fix"]
    assert slow_ok == 0
    assert (slow_bad, slow_report["problem"]) == (20, "enroll-timeout")


def test_timeout_options_combine_into_per_phase_limits() -> None:
    from certsrv import Timeouts
    from certsrv._cli_app import _Settings, _timeouts

    def limits(*args: str) -> Timeouts:
        ctx = cli.make_context("certsrv", [*args, "templates"])
        with ctx:
            assert cli.callback is not None
            ctx.invoke(cli.callback, **ctx.params)
        assert isinstance(ctx.obj, _Settings)
        return _timeouts(ctx.obj)

    assert limits() == Timeouts()
    assert limits("--timeout-authentication", "45") == Timeouts(authentication=45)
    assert limits("--timeout", "5", "--timeout-enrollment", "300", "--timeout-connect", "2") == Timeouts(
        connect=2, authentication=5, enrollment=300, retrieval=5
    )
