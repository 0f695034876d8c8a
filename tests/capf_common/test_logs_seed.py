"""Every log excerpt of the seed document (tests/capf_common/data, see its README) is classified correctly."""

from __future__ import annotations

from pathlib import Path

import pytest

from capf_common import PROBLEMS, analyze

DATA = Path(__file__).parent / "data"

HEALTHY = [
    "nginx_ces_startup.log",
    "nginx_error_startup.log",
    "iis_ces_startup.log",
    "capf_startup.txt",
    "capf_lsc_install.txt",
    "iis_lsc_install.log",
]

# file -> (problem, alternatives the same evidence fits, a text every finding's evidence must contain)
PROBLEM_EXCERPTS = {
    "capf_ces_failure.txt": ("ssl-read-error", (), "EST_ERR_SSL_READ"),
    "nginx_missing_issuer.log": ("missing-issuer", ("self-signed",), "return code 60"),
    "nginx_self_signed.log": ("missing-issuer", ("self-signed",), "unable to get local issuer certificate"),
    "nginx_hostname_mismatch.log": ("hostname-mismatch", (), "does not match target host name"),
    "nginx_dns.log": ("dns", (), "return code 6"),
    "nginx_not_yet_valid.log": ("not-yet-valid", (), "certificate is not yet valid"),
    "nginx_template_typo.log": ("template-typo", (), "EST_ERR_AUTH_FAIL"),
    "nginx_auth_timeout.log": ("auth-timeout", (), "return code 28"),
    "nginx_enroll_timeout.log": ("enroll-timeout", (), "return code 28"),
}


def test_every_fixture_is_covered() -> None:
    files = {p.name for p in DATA.iterdir() if p.name != "README.md"}
    assert files == set(HEALTHY) | set(PROBLEM_EXCERPTS)


@pytest.mark.parametrize("name", HEALTHY)
def test_normal_start_up_and_lsc_install_are_healthy(name: str) -> None:
    report = analyze([DATA / name])
    assert report.verdict == "healthy", report.findings
    assert report.findings == ()
    assert report.files[0].source == name.split("_", 1)[0]
    assert report.files[0].entries > 0


def test_all_healthy_excerpts_together_are_healthy() -> None:
    report = analyze([DATA / name for name in HEALTHY])
    assert report.verdict == "healthy"
    assert set(report.devices) == {"SEP74A02FC0A675"}


@pytest.mark.parametrize("name", sorted(PROBLEM_EXCERPTS))
def test_problem_excerpts_name_their_problem(name: str) -> None:
    problem, alternatives, text = PROBLEM_EXCERPTS[name]
    report = analyze([DATA / name])
    assert report.verdict == "problems"
    assert report.problems == (problem,)
    finding = report.findings[0]
    assert finding.alternatives == alternatives
    if problem in ("auth-timeout", "enroll-timeout"):  # the fix states the limit the log shows
        assert "CSCvo58656" in finding.fix and "milliseconds" in finding.fix
    else:
        assert finding.fix == PROBLEMS[problem].fix
    assert any(text in e.text for e in finding.evidence)
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    for evidence in finding.evidence:
        assert evidence.path == str(DATA / name)
        first = lines[evidence.line - 1].strip()
        assert first and evidence.text.startswith(first), (evidence, first)


def test_self_signed_excerpt_mentions_self_signed() -> None:
    report = analyze([DATA / "nginx_self_signed.log"])
    assert report.mentions("self-signed")
    assert report.mentioned == ("missing-issuer", "self-signed")
    assert "self-signed" in report.findings[0].explanation


def test_extracted_details() -> None:
    dns = analyze([DATA / "nginx_dns.log"]).findings[0]
    assert dns.details["host"] == "lab-dcc.michamen.com"
    assert dns.details["curl_name"] == "CURLE_COULDNT_RESOLVE_HOST"
    mismatch = analyze([DATA / "nginx_hostname_mismatch.log"]).findings[0]
    assert (mismatch.details["certificate_name"], mismatch.details["host"]) == ("lab-dc", "lab-dc.michamen.com")
    enroll = analyze([DATA / "nginx_enroll_timeout.log"]).findings[0]
    assert enroll.details["url"] == "https://lab-dc.michamen.com:443/certsrv/certnew.p7b?ReqID=CACert&Renewal=0&Enc=bin"
    ssl = analyze([DATA / "capf_ces_failure.txt"]).findings[0]
    assert ssl.device == "SEP001F6C81118B"
    assert ssl.details["est_code"] == "35"
    assert len(ssl.evidence) == 4  # rv line, est_client_enroll_csr failed, return value, signing failed


def test_template_typo_evidence_shows_the_successful_ca_login() -> None:
    finding = analyze([DATA / "nginx_template_typo.log"]).findings[0]
    assert any("navigate_to_certsrv_page" in e.text for e in finding.evidence)
    assert [e.line for e in finding.evidence] == sorted(e.line for e in finding.evidence)


def test_lsc_install_timelines_per_device_and_request() -> None:
    report = analyze([DATA / "capf_lsc_install.txt", DATA / "iis_lsc_install.log"])
    device = report.devices["SEP74A02FC0A675"]
    assert any("Online Cert Signing successful" in e.text for e in device)
    capf = next(r for r in report.requests if r.source == "capf")
    iis = next(r for r in report.requests if r.source == "iis")
    assert capf.id == "capf:SEP74A02FC0A675#1" and capf.outcome == "success"
    assert iis.outcome == "success"
    assert [e.fields["cs-uri-stem"] for e in iis.entries][-1] == "/certsrv/certnew.cer"
    assert iis.id in capf.related and capf.id in iis.related


def test_ces_failure_with_nginx_cause_links_the_root_cause() -> None:
    report = analyze([DATA / "capf_ces_failure.txt", DATA / "nginx_auth_timeout.log"])
    assert report.problems == ("ssl-read-error", "auth-timeout") or report.problems == (
        "auth-timeout",
        "ssl-read-error",
    )
    ssl = next(f for f in report.findings if f.problem == "ssl-read-error")
    assert ssl.details["root_causes"] == "auth-timeout"
    failed = next(r for r in report.requests if r.source == "capf")
    assert failed.outcome == "failure" and failed.device == "SEP001F6C81118B"


def test_report_to_dict_is_json_ready() -> None:
    import json

    report = analyze([DATA / "nginx_dns.log", DATA / "capf_lsc_install.txt"])
    data = json.loads(json.dumps(report.to_dict()))
    assert data["verdict"] == "problems"
    assert data["problems"] == ["dns"]
    assert data["findings"][0]["evidence"][0]["line"] == 3
    assert "SEP74A02FC0A675" in data["devices"]


def test_progress_is_reported_per_file() -> None:
    names = ["capf_lsc_install.txt", "iis_lsc_install.log", "nginx_dns.log"]
    calls: list[tuple[str, int, int]] = []
    report = analyze([DATA / name for name in names], progress=lambda *call: calls.append(call))
    assert calls == [(str(DATA / name), number, 3) for number, name in enumerate(names, 1)]
    assert report.problems == ("dns",)
    from capf_common import analyze_logs

    seen: list[tuple[str, int, int]] = []
    analyze_logs(((name, (DATA / name).read_bytes()) for name in names[:2]), progress=lambda *c: seen.append(c))
    assert seen == [(names[0], 1, 2), (names[1], 2, 2)]


@pytest.mark.parametrize(
    ("name", "problem"), [("nginx_auth_timeout.log", "auth-timeout"), ("nginx_enroll_timeout.log", "enroll-timeout")]
)
def test_timeout_fix_states_the_limit_the_log_shows(name: str, problem: str) -> None:
    from capf_common import analyze_logs

    seed = (DATA / name).read_text(encoding="utf-8")
    assert "after 1000" in seed  # the seed's 10000 / 10001 ms
    for shown, limit in (("1000", "1 second"), ("2500", "2.5 seconds")):
        text = seed.replace("10000 milliseconds", f"{shown} milliseconds").replace(
            "10001 milliseconds", f"{shown} milliseconds"
        )
        finding = analyze_logs([(name, text)]).findings[0]
        assert finding.problem == problem
        assert limit in finding.fix and f"{shown} milliseconds" in finding.fix, finding.fix
        assert "10 seconds" not in finding.fix and "10-second" not in finding.fix, finding.fix
        assert "CSCvo58656" in finding.fix
        assert finding.details["timeout_ms"] == shown
    original = analyze([DATA / name]).findings[0]
    assert "CSCvo58656" in original.fix
    assert ("10 seconds" if problem == "auth-timeout" else "10.001 seconds") in original.fix


def twenty_phones_and_the_ca_log(folder: Path) -> list[Path]:
    """The seed's CAPF failure for 20 phones in one trace, and CiscoRA's log of the authentication timeout."""
    one = (DATA / "capf_ces_failure.txt").read_text(encoding="utf-8")
    trace = folder / "capf.txt"
    trace.write_text("".join(one.replace("SEP001F6C81118B", f"SEP0000000000{n:02d}") for n in range(20)))
    return [trace, DATA / "nginx_auth_timeout.log"]


def test_the_ca_side_root_cause_comes_first(tmp_path: Path) -> None:
    report = analyze(twenty_phones_and_the_ca_log(tmp_path))
    assert [f.problem for f in report.findings] == ["auth-timeout"] + ["ssl-read-error"] * 20
    assert report.problems == ("auth-timeout", "ssl-read-error")
    assert len({f.device for f in report.findings[1:]}) == 20
    assert report.to_dict()["findings"][0]["problem"] == "auth-timeout"  # type: ignore[index]
