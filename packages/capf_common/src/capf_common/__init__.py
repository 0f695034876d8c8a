"""Cisco CAPF wire protocol, LSC profiles, certificate formats and log diagnostics."""

from __future__ import annotations

import logging

from capf_common._codec import Element, Message, MessageDecoder, decode_message, decode_messages
from capf_common._elements import CertificateElement, HashedSignature, SudiData, describe_element
from capf_common._enums import (
    CAPF_PORT,
    PROTOCOL_ID,
    PROTOCOL_VERSION,
    AuthType,
    CertificateType,
    Command,
    Curve,
    ElementTag,
    HashId,
    KeyType,
    Reason,
)
from capf_common._errors import (
    CapfAuthenticationError,
    CapfError,
    CapfProtocolError,
    CapfSignatureError,
    FramingError,
    LocalProtocolError,
    RemoteProtocolError,
    SessionMismatchError,
)
from capf_common._messages import (
    AuthRequest,
    AuthResponse,
    CapfMessage,
    DeleteCertificateRequest,
    DeleteCertificateResponse,
    EndSession,
    FetchCertificateRequest,
    FetchCertificateResponse,
    KeyGenerateRequest,
    KeyGenerateResponse,
    RequestInProgress,
    SignCertificateRequest,
    SignCertificateResponse,
    StoreCertificateRequest,
    StoreCertificateResponse,
    parse_message,
)
from capf_common._version import __version__

__all__ = [
    "__version__",
    "CapfError",
    # CAPF protocol: errors
    "CapfProtocolError",
    "RemoteProtocolError",
    "FramingError",
    "SessionMismatchError",
    "LocalProtocolError",
    "CapfSignatureError",
    "CapfAuthenticationError",
    # CAPF protocol: numbers
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
    # CAPF protocol: codec
    "Element",
    "Message",
    "MessageDecoder",
    "decode_message",
    "decode_messages",
    "CertificateElement",
    "HashedSignature",
    "SudiData",
    "describe_element",
    # CAPF protocol: typed messages
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
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
