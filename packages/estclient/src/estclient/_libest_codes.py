"""libest's ``EST_ERROR`` numbers (libest 2.0 and later; the table of release 3.2.0).

CAPF and other libest-based products log these numbers (for example ``EST_ERR_AUTH_FAIL (22)`` or
``EST_ERR_SSL_READ (35)``). Values 1 to 69 have been stable since libest 2.0 (2016); the trailing entries
moved as features were added (``EST_ERR_UNKNOWN`` was 70 in 2.0, 73 in 2.1.0 and is 94 in 3.2.0). libest 1.x
numbered differently (AUTH_FAIL was 18 in 1.0.0 and 19 in 1.1.0).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

__all__ = ["LIBEST_ERROR_CODES", "libest_code_for"]

_NAMES: Final = (
    "EST_ERR_NONE",
    "EST_ERR_NO_CTX",
    "EST_ERR_NO_CSR",
    "EST_ERR_NO_CERT",
    "EST_ERR_NO_KEY",
    "EST_ERR_INVALID_PARAMETERS",
    "EST_ERR_LOAD_CACERTS",
    "EST_ERR_LOAD_TRUST_CERTS",
    "EST_ERR_BAD_MODE",
    "EST_ERR_BAD_PKCS10",
    "EST_ERR_HTTP_WRITE",
    "EST_ERR_HTTP_UNSUPPORTED",
    "EST_ERR_HTTP_CANNOT_BUILD_HEADER",
    "EST_ERR_HTTP_BAD_REQ",
    "EST_ERR_HTTP_NOT_FOUND",
    "EST_ERR_HTTP_NO_CONTENT",
    "EST_ERR_HTTP_LOCKED",
    "EST_ERR_HTTP_INVALID_PATH_SEGMENT",
    "EST_ERR_HTTP_PATH_SEGMENT_NOT_SUPPORTED",
    "EST_ERR_BAD_CONTENT_TYPE",
    "EST_ERR_BAD_CONTENT_LEN",
    "EST_ERR_NO_SSL_CTX",
    "EST_ERR_AUTH_FAIL",
    "EST_ERR_AUTH_FAIL_TLSUID",
    "EST_ERR_AUTH_PENDING",
    "EST_ERR_CA_ENROLL_FAIL",
    "EST_ERR_CA_ENROLL_RETRY",
    "EST_ERR_WRONG_METHOD",
    "EST_ERR_X509_SIGN",
    "EST_ERR_X509_VER",
    "EST_ERR_X509_CN",
    "EST_ERR_X509_ATTR",
    "EST_ERR_X509_PUBKEY",
    "EST_ERR_MALLOC",
    "EST_ERR_SSL_WRITE",
    "EST_ERR_SSL_READ",
    "EST_ERR_SSL_NEW",
    "EST_ERR_SSL_CTX_NEW",
    "EST_ERR_SSL_CONNECT",
    "EST_ERR_SSL_CIPHER_LIST",
    "EST_ERR_PEM_READ",
    "EST_ERR_NULL_CALLBACK",
    "EST_ERR_IP_GETADDR",
    "EST_ERR_IP_CONNECT",
    "EST_ERR_INVALID_SERVER_NAME",
    "EST_ERR_INVALID_PORT_NUM",
    "EST_ERR_CLIENT_INVALID_KEY",
    "EST_ERR_CLIENT_NOT_INITIALIZED",
    "EST_ERR_ZERO_LENGTH_BUF",
    "EST_ERR_READ_BUFFER_TOO_SMALL",
    "EST_ERR_BUF_EXCEEDS_MAX_LEN",
    "EST_ERR_NO_CERTIFICATE",
    "EST_ERR_NO_CERTS_FOUND",
    "EST_ERR_FQDN_MISMATCH",
    "EST_ERR_SYSCALL",
    "EST_ERR_ALREADY_ENABLED",
    "EST_ERR_ALREADY_DISABLED",
    "EST_ERR_CSR_ALREADY_SIGNED",
    "EST_ERR_CSR_ATTR_MISSING",
    "EST_ERR_INVALID_DIGEST",
    "EST_ERR_CACERT_VERIFICATION",
    "EST_ERR_INVALID_TOKEN",
    "EST_ERR_INVALID_RETRY_VALUE",
    "EST_ERR_BAD_X509",
    "EST_ERR_BAD_BASE64",
    "EST_ERR_BAD_ASN1_HEX",
    "EST_ERR_BAD_ASN1_HEX_TOO_SHORT",
    "EST_ERR_BAD_ASN1_HEX_TOO_LONG",
    "EST_ERR_SRP_STRENGTH_LOW",
    "EST_ERR_SRP_USERID_BAD",
    "EST_ERR_SRP_PWD_BAD",
    "EST_ERR_CB_FAILED",
    "EST_ERR_CLIENT_PROXY_MODE_NOT_SUPPORTED",
    "EST_ERR_INVALID_CLIENT_PROXY_PROTOCOL",
    "EST_ERR_INVALID_CLIENT_PROXY_AUTH",
    "EST_ERR_CLIENT_BRSKI_MODE_NOT_SUPPORTED",
    "EST_ERR_CLIENT_COAP_MODE_NOT_SUPPORTED",
    "EST_ERR_CLIENT_BRSKI_NO_VOUCHER",
    "EST_ERR_CLIENT_BRSKI_NONCE_MISSING",
    "EST_ERR_CLIENT_BRSKI_NONCE_MISMATCH",
    "EST_ERR_CLIENT_BRSKI_NONCE_TOO_LARGE",
    "EST_ERR_CLIENT_BRSKI_SERIAL_NUM_MISSING",
    "EST_ERR_CLIENT_BRSKI_SERIAL_NUM_MISMATCH",
    "EST_ERR_CLIENT_BRSKI_SERIAL_NUM_TOO_LARGE",
    "EST_ERR_CLIENT_BRSKI_VOUCHER_VERIFY_FAILED",
    "EST_ERR_BAD_KEY",
    "EST_ERR_MULTIPART_PARSE",
    "EST_ERR_ENC_PRIV_KEY_CMS",
    "EST_ERR_CMS_TYPE_CONVERSION",
    "EST_ERR_EXPORT_KEY_MATERIAL",
    "EST_ERR_VALIDATION",
    "EST_ERR_COAP_INIT_FAIL",
    "EST_ERR_COAP_PROCESSING_ERROR",
    "EST_ERR_SERVER_ALREADY_OPERATIONAL",
    "EST_ERR_UNKNOWN",
    "EST_ERR_LAST",
)

#: libest error name -> number (libest 3.2.0; 1..69 identical since 2.0).
LIBEST_ERROR_CODES: Final = MappingProxyType({name: number for number, name in enumerate(_NAMES)})


def libest_code_for(name: str | None) -> int | None:
    """Return libest's number for an ``EST_ERR_*`` name, or None for None or an unknown name.

    Args:
        name: A libest error name such as ``"EST_ERR_AUTH_FAIL"``.

    Returns:
        The number libest 3.2.0 uses (``22`` for ``EST_ERR_AUTH_FAIL``), or None.
    """
    if name is None:
        return None
    return LIBEST_ERROR_CODES.get(name)
