"""The exceptions of estclient.

Every exception the library raises on purpose derives from :class:`EstError`::

    EstError
"""

from __future__ import annotations

__all__ = ["EstError"]


class EstError(Exception):
    """Root of every error estclient raises.

    Each subclass names the cause of the failure and, where one exists, the fix, in its message.
    """
