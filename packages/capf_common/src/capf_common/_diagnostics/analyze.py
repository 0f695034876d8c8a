"""``analyze``: read the logs of the chain, correlate them per device and per request, name the problems."""

from __future__ import annotations

import bisect
import datetime
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from capf_common._codes import CURL_ERRORS, est_error_name
from capf_common._diagnostics.entries import LogEntry, LogSource
from capf_common._diagnostics.parsers import (
    detect_log_source,
    parse_capf_trace,
    parse_iis_log,
    parse_nginx_error_log,
)
from capf_common._diagnostics.problems import PROBLEMS
from capf_common._errors import LogReadError

__all__ = [
    "Evidence",
    "Finding",
    "RequestTimeline",
    "LogFile",
    "Report",
    "parse_log",
    "analyze",
    "analyze_logs",
    "analyze_entries",
]

_MAX_FILE_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class Evidence:
    """A log line that supports a finding.

    Attributes:
        path: The file.
        line: The 1-based line number where the entry starts.
        end_line: The line where it ends (wrapped entries span several lines).
        text: The entry's text.
    """

    path: str
    line: int
    end_line: int
    text: str

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dictionary."""
        return {"path": self.path, "line": self.line, "end_line": self.end_line, "text": self.text}


@dataclass(frozen=True)
class Finding:
    """A problem the analyzer found, with the lines that show it and the fix.

    Attributes:
        problem: The stable identifier (see :data:`capf_common.PROBLEMS`), e.g. ``missing-issuer``.
        title: What the problem is.
        explanation: What the evidence says, with the values read from it (host names, codes).
        fix: What to do.
        evidence: The supporting log lines, in log order.
        alternatives: Other problems the same evidence also fits (the seed shows the very same curl message for a
            missing issuer and for a self-signed IIS certificate).
        device: The device concerned, when the finding is about one.
        details: Values read from the evidence (``host``, ``curl_code``, ``est_error``, ...).
    """

    problem: str
    title: str
    explanation: str
    fix: str
    evidence: tuple[Evidence, ...]
    alternatives: tuple[str, ...] = ()
    device: str | None = None
    details: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dictionary."""
        return {
            "problem": self.problem,
            "title": self.title,
            "explanation": self.explanation,
            "fix": self.fix,
            "alternatives": list(self.alternatives),
            "device": self.device,
            "details": dict(self.details),
            "evidence": [e.to_dict() for e in self.evidence],
        }


@dataclass(frozen=True)
class RequestTimeline:
    """The entries of one request through the chain, as one log saw it.

    Attributes:
        id: ``capf:SEP…#1`` (an enrollment attempt of a device), ``nginx:error.log:*2`` (an nginx connection),
            ``nginx:error.log:start-up`` (entries outside connections), ``iis:u_ex.log:10.0.0.5#1`` (a
            certsrv request sequence of one client).
        source: The log kind (``capf``, ``nginx``, ``iis``).
        device: The device, for CAPF attempts.
        outcome: ``success``, ``failure`` or ``unknown``.
        entries: The entries in log order.
        related: Ids of timelines from other logs that fall into the same time window (clock offsets of whole
            hours are allowed because IIS logs in UTC and CUCM in local time).
    """

    id: str
    source: str
    device: str | None
    outcome: str
    entries: tuple[LogEntry, ...]
    related: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dictionary."""
        return {
            "id": self.id,
            "source": self.source,
            "device": self.device,
            "outcome": self.outcome,
            "related": list(self.related),
            "entries": [{"path": e.path, "line": e.line, "text": e.text} for e in self.entries],
        }


@dataclass(frozen=True)
class LogFile:
    """A file given to the analyzer and what it was read as.

    Attributes:
        path: The file.
        source: ``capf``, ``nginx``, ``iis``, or ``None`` when it matched no known log format (then skipped).
        entries: The number of entries read.
    """

    path: str
    source: str | None
    entries: int


@dataclass(frozen=True)
class Report:
    """The analyzer's result.

    Attributes:
        verdict: ``healthy`` (known log entries and no problem), ``problems`` (at least one finding), or
            ``no-data`` (nothing recognisable was read).
        findings: The problems found: first the causes the CA side's logs show (CiscoRA/nginx error.log, IIS
            log), then what CAPF saw of them (one finding per phone), each part in log order.
        files: The files read.
        entries: Every entry read, file by file.
        devices: The timeline of each device (CAPF trace entries naming it).
        requests: The per-request timelines.
    """

    verdict: str
    findings: tuple[Finding, ...]
    files: tuple[LogFile, ...]
    entries: tuple[LogEntry, ...]
    devices: Mapping[str, tuple[LogEntry, ...]]
    requests: tuple[RequestTimeline, ...]

    @property
    def problems(self) -> tuple[str, ...]:
        """The identifiers of the problems found (each once, in order)."""
        return tuple(dict.fromkeys(f.problem for f in self.findings))

    @property
    def mentioned(self) -> tuple[str, ...]:
        """The problems found and those named as alternatives of their evidence (each once, in order)."""
        return tuple(dict.fromkeys(p for f in self.findings for p in (f.problem, *f.alternatives)))

    def mentions(self, problem: str) -> bool:
        """Tell whether a problem was found or named as an alternative reading of the evidence.

        Args:
            problem: A problem identifier such as ``self-signed``.

        Returns:
            ``True`` when a finding is that problem or lists it among its alternatives.
        """
        return any(f.problem == problem or problem in f.alternatives for f in self.findings)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dictionary (what ``capf logs analyze --json`` prints)."""
        return {
            "verdict": self.verdict,
            "problems": list(self.problems),
            "mentioned": list(self.mentioned),
            "findings": [f.to_dict() for f in self.findings],
            "files": [{"path": f.path, "source": f.source, "entries": f.entries} for f in self.files],
            "devices": {
                device: [{"path": e.path, "line": e.line, "text": e.text} for e in entries]
                for device, entries in self.devices.items()
            },
            "requests": [r.to_dict() for r in self.requests],
        }


# -- reading ----------------------------------------------------------------------------------------------------

_PARSERS = {
    LogSource.CAPF: parse_capf_trace,
    LogSource.NGINX: parse_nginx_error_log,
    LogSource.IIS: parse_iis_log,
}


def parse_log(data: bytes | str, name: str = "<log>", source: str | None = None) -> tuple[str | None, list[LogEntry]]:
    """Parse one log, detecting its kind unless given.

    Args:
        data: The content.
        name: The file name (recorded in the entries; also a hint for detection).
        source: ``capf``, ``nginx`` or ``iis`` to skip detection.

    Returns:
        The kind (``None`` when not recognised) and its entries (empty when not recognised).

    Raises:
        ValueError: ``source`` is not one of the three kinds.
    """
    kind = source or detect_log_source(data, name)
    if kind is None:
        return None, []
    if kind not in _PARSERS:
        raise ValueError(f"unknown log kind {kind!r}; use one of {', '.join(_PARSERS)}")
    return kind, _PARSERS[kind](data, name)


def analyze(
    paths: Iterable[str | os.PathLike[str]], *, progress: Callable[[str, int, int], object] | None = None
) -> Report:
    """Read CAPF traces, CiscoRA/nginx error logs and IIS logs and name the problems they show.

    Each file's kind is detected from its content. The entries are correlated into a timeline per device and
    per request, and the rules for the seed's common problems (and the libest/curl/CAPF failure signatures) are
    applied.

    Args:
        paths: The log files, in any order and mix.
        progress: Called as ``progress(name, done, total)`` after each file is parsed (for a progress bar).

    Returns:
        The report; ``report.verdict`` is ``"problems"`` when anything was found.

    Raises:
        LogReadError: A file cannot be read (missing, a directory, no permission, larger than 256 MiB).
    """
    logs = []
    for path in list(paths):
        name = os.fspath(path)
        try:
            size = Path(name).stat().st_size
            if size > _MAX_FILE_BYTES:
                raise LogReadError(f"{name} is {size} bytes; split it or pass the relevant part (256 MiB at most)")
            data = Path(name).read_bytes()
        except LogReadError:
            raise
        except OSError as exc:
            raise LogReadError(
                f"cannot read the log {name}: {exc.strerror or exc}; check the path and its permissions"
            ) from exc
        logs.append((name, data))
    return analyze_logs(logs, progress=progress)


def analyze_logs(
    logs: Iterable[tuple[str, bytes | str]], *, progress: Callable[[str, int, int], object] | None = None
) -> Report:
    """Like :func:`analyze`, for logs already in memory.

    Args:
        logs: ``(name, content)`` pairs.
        progress: Called as ``progress(name, done, total)`` after each log is parsed.

    Returns:
        The report.
    """
    files: list[LogFile] = []
    entries: list[LogEntry] = []
    pending = list(logs)
    for done, (name, data) in enumerate(pending, 1):
        kind, parsed = parse_log(data, name)
        files.append(LogFile(name, kind, len(parsed)))
        entries.extend(parsed)
        if progress is not None:
            progress(name, done, len(pending))
    return _report(entries, files)


def analyze_entries(entries: Sequence[LogEntry]) -> Report:
    """Apply the rules to entries parsed before (e.g. with :func:`parse_capf_trace`).

    Args:
        entries: The entries, grouped by file, each file in order.

    Returns:
        The report.
    """
    files: dict[str, LogFile] = {}
    for entry in entries:
        known = files.get(entry.path)
        files[entry.path] = LogFile(entry.path, entry.source, (known.entries if known else 0) + 1)
    return _report(list(entries), list(files.values()))


# -- rules ----------------------------------------------------------------------------------------------------

_CURL = re.compile(r"(?:failed|error) with return code (\d+)\s*(?:\((.*)\))?", re.IGNORECASE)
_URL_USED = re.compile(r"URL used:\s*(\S+)")
_URL_HOST = re.compile(r"https?://([^/:\s]+)")
_RESOLVE_HOST = re.compile(r"(?:resolve host|lookup hostname|resolve)\s*:?\s*'?([A-Za-z0-9._-]+)")
_NAME_MISMATCH = re.compile(r"subject name '([^']*)' does not match target host name '([^']*)'")
_FQDN_MISMATCH = re.compile(r"FQDN hostname mismatch.*?'([^']*)'")
_EST_NAME = re.compile(r"\b(EST_ERR_[A-Z0-9_]+)\b")
_CAPF_RV = re.compile(r"Enrollment rv = (\d+)(?:\s*\((EST_ERR_[A-Z0-9_]+)\))?")
_CAPF_STATUS = re.compile(r"SetOperationStatus\((?:\w+:)?(CAPF_\w+)\)")
_UNKNOWN_DEVICE = re.compile(
    r"\bUNKNOWN_DEVICE\b|\bunknown device\b(?! type)|no phone found"
    r"|\b(?:device|phone)(?:\s+(?:SEP|ATA|CSF|BOT|TCT|TAB)[\w.-]*)?\s+(?:was\s+|is\s+)?not found(?! in the cache)",
    re.IGNORECASE,
)
_VERIFY_REASON = re.compile(r"Certificate verify failed \(reason = (\d+)\)")
_LIBEST_VERSION = re.compile(r"libest (\d+\.\d+(?:\.\d+)?)")
_TEMPLATE_TEXT = re.compile(
    r"0x80094800|0x80094801|0x80094012|CERTSRV_E_(?:UNSUPPORTED_CERT_TYPE|NO_CERT_TYPE|TEMPLATE_DENIED)"
    r"|certificate template that is not supported|template[^.]*(?:not found|not supported|denied|does not exist)"
    r"|(?:refused|rejected|denied)[^.]{0,40}\btemplate\b",
    re.IGNORECASE,
)
_CA_LOGIN_OK = re.compile(r"navigate_to_certsrv_page: Secure connection .*completed successfully", re.IGNORECASE)
_FOLLOW_UP = re.compile(
    r"URL used:|Unable to execute login to certsrv|Unable to retrieve CA Cert chain|est_client_enroll_csr\(\) Failed"
    r"|Return value from enrollCertUsingEST\(\) : [1-9]|Online Cert Signing Failed",
    re.IGNORECASE,
)
_SUCCESS = re.compile(
    r"Online Cert Signing successful|Enrollment rv = 0\b|CAPF_OP_SUCCESS|completed successfully|CA Cert chain retrieved"
    r"|OnlineCA Initialized|EST set server details success",
    re.IGNORECASE,
)

# OpenSSL X509_V_ERR_* reasons libest prints in "Certificate verify failed (reason = N)".
_X509_REASONS = {2: "missing-issuer", 9: "not-yet-valid", 10: "expired", 18: "self-signed", 19: "missing-issuer"}
_X509_REASONS.update({20: "missing-issuer", 21: "missing-issuer", 62: "hostname-mismatch"})

_EST_PROBLEMS = {
    "EST_ERR_SSL_READ": "ssl-read-error",
    "EST_ERR_AUTH_FAIL": "est-auth-failure",
    "EST_ERR_IP_GETADDR": "dns",
    "EST_ERR_FQDN_MISMATCH": "hostname-mismatch",
    "EST_ERR_CACERT_VERIFICATION": "missing-issuer",
    "EST_ERR_IP_CONNECT": "connect-failed",
    "EST_ERR_SSL_CONNECT": "tls-handshake",
}


@dataclass
class _Hit:
    problem: str
    entry: LogEntry
    details: dict[str, str] = field(default_factory=dict)
    alternatives: tuple[str, ...] = ()
    support: list[LogEntry] = field(default_factory=list)
    device: str | None = None  # when the device is named by another line than ``entry`` (see ``_capf_hits``)


def _tls_text_problem(lowered: str) -> tuple[str, tuple[str, ...]] | None:
    """Classify a certificate verification message (curl, OpenSSL or Python ``ssl`` wording)."""
    if any(
        phrase in lowered
        for phrase in (
            "does not match target host name",
            "no alternative certificate subject",
            "hostname mismatch",
            "doesn't match",
            "is not valid for",
        )
    ):
        return "hostname-mismatch", ()
    if "not yet valid" in lowered:
        return "not-yet-valid", ()
    if "has expired" in lowered or "certificate expired" in lowered:
        return "expired", ()
    if re.search(r"self[- ]signed certificate in certificate chain", lowered):
        return "missing-issuer", ("self-signed",)
    if re.search(r"self[- ]signed certificate", lowered):
        return "self-signed", ()
    if any(p in lowered for p in ("unable to get local issuer", "unable to get issuer", "unable to verify the first")):
        return "missing-issuer", ("self-signed",)
    return None


def _curl_problem(code: int, message: str, function: str | None, url: str | None) -> tuple[str, tuple[str, ...]]:
    lowered = message.lower()
    if code == 6 or "resolve" in lowered:
        return "dns", ()
    if code == 51:
        return "hostname-mismatch", ()
    if (tls := _tls_text_problem(lowered)) is not None:
        return tls
    if code == 60:
        return "missing-issuer", ("self-signed",)
    if code == 28:
        return _timeout_problem(function, url), ()
    if code == 7:
        return "connect-failed", ()
    if code == 22 and "401" in lowered:
        return "ca-auth-failure", ()
    if code == 35:
        return "tls-handshake", ()
    return "enrollment-failed", ()


def _timeout_problem(function: str | None, url: str | None) -> str:
    login = function == "login_to_certsrv_ca" or (url is not None and re.search(r"/certsrv/?$", url) is not None)
    return "auth-timeout" if login else "enroll-timeout"


_VERIFY_FAILED = re.compile(r"certificate verify failed|certificate problem|CERTIFICATE_VERIFY_FAILED", re.IGNORECASE)
_DNS_TEXT = re.compile(
    r"Name or service not known|Temporary failure in name resolution|nodename nor servname|getaddrinfo failed"
    r"|Could not resolve|No address associated with hostname",
    re.IGNORECASE,
)
_TIMEOUT_TEXT = re.compile(r"\btimed out\b|\bReadTimeout\b|\bConnectTimeout\b|\bPoolTimeout\b", re.IGNORECASE)
_URL_IN_TEXT = re.compile(r"https?://\S+")
_TIMED_OUT_AFTER = re.compile(r"timed\s+out\s+after\s+(\d+)\s+milliseconds", re.IGNORECASE)
_TIMEOUTS = ("auth-timeout", "enroll-timeout")

# The fix of a timeout when the log shows the limit CES used ("Operation timed out after N milliseconds").
_TIMEOUT_FIXES = {
    "auth-timeout": (
        'CES gave up after {limit} (the log: "timed out after {ms} milliseconds"); the RA-to-CA timeout cannot be '
        "configured (CSCvo58656, CSCvf83629): make IIS answer within it (IIS and domain controller load, NTLM "
        "authentication latency, network path), then restart CAPF."
    ),
    "enroll-timeout": (
        'The CA took longer than the RA-to-CA timeout of {limit} to answer (the log: "timed out after {ms} '
        'milliseconds"; not configurable: CSCvo58656): check the AD CS and IIS load and logs for this request, '
        "then retry the operation."
    ),
}


def _duration(milliseconds: int) -> str:
    seconds = milliseconds / 1000
    return "1 second" if milliseconds == 1000 else f"{seconds:g} seconds"


def _fix(problem: str, details: Mapping[str, str]) -> str:
    """The problem's fix; for a timeout, with the limit the log shows instead of CUCM's default."""
    if problem in _TIMEOUT_FIXES and details.get("timeout_ms", "").isdigit():
        milliseconds = details["timeout_ms"]
        return _TIMEOUT_FIXES[problem].format(limit=_duration(int(milliseconds)), ms=milliseconds)
    return PROBLEMS[problem].fix


def _generic_problem(entry: LogEntry) -> tuple[str, tuple[str, ...], dict[str, str]] | None:
    """Failure messages without a curl or libest code (other RA implementations, Python's ssl wording)."""
    if (entry.level or "").lower() not in ("warn", "warning", "error", "crit", "alert", "emerg"):
        return None
    text = entry.text
    if _VERIFY_FAILED.search(text):
        problem, alternatives = _tls_text_problem(text.lower()) or ("missing-issuer", ("self-signed",))
        return problem, alternatives, {"message": entry.message}
    if _DNS_TEXT.search(text):
        return "dns", (), {"message": entry.message}
    if _TIMEOUT_TEXT.search(text):
        url = _URL_IN_TEXT.search(text)
        return _timeout_problem(entry.function, url.group(0) if url else None), (), {"message": entry.message}
    return None


def _next_url(entries: Sequence[LogEntry], index: int) -> str | None:
    """The URL of the "URL used:" line CiscoRA writes right after a failed curl call, if there is one."""
    for later in entries[index + 1 : index + 4]:
        if later.path != entries[index].path:
            return None
        if match := _URL_USED.search(later.text):
            return match.group(1)
    return None


def _nginx_hits(entries: Sequence[LogEntry]) -> list[_Hit]:
    hits: list[_Hit] = []
    ca_login_ok: dict[tuple[str, str | None], LogEntry] = {}
    last_hit_index: int | None = None
    for index, entry in enumerate(entries):
        text = entry.text
        key = (entry.path, entry.connection)
        if _CA_LOGIN_OK.search(text):
            ca_login_ok[key] = entry
            ca_login_ok[(entry.path, None)] = entry
        hit: _Hit | None = None
        if match := _CURL.search(text):
            code, message = int(match.group(1)), match.group(2) or ""
            url = _next_url(entries, index)
            problem, alternatives = _curl_problem(code, message, entry.function, url)
            details = {"curl_code": str(code), "curl_message": message}
            info = CURL_ERRORS.get(code)
            if info is not None:
                details["curl_name"] = info.name
            if url:
                details["url"] = url
                if host := _URL_HOST.search(url):
                    details["host"] = host.group(1)
            if problem == "dns" and (resolved := _RESOLVE_HOST.search(message)):
                details["host"] = resolved.group(1)
            if mismatch := _NAME_MISMATCH.search(message):
                details["certificate_name"], details["host"] = mismatch.group(1), mismatch.group(2)
            hit = _Hit(problem, entry, details, alternatives)
        elif _TEMPLATE_TEXT.search(text):
            hit = _Hit("template-typo", entry, {"reason": "the CA refused the template"})
        elif match := _VERIFY_REASON.search(text):
            reason = int(match.group(1))
            problem = _X509_REASONS.get(reason, "missing-issuer")
            alternatives = ("self-signed",) if problem == "missing-issuer" else ()
            hit = _Hit(problem, entry, {"x509_verify_error": str(reason)}, alternatives)
        elif "Unable to lookup hostname" in text:
            host = _RESOLVE_HOST.search(text)
            hit = _Hit("dns", entry, {"host": host.group(1)} if host else {})
        elif match := _FQDN_MISMATCH.search(text):
            hit = _Hit("hostname-mismatch", entry, {"host": match.group(1)})
        elif "TLS read error" in text:
            hit = _Hit("ssl-read-error", entry, {})
        elif "HTTP authentication failed" in text or "HTTP auth failure" in text or "EST_ERR_AUTH_FAIL" in text:
            # the CA login must be part of the same connection; lines without one fall back to the file
            login = ca_login_ok.get(key) if entry.connection else ca_login_ok.get((entry.path, None))
            if login is not None:
                hit = _Hit(
                    "template-typo",
                    entry,
                    {"reason": "the CA login and the request page worked, then the enrollment was refused"},
                )
                hit.support.append(login)
            else:
                hit = _Hit("est-auth-failure", entry, {"est_error": "EST_ERR_AUTH_FAIL"})
        elif (name := _EST_NAME.search(text)) and name.group(1) in _EST_PROBLEMS:
            hit = _Hit(_EST_PROBLEMS[name.group(1)], entry, {"est_error": name.group(1)})
        elif (generic := _generic_problem(entry)) is not None:
            problem, alternatives, details = generic
            if url := _next_url(entries, index):
                details["url"] = url
            if host := _URL_HOST.search(details.get("url", text)):
                details["host"] = host.group(1)
            hit = _Hit(problem, entry, details, alternatives)
        if hit is not None:
            if hit.problem in _TIMEOUTS and (limit := _TIMED_OUT_AFTER.search(text)):
                hit.details["timeout_ms"] = limit.group(1)
            hits.append(hit)
            last_hit_index = len(hits) - 1
        elif last_hit_index is not None and _FOLLOW_UP.search(text):
            previous = hits[last_hit_index]
            if previous.entry.path == entry.path:
                previous.support.append(entry)
    return hits


def _capf_hits(entries: Sequence[LogEntry], libest_version: str | None) -> list[_Hit]:
    hits: list[_Hit] = []
    last_by_device: dict[str | None, _Hit] = {}
    status_block: tuple[str, str, _Hit] | None = None  # (file, result, hit) of an open SetOperationStatus block
    for entry in entries:
        text = entry.text
        hit: _Hit | None = None
        function = entry.function or ""
        status = _CAPF_STATUS.search(text) if function.startswith("SetOperationStatus") else None
        if (
            status_block is not None
            and status is not None
            and (entry.path, status.group(1)) == status_block[:2]
            and not entry.message.startswith("-->")  # a new call opens its own block, even if the last one was cut
        ):
            # a further line of the same failed SetOperationStatus call (the SQL line names the device)
            block = status_block[2]
            block.support.append(entry)
            block.device = block.device or entry.device
            if entry.message.startswith("<--"):
                status_block = None
            continue
        if (match := _CAPF_RV.search(text)) and match.group(1) != "0":
            code = int(match.group(1))
            name = match.group(2) or est_error_name(code, libest_version) or f"libest error {code}"
            problem = _EST_PROBLEMS.get(name, "enrollment-failed")
            hit = _Hit(problem, entry, {"est_error": name, "est_code": str(code)})
        elif _UNKNOWN_DEVICE.search(entry.message):
            who = entry.device or "the phone"
            hit = _Hit("unknown-device", entry, {"reason": f"CAPF has no record of {who} and ended its session"})
        elif status is not None and status.group(1) != "CAPF_OP_SUCCESS":
            hit = _Hit("capf-operation-failed", entry, {"capf_result": status.group(1)}, device=entry.device)
            if not entry.message.startswith("<--"):
                status_block = (entry.path, status.group(1), hit)
        if hit is not None:
            hits.append(hit)
            last_by_device[entry.device] = hit
        elif _FOLLOW_UP.search(text) and entry.device in last_by_device:
            last_by_device[entry.device].support.append(entry)
    return hits


def _iis_hits(entries: Sequence[LogEntry]) -> list[_Hit]:
    hits = []
    for entry in entries:
        fields = entry.fields
        user = fields.get("cs-username", "-")
        if fields.get("sc-status") == "401" and user not in ("-", ""):
            hits.append(
                _Hit(
                    "ca-auth-failure",
                    entry,
                    {"user": user, "win32_status": fields.get("sc-win32-status", "")},
                )
            )
    return hits


def _evidence(entry: LogEntry) -> Evidence:
    return Evidence(entry.path, entry.line, entry.end_line, entry.text)


def _explain(problem: str, details: Mapping[str, str], alternatives: Sequence[str]) -> str:
    parts = []
    if "curl_code" in details:
        name = f" {details['curl_name']}" if "curl_name" in details else ""
        parts.append(f"curl returned {details['curl_code']}{name} ({details.get('curl_message', '')})")
    if "est_error" in details:
        parts.append(f"libest reported {details['est_error']}")
    if "x509_verify_error" in details:
        parts.append(f"certificate verification failed with OpenSSL reason {details['x509_verify_error']}")
    if problem == "hostname-mismatch" and "certificate_name" in details:
        parts.append(f"the certificate names '{details['certificate_name']}' but CES connects to '{details['host']}'")
    elif "host" in details:
        parts.append(f"host {details['host']}")
    if "url" in details:
        parts.append(f"URL {details['url']}")
    if "reason" in details:
        parts.append(details["reason"])
    if "message" in details and "curl_code" not in details:
        parts.append(f"the log says: {details['message']}")
    if "capf_result" in details:
        parts.append(f"CAPF result {details['capf_result']}")
    if "user" in details:
        parts.append(f"IIS answered 401 to user {details['user']} (win32 status {details['win32_status']})")
    if "root_causes" in details:
        parts.append(f"the other logs show the cause: {details['root_causes']}")
    if alternatives:
        parts.append(
            "the same message appears when IIS presents a self-signed certificate, so check that too"
            if "self-signed" in alternatives
            else f"it may also be: {', '.join(alternatives)}"
        )
    return "; ".join(p for p in parts if p) or PROBLEMS[problem].title


def _findings(hits: list[_Hit], order: Mapping[tuple[str, int], int]) -> list[Finding]:
    groups: dict[tuple[str, str | None, str], list[_Hit]] = {}
    for hit in hits:
        groups.setdefault((hit.problem, hit.device or hit.entry.device, hit.entry.source), []).append(hit)
    findings = []
    for (problem, device, _), group in groups.items():
        details: dict[str, str] = {}
        alternatives: dict[str, None] = {}
        evidence: dict[tuple[str, int], Evidence] = {}
        for hit in group:
            for key, value in hit.details.items():
                details.setdefault(key, value)
            alternatives.update(dict.fromkeys(hit.alternatives))
            for entry in (hit.entry, *hit.support):
                evidence.setdefault((entry.path, entry.line), _evidence(entry))
        info = PROBLEMS[problem]
        findings.append(
            Finding(
                problem=problem,
                title=info.title,
                explanation=_explain(problem, details, tuple(alternatives)),
                fix=_fix(problem, details),
                evidence=tuple(sorted(evidence.values(), key=lambda e: order.get((e.path, e.line), 0))),
                alternatives=tuple(alternatives),
                device=device,
                details=MappingProxyType(details),
            )
        )
    return findings


def _merge_capf_auth_into_template(findings: list[Finding]) -> list[Finding]:
    """A CAPF-side EST_ERR_AUTH_FAIL is the template refusal when CES's log shows it; keep one finding."""
    template = next((f for f in findings if f.problem == "template-typo"), None)
    if template is None:
        return findings
    merged: list[Finding] = []
    extra: list[Evidence] = []
    for finding in findings:
        if finding.problem == "est-auth-failure" and all(e.path != template.evidence[0].path for e in finding.evidence):
            extra.extend(finding.evidence)
            continue
        merged.append(finding)
    if extra:
        index = merged.index(template)
        merged[index] = Finding(
            template.problem,
            template.title,
            template.explanation,
            template.fix,
            template.evidence + tuple(extra),
            template.alternatives,
            template.device or next((f.device for f in findings if f.device), None),
            template.details,
        )
    return merged


_SYMPTOMS = ("ssl-read-error", "est-auth-failure")


def _root_causes_first(findings: list[Finding], sources: Mapping[str, str]) -> list[Finding]:
    """Order the findings: causes in the CA side's logs, then CA-side symptoms, then the CAPF trace's findings."""

    def rank(finding: Finding) -> int:
        ca_side = any(sources.get(e.path) in (LogSource.NGINX, LogSource.IIS) for e in finding.evidence)
        if not ca_side:
            return 2
        return 1 if finding.problem in _SYMPTOMS else 0

    return sorted(findings, key=rank)  # stable: log order within each rank


def _link_root_causes(findings: list[Finding]) -> list[Finding]:
    causes = [f.problem for f in findings if f.problem not in _SYMPTOMS]
    if not causes:
        return findings
    linked = []
    for finding in findings:
        if finding.problem == "ssl-read-error":
            details = dict(finding.details)
            details["root_causes"] = ", ".join(dict.fromkeys(causes))
            finding = Finding(
                finding.problem,
                finding.title,
                _explain(finding.problem, details, finding.alternatives),
                finding.fix,
                finding.evidence,
                finding.alternatives,
                finding.device,
                MappingProxyType(details),
            )
        linked.append(finding)
    return linked


# -- timelines ----------------------------------------------------------------------------------------------------


def _seconds(clock: datetime.time | None) -> float | None:
    if clock is None:
        return None
    return clock.hour * 3600 + clock.minute * 60 + clock.second + clock.microsecond / 1e6


def _outcome(entries: Sequence[LogEntry], failed_lines: set[tuple[str, int]]) -> str:
    if any((e.path, e.line) in failed_lines for e in entries):
        return "failure"
    if any(e.source == LogSource.IIS and e.fields.get("sc-status", "")[:1] in ("4", "5") and e.level for e in entries):
        return "failure"
    if any(_SUCCESS.search(e.text) for e in entries):
        return "success"
    if any(
        e.source == LogSource.IIS
        and e.fields.get("sc-status") == "200"
        and e.fields.get("cs-uri-stem", "").lower().endswith((".cer", ".p7b"))
        for e in entries
    ):
        return "success"
    return "unknown"


_SESSION_START = re.compile(r"Rcvd Event: CAPF_EV_AUTH_RESP\b")
_SESSION_END = re.compile(r"\bEND_SESSION\b")
_ENROLLMENT_START = re.compile(r"Initiating Automatic Certificate Enrollment|Calling enrollCertUsingEST")


@dataclass
class _Attempt:
    entries: list[LogEntry] = field(default_factory=list)
    enrolling: bool = False
    ended: bool = False


def _second_enrollment(text: str, entries: Sequence[LogEntry]) -> bool:
    """An enrollment line in an attempt that enrolled already: a new start, unless it follows its own "Initiating"."""
    return "Initiating Automatic" in text or not any("Initiating Automatic" in e.text for e in entries[-3:])


def _capf_attempts(entries: Sequence[LogEntry]) -> dict[str, list[list[LogEntry]]]:
    """Split each device's CAPF entries into attempts: one CAPF session (phone's AUTH_RESPONSE to END_SESSION).

    A new attempt starts when the phone's authentication response arrives, after the previous session ended, or
    (for excerpts without session lines, as the seed prints them) when a second enrollment begins in one attempt.
    """
    attempts: dict[str, list[_Attempt]] = {}
    for entry in entries:
        if entry.source != LogSource.CAPF or entry.device is None:
            continue
        runs = attempts.setdefault(entry.device, [])
        text = entry.text
        enrollment = _ENROLLMENT_START.search(text) is not None
        current = runs[-1] if runs else None
        if (
            current is None
            or current.ended
            or (_SESSION_START.search(text) and current.entries)
            or (enrollment and current.enrolling and _second_enrollment(text, current.entries))
        ):
            current = _Attempt()
            runs.append(current)
        current.entries.append(entry)
        current.enrolling = current.enrolling or enrollment
        current.ended = current.ended or _SESSION_END.search(text) is not None
    return {device: [run.entries for run in runs] for device, runs in attempts.items()}


def _timelines(entries: Sequence[LogEntry], failed_lines: set[tuple[str, int]]) -> list[RequestTimeline]:
    groups: list[tuple[str, str, str | None, list[LogEntry]]] = []
    for device, runs in _capf_attempts(entries).items():
        for number, run in enumerate(runs, start=1):
            groups.append((f"capf:{device}#{number}", LogSource.CAPF, device, run))
    by_key: dict[str, list[LogEntry]] = {}
    names: dict[str, str] = {}
    for entry in entries:
        if entry.path not in names:
            names[entry.path] = Path(entry.path).name
        name = names[entry.path]
        if entry.source == LogSource.NGINX:
            key = f"nginx:{name}:{entry.connection or 'start-up'}"
        elif entry.source == LogSource.IIS:
            key = f"iis:{name}:{entry.connection}"
        else:
            continue
        by_key.setdefault(key, []).append(entry)
    for key, group in by_key.items():
        groups.append((key, key.split(":", 1)[0], None, group))
    windows: dict[str, tuple[float, float]] = {}
    sources: dict[str, str] = {}
    for key, source, _, group in groups:
        sources[key] = source
        seconds = [s for s in (_seconds(e.time_of_day) for e in group) if s is not None]
        if seconds:
            windows[key] = (min(seconds), max(seconds))
    related = _related(windows, sources)
    return [
        RequestTimeline(key, source, device, _outcome(group, failed_lines), tuple(group), tuple(related.get(key, ())))
        for key, source, device, group in groups
    ]


_HOUR = 3600.0
_SLACK = 15.0


def _related(windows: Mapping[str, tuple[float, float]], sources: Mapping[str, str]) -> dict[str, list[str]]:
    """Link windows of different logs that overlap within 15 s, allowing clock offsets of whole hours.

    Windows are reduced modulo one hour (an offset of whole hours then disappears) and searched in start order,
    so thousands of requests cost ``n log n``, not ``n²``. Windows of an hour or longer link nothing.
    """
    short = {k: (s % _HOUR, s % _HOUR + (e - s)) for k, (s, e) in windows.items() if e - s < _HOUR - 2 * _SLACK}
    by_source: dict[str, list[tuple[str, tuple[float, float]]]] = {}
    for key, window in short.items():
        by_source.setdefault(sources[key], []).append((key, window))
    indexes = {}
    for source, items in by_source.items():
        items.sort(key=lambda item: item[1][0])
        longest = max(end - start for _, (start, end) in items)
        indexes[source] = (items, [window[0] for _, window in items], longest)
    related: dict[str, list[str]] = {}
    for key, (start, end) in short.items():
        found: dict[str, None] = {}
        for source, (items, starts, longest) in indexes.items():
            if source == sources[key]:
                continue
            for shift in (-_HOUR, 0.0, _HOUR):
                low = bisect.bisect_left(starts, start + shift - _SLACK - longest)
                high = bisect.bisect_right(starts, end + shift + _SLACK)
                for other, (other_start, other_end) in items[low:high]:
                    if other_start - shift - _SLACK <= end and start <= other_end - shift + _SLACK:
                        found[other] = None
        if found:
            related[key] = list(found)
    return related


def _report(entries: list[LogEntry], files: list[LogFile]) -> Report:
    version_match = next(
        (m for m in (_LIBEST_VERSION.search(e.text) for e in entries if e.source == LogSource.NGINX) if m), None
    )
    libest_version = version_match.group(1) if version_match else None
    hits = _nginx_hits([e for e in entries if e.source == LogSource.NGINX])
    hits += _capf_hits([e for e in entries if e.source == LogSource.CAPF], libest_version)
    hits += _iis_hits([e for e in entries if e.source == LogSource.IIS])
    order = {(e.path, e.line): i for i, e in enumerate(entries)}
    hits.sort(key=lambda h: order.get((h.entry.path, h.entry.line), 0))
    findings = _link_root_causes(_merge_capf_auth_into_template(_findings(hits, order)))
    findings = _root_causes_first(findings, {e.path: e.source for e in entries})
    failed = {(h.entry.path, h.entry.line) for h in hits}
    failed.update((e.path, e.line) for h in hits if h.problem == "capf-operation-failed" for e in h.support)
    devices: dict[str, list[LogEntry]] = {}
    for entry in entries:
        if entry.source == LogSource.CAPF and entry.device and not entry.message.startswith(("-->", "<--")):
            devices.setdefault(entry.device, []).append(entry)
    if findings:
        verdict = "problems"
    elif entries:
        verdict = "healthy"
    else:
        verdict = "no-data"
    return Report(
        verdict=verdict,
        findings=tuple(findings),
        files=tuple(files),
        entries=tuple(entries),
        devices=MappingProxyType({d: tuple(e) for d, e in devices.items()}),
        requests=tuple(_timelines(entries, failed)),
    )
