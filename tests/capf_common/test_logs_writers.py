"""Log writers produce what the analyzer reads: a round trip through logging, the parsers and analyze."""

from __future__ import annotations

import datetime as dt
import io
import logging
from collections.abc import Iterator

import pytest

from capf_common import (
    CapfTraceFormatter,
    EstLogFormatter,
    NginxErrorLogFormatter,
    analyze_logs,
    format_iis_record,
    iis_log_header,
    parse_capf_trace,
    parse_iis_log,
    parse_nginx_error_log,
)


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    log = logging.getLogger("tests.capf_common.writers")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    yield log
    for handler in list(log.handlers):
        log.removeHandler(handler)


def _capture(logger: logging.Logger, formatter: logging.Formatter) -> io.StringIO:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.set_name("capture")
    logger.addHandler(handler)
    return stream


def test_capf_trace_round_trip(logger: logging.Logger) -> None:
    stream = _capture(logger, CapfTraceFormatter(utc=True))
    logger.info("CA Mode is OnlineCA, Initiating Automatic Certificate Enrollment", extra={"device": "SEP0011223344AA"})
    logger.info("Enrollment rv = 35 (EST_ERR_SSL_READ) with pkcs7 length = 0", extra={"device": "SEP0011223344AA"})
    logger.info("Online Cert Signing Failed", extra={"device": "SEP0011223344AA"})
    text = stream.getvalue()
    assert text.splitlines()[0].endswith(
        "|   debug 2:SEP0011223344AA:CA Mode is OnlineCA, Initiating Automatic Certificate Enrollment"
    )
    entries = parse_capf_trace(text)
    assert [e.device for e in entries] == ["SEP0011223344AA"] * 3
    report = analyze_logs([("capf01.txt", text)])
    assert report.problems == ("ssl-read-error",)
    assert report.requests[0].id == "capf:SEP0011223344AA#1"


def test_nginx_and_est_lines_round_trip(logger: logging.Logger) -> None:
    stream = _capture(logger, NginxErrorLogFormatter())
    logger.info(
        "Secure connection to MS CertServ completed successfully using the following URL https://ca.lab.test/certsrv/certrqxt.asp",
        extra={"connection": 4, "function": "navigate_to_certsrv_page"},
    )
    next(h for h in logger.handlers if h.get_name() == "capture").setFormatter(EstLogFormatter())
    logger.warning("Enrollment failed with rc=22 (EST_ERR_AUTH_FAIL)", extra={"function": "est_http_request"})
    text = stream.getvalue()
    first, second = parse_nginx_error_log(text)
    assert (first.connection, first.function, first.level) == ("*4", "navigate_to_certsrv_page", "info")
    assert (second.level, second.function, second.connection) == ("WARNING", "est_http_request", "*4")
    assert analyze_logs([("error.log", text)]).problems == ("template-typo",)


def test_nginx_start_up_form(logger: logging.Logger) -> None:
    stream = _capture(logger, NginxErrorLogFormatter(startup=True))
    logger.warning(
        "Curl call for MS CA login failed with return code 6 (Could not resolve: ca.lab.test)",
        extra={"function": "login_to_certsrv_ca"},
    )
    line = stream.getvalue().strip()
    assert line.startswith("nginx: [warn] login_to_certsrv_ca: Curl call")
    assert analyze_logs([("error.log", line)]).problems == ("dns",)


def test_iis_header_and_records_round_trip() -> None:
    when = dt.datetime(2026, 11, 27, 9, 0, 0, tzinfo=dt.UTC)
    rows = [
        {"date": "2026-11-27", "time": "09:00:00", "cs-method": "GET", "cs-uri-stem": "/certsrv", "c-ip": "127.0.0.1",
         "cs(User-Agent)": "CiscoRA 1.0", "sc-status": 401, "sc-substatus": 1, "sc-win32-status": 2148074254},
        {"date": "2026-11-27", "time": "09:00:01", "cs-method": "GET", "cs-uri-stem": "/certsrv/certnew.cer",
         "cs-uri-query": "ReqID=7&Enc=b64", "cs-username": "LAB\\ciscora", "c-ip": "127.0.0.1", "sc-status": 200},
    ]  # fmt: skip
    text = iis_log_header(when=when) + "".join(format_iis_record(row) + "\n" for row in rows)
    assert "#Date: 2026-11-27 09:00:00" in text
    entries = parse_iis_log(text)
    assert entries[0].fields["cs(User-Agent)"] == "CiscoRA+1.0"
    assert entries[0].fields["cs-username"] == "-"
    assert entries[1].fields["cs-uri-query"] == "ReqID=7&Enc=b64"
    report = analyze_logs([("u_ex261127.log", text)])
    assert report.verdict == "healthy"
    assert report.requests[0].outcome == "success"
