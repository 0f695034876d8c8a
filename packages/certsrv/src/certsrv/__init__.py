"""A Microsoft AD CS web enrollment (``/certsrv``) client with NTLM/Kerberos/Negotiate and channel binding."""

from __future__ import annotations

import logging

from certsrv._errors import CertsrvError
from certsrv._version import __version__

__all__ = [
    "__version__",
    "CertsrvError",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
