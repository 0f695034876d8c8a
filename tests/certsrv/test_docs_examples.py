"""Every Python example of docs/certsrv and of certsrv's public docstrings runs.

The complete example of client.md runs as printed. The other examples name a real CA (``ca.example.com``,
``root.pem``, ...) or variables the surrounding text introduces (``csr_pem``, ``client``, ``emulator``): they run
with those names pointed at the AD CS emulator, so a renamed argument, method or class in an example fails here.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

import certsrv._async_client
import certsrv._client
import certsrv.compat
import certsrv.testing
from certsrv import CertsrvClient
from certsrv.testing import AdcsEmulator, CertificateTemplate, Policy
from tests._support.kerberos import Kdc
from tests.certsrv._emulator_helpers import ALICE, PASSWORD, USERS, csr_pem

DOCS = Path(__file__).parents[2] / "docs" / "certsrv"
TEMPLATES = [CertificateTemplate("WebServer"), CertificateTemplate("Manual", policy=Policy.PENDING)]
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
DOCSTRING_BLOCK = re.compile(r"::\n\n((?:(?: {4,}.*)?\n)+)")

# blocks that are not meant to run, with the reason
NOT_RUNNABLE = {
    ("client.md", 2): "the constructor's signature with its defaults, not a call",
    ("migration.md", 1): "the old package's import beside the new one; the next block runs with the new one",
}
# what the text around a block has already done
PRELUDE = {
    ("migration.md", 2): "from certsrv.compat import Certsrv, CertificatePendingException, RequestDeniedException\n",
}


def test_complete_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    text = (DOCS / "client.md").read_text(encoding="utf-8")
    section = text.split("## A complete example", 1)[1]
    code = FENCE.search(section)
    assert code is not None
    exec(compile(code.group(1), str(DOCS / "client.md"), "exec"), {"__name__": "docs_example"})
    out = capsys.readouterr().out
    assert "issued request 1 CN=SEP001F6C81118B" in out
    assert "0x80094800 ('WebServer', 'Manual')" in out
    assert "['WebServer', 'Manual']" in out


def _doc_blocks() -> list[tuple[str, int, str]]:
    blocks = []
    for doc in sorted(DOCS.glob("*.md")):
        for number, match in enumerate(FENCE.finditer(doc.read_text(encoding="utf-8")), start=1):
            blocks.append((doc.name, number, match.group(1)))
    return blocks


def _docstring_blocks() -> list[tuple[str, int, str]]:
    sources: dict[str, Any] = {
        "certsrv._client": certsrv._client,
        "certsrv._async_client": certsrv._async_client,
        "certsrv.compat": certsrv.compat,
        "certsrv.testing": certsrv.testing,
        "certsrv.testing.AdcsEmulator": certsrv.testing.AdcsEmulator,
    }
    blocks = []
    for name, obj in sources.items():
        doc = inspect.getdoc(obj) or ""
        for number, match in enumerate(DOCSTRING_BLOCK.finditer(doc + "\n"), start=1):
            code = inspect.cleandoc("\n" + match.group(1)) + "\n"
            if "import" in code or "(" in code:
                blocks.append((name, number, code))
    return blocks


@pytest.fixture(scope="module")
def emulator() -> Iterator[AdcsEmulator]:
    with AdcsEmulator(users=USERS, templates=TEMPLATES) as running:
        yield running


def _point_at(code: str, emulator: AdcsEmulator) -> str:
    """The example with its placeholder CA, trust file and password replaced by the emulator's."""
    ca_file = str(emulator.ca_file)
    host = emulator.url.split("://", 1)[1].split("/", 1)[0]
    for url in ("https://ca.example.com/certsrv", "https://ca.example.test/certsrv"):
        code = code.replace(f'"{url}', f'"{emulator.url}')
    code = code.replace('"ca.example.com"', f'"{host}"')
    for trust in ("root.pem", "ca.pem", "/etc/ssl/corp-root.pem"):
        code = code.replace(f'"{trust}"', repr(ca_file))
    return code.replace('"secret"', repr(PASSWORD))


def _namespace(emulator: AdcsEmulator, client: CertsrvClient) -> dict[str, Any]:
    pem = csr_pem("SEP001F6C81118B")
    return {
        "__name__": "docs_example",
        "csr_pem": pem,
        "csr": x509.load_pem_x509_csr(pem.encode()),
        "client": client,
        "emulator": emulator,
        "URL": emulator.url,
    }


def _run(name: str, code: str, emulator: AdcsEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CERTSRV_PASSWORD", PASSWORD)
    monkeypatch.setenv("SSL_CERT_FILE", str(emulator.ca_file))  # "the system trust store" of examples without one
    (tmp_path / "phone.csr").write_text(csr_pem("SEP001F6C81118B"))
    with CertsrvClient(emulator.url, auth="ntlm", username=ALICE, password=PASSWORD, ca_file=emulator.ca_file) as c:
        namespace = _namespace(emulator, c)
        try:
            exec(compile(_point_at(code, emulator), name, "exec"), namespace)
        finally:
            for value in namespace.values():  # the old package had no close(); its examples leave it out
                if isinstance(value, certsrv.compat.Certsrv):
                    value.close()
    emulator.faults.clear()


ALL_DOC_BLOCKS = _doc_blocks()
RUNNABLE = [b for b in ALL_DOC_BLOCKS if (b[0], b[1]) not in NOT_RUNNABLE]
KERBEROS_BLOCKS = [b for b in RUNNABLE if 'auth="kerberos"' in b[2]]
PLAIN_DOC_BLOCKS = [b for b in RUNNABLE if b not in KERBEROS_BLOCKS]


def _ids(block: tuple[str, int, str]) -> str:
    return f"{block[0]}#{block[1]}"


def test_every_python_block_is_collected() -> None:
    assert len(ALL_DOC_BLOCKS) >= 11
    assert set(NOT_RUNNABLE) <= {(name, number) for name, number, _ in ALL_DOC_BLOCKS}
    assert {name for name, _, _ in _docstring_blocks()} == {
        "certsrv._client",
        "certsrv._async_client",
        "certsrv.compat",
        "certsrv.testing",
        "certsrv.testing.AdcsEmulator",
    }


@pytest.mark.parametrize("block", PLAIN_DOC_BLOCKS, ids=_ids)
def test_docs_example_runs(
    block: tuple[str, int, str], emulator: AdcsEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, number, code = block
    _run(f"{name}#{number}", PRELUDE.get((name, number), "") + code, emulator, tmp_path, monkeypatch)


@pytest.mark.kerberos
@pytest.mark.parametrize("block", KERBEROS_BLOCKS, ids=_ids)
def test_docs_kerberos_example_runs(
    block: tuple[str, int, str], kdc: Kdc, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, number, code = block
    code = code.replace('"alice@EXAMPLE.COM"', repr(kdc.principal))
    with AdcsEmulator(users=USERS, templates=TEMPLATES, keytab=kdc.keytab) as kerberos_ca:
        _run(f"{name}#{number}", code, kerberos_ca, tmp_path, monkeypatch)


@pytest.mark.parametrize("block", _docstring_blocks(), ids=_ids)
def test_docstring_example_runs(
    block: tuple[str, int, str], emulator: AdcsEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, number, code = block
    if "async with" in code and "async def" not in code:  # an async example's body: run it in a coroutine
        code = "import anyio\n\nasync def main():\n" + "\n".join("    " + line for line in code.splitlines())
        code += "\n\nanyio.run(main)\n"
    _run(f"{name}#{number}", code, emulator, tmp_path, monkeypatch)
