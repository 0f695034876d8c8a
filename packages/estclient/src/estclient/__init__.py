"""An RFC 7030 EST client: sync and async, with an EST test server and the ``est`` command."""

from __future__ import annotations

import logging

from estclient._errors import (
    AuthenticationError,
    BadRequestError,
    BootstrapError,
    CertificateValidityError,
    CmcFailError,
    CsrAttrsError,
    CsrBuildError,
    EstConnectionError,
    EstError,
    EstHttpError,
    EstTimeoutError,
    HostnameMismatchError,
    InvalidLabelError,
    MalformedMessageError,
    MalformedRequestError,
    MalformedResponseError,
    NameResolutionError,
    NotSupportedError,
    PopLinkingError,
    ProtocolVersionError,
    RaAuthorizationError,
    ResourceLockedError,
    SelfSignedServerError,
    ServerError,
    ServerKeyGenError,
    ServerTrustError,
    UntrustedServerError,
)
from estclient._version import __version__

__all__ = [
    "__version__",
    "AuthenticationError",
    "BadRequestError",
    "BootstrapError",
    "CertificateValidityError",
    "CmcFailError",
    "CsrAttrsError",
    "CsrBuildError",
    "EstConnectionError",
    "EstError",
    "EstHttpError",
    "EstTimeoutError",
    "HostnameMismatchError",
    "InvalidLabelError",
    "MalformedMessageError",
    "MalformedRequestError",
    "MalformedResponseError",
    "NameResolutionError",
    "NotSupportedError",
    "PopLinkingError",
    "ProtocolVersionError",
    "RaAuthorizationError",
    "ResourceLockedError",
    "SelfSignedServerError",
    "ServerError",
    "ServerKeyGenError",
    "ServerTrustError",
    "UntrustedServerError",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
