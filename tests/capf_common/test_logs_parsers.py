"""The log parsers on the general formats (not only the seed's literal lines), and property tests."""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capf_common import (
    CapfError,
    LogReadError,
    analyze,
    analyze_entries,
    analyze_logs,
    detect_log_source,
    parse_capf_trace,
    parse_iis_log,
    parse_log,
    parse_nginx_error_log,
)


def test_capf_trace_with_dates_wrapped_lines_and_markers() -> None:
    text = (
        "Trace file header line\n"
        "11/27/2026 10:00:01.123 |-->debug\n"
        "11/27/2026 10:00:01.123 |   debug 2:sep0011223344aa:Enrollment rv = 22 (EST_ERR_AUTH_FAIL) with pkcs7\n"
        "length = 0\n"
        "11/27/2026 10:00:01.124 |<--debug\n"
    )
    entries = parse_capf_trace(text, "capf01.txt")
    assert [e.line for e in entries] == [1, 2, 3, 5]
    entry = entries[2]
    assert entry.end_line == 4
    assert entry.device == "SEP0011223344AA"
    assert entry.time_of_day == dt.time(10, 0, 1, 123000)
    assert entry.text.endswith("with pkcs7 length = 0")
    assert entries[1].function == "debug"
    as_dict = entry.to_dict()
    assert (as_dict["line"], as_dict["end_line"], as_dict["device"]) == (3, 4, "SEP0011223344AA")
    assert as_dict["time_of_day"] == "10:00:01.123000"
    report = analyze_entries(entries)
    assert report.problems == ("est-auth-failure",)
    assert report.findings[0].device == "SEP0011223344AA"


def test_capf_rv_without_name_uses_the_libest_release_of_the_nginx_log() -> None:
    capf = "10:00:00.000 |   debug 2:SEP0011223344AA:Enrollment rv = 35 with pkcs7 length = 0\n"
    report = analyze_logs([("capf.txt", capf)])
    assert report.findings[0].details["est_error"] == "EST_ERR_SSL_READ"
    old = "***EST [INFO][est_log_version:216]--> libest 1.1.0 (API level 3)\n"
    report = analyze_logs([("capf.txt", capf), ("error.log", old)])
    assert report.findings[0].details["est_error"] == "EST_ERR_SSL_CONNECT"
    assert report.problems == ("tls-handshake",)


def test_capf_operation_failure_names_the_code() -> None:
    text = "10:00:00.000 |-->SetOperationStatus(Failure:CAPF_OP_FAIL_LATE_REQUEST):11\n"
    text += "10:00:00.000 |   SetOperationStatus(Failure:CAPF_OP_FAIL_LATE_REQUEST):11 Operation status Value is '11'\n"
    report = analyze_logs([("capf.txt", text)])
    assert report.problems == ("capf-operation-failed",)
    assert report.findings[0].details["capf_result"] == "CAPF_OP_FAIL_LATE_REQUEST"


def test_nginx_forms_connections_and_levels() -> None:
    text = (
        "2026/11/27 10:00:00 [info] 10#0: *7 login_to_certsrv_ca: Secure connection to MS CertServ completed\n"
        "successfully using the following URL https://ca.example.test:443/certsrv\n"
        "***EST [ERROR][est_client_connect:900]--> Unable to connect\n"
        "nginx: [warn] pop_enabled off in nginx.conf. Disabling EST Proof of Possession\n"
        "EnrollmentService.sh : nginx server PID value = 31070\n"
    )
    entries = parse_nginx_error_log(text, "error.log")
    assert [(e.line, e.end_line) for e in entries] == [(1, 2), (3, 3), (4, 4), (5, 5)]
    first, est, short, script = entries
    assert first.timestamp == dt.datetime(2026, 11, 27, 10, 0, 0)
    assert (first.level, first.function, first.connection) == ("info", "login_to_certsrv_ca", "*7")
    assert (est.level, est.function, est.connection) == ("ERROR", "est_client_connect", "*7")
    assert (short.level, short.connection) == ("warn", None)
    assert script.message == "nginx server PID value = 31070"


def test_iis_fields_header_and_other_columns() -> None:
    text = (
        "#Software: Microsoft Internet Information Services 10.0\n"
        "#Fields: date time c-ip cs-username cs-method cs-uri-stem cs-uri-query sc-status sc-substatus "
        "sc-win32-status\n"
        "2026-11-27 10:00:00 10.0.0.5 - GET /certsrv - 401 1 2148074254\n"
        "2026-11-27 10:00:00 10.0.0.5 EXAMPLE\\ciscora GET /certsrv - 401 1 2148074252\n"
        "2026-11-27 10:00:01 10.0.0.5 EXAMPLE\\ciscora POST /certsrv/certfnsh.asp - 200 0 0\n"
        "2026-11-27 10:00:01 10.0.0.5 EXAMPLE\\ciscora GET /certsrv/certnew.cer ReqID=4&Enc=b64 200 0 0\n"
        "2026-11-27 10:05:00 10.0.0.5 - GET /certsrv - 401 1 2148074254\n"
    )
    assert detect_log_source(text) == "iis"
    entries = parse_iis_log(text, "u_ex261127.log")
    assert [e.connection for e in entries] == ["10.0.0.5#1"] * 4 + ["10.0.0.5#2"]
    assert entries[3].message == "GET /certsrv/certnew.cer?ReqID=4&Enc=b64 200"
    assert entries[0].level is None  # the NTLM challenge is normal
    report = analyze_entries(entries)
    assert report.problems == ("ca-auth-failure",)
    assert report.findings[0].details["user"] == "EXAMPLE\\ciscora"


def test_iis_record_with_missing_trailing_columns() -> None:
    entries = parse_iis_log("2019-03-05 17:31:15 14.48.31.152 GET /certsrv/certnew.p7b ReqID=CACert 443\n")
    assert entries[0].fields["s-port"] == "443"
    assert "sc-status" not in entries[0].fields


# What the lab (issue 6) writes for each --fault, in the seed's formats but with other hosts, dates and
# connection numbers; the analyzer must name the same problem.
_CURL = (
    "2026/11/27 09:15:0{n} [warn] 4242#0: *{n} {func}: Curl call for MS CA login failed with return code {code} ({msg})"
)
_URL = "2026/11/27 09:15:0{n} [warn] 4242#0: *{n} {func}: URL used: https://{host}:8443{path}"
LAB_FAULTS = {
    "missing-issuer": (60, "SSL certificate problem: unable to get local issuer certificate", "/certsrv"),
    "self-signed": (60, "SSL certificate problem: self signed certificate", "/certsrv"),
    "hostname-mismatch": (
        60,
        "SSL: no alternative certificate subject name matches target host name 'ca.lab.test'",
        "/certsrv",
    ),
    "dns": (6, "Could not resolve host: ca.lab.test", "/certsrv"),
    "not-yet-valid": (60, "SSL certificate problem: certificate is not yet valid", "/certsrv"),
    "auth-timeout": (28, "Operation timed out after 10001 milliseconds with 0 bytes received", "/certsrv"),
    "enroll-timeout": (
        28,
        "Operation timed out after 10000 milliseconds with 0 bytes received",
        "/certsrv/certfnsh.asp",
    ),
}


@pytest.mark.parametrize("fault", sorted(LAB_FAULTS))
def test_lab_style_nginx_logs_name_the_fault(fault: str) -> None:
    code, message, path = LAB_FAULTS[fault]
    func = "login_to_certsrv_ca" if path == "/certsrv" else "ra_certsrv_enroll"
    lines = [
        _CURL.format(n=3, func=func, code=code, msg=message),
        _URL.format(n=3, func=func, host="ca.lab.test", path=path),
        "2026/11/27 09:15:03 [error] 4242#0: *3 retrieve_cacerts: Unable to execute login to certsrv with curl",
    ]
    report = analyze_logs([("error.log", "\n".join(lines) + "\n")])
    assert report.problems == (fault,)
    assert report.findings[0].details["host"] == "ca.lab.test"
    assert len(report.findings[0].evidence) == 3


def test_lab_style_template_typo_with_adcs_disposition() -> None:
    text = (
        "2026/11/27 09:20:00 [warn] 4242#0: *9 ra_certsrv_enroll: Denied by Policy Module  0x80094800, The request "
        "was for a certificate template that is not supported by this CA.\n"
    )
    assert analyze_logs([("error.log", text)]).problems == ("template-typo",)


def test_est_auth_failure_without_ca_login_is_not_a_template_problem() -> None:
    text = "***EST [WARNING][est_http_request:1435]--> Enrollment failed with rc=22 (EST_ERR_AUTH_FAIL)\n"
    assert analyze_logs([("error.log", text)]).problems == ("est-auth-failure",)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("***EST [ERROR][est_client_connect:1]--> Unable to lookup hostname ca.lab.test.", "dns"),
        (
            "***EST [ERROR][x:1]--> SSL: FQDN hostname mismatch in server certificate, 'a.test' does not match",
            "hostname-mismatch",
        ),
        (
            "***EST [ERROR][x:1]--> Certificate verify failed (reason = 9) (certificate is not yet valid)",
            "not-yet-valid",
        ),
        ("***EST [ERROR][x:1]--> Certificate verify failed (reason = 10) (certificate has expired)", "expired"),
        ("***EST [ERROR][x:1]--> Certificate verify failed (reason = 18) (self signed certificate)", "self-signed"),
        ("***EST [ERROR][x:1]--> TLS read error", "ssl-read-error"),
        (
            "nginx: [warn] login_to_certsrv_ca: Curl call for MS CA login failed with return code 22 (The requested "
            "URL returned error: 401 Unauthorized)",
            "ca-auth-failure",
        ),
        (
            "2026/11/27 09:00:00 [warn] 1#0: *4 ra_certsrv_enroll: MS CA refused the request for template 'CiscoRA2': "
            "unknown",
            "template-typo",
        ),
        (
            "nginx: [warn] login_to_certsrv_ca: Curl call for MS CA login failed with return code 7 (Failed connect)",
            "connect-failed",
        ),
    ],
)
def test_libest_and_curl_messages(line: str, problem: str) -> None:
    assert analyze_logs([("error.log", line + "\n")]).problems == (problem,)


def test_unrecognised_and_empty_input() -> None:
    report = analyze_logs([("notes.txt", "just some words\n"), ("empty.log", b"")])
    assert report.verdict == "no-data"
    assert [f.source for f in report.files] == [None, None]
    assert parse_log("x", "capf01.txt") == ("capf", parse_capf_trace("x", "capf01.txt"))
    with pytest.raises(ValueError, match="unknown log kind"):
        parse_log("x", source="syslog")


def test_unreadable_files_raise_log_read_error(tmp_path: Path) -> None:
    with pytest.raises(LogReadError, match="cannot read the log"):
        analyze([tmp_path / "missing.txt"])
    with pytest.raises(LogReadError, match="cannot read the log"):
        analyze([tmp_path])


_LOG_LINES = st.sampled_from(
    [
        "14:05:04.628 |   debug 2:SEP74A02FC0A675:Enrollment rv = 35 (EST_ERR_SSL_READ) with pkcs7 length",
        "nginx: [warn] login_to_certsrv_ca: Curl call for MS CA login failed with return code 60 (x)",
        "2019/02/27 16:53:28 [info] 3187#0: *2 navigate_to_certsrv_page: Secure connection completed successfully",
        "***EST [WARNING][est_enroll_auth:394]--> HTTP authentication failed. Auth type=1",
        "#Fields: date time c-ip",
        "2019-01-16 14:05:02 14.48.31.152 GET /certsrv - 443 - 14.48.31.125 CiscoRA+1.0 - 401 1",
        "2019-01-16 14:05:02 1.1.1.1 GET /certsrv - 443 U 2.2.2.2 UA - 401 1 2148074252 0",
        "99:99:99.999 |   SetOperationStatus(Failure:CAPF_OP_FAIL):2",
        "URL used: https://",
    ]
)


@settings(max_examples=200, deadline=None)
@given(
    data=st.one_of(
        st.binary(max_size=500),
        st.text(max_size=500),
        st.lists(st.one_of(_LOG_LINES, st.text(max_size=40)), max_size=12).map("\n".join),
    )
)
def test_arbitrary_input_gives_a_report(data: bytes | str) -> None:
    for parser in (parse_capf_trace, parse_nginx_error_log, parse_iis_log):
        parser(data)
    with contextlib.suppress(CapfError):
        report = analyze_logs([("a.log", data), ("capf01.txt", data)])
        report.to_dict()
        assert report.verdict in ("healthy", "problems", "no-data")


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        (
            "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer certificate",
            "missing-issuer",
        ),
        (
            "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate (_ssl.c:1006)",
            "self-signed",
        ),
        (
            "certificate verify failed: Hostname mismatch, certificate is not valid for 'ca.lab.test'.",
            "hostname-mismatch",
        ),
        ("certificate verify failed: certificate is not yet valid (_ssl.c:1006)", "not-yet-valid"),
        ("certificate verify failed: certificate has expired (_ssl.c:1006)", "expired"),
        ("[Errno -2] Name or service not known", "dns"),
        ("The read operation timed out", "enroll-timeout"),
    ],
)
def test_python_ssl_wording_without_curl_codes(message: str, problem: str) -> None:
    line = f"2026/11/27 09:15:03 [error] 4242#0: *3 ra_certsrv_enroll: {message}"
    url = "2026/11/27 09:15:03 [warn] 4242#0: *3 ra_certsrv_enroll: URL used: https://ca.lab.test/certsrv/certfnsh.asp"
    report = analyze_logs([("error.log", f"{line}\n{url}\n")])
    assert report.problems == (problem,)
    assert report.findings[0].details["host"] == "ca.lab.test"
    assert message in report.findings[0].explanation


def test_login_timeout_without_curl_code_is_an_authentication_timeout() -> None:
    line = "2026/11/27 09:15:03 [error] 4242#0: login_to_certsrv_ca: timed out after 10 s (https://ca.lab.test/certsrv)"
    assert analyze_logs([("error.log", line)]).problems == ("auth-timeout",)


def test_informational_lines_are_not_problems() -> None:
    line = "2026/11/27 09:15:03 [info] 4242#0: read timeout set; certificate verify failed counters reset"
    assert analyze_logs([("error.log", line)]).verdict == "healthy"


def test_capf_trace_with_sdi_sequence_numbers_and_level_column() -> None:
    text = (
        "00000017.001 |12:38:04.779 |AppInfo  |debug 2:SEP001F6C81118B:Enrollment rv = 35 (EST_ERR_SSL_READ) with\n"
        "00000017.002 |12:38:04.779 |AppInfo  |debug 2:SEP001F6C81118B:Online Cert Signing Failed\n"
    )
    assert detect_log_source(text) == "capf"
    entries = parse_capf_trace(text)
    assert [(e.level, e.function, e.device) for e in entries] == [("AppInfo", "debug", "SEP001F6C81118B")] * 2
    report = analyze_entries(entries)
    assert report.problems == ("ssl-read-error",)
    assert len(report.findings[0].evidence) == 2


def test_lab_fault_ids_are_problem_ids() -> None:
    from capf_common import PROBLEMS

    lab_faults = (
        "missing-issuer self-signed hostname-mismatch dns not-yet-valid template-typo auth-timeout enroll-timeout"
    )
    assert set(lab_faults.split()) <= set(PROBLEMS)
    assert {p.seed_problem for p in PROBLEMS.values()} >= set(range(1, 9))


def test_a_ca_login_on_another_connection_does_not_make_a_template_problem() -> None:
    text = (
        "2026/11/27 09:00:00 [info] 1#0: *1 navigate_to_certsrv_page: Secure connection to MS CertServ completed "
        "successfully using the following URL https://ca.lab.test/certsrv/certrqxt.asp\n"
        "2026/11/27 11:00:00 [warn] 1#0: *9 est_enroll_auth: start\n"
        "***EST [WARNING][est_http_request:1435]--> Enrollment failed with rc=22 (EST_ERR_AUTH_FAIL)\n"
    )
    assert analyze_logs([("error.log", text)]).problems == ("est-auth-failure",)


def test_requests_link_across_whole_hour_clock_offsets() -> None:
    capf, iis = [], ["#Fields: date time c-ip cs-username cs-method cs-uri-stem sc-status"]
    for number in range(85):
        second = 42 * number  # one phone every 42 s, within one hour (whole-hour offsets are not told apart)
        local = dt.datetime(2026, 11, 27, 8, 0, 5) + dt.timedelta(seconds=second)
        clock = local.time()
        utc = (local + dt.timedelta(hours=5, seconds=2)).time()  # IIS logs in UTC, five hours ahead, 2 s later
        device = f"SEP{number:012X}"
        capf.append(f"{clock.isoformat()}.000 |   debug 2:{device}:Calling enrollCertUsingEST() csr_file=x")
        capf.append(f"{clock.isoformat()}.500 |   debug 2:{device}:Online Cert Signing successful")
        client = f"10.0.{number // 250}.{number % 250}"
        iis.append(f"2026-11-27 {utc.isoformat()} {client} LAB\\ra POST /certsrv/certfnsh.asp 200")
        iis.append(f"2026-11-27 {utc.isoformat()} {client} LAB\\ra GET /certsrv/certnew.cer 200")
    report = analyze_logs([("capf01.txt", "\n".join(capf)), ("u_ex.log", "\n".join(iis))])
    assert report.verdict == "healthy"
    timelines = {r.id: r for r in report.requests}
    for number in (0, 37, 84):
        attempt = timelines[f"capf:SEP{number:012X}#1"]
        client = f"10.0.{number // 250}.{number % 250}"
        assert f"iis:u_ex.log:{client}#1" in attempt.related
        assert attempt.outcome == "success"
        assert len(attempt.related) == 1  # the neighbours are 42 s away, beyond the 15 s slack
