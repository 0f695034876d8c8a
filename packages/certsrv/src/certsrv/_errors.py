"""The exceptions of certsrv.

Every exception the library raises on purpose derives from :class:`CertsrvError`::

    CertsrvError
"""

from __future__ import annotations

__all__ = ["CertsrvError"]


class CertsrvError(Exception):
    """Root of every error certsrv raises.

    Each subclass names the cause of the failure and, where one exists, the fix, in its message.
    """
