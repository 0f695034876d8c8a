"""A Microsoft AD CS web enrollment (``/certsrv``) client with NTLM/Kerberos/Negotiate and channel binding."""

from __future__ import annotations

import logging

from certsrv._async_client import AsyncCertsrvClient
from certsrv._auth import BasicAuth, KerberosAuth, NegotiateAuth, NtlmAuth
from certsrv._client import CertsrvClient
from certsrv._errors import (
    AuthenticationError,
    AuthenticationTimeoutError,
    CertsrvConnectionError,
    CertsrvError,
    CertsrvTimeoutError,
    ConfigurationError,
    ConnectTimeoutError,
    EnrollmentError,
    EnrollmentTimeoutError,
    HostnameMismatchError,
    InsecureAuthenticationError,
    KerberosUnavailableError,
    NameResolutionError,
    RequestDeniedError,
    RequestFailedError,
    RequestPendingError,
    RetrievalTimeoutError,
    SelfSignedServerCertificateError,
    ServerCertificateExpiredError,
    ServerCertificateNotYetValidError,
    ServerCertificateValidityError,
    ServerUnreachableError,
    TemplateAccessDeniedError,
    TemplateNotFoundError,
    TlsError,
    UnexpectedResponseError,
    UnknownRequestError,
    UnrecognizedPageError,
    UntrustedServerChainError,
)
from certsrv._hresults import HResult, describe_hresult, lookup_hresult
from certsrv._pages import CaInfo, OfferedTemplate
from certsrv._requests import san_attribute
from certsrv._results import (
    Encoding,
    Issued,
    Pending,
    SubmitResult,
    encode_certificate,
    encode_certificates,
    encode_crl,
)
from certsrv._timeouts import Phase, Timeouts
from certsrv._version import __version__

__all__ = [
    "__version__",
    "CertsrvError",
    # clients
    "CertsrvClient",
    "AsyncCertsrvClient",
    # authentication (httpx.Auth)
    "NtlmAuth",
    "KerberosAuth",
    "NegotiateAuth",
    "BasicAuth",
    "AuthenticationError",
    "InsecureAuthenticationError",
    "KerberosUnavailableError",
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
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
