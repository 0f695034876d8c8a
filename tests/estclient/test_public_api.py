"""Pins the public surface of estclient: a change here is a change of the published API."""

from __future__ import annotations

import inspect

import estclient

EXPECTED_ALL = {
    "__version__",
    # clients (H4b)
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
