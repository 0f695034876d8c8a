"""The capf command: logs analyze, lsc inspect, ctl show (click.testing.CliRunner) and its exit codes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from capf_common import CtlRole, build_lsc
from capf_common._cli import main
from capf_common._cli_app import cli
from tests._support.pki import Credential, TestPki, issue
from tests.capf_common._ctl_support import build_ctl

DATA = Path(__file__).parent / "data"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_help_and_version(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    for group in ("logs", "lsc", "ctl"):
        assert group in result.output
    assert "Exit codes" in result.output
    assert runner.invoke(cli, ["--version"]).output.startswith("capf, version")


# -- logs analyze -----------------------------------------------------------------------------------------


def test_logs_analyze_healthy_exits_0(runner: CliRunner) -> None:
    result = runner.invoke(
        cli, ["logs", "analyze", str(DATA / "capf_lsc_install.txt"), str(DATA / "iis_lsc_install.log")]
    )
    assert result.exit_code == 0, result.output
    assert "healthy" in result.output


def test_logs_analyze_problem_exits_1_with_evidence_and_fix(runner: CliRunner) -> None:
    path = DATA / "nginx_hostname_mismatch.log"
    result = runner.invoke(cli, ["logs", "analyze", str(path)])
    assert result.exit_code == 1
    assert "hostname-mismatch" in result.output
    assert f"{path}:1: nginx: [warn] login_to_certsrv_ca" in result.output
    assert "Fix:" in result.output and "Online CA Hostname" in result.output


def test_log_text_is_printed_literally_not_as_emoji(runner: CliRunner, tmp_path: Path) -> None:
    # rich turns ":CD:" into an emoji unless told not to; evidence lines must reach the user unchanged.
    log = tmp_path / "error.log"
    log.write_text(
        "nginx: [warn] login_to_certsrv_ca: Curl call for MS CA login failed with return code 6 "
        "(Could not resolve: ca:CD:01.example.test (Domain name not found))\n"
    )
    result = runner.invoke(cli, ["logs", "analyze", str(log)])
    assert result.exit_code == 1, result.output
    assert "ca:CD:01.example.test" in result.output


def test_logs_analyze_json(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["logs", "analyze", "--json", str(DATA / "nginx_self_signed.log")])
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["verdict"] == "problems"
    assert data["problems"] == ["missing-issuer"]
    assert data["mentioned"] == ["missing-issuer", "self-signed"]
    assert data["findings"][0]["alternatives"] == ["self-signed"]
    assert data["findings"][0]["evidence"][0]["line"] == 1


def test_logs_analyze_timeline(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["logs", "analyze", "--timeline", str(DATA / "capf_ces_failure.txt")])
    assert result.exit_code == 1
    assert "Device SEP001F6C81118B" in result.output
    assert "Request capf:SEP001F6C81118B#1 failure" in result.output


def test_logs_analyze_bad_input_exits_3(runner: CliRunner, tmp_path: Path) -> None:
    missing = runner.invoke(cli, ["logs", "analyze", str(tmp_path / "nope.txt")])
    assert missing.exit_code == 3
    assert "cannot read the log" in missing.output
    notes = tmp_path / "notes.txt"
    notes.write_text("nothing that looks like a log\n")
    unknown = runner.invoke(cli, ["logs", "analyze", str(notes)])
    assert unknown.exit_code == 3
    assert "no entry" in unknown.output


def test_logs_analyze_without_files_is_a_usage_error(runner: CliRunner) -> None:
    assert runner.invoke(cli, ["logs", "analyze"]).exit_code == 2


def test_main_entry_point_returns_the_exit_code() -> None:
    assert main(["logs", "analyze", str(DATA / "nginx_dns.log")]) == 1
    assert main(["logs", "analyze", str(DATA / "capf_startup.txt")]) == 0


# -- lsc inspect ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lsc_files(pki: TestPki, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("lsc")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = build_lsc("SEP74A02FC0A675", key.public_key(), pki.intermediate.cert, pki.intermediate.key, model="CP-8865")
    files = {
        "pem": folder / "lsc.pem",
        "der": folder / "lsc.der",
        "bundle": folder / "bundle.pem",
        "issuer": folder / "issuer.pem",
        "client": folder / "client.pem",
        "junk": folder / "junk.pem",
    }
    files["pem"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files["der"].write_bytes(cert.public_bytes(serialization.Encoding.DER))
    files["bundle"].write_bytes(pki.intermediate.cert_pem + cert.public_bytes(serialization.Encoding.PEM))
    files["issuer"].write_bytes(pki.intermediate.cert_pem)
    files["client"].write_bytes(pki.client.cert_pem)
    files["junk"].write_bytes(b"not a certificate")
    return files


@pytest.mark.parametrize("kind", ["pem", "der", "bundle"])
def test_lsc_inspect_good_lsc_exits_0(runner: CliRunner, lsc_files: dict[str, Path], kind: str) -> None:
    result = runner.invoke(cli, ["lsc", "inspect", str(lsc_files[kind]), "--issuer", str(lsc_files["issuer"])])
    assert result.exit_code == 0, result.output
    assert "CP-8865-SEP74A02FC0A675" in result.output
    assert "LSC profile: ok" in result.output


def test_lsc_inspect_lists_deviations_and_exits_1(runner: CliRunner, lsc_files: dict[str, Path]) -> None:
    result = runner.invoke(cli, ["lsc", "inspect", str(lsc_files["client"])])
    assert result.exit_code == 1
    assert "device-name" in result.output and "key-usage" in result.output
    wrong = runner.invoke(cli, ["lsc", "inspect", "--json", str(lsc_files["pem"]), "--device", "SEP001F6C81118B"])
    assert wrong.exit_code == 1
    data = json.loads(wrong.output)
    assert data["ok"] is False
    assert [d["code"] for d in data["deviations"]] == ["subject-cn", "san-uri"]


def test_lsc_inspect_bad_input_exits_3(runner: CliRunner, lsc_files: dict[str, Path]) -> None:
    junk = runner.invoke(cli, ["lsc", "inspect", str(lsc_files["junk"])])
    assert junk.exit_code == 3
    assert "neither PEM, DER nor base64" in junk.output
    bad_device = runner.invoke(cli, ["lsc", "inspect", str(lsc_files["pem"]), "--device", "PHONE"])
    assert bad_device.exit_code == 3
    assert "invalid device name" in bad_device.output


# -- ctl show ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ctl_file(pki: TestPki, tmp_path_factory: pytest.TempPathFactory) -> Path:
    sast: Credential = issue("SAST-ADMIN", issuer=pki.intermediate, key_kind="rsa")
    path = tmp_path_factory.mktemp("ctl") / "CTLFile.tlv"
    path.write_bytes(build_ctl(sast, [(pki.server, int(CtlRole.CAPF))]))
    return path


def test_ctl_show_prints_header_and_roles(runner: CliRunner, ctl_file: Path) -> None:
    result = runner.invoke(cli, ["ctl", "show", str(ctl_file)])
    assert result.exit_code == 0, result.output
    assert "SAST" in result.output and "CAPF" in result.output and "valid" in result.output
    data = json.loads(runner.invoke(cli, ["ctl", "show", "--json", str(ctl_file)]).output)
    assert [r["role"] for r in data["records"]] == ["SAST", "CAPF"]
    assert data["signature_valid"] is True


def test_ctl_show_bad_signature_exits_1_and_malformed_exits_3(
    runner: CliRunner, ctl_file: Path, tmp_path: Path
) -> None:
    tampered = bytearray(ctl_file.read_bytes())
    tampered[-20] ^= 0x55
    bad = tmp_path / "tampered.tlv"
    bad.write_bytes(bytes(tampered))
    assert runner.invoke(cli, ["ctl", "show", str(bad)]).exit_code == 1
    broken = tmp_path / "broken.tlv"
    broken.write_bytes(ctl_file.read_bytes()[:30])
    result = runner.invoke(cli, ["ctl", "show", str(broken)])
    assert result.exit_code == 3
    assert "at byte" in result.output


def test_logs_analyze_reads_the_files_of_a_folder(runner: CliRunner, tmp_path: Path) -> None:
    for name in ("capf_ces_failure.txt", "nginx_auth_timeout.log", "iis_lsc_install.log"):
        (tmp_path / name).write_bytes((DATA / name).read_bytes())
    (tmp_path / "notes.md").write_text("not a log")
    result = runner.invoke(cli, ["logs", "analyze", "--json", str(tmp_path)])
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert set(data["problems"]) == {"ssl-read-error", "auth-timeout"}
    assert {f["source"] for f in data["files"]} == {"capf", "nginx", "iis", None}


def test_long_evidence_lists_are_shortened_in_text_output(runner: CliRunner, tmp_path: Path) -> None:
    line = "nginx: [warn] login_to_certsrv_ca: Curl call for MS CA login failed with return code 6 (Could not resolve)"
    log = tmp_path / "error.log"
    log.write_text("\n".join([line] * 20) + "\n")
    short = runner.invoke(cli, ["logs", "analyze", str(log)])
    assert short.exit_code == 1
    assert short.output.count("return code 6") == 12
    assert "... 8 more" in short.output
    full = runner.invoke(cli, ["logs", "analyze", "--timeline", str(log)])
    assert full.output.count("return code 6") >= 20


def test_logs_analyze_shows_progress_on_a_terminal(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    import capf_common
    import capf_common._cli_app as app

    calls: list[int] = []

    def counting(paths: list[Path], *, progress: Callable[[str, int, int], object]) -> capf_common.Report:
        def spy(name: str, done: int, total: int) -> None:
            calls.append(done)
            progress(name, done, total)

        return capf_common.analyze(paths, progress=spy)

    monkeypatch.setattr(app, "_stderr_is_terminal", lambda: True)
    monkeypatch.setattr(app, "analyze", counting)
    files = [str(DATA / "capf_lsc_install.txt"), str(DATA / "nginx_dns.log")]
    result = runner.invoke(cli, ["logs", "analyze", "--json", *files])
    assert result.exit_code == 1, result.output
    assert calls == [1, 2]
    assert json.loads(result.stdout)["problems"] == ["dns"]


def test_logs_analyze_groups_phones_and_puts_the_root_cause_first(runner: CliRunner, tmp_path: Path) -> None:
    from tests.capf_common.test_logs_seed import twenty_phones_and_the_ca_log

    files = [str(p) for p in twenty_phones_and_the_ca_log(tmp_path)]
    result = runner.invoke(cli, ["logs", "analyze", *files])
    assert result.exit_code == 1, result.output
    text = result.output
    assert text.index("auth-timeout:") < text.index("20 phones: ssl-read-error")
    assert text.count("ssl-read-error") == 1, text  # one heading for the 20 phones, not 20 blocks
    assert "2 problem(s) found (21 findings)" in text
    assert "SEP000000000000" in text and "SEP000000000019" in text  # every phone is named once, in the group
    assert text.count("Fix:") == 2  # one per problem, not one per phone
    data = json.loads(runner.invoke(cli, ["logs", "analyze", "--json", *files]).output)
    assert len(data["findings"]) == 21  # JSON keeps every finding
    assert data["findings"][0]["problem"] == "auth-timeout"
    timeline = runner.invoke(cli, ["logs", "analyze", "--timeline", *files]).output
    assert all(f"Evidence (SEP0000000000{n:02d}):" in timeline for n in range(20))  # --timeline shows every phone's
