"""docs/estclient/cli.md's exit code table is the code's: every code, and each error class listed under it."""

from __future__ import annotations

import re
from pathlib import Path

import estclient
from estclient._cli_support import ExitCode, exit_code_for

CLI_MD = Path(__file__).resolve().parents[2] / "docs" / "estclient" / "cli.md"


def _table() -> dict[int, list[str]]:
    text = CLI_MD.read_text(encoding="utf-8")
    section = text.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    rows: dict[int, list[str]] = {}
    for line in section.splitlines():
        match = re.match(r"\|\s*(\d+)\s*\|([^|]*)\|([^|]*)\|", line)
        if match:
            rows[int(match.group(1))] = re.findall(r"`([A-Za-z]+Error)`", match.group(3))
    return rows


def test_every_exit_code_is_documented_and_no_other() -> None:
    assert sorted(_table()) == sorted(int(code) for code in ExitCode)


def test_the_errors_listed_under_a_code_exit_with_it() -> None:
    listed = 0
    for code, names in _table().items():
        for name in names:
            cls = getattr(estclient, name)
            assert issubclass(cls, estclient.EstError), name
            error = cls.__new__(cls)  # exit_code_for looks at the class only
            assert exit_code_for(error) == code, f"{name} is documented under {code}"
            listed += 1
    assert listed >= 10
