"""Writing files safely: atomically (temporary file + rename) and private keys readable by the owner only."""

from __future__ import annotations

import os
import tempfile
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
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600 if private else 0o644 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
