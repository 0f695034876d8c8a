"""The runnable example of docs/certsrv/client.md runs as printed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).parents[2] / "docs" / "certsrv" / "client.md"


def test_complete_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## A complete example", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    exec(compile(code.group(1), str(DOC), "exec"), {"__name__": "docs_example"})
    out = capsys.readouterr().out
    assert "issued request 1 CN=SEP001F6C81118B" in out
    assert "0x80094800 ('WebServer', 'Manual')" in out
    assert "['WebServer', 'Manual']" in out
