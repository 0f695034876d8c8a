"""The analyzer on whole CAPF sessions as CUCM traces them: one attempt per session, one finding per failure.

The traces are written line by line in the CAPF trace format (``debug 2:DEVICE:text`` between ``|-->debug`` and
``|<--debug``; ``SetOperationStatus`` blocks with the SQL statement naming the device), as the seed shows them.
"""

from __future__ import annotations

from capf_common import PROBLEMS, analyze_logs

DEVICE = "SEP0011223344AA"
AUTH_EVENT = "CAPF CORE: Rcvd Event: CAPF_EV_AUTH_RESP in State: CAPF_STATE_AWAIT_AUTH_RESP"


def _debug(clock: str, text: str, device: str | None = DEVICE) -> list[str]:
    tag = f"2:{device}:" if device else ""
    return [f"{clock} |-->debug", f"{clock} |   debug {tag}{text}", f"{clock} |<--debug"]


def _session_start(clock: str, device: str = DEVICE) -> list[str]:
    return [
        *_debug(clock, "Recd connection from 10.0.0.5:51000, session id 7", None),
        *_debug(clock, AUTH_EVENT, device),
        *_debug(clock, f"findAndPost Device found in the cache map {device}", None),
        *_debug(clock, "Authenticating device, mode PASSWORD", device),
        *_debug(clock, "Authentication successful", device),
        *_debug(clock, "Sending SIGN_CERT_REQ msg (EC SECP256R1)", device),
        *_debug(clock, "Rcvd SIGN_CERT_RES: the phone's CSR", device),
    ]


def _enrollment(clock: str, rv: int = 0, device: str = DEVICE) -> list[str]:
    lines = [
        *_debug(clock, "CA Mode is OnlineCA, Initiating Automatic Certificate Enrollment", device),
        *_debug(clock, f"Calling enrollCertUsingEST() csr_file=/tmp/capf/csr/{device}.csr", device),
    ]
    if rv == 0:
        lines += _debug(clock, "Enrollment rv = 0 (EST_ERR_NONE) with pkcs7 length = 1318", device)
        lines += _debug(clock, "Online Cert Signing successful", device)
        lines += _debug(clock, "Sending STORE_CERT_REQ msg", device)
    else:
        lines += _debug(clock, f"Enrollment rv = {rv} (EST_ERR_SSL_READ) with pkcs7 length = 0", device)
        lines += _debug(clock, "Online Cert Signing Failed", device)
    return lines


def _set_operation_status(clock: str, result: str, code: int, device: str = DEVICE) -> list[str]:
    word = "Success" if code == 0 else "Failure"
    name = f"SetOperationStatus({word}:{result}):{code}"
    mapper = f"CAPFDevice::MapCapf_OpStatusToDBLTypeCertificateStatus(OPERATION_UPGRADE, {word})"
    return [
        f"{clock} |-->{name}",
        f"{clock} |   {name} Operation status Value is '{code}'",
        f"{clock} |-->{mapper}",
        f"{clock} |   {mapper} =>DbStatus=CERT_STATUS_UPGRADE_FAILED",
        f"{clock} |<--{mapper}",
        f"{clock} |   {name} Operation status is set to 1",
        f"{clock} |   {name} Operation status is set to {word}:{result}",
        f"{clock} |   {name} sql query - (UPDATE Device SET tkCertificateOperation=1, tkcertificatestatus='3' "
        f"WHERE my_lower(name)=my_lower('{device}'))",
        f"{clock} |<--{name}",
    ]


def _end(clock: str, reason: str, device: str = DEVICE) -> list[str]:
    return _debug(clock, f"Sending END_SESSION msg (reason {reason})", device)


def _capf_requests(text: str) -> list[tuple[str, str]]:
    report = analyze_logs([("capf00000001.txt", text)])
    return [(r.id, r.outcome) for r in report.requests if r.source == "capf"]


def test_lines_of_one_capf_session_are_one_attempt() -> None:
    lines = [
        *_session_start("10:00:00.000"),
        *_enrollment("10:00:00.500"),
        *_set_operation_status("10:00:01.000", "CAPF_OP_SUCCESS", 0),
        *_end("10:00:01.000", "UPDATE_CERTIFICATE"),
    ]
    assert _capf_requests("\n".join(lines)) == [(f"capf:{DEVICE}#1", "success")]


def test_each_session_of_a_device_is_its_own_attempt() -> None:
    lines = [
        *_session_start("10:00:00.000"),
        *_enrollment("10:00:00.500", rv=35),
        *_set_operation_status("10:00:10.000", "CAPF_OP_FAIL", 1),
        *_end("10:00:10.000", "UPDATE_CERTIFICATE"),
        *_session_start("10:01:00.000"),
        *_enrollment("10:01:00.500"),
        *_set_operation_status("10:01:01.000", "CAPF_OP_SUCCESS", 0),
        *_end("10:01:01.000", "UPDATE_CERTIFICATE"),
    ]
    assert _capf_requests("\n".join(lines)) == [(f"capf:{DEVICE}#1", "failure"), (f"capf:{DEVICE}#2", "success")]


def test_enrollments_without_session_lines_are_still_told_apart() -> None:
    """Excerpts without the session's start (as the seed prints them) split at each new enrollment."""
    lines = [*_enrollment("10:00:00.500", rv=35), *_enrollment("10:01:00.500")]
    assert _capf_requests("\n".join(lines)) == [(f"capf:{DEVICE}#1", "failure"), (f"capf:{DEVICE}#2", "success")]


def test_one_failed_set_operation_status_block_is_one_finding_with_the_device() -> None:
    lines = [
        *_session_start("10:00:00.000"),
        *_debug(
            "10:00:00.100",
            f"Authentication failed (CAPF_OP_FAIL_LATE_REQUEST): {DEVICE} asked at 2026-11-27T10:00:00+00:00, "
            "after its Operation Completes By deadline 2026-11-27T09:00:00+00:00",
        ),
        *_set_operation_status("10:00:00.100", "CAPF_OP_FAIL_LATE_REQUEST", 11),
        *_end("10:00:00.100", "UPDATE_CERTIFICATE"),
    ]
    report = analyze_logs([("capf00000001.txt", "\n".join(lines))])
    (finding,) = report.findings
    assert finding.problem == "capf-operation-failed"
    assert finding.device == DEVICE
    assert finding.details["capf_result"] == "CAPF_OP_FAIL_LATE_REQUEST"
    assert any("sql query" in e.text for e in finding.evidence)
    assert any(e.text.endswith("Operation status Value is '11'") for e in finding.evidence)
    assert [(r.id, r.outcome) for r in report.requests if r.source == "capf"] == [(f"capf:{DEVICE}#1", "failure")]


def test_two_failed_blocks_of_two_devices_are_two_findings() -> None:
    other = "SEP0011223344BB"
    lines = [
        *_set_operation_status("10:00:00.100", "CAPF_OP_FAIL_LATE_REQUEST", 11),
        *_set_operation_status("10:00:00.200", "CAPF_OP_FAIL_LATE_REQUEST", 11, device=other),
    ]
    report = analyze_logs([("capf00000001.txt", "\n".join(lines))])
    assert [(f.problem, f.device) for f in report.findings] == [
        ("capf-operation-failed", DEVICE),
        ("capf-operation-failed", other),
    ]


def test_a_cut_failed_block_does_not_swallow_the_next_call() -> None:
    """A block without its ``<--`` line (an excerpt cut there) ends at the next ``-->SetOperationStatus`` call."""
    other = "SEP0011223344BB"
    cut = _set_operation_status("10:00:00.100", "CAPF_OP_FAIL_LATE_REQUEST", 11)[:-1]
    lines = [*cut, *_set_operation_status("10:00:00.200", "CAPF_OP_FAIL_LATE_REQUEST", 11, device=other)]
    report = analyze_logs([("capf00000001.txt", "\n".join(lines))])
    assert [(f.problem, f.device) for f in report.findings] == [
        ("capf-operation-failed", DEVICE),
        ("capf-operation-failed", other),
    ]
    assert all(other not in e.text for e in report.findings[0].evidence)


def test_unknown_device_session_is_named() -> None:
    unknown = "SEP00AABBCCDD03"
    lines = [
        *_debug("10:00:00.000", "Recd connection from 10.0.0.5:51000, session id 7", None),
        *_debug("10:00:00.000", AUTH_EVENT, unknown),
        *_debug("10:00:00.000", f"Device {unknown} not found in the database", unknown),
        *_end("10:00:00.000", "UNKNOWN_DEVICE", unknown),
    ]
    report = analyze_logs([("capf00000001.txt", "\n".join(lines))])
    assert report.verdict == "problems"
    (finding,) = report.findings
    assert finding.problem == "unknown-device"
    assert finding.device == unknown
    assert "unknown-device" in PROBLEMS
    assert "device name" in finding.fix.lower() and "cucm" in finding.fix.lower()
    assert any("not found in the database" in e.text for e in finding.evidence)
    assert any("UNKNOWN_DEVICE" in e.text for e in finding.evidence)
    assert _capf_requests("\n".join(lines)) == [(f"capf:{unknown}#1", "failure")]


def test_unknown_device_by_the_end_session_reason_alone() -> None:
    report = analyze_logs([("capf00000001.txt", "\n".join(_end("10:00:00.000", "UNKNOWN_DEVICE")))])
    assert report.problems == ("unknown-device",)
    assert report.findings[0].device == DEVICE


def test_a_known_device_and_no_pending_operation_are_not_unknown_devices() -> None:
    lines = [
        *_debug("10:00:00.000", "Device not found in the cache map, reading it from the database"),
        *_debug("10:00:00.000", f"findAndPost Device found in the cache map {DEVICE}", None),
        *_debug("10:00:00.000", "No pending CAPF operation for the device"),
        *_end("10:00:00.000", "NO_ACTION"),
    ]
    assert analyze_logs([("capf00000001.txt", "\n".join(lines))]).verdict == "healthy"
