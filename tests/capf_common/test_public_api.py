"""Pins the public surface of capf_common: a change here is a change of the published API."""

from __future__ import annotations

import inspect

import capf_common

EXPECTED_ALL = {
    "__version__",
    "CapfError",
    # CAPF protocol
    "CapfProtocolError",
    "RemoteProtocolError",
    "FramingError",
    "SessionMismatchError",
    "LocalProtocolError",
    "CapfSignatureError",
    "CapfAuthenticationError",
    "CAPF_PORT",
    "PROTOCOL_ID",
    "PROTOCOL_VERSION",
    "Command",
    "ElementTag",
    "Reason",
    "AuthType",
    "CertificateType",
    "KeyType",
    "Curve",
    "HashId",
    "Element",
    "Message",
    "MessageDecoder",
    "decode_message",
    "decode_messages",
    "CertificateElement",
    "HashedSignature",
    "SudiData",
    "describe_element",
    "CapfMessage",
    "AuthRequest",
    "AuthResponse",
    "KeyGenerateRequest",
    "KeyGenerateResponse",
    "SignCertificateRequest",
    "SignCertificateResponse",
    "RequestInProgress",
    "StoreCertificateRequest",
    "StoreCertificateResponse",
    "FetchCertificateRequest",
    "FetchCertificateResponse",
    "DeleteCertificateRequest",
    "DeleteCertificateResponse",
    "EndSession",
    "parse_message",
}


def test_all_is_pinned() -> None:
    assert set(capf_common.__all__) == EXPECTED_ALL
    assert len(capf_common.__all__) == len(set(capf_common.__all__)), "duplicate names in __all__"


def test_every_public_name_exists_and_is_documented() -> None:
    for name in capf_common.__all__:
        obj = getattr(capf_common, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"{name} has no docstring"


def test_root_error_is_an_exception() -> None:
    assert issubclass(capf_common.CapfError, Exception)
