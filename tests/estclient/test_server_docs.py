"""The runnable examples of the EST server page run as written (each ```python block; ```py blocks are sketches)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[2] / "docs" / "estclient" / "server.md"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
EXAMPLES = [(f"server.md#{i + 1}", m.group(1)) for i, m in enumerate(_BLOCK.finditer(PAGE.read_text("utf-8")))]


def test_the_page_has_examples() -> None:
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize(("where", "code"), EXAMPLES, ids=[where for where, _ in EXAMPLES])
def test_example_runs(where: str, code: str) -> None:
    namespace: dict[str, object] = {"__name__": f"docs_example_{where}"}
    exec(compile(code, where, "exec"), namespace)
