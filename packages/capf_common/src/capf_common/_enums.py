"""Numbers of the CAPF wire protocol: commands, element tags and the values carried in elements.

The numbering is reverse-engineered (usecallmanager.nz ``capfd``/``capfc`` and the Jabber4Linux traces agree);
Cisco publishes none. :attr:`ElementTag.CSR` is this project's own assumption (see docs/capf_common/protocol.md).
Fields typed ``X | int`` hold the enum member when the value is known and the plain number otherwise.
"""

from __future__ import annotations

import enum
from typing import TypeVar

__all__ = [
    "CAPF_PORT",
    "HEADER_LENGTH",
    "PROTOCOL_ID",
    "PROTOCOL_VERSION",
    "AuthType",
    "CertificateType",
    "Command",
    "Curve",
    "ElementTag",
    "HashId",
    "KeyType",
    "Reason",
]

PROTOCOL_ID = 0x55
"""First byte of every CAPF message."""
PROTOCOL_VERSION = 3
"""The VERSION a CAPF server announces (phones answer 3; Jabber answers 2)."""
HEADER_LENGTH = 8
"""Bytes in a message header: protocol id, command, session id (u32), body length (u16)."""
CAPF_PORT = 3804
"""The TCP port CAPF listens on (TLS)."""


class Command(enum.IntEnum):
    """The command byte of a message header (byte 1)."""

    AUTH_REQUEST = 1
    AUTH_RESPONSE = 2
    KEY_GENERATE_REQUEST = 3
    KEY_GENERATE_RESPONSE = 4
    ENCRYPT_RESPONSE = 5
    ENCRYPT_REQUEST = 6
    DECRYPT_REQUEST = 7
    DECRYPT_RESPONSE = 8
    STORE_CERTIFICATE_REQUEST = 9
    STORE_CERTIFICATE_RESPONSE = 10
    FETCH_CERTIFICATE_REQUEST = 11
    FETCH_CERTIFICATE_RESPONSE = 12
    DELETE_CERTIFICATE_REQUEST = 13
    DELETE_CERTIFICATE_RESPONSE = 14
    END_SESSION = 15
    RETRY_LATER = 16
    REQUEST_IN_PROGRESS = 17
    STATUS_REQUEST = 18
    STATUS_RESPONSE = 19
    ABORT_REQUEST = 20
    ABORT_RESPONSE = 21
    SIGN_CERTIFICATE_REQUEST = 22
    SIGN_CERTIFICATE_RESPONSE = 23


class ElementTag(enum.IntEnum):
    """The tag byte of a body element (``u8 tag, u16 length, value``)."""

    REASON = 1
    REASON_INFO = 2
    CERTIFICATE_TYPE = 3
    CERTIFICATE = 4
    CERTIFICATE_ID = 5
    SIGNED_DATA = 6
    VERSION = 7
    AUTH_TYPE = 8
    PUBLIC_KEY = 9
    KEY_SIZE = 10
    PASSWORD = 11
    RETRY_DELAY = 12
    DEVICE_NAME = 13
    SUDI_DATA = 16
    KEY_TYPE = 17
    CURVE = 18
    DIGEST_TYPE = 19
    SHA2_SIGNED_DATA = 20
    CSR = 0x80
    """This project's assumption: the DER PKCS#10 in SIGN_CERTIFICATE_RESPONSE (no public record)."""


class Reason(enum.IntEnum):
    """REASON element values (only these four are known)."""

    NO_ACTION = 0
    UPDATE_CERTIFICATE = 1
    """Also the phone's "OK" in its responses."""
    INVALID_ELEMENT = 7
    UNKNOWN_DEVICE = 9


class AuthType(enum.IntEnum):
    """AUTH_TYPE element values and the CUCM authentication modes they stand for."""

    NONE = 0
    """Sent by capfd in every AUTH_REQUEST; meaning unclear."""
    PASSWORD = 1
    """By Authentication String."""
    NO_PASSWORD = 2
    """By Null String."""
    LSC = 3
    """By Existing Certificate (precedence to LSC)."""
    MIC = 4
    """By Existing Certificate (precedence to MIC)."""


class CertificateType(enum.IntEnum):
    """CERTIFICATE_TYPE values, also the type inside the nested CERTIFICATE element."""

    LSC = 1
    MIC = 2


class KeyType(enum.IntEnum):
    """KEY_TYPE values: the kind of key pair the phone generates."""

    RSA = 0
    EC = 1


class Curve(enum.IntEnum):
    """CURVE values for EC keys."""

    SECP256R1 = 0
    SECP384R1 = 1
    SECP521R1 = 2


class HashId(enum.IntEnum):
    """Hash identifiers inside SHA2_SIGNED_DATA, SUDI_DATA and DIGEST_TYPE."""

    SHA1 = 1
    SHA256 = 2
    SHA512 = 3


_E = TypeVar("_E", bound=enum.IntEnum)


def as_enum(enum_type: type[_E], value: int) -> _E | int:
    """Return ``value`` as a member of ``enum_type`` when it is one, else the plain number."""
    try:
        return enum_type(value)
    except ValueError:
        return value


def enum_name(enum_type: type[enum.IntEnum], value: int) -> str:
    """Return the member name for ``value``, or ``"UNKNOWN(value)"``."""
    member = as_enum(enum_type, value)
    return member.name if isinstance(member, enum.IntEnum) else f"UNKNOWN({value})"
