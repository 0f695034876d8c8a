"""Code tables for the CAPF Online CA chain: CAPF, CUCM database, libest, curl, AD CS and IIS.

Sources: Cisco's CUCM 12.5 troubleshooting guide (CAPF error codes), the AXL schema (certificate status and
operation, whose numeric values are the 1-based positions of the schema's enumeration; the seed's CAPF trace
confirms No Pending Operation = 1 and Upgrade Success = 3), libest's ``est.h`` at several releases (the ``EST_ERR_*``
numbers shift between releases), libcurl's error list, and the Windows SDK (HRESULTs, SSPI status codes).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "CapfOperationResult",
    "CertificateStatus",
    "CertificateOperation",
    "LIBEST_ERROR_NAMES",
    "libest_table",
    "est_error_name",
    "est_error_code",
    "CodeInfo",
    "CURL_ERRORS",
    "ADCS_HRESULTS",
    "IIS_WIN32_STATUS",
]


class CapfOperationResult(enum.IntEnum):
    """CAPF operation result codes as CAPF writes them to its trace (``SetOperationStatus(...)``).

    Codes 9 and 10 are not in Cisco's table. :meth:`action` gives the documented corrective action.
    """

    CAPF_OP_SUCCESS = 0
    CAPF_FETCH_SUCCESS_BUT_NO_CERT = 1
    CAPF_OP_FAIL = 2
    CAPF_OP_FAIL_INVALID_AUTH_STR = 3
    CAPF_OP_FAIL_INVALID_LSC = 4
    CAPF_OP_FAIL_INVALID_MIC = 5
    CAPF_OP_FAIL_INVALID_CRENDENTIALS = 6  # sic: Cisco's spelling, as it appears in the logs
    CAPF_OP_FAIL_PHONE_COMM_ERROR = 7
    CAPF_OP_FAIL_OP_TIMED_OUT = 8
    CAPF_OP_FAIL_LATE_REQUEST = 11

    def action(self) -> str:
        """The corrective action for this result.

        Returns:
            A short instruction (empty for success).
        """
        return _CAPF_ACTIONS[self]


_CAPF_ACTIONS = {
    CapfOperationResult.CAPF_OP_SUCCESS: "",
    CapfOperationResult.CAPF_FETCH_SUCCESS_BUT_NO_CERT: "the phone has no certificate: schedule an Install/Upgrade",
    CapfOperationResult.CAPF_OP_FAIL: "the operation failed; read the CAPF trace around this line for the cause",
    CapfOperationResult.CAPF_OP_FAIL_INVALID_AUTH_STR: "enter the correct authentication string on the phone",
    CapfOperationResult.CAPF_OP_FAIL_INVALID_LSC: "the phone's LSC is invalid: update the LSC (authenticate by string)",
    CapfOperationResult.CAPF_OP_FAIL_INVALID_MIC: "the MIC is invalid: install an LSC (authenticate by string)",
    CapfOperationResult.CAPF_OP_FAIL_INVALID_CRENDENTIALS: "enter the correct credentials",
    CapfOperationResult.CAPF_OP_FAIL_PHONE_COMM_ERROR: "communication with the phone failed; check the network path",
    CapfOperationResult.CAPF_OP_FAIL_OP_TIMED_OUT: "the operation timed out: schedule it again",
    CapfOperationResult.CAPF_OP_FAIL_LATE_REQUEST: "the phone came after 'Operation Completes By': schedule it again",
}

_REASONS = (
    "Invalid LSC",
    "Invalid Authentication String",
    "Invalid MIC",
    "Invalid Credentials",
    "Phone Communication Failure",
    "Key Generation Failed/Timeout",
    "CA Communication Failure",
    "CA Rejected Connection",
    "User Initiated Request Late/Timedout",
)
_TROUBLESHOOT_REASONS = tuple(r for r in _REASONS if not r.startswith("CA "))
_STATUS_LABELS = (
    "None",
    "Operation Pending",
    "Upgrade Success",
    "Delete Success",
    "Troubleshoot Success",
    "Upgrade Failed",
    "Delete Failed",
    "Troubleshoot Failed",
    *(f"Upgrade Failed: {r}" for r in _REASONS),
    *(f"Delete Failed: {r}" for r in _REASONS),
    *(f"Troubleshoot Failed: {r}" for r in _TROUBLESHOOT_REASONS),
    "Upgrade Failed: No Support for EC only in CAPF version 3",
)


class CertificateStatus(enum.IntEnum):
    """Phone certificate status (``device.tkCertificateStatus``, AXL ``XCertificateStatus``).

    The values are the 1-based positions in the AXL schema's enumeration (an inference the seed's CAPF trace
    supports: ``tkcertificatestatus='3'`` after an upgrade success). :attr:`label` is the text CUCM shows.
    """

    NONE = 1
    OPERATION_PENDING = 2
    UPGRADE_SUCCESS = 3
    DELETE_SUCCESS = 4
    TROUBLESHOOT_SUCCESS = 5
    UPGRADE_FAILED = 6
    DELETE_FAILED = 7
    TROUBLESHOOT_FAILED = 8
    UPGRADE_FAILED_INVALID_LSC = 9
    UPGRADE_FAILED_INVALID_AUTHENTICATION_STRING = 10
    UPGRADE_FAILED_INVALID_MIC = 11
    UPGRADE_FAILED_INVALID_CREDENTIALS = 12
    UPGRADE_FAILED_PHONE_COMMUNICATION_FAILURE = 13
    UPGRADE_FAILED_KEY_GENERATION_FAILED_TIMEOUT = 14
    UPGRADE_FAILED_CA_COMMUNICATION_FAILURE = 15
    UPGRADE_FAILED_CA_REJECTED_CONNECTION = 16
    UPGRADE_FAILED_USER_INITIATED_REQUEST_LATE_TIMEDOUT = 17
    DELETE_FAILED_INVALID_LSC = 18
    DELETE_FAILED_INVALID_AUTHENTICATION_STRING = 19
    DELETE_FAILED_INVALID_MIC = 20
    DELETE_FAILED_INVALID_CREDENTIALS = 21
    DELETE_FAILED_PHONE_COMMUNICATION_FAILURE = 22
    DELETE_FAILED_KEY_GENERATION_FAILED_TIMEOUT = 23
    DELETE_FAILED_CA_COMMUNICATION_FAILURE = 24
    DELETE_FAILED_CA_REJECTED_CONNECTION = 25
    DELETE_FAILED_USER_INITIATED_REQUEST_LATE_TIMEDOUT = 26
    TROUBLESHOOT_FAILED_INVALID_LSC = 27
    TROUBLESHOOT_FAILED_INVALID_AUTHENTICATION_STRING = 28
    TROUBLESHOOT_FAILED_INVALID_MIC = 29
    TROUBLESHOOT_FAILED_INVALID_CREDENTIALS = 30
    TROUBLESHOOT_FAILED_PHONE_COMMUNICATION_FAILURE = 31
    TROUBLESHOOT_FAILED_KEY_GENERATION_FAILED_TIMEOUT = 32
    TROUBLESHOOT_FAILED_USER_INITIATED_REQUEST_LATE_TIMEDOUT = 33
    UPGRADE_FAILED_NO_SUPPORT_FOR_EC_ONLY_IN_CAPF_VERSION_3 = 34

    @property
    def label(self) -> str:
        """The text CUCM shows, e.g. ``"Upgrade Failed: CA Communication Failure"``."""
        return _STATUS_LABELS[self.value - 1]


class CertificateOperation(enum.IntEnum):
    """Phone certificate operation (``device.tkCertificateOperation``, AXL ``XCertificateOperation``)."""

    NO_PENDING_OPERATION = 1
    INSTALL_UPGRADE = 2
    DELETE = 3
    TROUBLESHOOT = 4

    @property
    def label(self) -> str:
        """The text CUCM shows for the operation."""
        return ("No Pending Operation", "Install/Upgrade", "Delete", "Troubleshoot")[self.value - 1]


def _words(text: str) -> list[str]:
    return text.split()


# libest's FOREACH_EST_ERROR lists (EST_ERR_NONE = 0 comes first; the numbers are the 1-based positions).
_LIBEST_1_0 = _words(
    "NO_CTX NO_CSR NO_KEY INVALID_PARAMETERS LOAD_CACERTS LOAD_TRUST_CERTS BAD_MODE BAD_PKCS10 HTTP_WRITE "
    "HTTP_UNSUPPORTED HTTP_CANNOT_BUILD_HEADER HTTP_BAD_REQ HTTP_NOT_FOUND HTTP_NO_CONTENT BAD_CONTENT_TYPE "
    "BAD_CONTENT_LEN NO_SSL_CTX AUTH_FAIL AUTH_FAIL_TLSUID AUTH_PENDING CA_ENROLL_FAIL CA_ENROLL_RETRY WRONG_METHOD "
    "X509_SIGN X509_VER X509_CN X509_ATTR X509_PUBKEY MALLOC SSL_WRITE SSL_READ SSL_NEW SSL_CTX_NEW SSL_CONNECT "
    "SSL_CIPHER_LIST PEM_READ NULL_CALLBACK IP_GETADDR IP_CONNECT INVALID_SERVER_NAME INVALID_PORT_NUM "
    "CLIENT_INVALID_KEY CLIENT_NOT_INITIALIZED ZERO_LENGTH_BUF READ_BUFFER_TOO_SMALL BUF_EXCEEDS_MAX_LEN "
    "NO_CERTIFICATE NO_CERTS_FOUND FQDN_MISMATCH SYSCALL CSR_ALREADY_SIGNED INVALID_DIGEST CACERT_VERIFICATION "
    "INVALID_TOKEN INVALID_RETRY_VALUE BAD_X509 BAD_BASE64 BAD_ASN1_HEX UNKNOWN"
)
# 1.1.0: NO_CERT after NO_CSR and CSR_ATTR_MISSING after CSR_ALREADY_SIGNED (checked against the published
# anchors BAD_PKCS10 = 9, AUTH_FAIL = 19, SSL_READ = 32, FQDN_MISMATCH = 50, CACERT_VERIFICATION = 55); the
# entries 56-64 of 1.1.0 are not known here, UNKNOWN is 65.
_LIBEST_1_1_HEAD = [
    *_LIBEST_1_0[:2],
    "NO_CERT",
    *_LIBEST_1_0[2:51],
    "CSR_ATTR_MISSING",
    *_LIBEST_1_0[51:53],  # INVALID_DIGEST, CACERT_VERIFICATION
]
_LIBEST_2 = _words(
    "NO_CTX NO_CSR NO_CERT NO_KEY INVALID_PARAMETERS LOAD_CACERTS LOAD_TRUST_CERTS BAD_MODE BAD_PKCS10 HTTP_WRITE "
    "HTTP_UNSUPPORTED HTTP_CANNOT_BUILD_HEADER HTTP_BAD_REQ HTTP_NOT_FOUND HTTP_NO_CONTENT HTTP_LOCKED "
    "HTTP_INVALID_PATH_SEGMENT HTTP_PATH_SEGMENT_NOT_SUPPORTED BAD_CONTENT_TYPE BAD_CONTENT_LEN NO_SSL_CTX AUTH_FAIL "
    "AUTH_FAIL_TLSUID AUTH_PENDING CA_ENROLL_FAIL CA_ENROLL_RETRY WRONG_METHOD X509_SIGN X509_VER X509_CN X509_ATTR "
    "X509_PUBKEY MALLOC SSL_WRITE SSL_READ SSL_NEW SSL_CTX_NEW SSL_CONNECT SSL_CIPHER_LIST PEM_READ NULL_CALLBACK "
    "IP_GETADDR IP_CONNECT INVALID_SERVER_NAME INVALID_PORT_NUM CLIENT_INVALID_KEY CLIENT_NOT_INITIALIZED "
    "ZERO_LENGTH_BUF READ_BUFFER_TOO_SMALL BUF_EXCEEDS_MAX_LEN NO_CERTIFICATE NO_CERTS_FOUND FQDN_MISMATCH SYSCALL "
    "CSR_ALREADY_SIGNED CSR_ATTR_MISSING INVALID_DIGEST CACERT_VERIFICATION INVALID_TOKEN INVALID_RETRY_VALUE "
    "BAD_X509 BAD_BASE64 BAD_ASN1_HEX BAD_ASN1_HEX_TOO_SHORT BAD_ASN1_HEX_TOO_LONG SRP_STRENGTH_LOW SRP_USERID_BAD "
    "SRP_PWD_BAD CB_FAILED CLIENT_PROXY_MODE_NOT_SUPPORTED INVALID_CLIENT_PROXY_PROTOCOL INVALID_CLIENT_PROXY_AUTH "
    "UNKNOWN"
)
_LIBEST_3 = [
    *_LIBEST_2[:54],  # up to SYSCALL
    "ALREADY_ENABLED",
    "ALREADY_DISABLED",
    *_LIBEST_2[54:72],  # CSR_ALREADY_SIGNED .. INVALID_CLIENT_PROXY_AUTH
    *_words(
        "CLIENT_BRSKI_MODE_NOT_SUPPORTED CLIENT_COAP_MODE_NOT_SUPPORTED CLIENT_BRSKI_NO_VOUCHER "
        "CLIENT_BRSKI_NONCE_MISSING CLIENT_BRSKI_NONCE_MISMATCH CLIENT_BRSKI_NONCE_TOO_LARGE "
        "CLIENT_BRSKI_SERIAL_NUM_MISSING CLIENT_BRSKI_SERIAL_NUM_MISMATCH CLIENT_BRSKI_SERIAL_NUM_TOO_LARGE "
        "CLIENT_BRSKI_VOUCHER_VERIFY_FAILED BAD_KEY MULTIPART_PARSE ENC_PRIV_KEY_CMS CMS_TYPE_CONVERSION "
        "EXPORT_KEY_MATERIAL VALIDATION COAP_INIT_FAIL COAP_PROCESSING_ERROR SERVER_ALREADY_OPERATIONAL UNKNOWN"
    ),
]


def _table(names: list[str], extra: Mapping[int, str] | None = None) -> Mapping[int, str]:
    table = {0: "EST_ERR_NONE"}
    table.update({number: f"EST_ERR_{name}" for number, name in enumerate(names, start=1)})
    table.update(extra or {})
    return MappingProxyType(table)


#: ``EST_ERR_*`` names by number for each libest release line: ``"1.0"``, ``"1.1"`` (codes 56-64 unknown),
#: ``"2"`` (2.x; the 2.1 list, the one CUCM 12.5's libest 2.2.0 uses) and ``"3"`` (3.x, HEAD). Codes 1-54
#: agree across 2.x and 3.x; the CAPF logs' 22 = AUTH_FAIL and 35 = SSL_READ hold from 2.0 on.
LIBEST_ERROR_NAMES: Mapping[str, Mapping[int, str]] = MappingProxyType(
    {
        "1.0": _table(_LIBEST_1_0),
        "1.1": _table(_LIBEST_1_1_HEAD, {65: "EST_ERR_UNKNOWN"}),
        "2": _table(_LIBEST_2),
        "3": _table(_LIBEST_3),
    }
)


def libest_table(version: str | None = None) -> str:
    """The key of :data:`LIBEST_ERROR_NAMES` for a libest version.

    Args:
        version: A version such as ``"2.2.0"`` (as CiscoRA logs it: ``libest 2.2.0 (API level 4)``);
            ``None`` means the release CUCM 12.5 ships (2.x).

    Returns:
        ``"1.0"``, ``"1.1"``, ``"2"`` or ``"3"``.

    Raises:
        ValueError: The version is not ``MAJOR.MINOR[...]`` or names an unknown release line.
    """
    if version is None:
        return "2"
    match = re.match(r"^\s*v?(\d+)(?:\.(\d+))?", version)
    if not match:
        raise ValueError(f"libest version {version!r} is not MAJOR[.MINOR[.PATCH]], e.g. 2.2.0")
    major, minor = int(match.group(1)), int(match.group(2) or 0)
    if major == 1 and match.group(2) is not None and minor in (0, 1):
        return f"1.{minor}"
    if major in (2, 3):
        return str(major)
    if major > 3:
        return "3"
    raise ValueError(f"libest version {version!r} is not a known release line (1.0, 1.1, 2.x, 3.x)")


def est_error_name(code: int, libest_version: str | None = None) -> str | None:
    """The ``EST_ERR_*`` name of a libest error number.

    Args:
        code: The number, e.g. 35 from ``Enrollment rv = 35``.
        libest_version: The libest version (default: 2.x, CUCM 12.5's).

    Returns:
        The name (``"EST_ERR_SSL_READ"``), or ``None`` when the number is unknown for that release.
    """
    return LIBEST_ERROR_NAMES[libest_table(libest_version)].get(code)


def est_error_code(name: str, libest_version: str | None = None) -> int | None:
    """The number of a libest error name in a given release.

    Args:
        name: ``"EST_ERR_AUTH_FAIL"`` or ``"AUTH_FAIL"``.
        libest_version: The libest version (default: 2.x).

    Returns:
        The number, or ``None`` when that release has no such error.
    """
    full = name if name.startswith("EST_ERR_") else f"EST_ERR_{name}"
    for number, candidate in LIBEST_ERROR_NAMES[libest_table(libest_version)].items():
        if candidate == full:
            return number
    return None


@dataclass(frozen=True)
class CodeInfo:
    """A named code with its meaning and what to do about it.

    Attributes:
        name: The symbolic name (``CURLE_SSL_CACERT``, ``CERTSRV_E_UNSUPPORTED_CERT_TYPE``, ...).
        meaning: What it means in the CAPF Online CA chain.
        problem: The analyzer's problem identifier it usually points to, or ``None``.
    """

    name: str
    meaning: str
    problem: str | None = None


#: libcurl exit codes that CiscoRA logs for its calls to the AD CS web enrollment pages.
CURL_ERRORS: Mapping[int, CodeInfo] = MappingProxyType(
    {
        6: CodeInfo("CURLE_COULDNT_RESOLVE_HOST", "the CA host name does not resolve (DNS)", "dns"),
        7: CodeInfo("CURLE_COULDNT_CONNECT", "no TCP connection to the CA (wrong port, IIS down, firewall)", None),
        22: CodeInfo(
            "CURLE_HTTP_RETURNED_ERROR",
            "the CA web server answered with an HTTP error (401: the Online CA credentials were refused)",
            "ca-auth-failure",
        ),
        28: CodeInfo("CURLE_OPERATION_TIMEDOUT", "the CA did not answer in time (RA-to-CA timeout, 10 s)", None),
        35: CodeInfo("CURLE_SSL_CONNECT_ERROR", "the TLS handshake with IIS failed", None),
        51: CodeInfo(
            "CURLE_PEER_FAILED_VERIFICATION",
            "the IIS certificate does not match the host name (curl before 7.62)",
            "hostname-mismatch",
        ),
        60: CodeInfo(
            "CURLE_SSL_CACERT / CURLE_PEER_FAILED_VERIFICATION",
            "the IIS certificate cannot be verified (untrusted issuer, self-signed, dates, or name since 7.62)",
            "missing-issuer",
        ),
    }
)

#: AD CS HRESULTs that the seed's problems produce on the certsrv pages (disposition messages).
ADCS_HRESULTS: Mapping[int, CodeInfo] = MappingProxyType(
    {
        0x80094800: CodeInfo(
            "CERTSRV_E_UNSUPPORTED_CERT_TYPE",
            "the requested certificate template is not supported by this CA (misspelt or not published)",
            "template-typo",
        ),
        0x80094801: CodeInfo(
            "CERTSRV_E_NO_CERT_TYPE", "the request carries no certificate template information", "template-typo"
        ),
        0x80094012: CodeInfo(
            "CERTSRV_E_TEMPLATE_DENIED", "the account has no enroll permission on the template", "template-typo"
        ),
        0x80094014: CodeInfo("CERTSRV_E_ADMIN_DENIED_REQUEST", "a CA manager denied the request", None),
        0x80094004: CodeInfo("CERTSRV_E_PROPERTY_EMPTY", "the request id is unknown to the CA", None),
    }
)

#: Windows status codes in the ``sc-win32-status`` column of IIS logs for the certsrv requests.
IIS_WIN32_STATUS: Mapping[int, CodeInfo] = MappingProxyType(
    {
        0: CodeInfo("ERROR_SUCCESS", "success"),
        2148074254: CodeInfo(
            "SEC_E_NO_CREDENTIALS",
            "anonymous first request answered with the NTLM challenge (401.1); normal before authentication",
        ),
        2148074252: CodeInfo(
            "SEC_E_LOGON_DENIED", "the Online CA user name or password was rejected", "est-auth-failure"
        ),
        2148074248: CodeInfo("SEC_E_INVALID_TOKEN", "the authentication token was malformed", "est-auth-failure"),
        64: CodeInfo("ERROR_NETNAME_DELETED", "the client closed the connection (timeout on the RA side)", None),
        1236: CodeInfo("ERROR_CONNECTION_ABORTED", "the connection was aborted by the client", None),
    }
)
