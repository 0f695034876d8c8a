"""The examples of the CSR-attributes and errors pages run as written (each ```python block)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs" / "estclient"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
PAGES = ("csrattrs.md", "errors.md")


def _examples() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for i, match in enumerate(_BLOCK.finditer((DOCS / page).read_text(encoding="utf-8"))):
            found.append((f"{page}#{i + 1}", match.group(1)))
    return found


EXAMPLES = _examples()


def test_the_pages_have_examples() -> None:
    assert {where.split("#")[0] for where, _ in EXAMPLES} == set(PAGES)


@pytest.mark.parametrize(("where", "code"), EXAMPLES, ids=[where for where, _ in EXAMPLES])
def test_example_runs(where: str, code: str) -> None:
    namespace: dict[str, object] = {"__name__": f"docs_example_{where}"}
    exec(compile(code, where, "exec"), namespace)
