"""Helpers shared by the AD CS emulator tests: CSRs, the form a browser posts, page markers."""

from __future__ import annotations

import re
import ssl
from functools import cache

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from certsrv.testing import AdcsEmulator

ALICE = "EXAMPLE\\alice"
PASSWORD = "Passw0rd!"
USERS = {ALICE: PASSWORD, "EXAMPLE\\bob": "B0b-s3cret!"}


@cache
def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def csr_pem(common_name: str = "SEP001122334455") -> str:
    """A PEM PKCS#10 request for ``common_name`` (one EC key shared by the tests)."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .sign(_key(), hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def submit_form(template: str | None, csr: str | None = None, extra: str = "") -> dict[str, str]:
    """The certfnsh.asp form fields of the seed's browser capture."""
    attrib = (f"CertificateTemplate:{template}\r\n" if template else "") + extra
    return {
        "Mode": "newreq",
        "CertRequest": csr if csr is not None else csr_pem(),
        "CertAttrib": attrib,
        "FriendlyType": "Saved-Request Certificate",
        "TargetStoreFlags": "0",
        "SaveCert": "yes",
    }


def client_for(emulator: AdcsEmulator, auth: httpx.Auth | None = None, timeout: float = 10.0) -> httpx.Client:
    """An httpx client trusting the emulator's CA (one kept-alive connection)."""
    context = ssl.create_default_context(cafile=str(emulator.ca_file))
    return httpx.Client(
        verify=context, auth=auth, timeout=timeout, limits=httpx.Limits(max_connections=1), base_url=emulator.url
    )


def issued_request_id(page: str) -> int:
    """The request id in a certfnsh.asp "Certificate Issued" page (from the certnew.cer link)."""
    match = re.search(r"certnew\.cer\?ReqID=(\d+)&", page)
    assert match, page
    return int(match.group(1))


def page_request_id(page: str) -> int:
    """The request id shown in a pending or denied page (``<P ID=locReqID>``)."""
    match = re.search(r"<P ID=locReqIdMsg>[^0-9]*(\d+)\.", page)
    assert match, page
    return int(match.group(1))


def dd_value(page: str, label_id: str) -> str:
    """The text of the ``<DD>`` after ``<DT ID=label_id>`` in an error page's advanced info."""
    match = re.search(rf"<DT ID={label_id}>.*?</DT><DD>(.*?)</DD>", page, re.S)
    assert match, (label_id, page)
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())
