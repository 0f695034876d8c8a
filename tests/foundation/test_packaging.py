"""Each distribution builds, passes ``twine check``, and installs and imports alone in a fresh environment.

The libraries must not import each other: a wheel installed alone must import, and must not have pulled in a
sibling distribution.
"""

from __future__ import annotations

import email
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {  # distribution -> (import name, command)
    "estclient": ("estclient", "est"),
    "adcs-certsrv": ("certsrv", "certsrv"),
    "capf-common": ("capf_common", "capf"),
}
SIBLINGS = {imp for imp, _ in PACKAGES.values()}

pytestmark = pytest.mark.slow


def _uv() -> str:
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is not on PATH: run the tests through `bash scripts/test` (it installs uv)")
    return uv


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([_uv(), "build", "--all-packages", "--out-dir", str(out), "--quiet"], cwd=ROOT, check=True)
    return out


def _wheel(dists: Path, dist: str) -> Path:
    (wheel,) = dists.glob(dist.replace("-", "_") + "-*.whl")
    return wheel


@pytest.mark.parametrize("dist", sorted(PACKAGES))
def test_sdist_and_wheel_built(dists: Path, dist: str) -> None:
    assert len(list(dists.glob(dist.replace("-", "_") + "-*.tar.gz"))) == 1
    imp = PACKAGES[dist][0]
    names = zipfile.ZipFile(_wheel(dists, dist)).namelist()
    assert f"{imp}/py.typed" in names
    assert not any(n.split("/")[0] in SIBLINGS - {imp} for n in names), "a sibling package leaked into the wheel"


@pytest.mark.parametrize("dist", sorted(PACKAGES))
def test_metadata_complete(dists: Path, dist: str) -> None:
    with zipfile.ZipFile(_wheel(dists, dist)) as zf:
        meta_name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        meta = email.message_from_bytes(zf.read(meta_name))
    assert meta["Name"] == dist
    assert meta["Summary"]
    assert meta["License-Expression"] == "MIT"
    assert meta["Requires-Python"] == ">=3.11"
    assert meta["Description-Content-Type"] == "text/markdown"
    assert "Typing :: Typed" in meta.get_all("Classifier", [])
    urls = {u.split(",")[0] for u in meta.get_all("Project-URL", [])}
    assert {"Homepage", "Documentation", "Source", "Changelog", "Issues"} <= urls
    body = meta.get_payload()
    assert isinstance(body, str) and body.startswith("# "), "the description is the package README"


def test_reference_app_is_never_published(dists: Path) -> None:
    (wheel,) = dists.glob("capf_online_ca_lab-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        meta_name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        meta = email.message_from_bytes(zf.read(meta_name))
    assert "Private :: Do Not Upload" in meta.get_all("Classifier", [])


def test_twine_check(dists: Path) -> None:
    prefixes = tuple(dist.replace("-", "_") + "-" for dist in PACKAGES)
    files = sorted(str(p) for p in dists.iterdir() if p.name.startswith(prefixes))
    assert len(files) == 2 * len(PACKAGES)
    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *files], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dist", sorted(PACKAGES))
def test_installs_and_imports_alone(dists: Path, dist: str, tmp_path: Path) -> None:
    imp, command = PACKAGES[dist]
    venv = tmp_path / "venv"
    subprocess.run([_uv(), "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run([_uv(), "pip", "install", "--quiet", "--python", str(py), str(_wheel(dists, dist))], check=True)
    probe = (
        "import importlib.util, sys\n"
        f"import {imp}\n"
        f"assert {imp}.__version__\n"
        f"present = [n for n in {sorted(SIBLINGS - {imp})!r} if importlib.util.find_spec(n)]\n"
        "assert not present, f'sibling packages installed: {present}'\n"
        f"leaked = [m for m in sys.modules if m.split('.')[0] in {sorted(SIBLINGS - {imp})!r}]\n"
        "assert not leaked, leaked\n"
    )
    result = subprocess.run([str(py), "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    # The command is installed; without the cli extra it says how to get it instead of a traceback.
    result = subprocess.run([str(venv / "bin" / command), "--version"], capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    assert "[cli]" in result.stderr
