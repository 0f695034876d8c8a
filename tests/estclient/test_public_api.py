"""Pins the public surface of estclient: a change here is a change of the published API."""

from __future__ import annotations

import inspect

import estclient

EXPECTED_ALL = {
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
}


def test_all_is_pinned() -> None:
    assert set(estclient.__all__) == EXPECTED_ALL
    assert len(estclient.__all__) == len(set(estclient.__all__)), "duplicate names in __all__"


def test_every_public_name_exists_and_is_documented() -> None:
    for name in estclient.__all__:
        obj = getattr(estclient, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"{name} has no docstring"


def test_root_error_is_an_exception() -> None:
    assert issubclass(estclient.EstError, Exception)
