"""The log entry every parser produces, and the helpers the parsers share."""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["LogEntry", "LogSource", "decode_log", "join_continuation", "find_device"]


class LogSource:
    """The kinds of log the analyzer reads (string constants, used in :attr:`LogEntry.source`)."""

    CAPF = "capf"
    NGINX = "nginx"
    IIS = "iis"


@dataclass(frozen=True)
class LogEntry:
    """One logical log entry (a physical line plus the wrapped lines that continue it).

    Attributes:
        source: ``"capf"`` (CAPF trace), ``"nginx"`` (CiscoRA/nginx error.log) or ``"iis"`` (IIS W3C log).
        path: The file the entry comes from.
        line: The 1-based number of its first line.
        end_line: The number of its last (continuation) line.
        text: The entry as written, continuation lines joined.
        message: The text after the timestamp/level prefix.
        timestamp: Date and time when the log has both (nginx with date, IIS), else ``None``.
        time_of_day: The time of day when the log has one (CAPF traces have no date).
        level: The level as the log writes it (``warn``, ``error``, ``INFO``, ...), or ``None``.
        function: The function or component that wrote it (``login_to_certsrv_ca``, ``est_enroll_auth``), or
            ``None``.
        device: The device name the entry is about (``SEP…``), or ``None``.
        connection: The nginx connection (``*2``) or IIS request sequence the entry belongs to, or ``None``.
        fields: Named columns (IIS: the ``#Fields`` names), empty for other logs.
    """

    source: str
    path: str
    line: int
    end_line: int
    text: str
    message: str
    timestamp: datetime.datetime | None = None
    time_of_day: datetime.time | None = None
    level: str | None = None
    function: str | None = None
    device: str | None = None
    connection: str | None = None
    fields: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dictionary of the entry."""
        return {
            "source": self.source,
            "path": self.path,
            "line": self.line,
            "end_line": self.end_line,
            "text": self.text,
            "timestamp": self.timestamp.isoformat() if self.timestamp else None,
            "time_of_day": self.time_of_day.isoformat() if self.time_of_day else None,
            "level": self.level,
            "function": self.function,
            "device": self.device,
            "connection": self.connection,
        }


def decode_log(data: bytes | str) -> list[str]:
    """Split log data into lines; bytes are decoded as UTF-8 with undecodable bytes replaced.

    Args:
        data: The file content.

    Returns:
        The lines without their line ends.
    """
    text = data if isinstance(data, str) else data.decode("utf-8", "replace")
    text = text.replace("\x00", "\ufffd")
    return text.splitlines()


def join_continuation(previous: str, continuation: str) -> str:
    """Join a wrapped line to the text before it (no space after a trailing hyphen: ``lab-`` + ``dc``)."""
    piece = continuation.strip()
    if not piece:
        return previous
    if previous.endswith("-") and piece[:1].isalnum():
        return previous + piece
    return f"{previous} {piece}"


_DEVICE = re.compile(
    r"\b\d+:(?P<tagged>(?:SEP|ATA)[0-9A-F]{12}|(?:CSF|BOT|TCT|TAB)[A-Z0-9._-]{1,12}):"
    r"|(?<![A-Za-z0-9])(?P<mac>(?:SEP|ATA)[0-9A-F]{12})(?![0-9A-Fa-f])",
    re.IGNORECASE,
)


def find_device(text: str) -> str | None:
    """The first device name an entry mentions (``2:NAME:`` as CAPF tags it, or ``SEP``/``ATA`` + MAC), upper case."""
    match = _DEVICE.search(text)
    if match is None:
        return None
    return (match.group("tagged") or match.group("mac")).upper()
