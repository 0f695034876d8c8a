"""Building the requests AD CS web enrollment understands, without sending them (sans-IO).

Every path is the exact one IIS serves without a redirect (``/certsrv/`` with its trailing slash, the ``.asp``
and ``.cer`` names), so no request is spent on a 301. The submit form carries the fields a browser posts from
certrqxt.asp (the seed's capture): ``Mode=newreq``, ``CertRequest``, ``CertAttrib`` (one ``Name:Value`` per line,
``CertificateTemplate:NAME`` first, then ``UserAgent:`` as the browser adds it, then the caller's attributes),
``FriendlyType``, ``ThumbPrint``, ``TargetStoreFlags=0`` and ``SaveCert=yes``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlencode, urlsplit, urlunsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certsrv._errors import ConfigurationError
from certsrv._timeouts import Phase

__all__ = [
    "DEFAULT_USER_AGENT",
    "Attributes",
    "CsrInput",
    "PreparedRequest",
    "ca_certificate_request",
    "ca_chain_request",
    "ca_info_request",
    "cert_attrib",
    "certificate_request",
    "chain_request",
    "crl_request",
    "csr_to_pem",
    "normalize_base_url",
    "priming_request",
    "san_attribute",
    "submit_request",
    "template_page_request",
]

#: AD CS pages sniff the browser; a Mozilla-style agent gets the content types browsers get.
DEFAULT_USER_AGENT = "Mozilla/5.0 (compatible; adcs-certsrv; +https://github.com/capf-online-ca/capf-online-ca)"

#: A CSR as a cryptography object, PEM or DER bytes, or PEM text.
CsrInput = x509.CertificateSigningRequest | bytes | str
#: Extra request attributes (CertAttrib lines): a mapping or ``(name, value)`` pairs.
Attributes = Mapping[str, str] | Iterable[tuple[str, str]]


@dataclass(frozen=True)
class PreparedRequest:
    """One request to the certsrv site, relative to its base URL.

    Attributes:
        method: ``GET`` or ``POST``.
        path: The page, relative to the base (``""`` is the base itself, ``/certsrv/``).
        params: Query parameters in the order they are sent.
        form: Form fields for a POST (``application/x-www-form-urlencoded``).
        phase: The timeout phase the request belongs to.
    """

    method: Literal["GET", "POST"]
    path: str
    params: tuple[tuple[str, str], ...] = ()
    form: tuple[tuple[str, str], ...] | None = None
    phase: Phase = "retrieval"

    @property
    def target(self) -> str:
        """Path and query, relative to the base URL."""
        return self.path + ("?" + urlencode(self.params) if self.params else "")

    def url(self, base_url: str) -> str:
        """The absolute URL under ``base_url`` (as returned by :func:`normalize_base_url`)."""
        return base_url + self.target

    @property
    def body(self) -> bytes:
        """The urlencoded form body (empty for GET)."""
        return urlencode(self.form).encode("ascii") if self.form is not None else b""

    @property
    def headers(self) -> dict[str, str]:
        """Headers the request needs beyond the client's defaults."""
        if self.form is None:
            return {}
        return {"Content-Type": "application/x-www-form-urlencoded"}


def normalize_base_url(url: str) -> str:
    """``https://HOST/certsrv/`` from ``HOST``, ``https://HOST``, ``https://HOST/certsrv`` and the like.

    A URL without a path gets ``/certsrv/``; every path gets its trailing slash (IIS redirects ``/certsrv`` to
    ``/certsrv/`` with a 301 otherwise, as the seed's IIS log shows).

    Raises:
        ConfigurationError: not an http(s) URL with a host, or a URL with a user name or password in it.
    """
    text = url.strip()
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    if "@" in parts.netloc:  # never repeat it: the password would land in messages and logs
        raise ConfigurationError(
            "the URL carries a user name or password (user:password@host). Fix: give the URL as https://HOST/certsrv "
            "and the credentials as username= and password= (or CERTSRV_PASSWORD; --user for the certsrv command)"
        )
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigurationError(
            f"the URL {url!r} is not an https:// URL with a host. Fix: give the web enrollment site as "
            f"https://HOST/certsrv"
        )
    if parts.query or parts.fragment:
        raise ConfigurationError(f"the URL {url!r} has a query or fragment. Fix: give https://HOST/certsrv only")
    path = parts.path or "/certsrv"
    if path == "/":
        path = "/certsrv"
    if not path.endswith("/"):
        path += "/"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def csr_to_pem(csr: CsrInput) -> str:
    """The CSR as PEM text, checked to be a PKCS#10 request.

    Raises:
        ConfigurationError: the input is not a PEM or DER PKCS#10 certificate request.
    """
    if isinstance(csr, x509.CertificateSigningRequest):
        return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")
    data = csr.encode("utf-8") if isinstance(csr, str) else bytes(csr)
    try:
        request = x509.load_pem_x509_csr(data) if b"-----BEGIN" in data else x509.load_der_x509_csr(data)
    except ValueError as exc:
        raise ConfigurationError(
            f"the CSR is not a PKCS#10 certificate request ({exc}). Fix: pass the CSR as PEM "
            f"('-----BEGIN CERTIFICATE REQUEST-----'), DER or an x509.CertificateSigningRequest"
        ) from exc
    return request.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _check_line(what: str, text: str) -> str:
    if "\r" in text or "\n" in text or "\x00" in text:
        raise ConfigurationError(
            f"the {what} {text!r} contains a line break. Fix: one value per attribute, no newlines"
        )
    return text


def _pairs(attributes: Attributes | None) -> list[tuple[str, str]]:
    if attributes is None:
        return []
    items = list(attributes.items()) if isinstance(attributes, Mapping) else list(attributes)
    pairs = []
    for item in items:
        if not (isinstance(item, tuple) and len(item) == 2 and all(isinstance(x, str) for x in item)):
            raise ConfigurationError(f"attribute {item!r} is not a (name, value) pair of strings")
        name, value = item
        name = _check_line("attribute name", name.strip())
        if not name or ":" in name:
            raise ConfigurationError(
                f"the attribute name {name!r} is empty or contains ':'. Fix: names like 'SAN' or 'ccm', the value "
                f"goes in the value"
            )
        if name.lower() == "certificatetemplate":
            raise ConfigurationError("give the template with template=..., not as a CertificateTemplate attribute")
        pairs.append((name, _check_line("attribute value", value)))
    return pairs


def san_attribute(
    *,
    dns: Sequence[str] = (),
    ip: Sequence[str] = (),
    upn: Sequence[str] = (),
    email: Sequence[str] = (),
    url: Sequence[str] = (),
) -> str:
    """The value of a ``SAN`` request attribute: ``dns=a.example&dns=b.example&upn=user@example``.

    AD CS takes SANs from this attribute only when the CA has ``EDITF_ATTRIBUTESUBJECTALTNAME2`` set; otherwise
    put them in the CSR's subjectAltName extension. Pass the result as ``attributes={"SAN": value}``.

    Raises:
        ConfigurationError: no name given, or a name contains ``&`` or a line break.
    """
    parts = []
    for key, values in (("dns", dns), ("ipaddress", ip), ("upn", upn), ("email", email), ("url", url)):
        for value in values:
            if "&" in value or not value.strip():
                raise ConfigurationError(f"the SAN {key} value {value!r} is empty or contains '&'")
            parts.append(f"{key}={_check_line('SAN value', value.strip())}")
    if not parts:
        raise ConfigurationError("san_attribute() needs at least one name (dns=, ip=, upn=, email= or url=)")
    return "&".join(parts)


def cert_attrib(template: str, attributes: Attributes | None = None, *, user_agent: str | None = None) -> str:
    """The ``CertAttrib`` form value: ``CertificateTemplate:NAME``, ``UserAgent:...`` and the attributes, CRLF-ended.

    Raises:
        ConfigurationError: the template is empty, or a name or value is malformed.
    """
    name = _check_line("template name", template.strip())
    if not name:
        raise ConfigurationError(
            "the template name is empty. Fix: give the template's name (cn), e.g. template='WebServer'"
        )
    lines = [f"CertificateTemplate:{name}"]
    if user_agent:
        lines.append(f"UserAgent:{_check_line('user agent', user_agent)}")
    lines += [f"{key}:{value}" for key, value in _pairs(attributes)]
    return "".join(line + "\r\n" for line in lines)


def _friendly_type(now: dt.datetime) -> str:
    hour = now.hour % 12 or 12
    half = "AM" if now.hour < 12 else "PM"
    return f"Saved-Request Certificate ({now.month}/{now.day}/{now.year}, {hour}:{now:%M:%S} {half})"


def submit_request(
    csr: CsrInput,
    template: str,
    attributes: Attributes | None = None,
    *,
    user_agent: str | None = DEFAULT_USER_AGENT,
    now: dt.datetime | None = None,
) -> PreparedRequest:
    """The certfnsh.asp POST that submits ``csr`` for ``template``.

    Raises:
        ConfigurationError: the CSR, template or an attribute is malformed.
    """
    form = (
        ("Mode", "newreq"),
        ("CertRequest", csr_to_pem(csr)),
        ("CertAttrib", cert_attrib(template, attributes, user_agent=user_agent)),
        ("FriendlyType", _friendly_type(now or dt.datetime.now())),  # the browser's local time
        ("ThumbPrint", ""),
        ("TargetStoreFlags", "0"),
        ("SaveCert", "yes"),
    )
    return PreparedRequest("POST", "certfnsh.asp", form=form, phase="enrollment")


def _request_id(value: int) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"the request id must be a positive integer, not {value!r}")
    return str(value)


def _renewal(value: int) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(f"the CA renewal index must be an integer >= 0, not {value!r}")
    return str(value)


def priming_request() -> PreparedRequest:
    """``GET /certsrv/``: the request that authenticates a new connection (NTLM, Kerberos, Negotiate)."""
    return PreparedRequest("GET", "", phase="authentication")


def certificate_request(request_id: int) -> PreparedRequest:
    """``GET certnew.cer?ReqID=N&Enc=bin``: the certificate of request ``N`` (or its status page)."""
    return PreparedRequest("GET", "certnew.cer", (("ReqID", _request_id(request_id)), ("Enc", "bin")))


def chain_request(request_id: int) -> PreparedRequest:
    """``GET certnew.p7b?ReqID=N&Enc=bin``: request ``N``'s certificate with its chain, as PKCS#7."""
    return PreparedRequest("GET", "certnew.p7b", (("ReqID", _request_id(request_id)), ("Enc", "bin")))


def ca_certificate_request(renewal: int) -> PreparedRequest:
    """``GET certnew.cer?ReqID=CACert&Renewal=K&Enc=bin``: the CA certificate of renewal ``K``."""
    return PreparedRequest("GET", "certnew.cer", (("ReqID", "CACert"), ("Renewal", _renewal(renewal)), ("Enc", "bin")))


def ca_chain_request(renewal: int) -> PreparedRequest:
    """``GET certnew.p7b?ReqID=CACert&Renewal=K&Enc=bin``: the CA chain of renewal ``K``, as PKCS#7."""
    return PreparedRequest("GET", "certnew.p7b", (("ReqID", "CACert"), ("Renewal", _renewal(renewal)), ("Enc", "bin")))


def crl_request(renewal: int, *, delta: bool = False) -> PreparedRequest:
    """``GET certcrl.crl?Type=base|delta&Renewal=K&Enc=bin``: the CRL of the CA key of renewal ``K``."""
    return PreparedRequest(
        "GET",
        "certcrl.crl",
        (("Type", "delta" if delta else "base"), ("Renewal", _renewal(renewal)), ("Enc", "bin")),
    )


def template_page_request() -> PreparedRequest:
    """``GET certrqxt.asp``: the advanced request page listing the templates offered."""
    return PreparedRequest("GET", "certrqxt.asp")


def ca_info_request() -> PreparedRequest:
    """``GET certcarc.asp``: the CA certificate / chain / CRL page (renewals, CRL states)."""
    return PreparedRequest("GET", "certcarc.asp")
