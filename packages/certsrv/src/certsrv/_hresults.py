"""AD CS status codes (HRESULTs) and the certsrv error class each one maps to.

AD CS pages show a failure as ``<text> 0x80094800 (-2146875392 CERTSRV_E_UNSUPPORTED_CERT_TYPE)``: the hex code and
the symbolic name are the same in every language, so they, not the text, decide which error is raised. The codes
and symbols come from the Windows SDK (``winerror.h``); the descriptions here are our own words.
"""

from __future__ import annotations

from dataclasses import dataclass

from certsrv._errors import (
    EnrollmentError,
    RequestDeniedError,
    RequestFailedError,
    TemplateAccessDeniedError,
    TemplateNotFoundError,
    UnknownRequestError,
)

__all__ = ["HResult", "describe_hresult", "lookup_hresult", "TEMPLATE_NOT_FOUND_CODES"]


@dataclass(frozen=True)
class HResult:
    """One known AD CS status code.

    Attributes:
        code: The HRESULT as an unsigned 32-bit integer.
        symbol: Its symbolic name from the Windows SDK.
        description: What it means, in our words.
        error: The certsrv error class a failure with this code raises.
    """

    code: int
    symbol: str
    description: str
    error: type[EnrollmentError]

    @property
    def hex(self) -> str:
        """The code as ``0x8009xxxx``."""
        return f"0x{self.code:08X}"


def _entries() -> dict[int, HResult]:
    table: list[tuple[int, str, str, type[EnrollmentError]]] = [
        (0x80094001, "CERTSRV_E_BAD_REQUESTSUBJECT", "the subject name of the request is invalid or too long",
         RequestFailedError),
        (0x80094002, "CERTSRV_E_NO_REQUEST", "the CA has no request with this id", UnknownRequestError),
        (0x80094003, "CERTSRV_E_BAD_REQUESTSTATUS", "the request's state does not allow this operation",
         RequestFailedError),
        (0x80094004, "CERTSRV_E_PROPERTY_EMPTY", "the requested property is empty (usually: unknown request id)",
         UnknownRequestError),
        (0x80094005, "CERTSRV_E_INVALID_CA_CERTIFICATE", "the CA certificate is invalid", RequestFailedError),
        (0x80094006, "CERTSRV_E_SERVER_SUSPENDED", "the CA service is suspended or shutting down",
         RequestFailedError),
        (0x80094007, "CERTSRV_E_ENCODING_LENGTH", "a value of the request is too long to encode",
         RequestFailedError),
        (0x80094009, "CERTSRV_E_RESTRICTEDOFFICER", "an enrollment agent restriction blocks this request",
         RequestDeniedError),
        (0x8009400C, "CERTSRV_E_BAD_REQUEST_KEY_ARCHIVAL", "the key archival part of the request is invalid",
         RequestFailedError),
        (0x8009400E, "CERTSRV_E_BAD_RENEWAL_CERT_ATTRIBUTE", "the renewal certificate attribute is invalid",
         RequestFailedError),
        (0x80094011, "CERTSRV_E_ENROLL_DENIED", "the account may not enroll on this CA (CA permissions)",
         TemplateAccessDeniedError),
        (0x80094012, "CERTSRV_E_TEMPLATE_DENIED", "the account lacks the Enroll permission on the template",
         TemplateAccessDeniedError),
        (0x80094014, "CERTSRV_E_ADMIN_DENIED_REQUEST", "a certificate manager or CA administrator denied the request",
         RequestDeniedError),
        (0x80094800, "CERTSRV_E_UNSUPPORTED_CERT_TYPE", "the template is not supported (not published) by this CA",
         TemplateNotFoundError),
        (0x80094801, "CERTSRV_E_NO_CERT_TYPE", "the request names no certificate template", TemplateNotFoundError),
        (0x80094802, "CERTSRV_E_TEMPLATE_CONFLICT", "the request names conflicting templates", RequestFailedError),
        (0x80094803, "CERTSRV_E_SUBJECT_ALT_NAME_REQUIRED", "the template needs a subject alternative name",
         RequestDeniedError),
        (0x80094806, "CERTSRV_E_BAD_RENEWAL_SUBJECT", "the renewal request's subject does not match",
         RequestDeniedError),
        (0x80094807, "CERTSRV_E_BAD_TEMPLATE_VERSION", "the template version in the request is out of date",
         RequestDeniedError),
        (0x80094808, "CERTSRV_E_TEMPLATE_POLICY_REQUIRED", "the template needs a signature policy the request lacks",
         RequestDeniedError),
        (0x8009480D, "CERTSRV_E_SUBJECT_UPN_REQUIRED", "the template needs a UPN the account does not have",
         RequestDeniedError),
        (0x8009480F, "CERTSRV_E_SUBJECT_DNS_REQUIRED", "the template needs a DNS name the account does not have",
         RequestDeniedError),
        (0x80094811, "CERTSRV_E_KEY_LENGTH", "the public key is shorter than the template's minimum",
         RequestDeniedError),
        (0x80094812, "CERTSRV_E_SUBJECT_EMAIL_REQUIRED", "the template needs an e-mail address the account lacks",
         RequestDeniedError),
        (0x80094813, "CERTSRV_E_UNKNOWN_CERT_TYPE", "a template to be enabled on this CA could not be found",
         TemplateNotFoundError),
        (0x80092004, "CRYPT_E_NOT_FOUND", "an object or property was not found", RequestFailedError),
        (0x80093100, "CRYPT_E_ASN1_ERROR", "the request is not valid ASN.1", RequestFailedError),
        (0x8009310B, "CRYPT_E_ASN1_BADTAG", "the request is not a valid CSR (ASN.1 bad tag)", RequestFailedError),
        (0x80090005, "NTE_BAD_DATA", "the request data is invalid", RequestFailedError),
        (0x80070057, "E_INVALIDARG", "a parameter of the request is invalid", RequestFailedError),
        (0x80070005, "E_ACCESSDENIED", "access is denied", TemplateAccessDeniedError),
    ]  # fmt: skip
    return {code: HResult(code, symbol, text, error) for code, symbol, text, error in table}


_REGISTRY = _entries()

#: The codes that mean "this template cannot be used here": a TemplateNotFoundError lists the templates offered.
TEMPLATE_NOT_FOUND_CODES = frozenset(code for code, entry in _REGISTRY.items() if entry.error is TemplateNotFoundError)


def lookup_hresult(code: int) -> HResult | None:
    """The registry entry for ``code`` (signed or unsigned 32-bit), or ``None`` for an unknown code."""
    return _REGISTRY.get(code & 0xFFFFFFFF)


def describe_hresult(code: int) -> str:
    """``0x80094800 CERTSRV_E_UNSUPPORTED_CERT_TYPE: <meaning>`` for a known code, else the hex code alone."""
    entry = lookup_hresult(code)
    if entry is None:
        return f"0x{code & 0xFFFFFFFF:08X}"
    return f"{entry.hex} {entry.symbol}: {entry.description}"
