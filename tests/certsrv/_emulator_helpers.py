"""Helpers shared by the AD CS emulator tests: CSRs, the form a browser posts, page markers."""

from __future__ import annotations

import base64
import re
import ssl
from collections.abc import Generator
from functools import cache

import httpx
import spnego
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


class CurlLikeNtlm(httpx.Auth):
    """NTLM as curl does it for the seed's RA: the NEGOTIATE message goes out with the first request.

    One login costs one 401 (the CHALLENGE) and one authenticated request, as in the seed's IIS log. No channel
    binding (the RA's curl sent none), so the emulator must not require Extended Protection.
    """

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self.password = password

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Send NEGOTIATE, answer the CHALLENGE with AUTHENTICATE on the same connection."""
        context = spnego.client(self.username, self.password, protocol="ntlm")
        request.headers["Authorization"] = "NTLM " + base64.b64encode(context.step() or b"").decode()
        response = yield request
        challenge = next(
            (v.split(" ", 1)[1] for v in response.headers.get_list("www-authenticate") if v.startswith("NTLM ")), None
        )
        if response.status_code != 401 or challenge is None:
            return
        request.headers["Authorization"] = (
            "NTLM " + base64.b64encode(context.step(base64.b64decode(challenge)) or b"").decode()
        )
        yield request
