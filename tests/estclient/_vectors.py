"""Loads the test vectors in tests/estclient/data/ (provenance in data/README.md)."""

from __future__ import annotations

import json
from pathlib import Path

DATA = Path(__file__).parent / "data"


def text(name: str) -> bytes:
    """The raw bytes of a data file (e.g. a base64 body as a server sends it)."""
    return (DATA / name).read_bytes()


def table(name: str) -> dict[str, str]:
    """A JSON table of named base64 vectors, without its ``_source`` entry."""
    loaded: dict[str, str] = json.loads((DATA / name).read_text(encoding="utf-8"))
    return {key: value for key, value in loaded.items() if not key.startswith("_")}
