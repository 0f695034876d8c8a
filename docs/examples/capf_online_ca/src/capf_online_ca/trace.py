"""CAPF's SDI trace (``capf<N>.txt``), written in the format of CUCM's CAPF trace so capf_common's analyzer reads it.

CUCM writes every ``debug`` call as three lines, the function's entry, the text and its exit; per-phone text
carries the ``2:DEVICE:`` tag::

    14:05:04.628 |-->debug
    14:05:04.628 |   debug 2:SEP74A02FC0A675:CA Mode is OnlineCA, Initiating Automatic Certificate Enrollment
    14:05:04.628 |<--debug

Other functions write ``|-->Name``, ``|   Name text`` and ``|<--Name``; start-up lines are ``| Name text``.
Times are local (CUCM writes local time). Files are numbered (``capf00000001.txt``, the next free number at
each start) and roll over to the next number when one exceeds ``max_bytes``. Nothing secret is ever written:
callers pass device names, file names, codes and lengths, never authentication strings or keys.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from pathlib import Path
from types import TracebackType
from typing import TextIO

__all__ = ["CapfTrace"]

_NUMBERED = re.compile(r"^capf(\d+)\.txt$")


class CapfTrace:
    """A CAPF trace writer (thread-safe; each call's lines are written together).

    Args:
        folder: Where the ``capf<N>.txt`` files go (created if missing).
        max_bytes: Size after which the next file is started.
        utc: Write UTC instead of local time.
    """

    def __init__(self, folder: Path, *, max_bytes: int = 5_000_000, utc: bool = False) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.utc = utc
        self._lock = threading.Lock()
        self._file: TextIO | None = None
        self._written = 0
        folder.mkdir(parents=True, exist_ok=True)
        numbers = [int(m.group(1)) for p in folder.iterdir() if (m := _NUMBERED.match(p.name))]
        self._number = max(numbers, default=0)
        self.files: list[Path] = []
        """The files this writer wrote, oldest first."""

    @property
    def path(self) -> Path:
        """The current file (``capf00000001.txt``), or the one the first write will create."""
        return self.files[-1] if self.files else self.folder / f"capf{self._number + 1:08d}.txt"

    def _stamp(self) -> str:
        now = dt.datetime.now(dt.UTC) if self.utc else dt.datetime.now().astimezone()
        return f"{now:%H:%M:%S}.{now.microsecond // 1000:03d}"

    def _write(self, lines: list[str]) -> None:
        text = "".join(f"{line}\n" for line in lines)
        with self._lock:
            if self._file is None or (self._written + len(text) > self.max_bytes and self._written):
                self._roll()
            assert self._file is not None
            self._file.write(text)
            self._file.flush()
            self._written += len(text)

    def _roll(self) -> None:
        if self._file is not None:
            self._file.close()
        self._number += 1
        path = self.folder / f"capf{self._number:08d}.txt"
        self._file = path.open("a", encoding="utf-8")
        self._written = path.stat().st_size
        self.files.append(path)

    def debug(self, text: str, device: str | None = None) -> None:
        """Write a ``debug`` call: ``|-->debug``, ``|   debug [2:DEVICE:]text``, ``|<--debug``.

        Args:
            text: The message (one line; no secrets).
            device: The device it is about, written as the ``2:DEVICE:`` tag.
        """
        stamp = self._stamp()
        tag = f"2:{device}:" if device else ""
        self._write([f"{stamp} |-->debug", f"{stamp} |   debug {tag}{text}", f"{stamp} |<--debug"])

    def function(self, name: str, *texts: str) -> None:
        """Write a function's entry, its lines and its exit: ``|-->name``, ``|   name text`` ..., ``|<--name``."""
        stamp = self._stamp()
        self._write([f"{stamp} |-->{name}", *(f"{stamp} |   {name} {t}" for t in texts), f"{stamp} |<--{name}"])

    def line(self, text: str) -> None:
        """Write one plain line ``| text`` (the form of CAPF's start-up lines)."""
        self._write([f"{self._stamp()} | {text}"])

    def enter(self, name: str) -> None:
        """Write ``|-->name``."""
        self._write([f"{self._stamp()} |-->{name}"])

    def leave(self, name: str) -> None:
        """Write ``|<--name``."""
        self._write([f"{self._stamp()} |<--{name}"])

    def close(self) -> None:
        """Close the current file (a later write opens the next number)."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def __enter__(self) -> CapfTrace:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
