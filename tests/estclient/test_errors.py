"""The error tree: messages with cause and fix, libest names and numbers, the HTTP status mapping."""

from __future__ import annotations

import datetime as dt
import inspect
import re

import pytest

import estclient
from estclient import (
    LIBEST_ERROR_CODES,
    AuthenticationError,
    BadRequestError,
    CertificateValidityError,
    EstError,
    EstHttpError,
    EstTimeoutError,
    HostnameMismatchError,
    NameResolutionError,
    NotSupportedError,
    ResourceLockedError,
    ServerError,
    UntrustedServerError,
    _errors,
    http_error,
)

ERROR_CLASSES = [obj for obj in vars(_errors).values() if inspect.isclass(obj) and issubclass(obj, EstError)]


def test_libest_numbers_of_the_seed_log_lines() -> None:
    assert LIBEST_ERROR_CODES["EST_ERR_AUTH_FAIL"] == 22
    assert LIBEST_ERROR_CODES["EST_ERR_SSL_READ"] == 35
    assert LIBEST_ERROR_CODES["EST_ERR_UNKNOWN"] == 94
    assert len(set(LIBEST_ERROR_CODES.values())) == len(LIBEST_ERROR_CODES) == 96


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_every_error_is_exported_documented_drawn_and_has_a_hint(cls: type[EstError]) -> None:
    assert getattr(estclient, cls.__name__) is cls
    assert inspect.getdoc(cls)
    assert cls.default_hint
    assert re.search(rf"\b{cls.__name__}\b", _errors.__doc__ or ""), f"{cls.__name__} is not in the drawn tree"
    if cls.default_libest_error is not None:
        assert cls.default_libest_error in LIBEST_ERROR_CODES


def test_str_has_cause_fix_and_libest() -> None:
    error = NameResolutionError("est.example.invalid", "Name or service not known")
    text = str(error)
    assert text.startswith("Name resolution failed for 'est.example.invalid': Name or service not known.")
    assert "Fix: Check the spelling" in text
    assert text.endswith("[libest: EST_ERR_IP_GETADDR (42)]")
    assert error.host == "est.example.invalid"


def test_explicit_empty_libest_error_means_none() -> None:
    error = EstError("x", libest_error="")
    assert error.libest_error is None and error.libest_code is None
    assert str(EstTimeoutError("pool", 5)).endswith("timeout.")  # no libest equivalent for the pool


@pytest.mark.parametrize(("phase", "code"), [("connect", 43), ("read", 35), ("write", 34)])
def test_timeouts_name_phase_limit_and_operation(phase: str, code: int) -> None:
    error = EstTimeoutError(phase, 10.0, operation="authentication")  # type: ignore[arg-type]
    assert (error.phase, error.limit, error.libest_code) == (phase, 10.0, code)
    assert f"{phase} phase during authentication after 10 s" in error.message


def test_trust_errors_name_what_the_user_needs() -> None:
    mismatch = HostnameMismatchError("10.0.0.5", ["ca.example.com", "ra.example.com"])
    assert "connected to '10.0.0.5'" in str(mismatch) and "ca.example.com, ra.example.com" in str(mismatch)
    assert mismatch.libest_code == 53
    untrusted = UntrustedServerError("The chain of CN=iis does not verify.", missing_issuer="CN=Issuing CA")
    assert "CN=Issuing CA" in untrusted.hint
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    early = CertificateValidityError("CN=iis", now + dt.timedelta(days=1), now + dt.timedelta(days=30), now)
    assert early.state == "not_yet_valid" and "local clock 2026-01-01" in str(early) and "NTP" in early.hint
    late = CertificateValidityError("CN=iis", now - dt.timedelta(days=30), now - dt.timedelta(days=1), now)
    assert late.state == "expired"


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, AuthenticationError),
        (404, NotSupportedError),
        (501, NotSupportedError),
        (423, ResourceLockedError),
        (500, ServerError),
        (504, ServerError),
        (418, EstHttpError),
    ],
)
def test_http_error_mapping(status: int, cls: type[EstHttpError]) -> None:
    error = http_error(status, "  the server's words  ", operation="simpleenroll", url="https://x/.well-known/est")
    assert type(error) is cls
    assert (error.status, error.server_text, error.operation) == (status, "the server's words", "simpleenroll")
    assert f'answered {status} to /simpleenroll: "the server\'s words"' in error.message


def test_server_text_is_bounded() -> None:
    assert len(http_error(500, "x" * 10_000).server_text) == 2000
