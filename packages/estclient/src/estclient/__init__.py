"""An RFC 7030 EST client: sync and async, with an EST test server and the ``est`` command."""

from __future__ import annotations

import logging

from estclient._async_client import AsyncEstClient
from estclient._auth import BasicAuth, ClientCertificate, DigestAuth
from estclient._b64 import decode_body, encode_body
from estclient._client import DEFAULT_TIMEOUT, EstClient
from estclient._cmc import (
    CmcControl,
    CmcRequest,
    build_pki_data,
    build_pki_response,
    parse_pki_data,
    parse_pki_response,
)
from estclient._csr import (
    build_csr,
    csr_challenge_password,
    csr_decrypt_key_ids,
    key_for,
    load_csr,
    parse_subject,
    pop_challenge,
)
from estclient._csrattrs import (
    CsrAttribute,
    CsrAttrOid,
    CsrAttrs,
    CsrRequirements,
    CsrTemplate,
    NameTemplateAttribute,
    RequestedExtension,
    encode_csrattrs,
    parse_csrattrs,
)
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
    http_error,
)
from estclient._libest_codes import LIBEST_ERROR_CODES
from estclient._pkcs7 import CertsOnly, build_certs_only, order_chain, parse_certs_only, rollover_roles
from estclient._pop import CsrSpec
from estclient._results import CaCertificates, EnrollResult, Pending
from estclient._serverkeygen import ServerKeyGenResult, build_serverkeygen_response, parse_serverkeygen_response
from estclient._trust import TrustAnchors, certificate_fingerprint
from estclient._version import __version__

__all__ = [
    "__version__",
    "AsyncEstClient",
    "BasicAuth",
    "CaCertificates",
    "ClientCertificate",
    "CsrSpec",
    "DEFAULT_TIMEOUT",
    "DigestAuth",
    "EnrollResult",
    "EstClient",
    "Pending",
    "ServerKeyGenResult",
    "TrustAnchors",
    "certificate_fingerprint",
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
    "CertsOnly",
    "CmcControl",
    "CmcRequest",
    "CsrAttrOid",
    "CsrAttribute",
    "CsrAttrs",
    "CsrRequirements",
    "CsrTemplate",
    "LIBEST_ERROR_CODES",
    "NameTemplateAttribute",
    "RequestedExtension",
    "build_certs_only",
    "build_csr",
    "build_pki_data",
    "build_pki_response",
    "build_serverkeygen_response",
    "csr_challenge_password",
    "csr_decrypt_key_ids",
    "decode_body",
    "encode_body",
    "encode_csrattrs",
    "http_error",
    "key_for",
    "load_csr",
    "order_chain",
    "parse_certs_only",
    "parse_csrattrs",
    "parse_pki_data",
    "parse_pki_response",
    "parse_serverkeygen_response",
    "parse_subject",
    "pop_challenge",
    "rollover_roles",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
