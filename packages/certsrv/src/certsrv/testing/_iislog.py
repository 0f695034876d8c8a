"""An IIS W3C extended access log, in the format of the IIS logs the CAPF Online CA troubleshooting guide shows.

Each response the emulator sends (401 challenges included) becomes one line under the ``#Fields:`` directive
:data:`FIELDS` (``date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent)
cs(Referer) sc-status sc-substatus sc-win32-status time-taken``), for example::

    2019-01-16 14:05:02 14.48.31.152 GET /certsrv - 443 - 14.48.31.125 CiscoRA+1.0 - 401 1 2148074254 0

Empty fields are ``-`` and spaces inside a field become ``+``, as IIS writes them. The log is kept in memory
(:attr:`IisLog.entries`) and, when a path is given, appended to a file that starts with IIS's ``#`` directives.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FIELDS", "IisLog", "IisLogEntry"]

#: The ``#Fields:`` directive of the log (the field order of every line).
FIELDS = (
    "date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) "
    "sc-status sc-substatus sc-win32-status time-taken"
)


def _field(value: str | None) -> str:
    if not value:
        return "-"
    return value.replace(" ", "+").replace("\r", "").replace("\n", "")


@dataclass(frozen=True)
class IisLogEntry:
    """One access-log line.

    Attributes:
        time: When the response was sent (UTC).
        server_ip: ``s-ip``.
        method: ``cs-method``.
        uri_stem: ``cs-uri-stem`` (the path without the query).
        uri_query: ``cs-uri-query`` (empty when there is none).
        server_port: ``s-port``.
        username: ``cs-username``: the authenticated user, empty on a 401.
        client_ip: ``c-ip``.
        user_agent: ``cs(User-Agent)``.
        referer: ``cs(Referer)``.
        status: ``sc-status``.
        substatus: ``sc-substatus``.
        win32_status: ``sc-win32-status``.
        time_taken_ms: ``time-taken`` in milliseconds.
    """

    time: dt.datetime
    server_ip: str
    method: str
    uri_stem: str
    uri_query: str
    server_port: int
    username: str
    client_ip: str
    user_agent: str
    referer: str
    status: int
    substatus: int
    win32_status: int
    time_taken_ms: int

    def line(self) -> str:
        """The entry as a W3C log line (no line break)."""
        return " ".join(
            [
                self.time.strftime("%Y-%m-%d"),
                self.time.strftime("%H:%M:%S"),
                self.server_ip,
                self.method,
                _field(self.uri_stem),
                _field(self.uri_query),
                str(self.server_port),
                _field(self.username),
                self.client_ip,
                _field(self.user_agent),
                _field(self.referer),
                str(self.status),
                str(self.substatus),
                str(self.win32_status),
                str(self.time_taken_ms),
            ]
        )


class IisLog:
    """The emulator's access log: in memory, and appended to ``path`` when one is given.

    Args:
        path: The log file (created with IIS's ``#Software``/``#Version``/``#Date``/``#Fields`` header when new).
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._entries: list[IisLogEntry] = []
        self._lock = threading.Lock()
        if path is not None and (not path.exists() or path.stat().st_size == 0):
            now = dt.datetime.now(dt.UTC)
            path.write_text(
                "#Software: Microsoft Internet Information Services 10.0\n"
                "#Version: 1.0\n"
                f"#Date: {now:%Y-%m-%d %H:%M:%S}\n"
                f"#Fields: {FIELDS}\n",
                encoding="ascii",
            )

    def add(self, entry: IisLogEntry) -> None:
        """Record ``entry`` (thread-safe)."""
        with self._lock:
            self._entries.append(entry)
            if self.path is not None:
                with self.path.open("a", encoding="utf-8") as fh:
                    fh.write(entry.line() + "\n")

    @property
    def entries(self) -> list[IisLogEntry]:
        """A copy of the entries so far, oldest first."""
        with self._lock:
            return list(self._entries)

    def lines(self) -> list[str]:
        """The entries as W3C log lines."""
        return [e.line() for e in self.entries]

    def text(self) -> str:
        """The whole log as IIS writes it: the ``#`` directives, then one line per entry."""
        head = f"#Software: Microsoft Internet Information Services 10.0\n#Version: 1.0\n#Fields: {FIELDS}\n"
        return head + "".join(line + "\n" for line in self.lines())

    def count(self, predicate: Callable[[IisLogEntry], bool] | None = None) -> int:
        """How many entries there are (that satisfy ``predicate`` when given)."""
        entries = self.entries
        return len(entries) if predicate is None else sum(1 for e in entries if predicate(e))

    def clear(self) -> None:
        """Forget the in-memory entries (the file keeps its lines)."""
        with self._lock:
            self._entries.clear()
