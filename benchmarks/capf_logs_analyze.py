"""The log analyzer on large synthetic logs: lines per second for each parser and for ``analyze``.

Builds, in memory, a CAPF trace, a CiscoRA/nginx error.log and an IIS W3C log of one enrollment per phone
(the line shapes of the seed's excerpts, with one authentication timeout and one SSL read error mixed in), then
measures:

* the baseline: splitting the text into lines and one regular expression search per line (the least any
  line-oriented parser does);
* each parser alone (``parse_capf_trace``, ``parse_nginx_error_log``, ``parse_iis_log``);
* ``analyze_logs`` over the three logs (parsing, rules, timelines and their correlation).

Usage, from the repository root: ``uv run python -m benchmarks.capf_logs_analyze [PHONES]`` (default 5000).
"""

from __future__ import annotations

import datetime as dt
import re
import sys

from benchmarks._common import Measurement, measure, print_table

from capf_common import analyze_logs, parse_capf_trace, parse_iis_log, parse_nginx_error_log


def build_logs(phones: int) -> tuple[str, str, str]:
    """A CAPF trace, an nginx error.log and an IIS log with one enrollment per phone, 2 s apart."""
    capf, nginx, iis = [], [], []
    start = dt.datetime(2026, 11, 27, 8, 0, 0)
    for number in range(phones):
        when = start + dt.timedelta(seconds=2 * number)
        clock = f"{when:%H:%M:%S}.{number % 1000:03d}"
        device = f"SEP{number:012X}"
        rv = (
            "35 (EST_ERR_SSL_READ) with pkcs7 length = 0"
            if number == phones // 2
            else "0 (EST_ERR_NONE) with pkcs7 length = 1963"
        )
        for text in (
            "CA Mode is OnlineCA, Initiating Automatic Certificate Enrollment",
            f"Calling enrollCertUsingEST() csr_file=/tmp/capf/csr/{device}.csr",
            f"Enrollment rv = {rv}",
            "Online Cert Signing successful",
        ):
            capf += [f"{clock} |-->debug", f"{clock} |   debug 2:{device}:{text}", f"{clock} |<--debug"]
        stamp = f"{when:%Y/%m/%d %H:%M:%S}"
        nginx += [
            f"{stamp} [info] 3187#0: *{number} login_to_certsrv_ca: Secure connection to MS CertServ completed "
            "successfully using the following URL https://lab-dc.example.test:443/certsrv",
            '***EST [INFO][log_access:1298]--> 10.0.0.1 "POST /.well-known/est/simpleenroll HTTP/1.1" 200 1963',
        ]
        if number == phones // 3:
            nginx.append(
                f"{stamp} [warn] 3187#0: *{number} login_to_certsrv_ca: Curl call for MS CA login failed with return "
                "code 28 (Operation timed out after 10000 milliseconds with 0 bytes received)"
            )
        day, utc = f"{when:%Y-%m-%d}", f"{when + dt.timedelta(hours=5):%H:%M:%S}"
        client = f"10.{number // 65536}.{number // 256 % 256}.{number % 256}"
        iis += [
            f"{day} {utc} 10.0.0.2 GET /certsrv - 443 - {client} CiscoRA+1.0 - 401 1 2148074254 0",
            f"{day} {utc} 10.0.0.2 POST /certsrv/certfnsh.asp - 443 LAB\\ciscora {client} CiscoRA+1.0 - 200 0 0 15",
            f"{day} {utc} 10.0.0.2 GET /certsrv/certnew.cer ReqID={number}&ENC=b64 443 LAB\\ciscora {client} "
            "CiscoRA+1.0 - 200 0 0 0",
        ]
    return "\n".join(capf) + "\n", "\n".join(nginx) + "\n", "\n".join(iis) + "\n"


def main(phones: int) -> None:
    capf, nginx, iis = build_logs(phones)
    lines = sum(text.count("\n") for text in (capf, nginx, iis))
    print(f"{phones} phones, {lines} log lines ({sum(map(len, (capf, nginx, iis))) // 1024} KiB)")
    anything = re.compile(r"EST_ERR_|return code|\| *debug")

    def baseline() -> None:
        for text in (capf, nginx, iis):
            for line in text.splitlines():
                anything.search(line)

    base = measure("baseline: splitlines + one regex per line", lines, baseline)
    rows: list[Measurement] = [
        base,
        measure("parse_capf_trace", capf.count("\n"), lambda: parse_capf_trace(capf)),
        measure("parse_nginx_error_log", nginx.count("\n"), lambda: parse_nginx_error_log(nginx)),
        measure("parse_iis_log", iis.count("\n"), lambda: parse_iis_log(iis)),
    ]
    report = None

    def run_analyze() -> None:
        nonlocal report
        report = analyze_logs([("capf01.txt", capf), ("error.log", nginx), ("u_ex261127.log", iis)])

    rows.append(measure("analyze_logs (3 logs, rules, timelines)", lines, run_analyze))
    print_table(rows, base)
    assert report is not None
    print(f"verdict {report.verdict}: {', '.join(report.problems)}; {len(report.requests)} request timelines")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000)
