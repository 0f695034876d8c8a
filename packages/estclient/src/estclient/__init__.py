"""An RFC 7030 EST client: sync and async, with an EST test server and the ``est`` command."""

from __future__ import annotations

import logging

from estclient._errors import EstError
from estclient._version import __version__

__all__ = [
    "__version__",
    "EstError",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
