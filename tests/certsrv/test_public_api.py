"""Pins the public surface of certsrv: a change here is a change of the published API."""

from __future__ import annotations

import inspect

import certsrv

EXPECTED_ALL = {
    "__version__",
    "CertsrvError",
    "NtlmAuth",
    "KerberosAuth",
    "NegotiateAuth",
    "BasicAuth",
    "AuthenticationError",
    "InsecureAuthenticationError",
    "KerberosUnavailableError",
    # clients
    "CertsrvClient",
    "AsyncCertsrvClient",
    # results, timeouts, page data
    "Issued",
    "Pending",
    "SubmitResult",
    "Encoding",
    "encode_certificate",
    "encode_certificates",
    "encode_crl",
    "san_attribute",
    "Timeouts",
    "Phase",
    "CaInfo",
    "OfferedTemplate",
    "HResult",
    "lookup_hresult",
    "describe_hresult",
    # errors
    "ConfigurationError",
    "CertsrvConnectionError",
    "NameResolutionError",
    "ServerUnreachableError",
    "TlsError",
    "UntrustedServerChainError",
    "SelfSignedServerCertificateError",
    "HostnameMismatchError",
    "ServerCertificateValidityError",
    "ServerCertificateNotYetValidError",
    "ServerCertificateExpiredError",
    "CertsrvTimeoutError",
    "ConnectTimeoutError",
    "AuthenticationTimeoutError",
    "EnrollmentTimeoutError",
    "RetrievalTimeoutError",
    "UnexpectedResponseError",
    "UnrecognizedPageError",
    "EnrollmentError",
    "RequestDeniedError",
    "TemplateNotFoundError",
    "TemplateAccessDeniedError",
    "RequestFailedError",
    "RequestPendingError",
    "UnknownRequestError",
}


def test_all_is_pinned() -> None:
    assert set(certsrv.__all__) == EXPECTED_ALL
    assert len(certsrv.__all__) == len(set(certsrv.__all__)), "duplicate names in __all__"


def test_every_public_name_exists_and_is_documented() -> None:
    for name in certsrv.__all__:
        obj = getattr(certsrv, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"{name} has no docstring"


def test_root_error_is_an_exception() -> None:
    assert issubclass(certsrv.CertsrvError, Exception)


def test_every_error_derives_from_the_root() -> None:
    for name in certsrv.__all__:
        obj = getattr(certsrv, name)
        if inspect.isclass(obj) and issubclass(obj, BaseException):
            assert issubclass(obj, certsrv.CertsrvError), name
