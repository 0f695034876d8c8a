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
    └── LogReadError                a log file that cannot be read
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
