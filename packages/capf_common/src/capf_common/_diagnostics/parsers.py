"""Parsers for CAPF trace files, CiscoRA/nginx error.log and IIS W3C logs.

Every parser accepts any text (or bytes) and returns entries: lines it does not recognise continue the entry
before them (log viewers and copied excerpts wrap long lines) or, at the start of a file, form entries of their
own. Nothing here raises on odd input.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from capf_common._diagnostics.entries import LogEntry, LogSource, decode_log, find_device, join_continuation

__all__ = ["parse_capf_trace", "parse_nginx_error_log", "parse_iis_log", "detect_log_source", "IIS_DEFAULT_FIELDS"]

# -- shared ------------------------------------------------------------------------------------------------


@dataclass
class _Pending:
    line: int
    end_line: int
    text: str
    message: str
    timestamp: datetime.datetime | None = None
    time_of_day: datetime.time | None = None
    level: str | None = None
    function: str | None = None
    connection: str | None = None
    fields: dict[str, str] = field(default_factory=dict)

    def extend(self, number: int, line: str, *, words: bool = False) -> None:
        """Append a continuation line (``words=True``: always with a space, for column-based logs)."""
        self.end_line = number
        if words:
            self.text = f"{self.text} {line.strip()}"
            self.message = f"{self.message} {line.strip()}"
        else:
            self.text = join_continuation(self.text, line)
            self.message = join_continuation(self.message, line)


def _time(hour: str, minute: str, second: str, millis: str | None = None) -> datetime.time | None:
    try:
        return datetime.time(int(hour), int(minute), int(second), int(millis or 0) * 1000)
    except ValueError:
        return None


def _datetime(year: str, month: str, day: str, clock: datetime.time | None) -> datetime.datetime | None:
    if clock is None:
        return None
    try:
        return datetime.datetime.combine(datetime.date(int(year), int(month), int(day)), clock)
    except ValueError:
        return None


# -- CAPF trace ------------------------------------------------------------------------------------------------

_CAPF_LINE = re.compile(
    r"^(?:\d+\.\d+\s*\|\s*)?(?:(?P<date>\d{1,4}[/-]\d{1,2}[/-]\d{1,4})\s+)?"
    r"(?P<h>\d{2}):(?P<m>\d{2}):(?P<s>\d{2})\.(?P<ms>\d{3})\s*\|(?P<body>.*)$"
)
_CAPF_LEVEL = re.compile(r"^(?P<level>App\w+|Sdl\w+|Detailed|Error|Warning|Info)\s*\|\s?(?P<rest>.*)$")
_CAPF_FUNCTION = re.compile(r"^(?:-->|<--)?\s*([A-Za-z_][\w:~]*)")


def parse_capf_trace(data: bytes | str, path: str = "<capf>") -> list[LogEntry]:
    """Parse a CAPF SDI trace (``capf<number>.txt``).

    Lines look like ``14:05:04.628 |   debug 2:SEP74A02FC0A675:Calling enrollCertUsingEST()`` (as the seed prints
    them); a leading SDI sequence number (``00000012.001 |``), a date before the time and a level column
    (``|AppInfo  |``) are accepted. ``|-->name`` and ``|<--name`` mark entering and leaving a function.

    Args:
        data: The file content.
        path: The file name recorded in each entry.

    Returns:
        The entries in file order.
    """
    entries: list[_Pending] = []
    for number, raw in enumerate(decode_log(data), start=1):
        match = _CAPF_LINE.match(raw)
        if match is None:
            if not raw.strip():
                continue
            if entries:
                entries[-1].extend(number, raw)
            else:
                entries.append(_Pending(number, number, raw.strip(), raw.strip()))
            continue
        body = match.group("body").strip()
        level = None
        if (level_match := _CAPF_LEVEL.match(body)) is not None:
            level, body = level_match.group("level"), level_match.group("rest").strip()
        clock = _time(match.group("h"), match.group("m"), match.group("s"), match.group("ms"))
        function_match = _CAPF_FUNCTION.match(body)
        entries.append(
            _Pending(
                number,
                number,
                raw.rstrip(),
                body,
                time_of_day=clock,
                level=level,
                function=function_match.group(1) if function_match else None,
            )
        )
    return [_finish(LogSource.CAPF, path, p) for p in entries]


def _finish(source: str, path: str, pending: _Pending) -> LogEntry:
    time_of_day = pending.time_of_day or (pending.timestamp.time() if pending.timestamp else None)
    return LogEntry(
        source=source,
        path=path,
        line=pending.line,
        end_line=pending.end_line,
        text=pending.text,
        message=pending.message,
        timestamp=pending.timestamp,
        time_of_day=time_of_day,
        level=pending.level,
        function=pending.function,
        device=find_device(pending.text),
        connection=pending.connection,
        fields=MappingProxyType(dict(pending.fields)),
    )


# -- CiscoRA / nginx error.log ------------------------------------------------------------------------------------

_NGINX_SHORT = re.compile(r"^nginx:\s*\[(?P<level>\w+)\]\s?(?P<msg>.*)$")
_NGINX_FULL = re.compile(
    r"^(?P<y>\d{4})/(?P<mo>\d{2})/(?P<d>\d{2}) (?P<h>\d{2}):(?P<m>\d{2}):(?P<s>\d{2}) \[(?P<level>\w+)\] "
    r"(?P<pid>\d+)#(?P<tid>\d+):\s?(?:(?P<conn>\*\d+)\s)?(?P<msg>.*)$"
)
_EST_LINE = re.compile(r"^\*\*\*EST \[(?P<level>\w+)\]\[(?P<func>[^:\]]*)(?::(?P<lineno>\d+))?\]-->\s?(?P<msg>.*)$")
_SCRIPT_LINE = re.compile(r"^[\w.-]+\.sh\s*:\s?(?P<msg>.*)$")
_MESSAGE_FUNCTION = re.compile(r"^([A-Za-z_]\w*):\s")


def parse_nginx_error_log(data: bytes | str, path: str = "<error.log>") -> list[LogEntry]:
    """Parse CiscoRA's nginx ``error.log`` (and the CiscoRA ``nginx<number>.txt`` traces, which share its forms).

    Recognised line forms:

    * ``nginx: [warn] login_to_certsrv_ca: ...`` (start-up messages, no time stamp);
    * ``2019/02/27 16:53:28 [info] 3187#0: *2 login_to_certsrv_ca: ...`` (nginx's own format; ``*2`` is the
      connection);
    * ``***EST [WARNING][est_enroll_auth:394]--> ...`` (libest's logger; attributed to the connection of the
      nginx line before it);
    * ``EnrollmentService.sh : ...`` (the start script).

    Args:
        data: The file content.
        path: The file name recorded in each entry.

    Returns:
        The entries in file order.
    """
    entries: list[_Pending] = []
    last_connection: str | None = None
    for number, raw in enumerate(decode_log(data), start=1):
        line = raw.rstrip()
        if match := _NGINX_FULL.match(line):
            clock = _time(match.group("h"), match.group("m"), match.group("s"))
            message = match.group("msg")
            last_connection = match.group("conn")
            entry = _Pending(
                number,
                number,
                line,
                message,
                timestamp=_datetime(match.group("y"), match.group("mo"), match.group("d"), clock),
                level=match.group("level").lower(),
                connection=last_connection,
            )
        elif match := _NGINX_SHORT.match(line):
            entry = _Pending(number, number, line, match.group("msg"), level=match.group("level").lower())
            last_connection = None
        elif match := _EST_LINE.match(line):
            entry = _Pending(
                number,
                number,
                line,
                match.group("msg"),
                level=match.group("level").upper(),
                function=match.group("func") or None,
                connection=last_connection,
            )
        elif match := _SCRIPT_LINE.match(line):
            entry = _Pending(number, number, line, match.group("msg"))
        else:
            if not line.strip():
                continue
            if entries:
                entries[-1].extend(number, line)
            else:
                entries.append(_Pending(number, number, line.strip(), line.strip()))
            continue
        if entry.function is None and (fmatch := _MESSAGE_FUNCTION.match(entry.message)):
            entry.function = fmatch.group(1)
        entries.append(entry)
    return [_finish(LogSource.NGINX, path, p) for p in entries]


# -- IIS W3C ------------------------------------------------------------------------------------------------

#: The W3C columns of a default IIS site log (the seed's IIS excerpts use exactly these).
IIS_DEFAULT_FIELDS: tuple[str, ...] = (
    "date",
    "time",
    "s-ip",
    "cs-method",
    "cs-uri-stem",
    "cs-uri-query",
    "s-port",
    "cs-username",
    "c-ip",
    "cs(User-Agent)",
    "cs(Referer)",
    "sc-status",
    "sc-substatus",
    "sc-win32-status",
    "time-taken",
)
_IIS_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}\s")
_IIS_DATE_VALUE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_IIS_TIME_VALUE = re.compile(r"^(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?$")


def parse_iis_log(data: bytes | str, path: str = "<iis.log>") -> list[LogEntry]:
    """Parse an IIS W3C extended log (``u_ex*.log``).

    The ``#Fields:`` directive names the columns; without one the default IIS columns
    (:data:`IIS_DEFAULT_FIELDS`) are assumed. When the columns start with ``date``, a line that does not start
    with a date continues the record before it (wrapped excerpts). Missing trailing columns are left out of
    :attr:`LogEntry.fields`. Requests are grouped into sequences per client address: a sequence ends after the
    certificate download (``certnew.cer`` / ``certnew.p7b``).

    Args:
        data: The file content.
        path: The file name recorded in each entry.

    Returns:
        The entries (one per request record) in file order.
    """
    columns: tuple[str, ...] = IIS_DEFAULT_FIELDS
    records: list[_Pending] = []
    for number, raw in enumerate(decode_log(data), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            if line.lower().startswith("#fields:"):
                named = tuple(line.split(":", 1)[1].split())
                columns = named or IIS_DEFAULT_FIELDS
            continue
        starts_record = not columns or columns[0] != "date" or bool(_IIS_DATE.match(line))
        if not starts_record and records:
            records[-1].extend(number, line, words=True)
            continue
        records.append(_Pending(number, number, line, line))
    entries: list[_Pending] = []
    sequence: dict[str, int] = {}
    open_sequence: dict[str, bool] = {}
    for record in records:
        values = record.text.split()
        fields = dict(zip(columns, values, strict=False))
        if len(values) > len(columns):
            fields["_extra"] = " ".join(values[len(columns) :])
        clock = None
        if (tmatch := _IIS_TIME_VALUE.match(fields.get("time", ""))) is not None:
            clock = _time(tmatch.group(1), tmatch.group(2), tmatch.group(3), tmatch.group(4))
        timestamp = None
        if (dmatch := _IIS_DATE_VALUE.match(fields.get("date", ""))) is not None:
            timestamp = _datetime(dmatch.group(1), dmatch.group(2), dmatch.group(3), clock)
        client = fields.get("c-ip", "-")
        if not open_sequence.get(client):
            sequence[client] = sequence.get(client, 0) + 1
            open_sequence[client] = True
        stem = fields.get("cs-uri-stem", "").lower()
        if stem.endswith(("/certnew.cer", "/certnew.p7b")):
            open_sequence[client] = False
        status = fields.get("sc-status", "")
        level = "error" if status[:1] in ("4", "5") and not _is_ntlm_challenge(fields) else None
        query = fields.get("cs-uri-query", "-")
        message = " ".join(
            part
            for part in (
                fields.get("cs-method", ""),
                fields.get("cs-uri-stem", "") + ("" if query in ("-", "") else f"?{query}"),
                status,
            )
            if part
        )
        entries.append(
            replace(
                record,
                message=message or record.text,
                timestamp=timestamp,
                time_of_day=clock,
                level=level,
                function=fields.get("cs-uri-stem"),
                connection=f"{client}#{sequence[client]}",
                fields=fields,
            )
        )
    return [_finish(LogSource.IIS, path, p) for p in entries]


def _is_ntlm_challenge(fields: dict[str, str]) -> bool:
    """An anonymous 401 answered with the NTLM challenge (401.1, SEC_E_NO_CREDENTIALS): normal, not an error."""
    return fields.get("sc-status") == "401" and fields.get("cs-username", "-") == "-"


# -- detection ------------------------------------------------------------------------------------------------


def detect_log_source(data: bytes | str, name: str = "") -> str | None:
    """Tell which kind of log a file holds, from its content (the name only breaks ties).

    Args:
        data: The file content (the first 200 lines are looked at).
        name: The file name, e.g. ``capf01.txt``, ``error.log``, ``u_ex190116.log``.

    Returns:
        ``"capf"``, ``"nginx"``, ``"iis"``, or ``None`` when nothing in it looks like any of them.
    """
    lines = decode_log(data)[:200]
    scores = {LogSource.CAPF: 0, LogSource.NGINX: 0, LogSource.IIS: 0}
    for line in lines:
        stripped = line.strip()
        if stripped.lower().startswith(("#fields:", "#software: microsoft internet information services")):
            scores[LogSource.IIS] += 5
        elif _IIS_DATE.match(stripped) and len(stripped.split()) >= 4:
            scores[LogSource.IIS] += 1
        elif _CAPF_LINE.match(line):
            scores[LogSource.CAPF] += 1
        elif _NGINX_SHORT.match(stripped) or _NGINX_FULL.match(stripped) or _EST_LINE.match(stripped):
            scores[LogSource.NGINX] += 1
    best = max(scores.values())
    if best == 0:
        lowered = name.lower().rsplit("/", 1)[-1]
        if lowered.startswith("capf"):
            return LogSource.CAPF
        if lowered.startswith(("error", "nginx")):
            return LogSource.NGINX
        if lowered.startswith("u_ex") or "iis" in lowered:
            return LogSource.IIS
        return None
    return next(source for source, score in scores.items() if score == best)
