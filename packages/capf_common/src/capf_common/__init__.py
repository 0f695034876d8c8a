"""Cisco CAPF wire protocol, LSC profiles, certificate formats and log diagnostics."""

from __future__ import annotations

import logging

from capf_common._errors import CapfError
from capf_common._version import __version__

__all__ = [
    "__version__",
    "CapfError",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
