"""The exceptions of capf_common.

Every exception the library raises on purpose derives from :class:`CapfError`::

    CapfError
"""

from __future__ import annotations

__all__ = ["CapfError"]


class CapfError(Exception):
    """Root of every error capf_common raises.

    Each subclass names the cause of the failure and, where one exists, the fix, in its message.
    """
