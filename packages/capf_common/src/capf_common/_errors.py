"""The exceptions of capf_common.

Every exception the library raises on purpose derives from :class:`CapfError`::

    CapfError
    ├── CertificateFormatError      bytes that are not the PEM/DER/PKCS#7/CSR they should be
    ├── ChainError                  a certificate chain that cannot be ordered or verified
    │   ├── MissingIssuerError      an issuer is neither in the chain nor among the trust anchors
    │   ├── SelfSignedCertificateError  a self-signed leaf that is not a trust anchor
    │   ├── CertificateValidityError    not yet valid or expired at the time checked
    │   └── ChainSignatureError     a certificate's signature does not verify with its issuer's key
    ├── DeviceNameError             a device name that is not a valid CUCM device name
    ├── CtlFormatError              a CTL/ITL file that does not follow the documented layout
    ├── LogReadError                a log file that cannot be read
    ├── FileWriteError              a file (certificate, CSR, key) that cannot be written
    ├── CapfProtocolError           the CAPF wire protocol (cause + fix in .cause/.hint)
    │   ├── RemoteProtocolError     bytes or a message received from the peer break the protocol
    │   │   └── FramingError        not a well-formed CAPF message: protocol id, lengths, element layout
    │   │       └── SessionMismatchError  a message carries another session id than the session's
    │   └── LocalProtocolError      this side asked to send something the protocol does not allow now
    ├── CapfSignatureError          a CAPF authentication signature cannot be made or does not verify
    └── CapfAuthenticationError     a phone's authentication is refused (.capf_code: CAPF error code)
"""

from __future__ import annotations

import datetime

__all__ = [
    "CapfError",
    "CertificateFormatError",
    "ChainError",
    "MissingIssuerError",
    "SelfSignedCertificateError",
    "CertificateValidityError",
    "ChainSignatureError",
    "DeviceNameError",
    "CtlFormatError",
    "LogReadError",
    "FileWriteError",
    "CapfProtocolError",
    "RemoteProtocolError",
    "FramingError",
    "SessionMismatchError",
    "LocalProtocolError",
    "CapfSignatureError",
    "CapfAuthenticationError",
]


class CapfError(Exception):
    """Root of every error capf_common raises.

    Each subclass names the cause of the failure and, where one exists, the fix, in its message.
    """


class CertificateFormatError(CapfError, ValueError):
    """Input that should hold a certificate, a PKCS#7 bundle or a CSR cannot be decoded.

    The message names what was expected and what was found.
    """


class ChainError(CapfError):
    """A certificate chain cannot be ordered leaf to root or does not verify."""


class MissingIssuerError(ChainError):
    """The issuer of a certificate is neither in the chain nor among the trust anchors.

    Attributes:
        issuer: The issuer name (RFC 4514) that could not be found.
    """

    def __init__(self, message: str, *, issuer: str) -> None:
        super().__init__(message)
        self.issuer = issuer


class SelfSignedCertificateError(ChainError):
    """The chain ends in a self-signed certificate that is not one of the trust anchors."""


class CertificateValidityError(ChainError):
    """A certificate is not yet valid or has expired at the time of the check.

    Attributes:
        subject: The certificate's subject (RFC 4514).
        not_before: Start of the validity period (UTC).
        not_after: End of the validity period (UTC).
        checked_at: The time the check used (UTC): compare it with the dates to spot clock skew.
    """

    def __init__(
        self,
        message: str,
        *,
        subject: str,
        not_before: datetime.datetime,
        not_after: datetime.datetime,
        checked_at: datetime.datetime,
    ) -> None:
        super().__init__(message)
        self.subject = subject
        self.not_before = not_before
        self.not_after = not_after
        self.checked_at = checked_at


class ChainSignatureError(ChainError):
    """A certificate's signature does not verify with the public key of its issuer."""


class DeviceNameError(CapfError, ValueError):
    """A device name does not follow CUCM's naming rules (for phones: ``SEP`` and 12 hex digits)."""


class CtlFormatError(CapfError, ValueError):
    """A CTL/ITL file does not follow the documented TLV layout.

    Attributes:
        offset: The byte offset where decoding failed.
    """

    def __init__(self, message: str, *, offset: int) -> None:
        super().__init__(f"{message} (at byte {offset})")
        self.offset = offset


class LogReadError(CapfError, OSError):
    """A log file given to the analyzer cannot be read (missing, a directory, or no permission)."""


class FileWriteError(CapfError, OSError):
    """A file cannot be written (its folder is missing, not writable, or the path is a folder).

    An :class:`OSError` too: ``errno``, ``strerror`` and ``filename`` are those of the failure; the message
    names the path, the cause and the fix.
    """


class CapfProtocolError(CapfError):
    """The CAPF wire protocol was broken, by the peer or by this side.

    Args:
        cause: What is wrong, in one sentence.
        hint: How to fix it.

    Attributes:
        cause: What is wrong.
        hint: How to fix it.
    """

    def __init__(self, cause: str, *, hint: str) -> None:
        super().__init__(f"{cause}. Fix: {hint}")
        self.cause = cause
        self.hint = hint


class RemoteProtocolError(CapfProtocolError):
    """Bytes or a message received from the peer break the CAPF protocol (h11's remote protocol error).

    Raised by the state machines for a message the peer may not send in the current state, a missing
    required element, or (through :class:`FramingError`) bytes that are not a CAPF message at all.
    """


class FramingError(RemoteProtocolError):
    """The bytes are not a well-formed CAPF message.

    Wrong protocol id, a body length beyond the buffer, a truncated header or element, an element value that
    does not fit its tag's layout (a string without its NUL, a nested certificate with a wrong inner length).
    """


class SessionMismatchError(FramingError):
    """A message carries another session id than the one of its session.

    Args:
        expected: The session id of the session.
        received: The session id in the message.
    """

    def __init__(self, expected: int, received: int) -> None:
        super().__init__(
            f"CAPF message for session {received:#010x} received in session {expected:#010x}",
            hint="the peer must echo the session id of the server's first message; restart the session",
        )
        self.expected = expected
        self.received = received


class LocalProtocolError(CapfProtocolError):
    """This side asked to send something the CAPF protocol does not allow now (h11's local protocol error).

    A message out of turn, a value too large for its field, a send after the session ended.
    """


class CapfSignatureError(CapfError):
    """A CAPF authentication signature cannot be made or does not verify.

    Args:
        cause: What is wrong.
        hint: How to fix it.
    """

    def __init__(self, cause: str, *, hint: str) -> None:
        super().__init__(f"{cause}. Fix: {hint}")
        self.cause = cause
        self.hint = hint


class CapfAuthenticationError(CapfError):
    """CAPF refuses a phone's authentication.

    Args:
        cause: Why the authentication is refused.
        hint: How to fix it.
        capf_code: The CAPF error code CUCM writes for this failure, a ``CapfOperationResult`` member when
            raised by ``verify_auth_response`` (3 invalid authentication string, 4 invalid LSC, 5 invalid MIC,
            6 invalid credentials).
    """

    def __init__(self, cause: str, *, hint: str, capf_code: int) -> None:
        super().__init__(f"{cause}. Fix: {hint}")
        self.cause = cause
        self.hint = hint
        self.capf_code = capf_code
