"""Writing files safely: atomically (temporary file + rename) and private keys readable by the owner only."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["write_atomic"]


def write_atomic(path: str | Path, data: bytes, *, private: bool = False) -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one, never a part.

    Args:
        path: The destination.
        data: The bytes.
        private: Create the file with mode 0600 (for private keys); otherwise 0644 (less the umask).

    Returns:
        The destination path.
    """
    target = Path(path)
    # O_EXCL on a fresh random name; the mode is given at creation, so the kernel applies the umask (reading the
    # umask would mean setting it, which races with other threads) and a key is never readable by others.
    mode = 0o600 if private else 0o644
    for _ in range(100):
        tmp = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), mode)
            break
        except FileExistsError:  # pragma: no cover - 48 random bits
            continue
    else:  # pragma: no cover
        raise FileExistsError(f"no free temporary name next to {target}")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target
