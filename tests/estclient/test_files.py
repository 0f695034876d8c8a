"""write_atomic: the whole new file or the old one, private keys 0600 from the first byte, the umask untouched."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from estclient.testing._files import write_atomic


def test_private_files_are_0600_and_others_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        assert write_atomic(tmp_path / "k.pem", b"key", private=True).stat().st_mode & 0o777 == 0o600
        assert write_atomic(tmp_path / "c.pem", b"cert").stat().st_mode & 0o777 == 0o644
        os.umask(0o077)
        assert write_atomic(tmp_path / "c2.pem", b"cert").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


def test_the_process_umask_is_never_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Setting the umask to 0 to read it would let another thread create world-writable files meanwhile."""

    def forbidden(mask: int) -> int:
        raise AssertionError("write_atomic changed the process umask")

    monkeypatch.setattr(os, "umask", forbidden)
    write_atomic(tmp_path / "c.pem", b"cert")
    write_atomic(tmp_path / "k.pem", b"key", private=True)


def test_an_existing_file_is_replaced_whole(tmp_path: Path) -> None:
    target = tmp_path / "c.pem"
    target.write_bytes(b"old")
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["c.pem"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "c.pem"
    target.write_bytes(b"old")

    def broken(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="No space"):
        write_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["c.pem"]
