"""Writers for the three log formats the analyzer reads, for applications that play a part of the chain.

A CAPF server, an RA or a CA emulator that logs through these formatters produces files that
:func:`capf_common.analyze` reads like the real ones: the CAPF SDI trace, the CiscoRA/nginx ``error.log``
(nginx's own lines and libest's ``***EST`` lines) and the IIS W3C log.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping, Sequence

from capf_common._diagnostics.parsers import IIS_DEFAULT_FIELDS

__all__ = ["CapfTraceFormatter", "NginxErrorLogFormatter", "EstLogFormatter", "iis_log_header", "format_iis_record"]

_NGINX_LEVELS = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warn",
    logging.ERROR: "error",
    logging.CRITICAL: "crit",
}
_EST_LEVELS = {logging.DEBUG: "INFO", logging.INFO: "INFO", logging.WARNING: "WARNING", logging.ERROR: "ERROR"}


def _level(table: Mapping[int, str], levelno: int, default: str) -> str:
    for threshold in sorted(table, reverse=True):
        if levelno >= threshold:
            return table[threshold]
    return default


def _local_time(record: logging.LogRecord, utc: bool) -> datetime.datetime:
    when = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
    return when if utc else when.astimezone()


class CapfTraceFormatter(logging.Formatter):
    """Format log records as CAPF SDI trace lines: ``14:05:04.628 |   debug 2:SEP74A02FC0A675:text``.

    A record's ``device`` attribute (``logger.info("...", extra={"device": "SEP…"})``) adds the ``2:DEVICE:``
    tag CAPF writes for per-phone lines. Times are local, as CUCM writes them, unless ``utc=True``.

    Args:
        utc: Write UTC instead of local time.
    """

    def __init__(self, *, utc: bool = False) -> None:
        super().__init__()
        self.utc = utc

    def format(self, record: logging.LogRecord) -> str:
        """Render one record (continuation lines of a multi-line message stay unprefixed, as in real traces)."""
        when = _local_time(record, self.utc)
        device = getattr(record, "device", None)
        tag = f"2:{device}:" if device else ""
        return f"{when:%H:%M:%S}.{when.microsecond // 1000:03d} |   debug {tag}{record.getMessage()}"


class NginxErrorLogFormatter(logging.Formatter):
    """Format log records as nginx ``error.log`` lines: ``2019/02/27 16:53:28 [warn] 3187#0: *2 func: text``.

    Optional record attributes: ``connection`` (the nginx connection number, written as ``*N``) and
    ``function`` (the C function CiscoRA names, e.g. ``login_to_certsrv_ca``). ``startup=True`` writes the
    short start-up form ``nginx: [warn] text`` instead.

    Args:
        startup: Use the ``nginx: [level]`` form (no time stamp), as nginx does while it starts.
        utc: Write UTC instead of local time.
    """

    def __init__(self, *, startup: bool = False, utc: bool = False) -> None:
        super().__init__()
        self.startup = startup
        self.utc = utc

    def format(self, record: logging.LogRecord) -> str:
        """Render one record."""
        level = _level(_NGINX_LEVELS, record.levelno, "debug")
        function = getattr(record, "function", None)
        text = f"{function}: {record.getMessage()}" if function else record.getMessage()
        if self.startup:
            return f"nginx: [{level}] {text}"
        when = _local_time(record, self.utc)
        connection = getattr(record, "connection", None)
        conn = f"*{connection} " if connection is not None else ""
        return f"{when:%Y/%m/%d %H:%M:%S} [{level}] {record.process or 0}#0: {conn}{text}"


class EstLogFormatter(logging.Formatter):
    """Format log records as libest lines: ``***EST [WARNING][est_http_request:1435]--> text``.

    The function and line default to the record's own (``funcName``, ``lineno``); a ``function`` attribute
    overrides the function name.
    """

    def format(self, record: logging.LogRecord) -> str:
        """Render one record."""
        level = _level(_EST_LEVELS, record.levelno, "INFO")
        function = getattr(record, "function", None) or record.funcName
        return f"***EST [{level}][{function}:{record.lineno}]--> {record.getMessage()}"


def iis_log_header(fields: Sequence[str] = IIS_DEFAULT_FIELDS, *, when: datetime.datetime | None = None) -> str:
    """The directives that start an IIS W3C log file.

    Args:
        fields: The column names (default: IIS's default columns, the seed's).
        when: The ``#Date`` (default: now, UTC).

    Returns:
        ``#Software``, ``#Version``, ``#Date`` and ``#Fields`` lines, each ending with a newline.
    """
    stamp = (when or datetime.datetime.now(datetime.UTC)).strftime("%Y-%m-%d %H:%M:%S")
    return (
        "#Software: Microsoft Internet Information Services 10.0\n"
        "#Version: 1.0\n"
        f"#Date: {stamp}\n"
        f"#Fields: {' '.join(fields)}\n"
    )


def format_iis_record(values: Mapping[str, object], fields: Sequence[str] = IIS_DEFAULT_FIELDS) -> str:
    """One IIS W3C log record, the columns in the order of ``fields``.

    Missing or empty values become ``-``; spaces become ``+`` (as IIS writes the user agent).

    Args:
        values: Column name → value (``date``, ``time``, ``cs-method``, ``sc-status``, ...).
        fields: The column order (default: IIS's default columns).

    Returns:
        The record line, without a newline.
    """
    parts = []
    for name in fields:
        value = values.get(name)
        text = "-" if value is None or str(value) == "" else str(value).replace(" ", "+")
        parts.append(text)
    return " ".join(parts)
