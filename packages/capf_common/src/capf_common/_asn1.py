"""The one place capf_common uses asn1crypto (which has no type hints): a lenient PKCS#7 reader.

``cryptography`` reads certs-only PKCS#7 in DER and falls back to BER with a warning (OpenSSL's
``crl2pkcs7`` and libest-based servers write the certificate SET unsorted, which DER forbids). This adapter is
the fallback for bundles ``cryptography`` refuses: it returns the DER of each certificate in the bundle.
"""

from __future__ import annotations

from typing import Any

from asn1crypto import cms

__all__ = ["pkcs7_certificate_ders"]


def pkcs7_certificate_ders(data: bytes) -> list[bytes]:
    """The DER encodings of the certificates in a PKCS#7 SignedData bundle.

    Args:
        data: The DER (or BER) ContentInfo.

    Returns:
        One DER certificate per entry of the ``certificates`` field that is a plain X.509 certificate.

    Raises:
        ValueError: The data is not a ContentInfo holding SignedData (whatever asn1crypto raised is chained).
    """
    try:
        info: Any = cms.ContentInfo.load(data)
        if info["content_type"].native != "signed_data":
            raise ValueError(f"the ContentInfo holds {info['content_type'].native}, not signed_data")
        certificates = info["content"]["certificates"]
        ders: list[bytes] = []
        for choice in certificates or ():
            if choice.name == "certificate":
                ders.append(choice.chosen.dump())
        return ders
    except ValueError:
        raise
    except Exception as exc:  # asn1crypto raises many types on malformed input; callers get one
        raise ValueError(f"not a PKCS#7 SignedData structure ({type(exc).__name__}: {exc})") from exc
