"""Loading certificates from bytes the package did not make (server answers, handshakes, trust files).

cryptography warns (``CryptographyDeprecationWarning``) when a certificate's serial number is zero or negative,
which RFC 5280 forbids but old CAs issued. A certificate in an EST answer is read, not refused, for that, and the
warning is kept from the caller (an application that turns warnings into errors would otherwise fail on a
server's old CA certificate). A future cryptography that refuses such certificates raises ``ValueError``, which
the callers already turn into their own errors.
"""

from __future__ import annotations

import warnings

from cryptography import x509

__all__ = ["read_der_certificate", "read_pem_certificates"]

_NON_POSITIVE_SERIAL = "Parsed a serial number which wasn't positive"


def read_der_certificate(der: bytes) -> x509.Certificate:
    """``x509.load_der_x509_certificate`` without the non-positive serial number warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_NON_POSITIVE_SERIAL)
        return x509.load_der_x509_certificate(der)


def read_pem_certificates(data: bytes) -> list[x509.Certificate]:
    """``x509.load_pem_x509_certificates`` without the non-positive serial number warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_NON_POSITIVE_SERIAL)
        return x509.load_pem_x509_certificates(data)
