"""Pure functions over the bytes AD CS web enrollment sends back: no sockets, no httpx.

AD CS pages are localized in the CA's language, so each parser relies first on what translators do not touch:
URLs (``certnew.cer?ReqID=N``), script variables (``var nRenewals=2;``), element ids (``ID=locDenied``,
``ID=locDispMsgLabel``), HRESULT codes (``0x80094800``), numeric dispositions and content types. English (and,
as a last resort, German) wording is only a fallback. Every parser returns a result or raises a
:class:`~certsrv.CertsrvError` (never another exception), whatever the bytes.
"""

from __future__ import annotations

import base64
import binascii
import html
import re
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs7

from certsrv._errors import ConfigurationError, UnrecognizedPageError

__all__ = [
    "CaInfo",
    "IisErrorPage",
    "OfferedTemplate",
    "RetrievalStatus",
    "SubmitDenied",
    "SubmitError",
    "SubmitIssued",
    "SubmitPage",
    "SubmitPending",
    "decode_page",
    "failure_hresults",
    "parse_ca_info_page",
    "parse_certificate_response",
    "parse_crl_response",
    "parse_iis_error_page",
    "parse_pkcs7_response",
    "parse_retrieval_error_page",
    "parse_submit_page",
    "parse_template_page",
    "visible_text",
]

_MAX_PAGE = 1024 * 1024  # AD CS pages are ~20 kB; refuse to regex through anything absurd
_MAX_TAG = 2048  # attributes of one tag
_MAX_FIELD = 8192  # text of one field

# -- text helpers ------------------------------------------------------------------------------------------


def decode_page(body: bytes) -> str:
    """Decode a page: UTF-8 when it is valid UTF-8, else Windows-1252/ISO-8859-1 (IIS error pages)."""
    data = body[:_MAX_PAGE]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


_SCRIPT = re.compile(r"<script\b.*?(?:</script\s*>|\Z)", re.I | re.S)
_STYLE = re.compile(r"<style\b.*?(?:</style\s*>|\Z)", re.I | re.S)
_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
_TAG = re.compile(r"<[^<>]{0,2048}>")
_SPACE = re.compile(r"\s+")


def visible_text(markup: str) -> str:
    """The text a browser would show: scripts, styles, comments and tags removed, entities decoded."""
    text = _COMMENT.sub(" ", _STYLE.sub(" ", _SCRIPT.sub(" ", markup)))
    return _SPACE.sub(" ", html.unescape(_TAG.sub(" ", text))).strip()


_HRESULT = re.compile(r"(?<![0-9A-Za-z])0x([0-9A-Fa-f]{1,8})(?![0-9A-Za-z])")


def failure_hresults(text: str) -> list[int]:
    """Every failure HRESULT (high bit set, ``0x8xxxxxxx``) in ``text``, in order of appearance."""
    codes = []
    for match in _HRESULT.finditer(text):
        value = int(match.group(1), 16)
        if value & 0x80000000:
            codes.append(value)
    return codes


_BLOCK_END = re.compile(r"<P\b|<DT\b|<DL\b|</DL|<Table\b|</Body", re.I)


def _id_match(markup: str, element_id: str) -> re.Match[str] | None:
    return re.search(rf"\bID\s*=\s*[\"']?{element_id}\b", markup, re.I)


def _element_text(markup: str, element_id: str) -> str | None:
    """Visible text of the element (a ``<P>`` paragraph or similar) with ``ID=element_id``, up to the next block."""
    found = _id_match(markup, element_id)
    if found is None:
        return None
    start = markup.find(">", found.end(), found.end() + _MAX_TAG)
    if start < 0:
        return None
    end = _BLOCK_END.search(markup, start + 1, start + 1 + _MAX_FIELD)
    return visible_text(markup[start + 1 : end.start() if end else start + 1 + _MAX_FIELD])


_DT_END = re.compile(r"</DT\s*>\s*<DD\s*>", re.I)
_DD_END = re.compile(r"</DD\s*>|<DT\b", re.I)


def _dd_after(markup: str, label_id: str) -> str | None:
    """Visible text of the ``<DD>`` that follows the ``<DT ID=label_id>`` of an AD CS "advanced info" list."""
    found = _id_match(markup, label_id)
    if found is None:
        return None
    dt_end = _DT_END.search(markup, found.end(), found.end() + _MAX_FIELD)
    if dt_end is None:
        return None
    dd_end = _DD_END.search(markup, dt_end.end(), dt_end.end() + _MAX_FIELD)
    return visible_text(markup[dt_end.end() : dd_end.start() if dd_end else dt_end.end() + _MAX_FIELD])


def _first(*lists: list[int]) -> int | None:
    for codes in lists:
        if codes:
            return codes[0]
    return None


def _has_id(markup: str, element_id: str) -> bool:
    return re.search(rf"\bID\s*=\s*[\"']?{element_id}\b", markup, re.I) is not None


def _is_adcs_page(markup: str) -> bool:
    return any(_has_id(markup, i) for i in ("locPageTitle", "locMSCertSrv", "locPageTitle2"))


# -- certfnsh.asp: the answer to a submitted request ---------------------------------------------------------


@dataclass(frozen=True)
class SubmitIssued:
    """certfnsh.asp says: issued. The certificate is fetched from certnew.cer with the request id.

    Attributes:
        request_id: The CA's request id.
        ca_renewal: The CA certificate's renewal index from the page's install link, when present.
    """

    request_id: int
    ca_renewal: int | None = None


@dataclass(frozen=True)
class SubmitPending:
    """certfnsh.asp says: taken under submission; a certificate manager must approve it.

    Attributes:
        request_id: The CA's request id.
    """

    request_id: int


@dataclass(frozen=True)
class SubmitDenied:
    """certfnsh.asp says: denied.

    Attributes:
        request_id: The CA's request id, when the page shows it.
        hresult: The failure code, when the page shows one.
        message: The CA's (localized) disposition message.
    """

    request_id: int | None
    hresult: int | None
    message: str


@dataclass(frozen=True)
class SubmitError:
    """certfnsh.asp shows its error page: the request was not processed.

    Attributes:
        hresult: The failure code, when the page shows one.
        message: The CA's (localized) message.
    """

    hresult: int | None
    message: str


#: What :func:`parse_submit_page` returns.
SubmitPage = SubmitIssued | SubmitPending | SubmitDenied | SubmitError

_ISSUED = re.compile(r"certnew\.cer\?ReqID=(\d{1,18})(?=&|[\"'\s>]|$)", re.I)
_CA_RENEWAL = re.compile(r"ReqID=CACert&(?:amp;)?Renewal=(\d{1,9})", re.I)
_REQ_ID_PHRASES = (
    re.compile(r"Request\s+Id\s+is\s+(\d{1,18})", re.I),
    re.compile(r"Anforderungs-?\s?ID\s+(?:lautet|ist)\s*:?\s*(\d{1,18})", re.I),
)
_QUOTED_WITH_HRESULT = re.compile(
    r"[\"\u201c\u201e]([^\"\u201c\u201d]{0,2000}?0x8[0-9A-Fa-f]{7}[^\"\u201c\u201d]{0,2000})[\"\u201d]"
)
_DENIED_WORDS = re.compile(r"\b(?:request was denied|Denied by|verweigert)\b", re.I)
_HRESULT_PAREN = re.compile(r"0x[0-9A-Fa-f]{1,8}\s*\([^)]*\)")


_LOC_PARAGRAPH = re.compile(r"<P\s+ID\s*=\s*[\"']?(loc\w{1,40})\b", re.I)
_NUMBER = re.compile(r"(?<![\w.,-])(\d{1,18})(?![\w,]|\.\d)")


def _request_id(markup: str) -> int | None:
    """The request id shown on a pending or denied page, locale-proof first."""
    # 1. an element whose id names the request id (ID=locReqIdMsg and similar)
    match = re.search(r"\bID\s*=\s*[\"']?(loc\w{0,40}?Req\w{0,40}?Id\w{0,40})\b", markup, re.I)
    if match:
        text = _element_text(markup, match.group(1)) or ""
        number = re.search(r"(?<![\w.])(\d{1,18})(?![\w])", _HRESULT_PAREN.sub(" ", text))
        if number:
            return int(number.group(1))
    # 2. the wording (English, German)
    text = visible_text(markup)
    for phrase in _REQ_ID_PHRASES:
        found = phrase.search(text)
        if found:
            return int(found.group(1))
    # 3. any other language: the first translated paragraph (ID=loc...) that shows exactly one number
    for count, paragraph in enumerate(_LOC_PARAGRAPH.finditer(markup)):
        if count >= 100:  # a real page has about ten
            break
        numbers = _NUMBER.findall(_HRESULT_PAREN.sub(" ", _element_text(markup, paragraph.group(1)) or ""))
        if len(numbers) == 1:
            return int(numbers[0])
    return None


def _disposition_message(markup: str) -> str:
    for element in ("locDispMsg",):
        text = _element_text(markup, element)
        if text:
            quoted = re.search(r"[\"\u201c\u201e](.{1,8000})[\"\u201d]", text)
            return (quoted.group(1) if quoted else text).strip()
    text = visible_text(markup)
    quoted = _QUOTED_WITH_HRESULT.search(text)
    if quoted:
        return quoted.group(1).strip()
    english = re.search(r"disposition message is \"([^\"]{1,4000})", text, re.I)
    if english:
        return english.group(1).strip()
    dd = _dd_after(markup, "locDispMsgLabel")
    return dd or ""


def parse_submit_page(body: bytes) -> SubmitPage:
    """Read the page certfnsh.asp answers a submitted request with.

    Raises:
        UnrecognizedPageError: the page carries none of the markers of an issued, pending, denied or error page.
    """
    markup = decode_page(body)
    issued = _ISSUED.search(markup)
    if issued:
        renewal = _CA_RENEWAL.search(markup)
        return SubmitIssued(int(issued.group(1)), int(renewal.group(1)) if renewal else None)
    is_adcs = _is_adcs_page(markup)
    text = visible_text(markup)
    codes = failure_hresults(text)
    denied = _has_id(markup, "locDenied") or _DENIED_WORDS.search(text) is not None  # words: last resort
    if is_adcs and (denied or (codes and not _has_id(markup, "locDispLabel"))):
        return SubmitDenied(_request_id(markup), codes[0] if codes else None, _disposition_message(markup))
    if is_adcs and (_has_id(markup, "locDispLabel") or _has_id(markup, "locLastStatLabel")):
        message = _dd_after(markup, "locDispMsgLabel") or _dd_after(markup, "locResultLabel") or ""
        last = failure_hresults(_dd_after(markup, "locLastStatLabel") or "")
        result = failure_hresults(_dd_after(markup, "locResultLabel") or "")
        code = _first(last, result, codes)
        return SubmitError(code, message)
    if is_adcs:
        request_id = _request_id(markup)
        if request_id is not None and not codes:
            return SubmitPending(request_id)
    raise UnrecognizedPageError(
        "certfnsh.asp",
        "no certnew.cer?ReqID link, no denial (locDenied, HRESULT), no error details and no pending request id",
        body=body[:_MAX_PAGE],
    )


# -- certnew.cer / certnew.p7b / certcrl.crl -----------------------------------------------------------------

RetrievalKind = Literal["pending", "denied", "unknown", "error"]

_UNKNOWN_REQUEST_CODES = frozenset({0x80094004, 0x80094002})
_DISPOSITION_ERROR = 1
_DISPOSITION_DENIED = 2
_DISPOSITION_UNDER_SUBMISSION = 5


@dataclass(frozen=True)
class RetrievalStatus:
    """certnew.cer / certnew.p7b answered with its HTML error page instead of a certificate.

    Attributes:
        kind: ``"pending"`` (taken under submission), ``"denied"``, ``"unknown"`` (no such request id) or
            ``"error"``.
        disposition: The numeric disposition (2 denied, 3 issued, 5 under submission, ...), when shown.
        message: The CA's (localized) disposition message.
        hresult: The failure code (LastStatus, else Result), when shown.
    """

    kind: RetrievalKind
    disposition: int | None
    message: str
    hresult: int | None


def parse_retrieval_error_page(body: bytes) -> RetrievalStatus:
    """Read the "advanced info" error page of certnew.cer / certnew.p7b / certcrl.crl.

    Raises:
        UnrecognizedPageError: the page has none of the advanced-info fields (Disposition, LastStatus, ...).
    """
    markup = decode_page(body)
    labels = ("locDispLabel", "locDispMsgLabel", "locResultLabel", "locLastStatLabel")
    if not any(_has_id(markup, label) for label in labels):
        raise UnrecognizedPageError(
            "certnew.cer", "neither a certificate nor the AD CS error page (Disposition, LastStatus)", body=body
        )
    disp_text = _dd_after(markup, "locDispLabel") or ""
    number = re.match(r"\s*(-?\d{1,10})\b", disp_text)
    disposition = int(number.group(1)) if number else None
    message = _dd_after(markup, "locDispMsgLabel") or ""
    result = failure_hresults(_dd_after(markup, "locResultLabel") or "")
    last = failure_hresults(_dd_after(markup, "locLastStatLabel") or "")
    in_message = failure_hresults(message)
    code = _first(last, result, in_message)
    if any(c in _UNKNOWN_REQUEST_CODES for c in (*result, *last)):
        unknown = next(c for c in (*last, *result) if c in _UNKNOWN_REQUEST_CODES)
        return RetrievalStatus("unknown", disposition, message, unknown)
    if disposition == _DISPOSITION_ERROR:
        return RetrievalStatus("error", disposition, message, code)
    if disposition == _DISPOSITION_DENIED or last or re.search(r"\bDenied by\b", message, re.I):
        return RetrievalStatus("denied", disposition, message, code)
    if disposition == _DISPOSITION_UNDER_SUBMISSION or re.search(r"Taken Under Submission", message, re.I):
        return RetrievalStatus("pending", disposition, message, None)
    return RetrievalStatus("error", disposition, message, code)


def _is_html(body: bytes, content_type: str | None) -> bool:
    if content_type and content_type.split(";")[0].strip().lower() == "text/html":
        return True
    head = body[:512].lstrip().lower()
    return head.startswith((b"<html", b"<!doctype", b"<head", b"<body"))


_PEM_BEGIN = re.compile(rb"-----BEGIN ([A-Z0-9 #]{1,40})-----")


def _pem_payload(body: bytes) -> bytes | None:
    """The Base64 text of the first PEM block (any label), or ``None``."""
    begin = _PEM_BEGIN.search(body)
    if begin is None:
        return None
    end = body.find(b"-----END " + begin.group(1) + b"-----", begin.end())
    return body[begin.end() : end] if end >= 0 else None


def _unarmor(body: bytes) -> bytes | None:
    """DER bytes of the first PEM block, or of a bare Base64 body; ``None`` when it is neither."""
    payload = _pem_payload(body)
    data = payload if payload is not None else body.strip()
    if not data or (payload is None and body.lstrip()[:1] == b"\x30"):
        return None
    try:
        return base64.b64decode(re.sub(rb"\s+", b"", data), validate=True)
    except (binascii.Error, ValueError):
        return None


def _der_or_base64(body: bytes) -> bytes:
    stripped = body.lstrip()
    if stripped[:1] == b"\x30":
        return stripped
    decoded = _unarmor(body)
    return decoded if decoded is not None else body


def parse_certificate_response(body: bytes, content_type: str | None = None) -> x509.Certificate | RetrievalStatus:
    """Read a certnew.cer answer: the certificate (DER, PEM or bare Base64), or the error page's status.

    The bytes decide, not the ``Content-Type`` alone: AD CS has been seen to label certificates oddly.

    Raises:
        UnrecognizedPageError: neither a certificate nor the AD CS error page.
    """
    if _is_html(body, content_type):
        return parse_retrieval_error_page(body)
    try:
        return x509.load_der_x509_certificate(_der_or_base64(body))
    except ValueError as exc:
        raise UnrecognizedPageError("certnew.cer", f"the body is not a certificate ({exc})", body=body) from exc


def parse_pkcs7_response(body: bytes, content_type: str | None = None) -> list[x509.Certificate] | RetrievalStatus:
    """Read a certnew.p7b answer: the certificates of the PKCS#7 (DER, PEM or bare Base64), or the error status.

    AD CS wraps a Base64 PKCS#7 in ``-----BEGIN CERTIFICATE-----`` armor; any armor label is accepted.

    Raises:
        UnrecognizedPageError: neither a PKCS#7 bundle nor the AD CS error page.
    """
    if _is_html(body, content_type):
        return parse_retrieval_error_page(body)
    try:
        certificates = pkcs7.load_der_pkcs7_certificates(_der_or_base64(body))
    except ValueError as exc:
        raise UnrecognizedPageError("certnew.p7b", f"the body is not a PKCS#7 bundle ({exc})", body=body) from exc
    if not certificates:
        raise UnrecognizedPageError("certnew.p7b", "the PKCS#7 bundle holds no certificate", body=body)
    return list(certificates)


def parse_crl_response(
    body: bytes, content_type: str | None = None
) -> x509.CertificateRevocationList | RetrievalStatus:
    """Read a certcrl.crl answer: the CRL (DER, PEM or bare Base64), or the error page's status.

    Raises:
        UnrecognizedPageError: neither a CRL nor the AD CS error page.
    """
    if _is_html(body, content_type):
        return parse_retrieval_error_page(body)
    try:
        return x509.load_der_x509_crl(_der_or_base64(body))
    except ValueError as exc:
        raise UnrecognizedPageError("certcrl.crl", f"the body is not a CRL ({exc})", body=body) from exc


# -- certcarc.asp: CA certificates, renewals and CRLs --------------------------------------------------------


@dataclass(frozen=True)
class CaInfo:
    """What certcarc.asp tells about the CA's certificates and CRLs.

    Attributes:
        renewals: How many times the CA certificate was renewed (``var nRenewals``); the newest certificate is
            renewal ``renewals``, the first is 0.
        crl_states: The CRL state per renewal index (``rgCrlState``); :attr:`crl_available_state` means a CRL
            is published for that key.
        delta_crl: Whether the page offers delta CRLs.
        crl_available_state: The state value that means "CRL available" (``CRL_AVAILABLE``, 3).
        instances: ``(renewal, label)`` for each CA certificate the page lists, newest first.
    """

    renewals: int
    crl_states: tuple[int, ...] = ()
    delta_crl: bool = False
    crl_available_state: int = 3
    instances: tuple[tuple[int, str], ...] = ()

    def crl_available(self, renewal: int) -> bool:
        """Whether the CA publishes a CRL for the key of ``renewal``."""
        return 0 <= renewal < len(self.crl_states) and self.crl_states[renewal] == self.crl_available_state

    def crl_renewal(self, renewal: int | None = None) -> int:
        """The renewal whose CRL covers ``renewal`` (default: the newest): it, or the nearest older one with a CRL.

        This is the walk certcarc.asp's own script does before it builds the certcrl.crl link.

        Raises:
            ConfigurationError: ``renewal`` is not one of the CA's renewals (0 to :attr:`renewals`).
        """
        if renewal is not None and not 0 <= renewal <= self.renewals:
            raise ConfigurationError(
                f"renewal {renewal} does not exist: the CA has renewals 0 to {self.renewals} (certcarc.asp). Fix: "
                f"leave renewal out for the newest key, or pick one of 0 to {self.renewals}"
            )
        index = self.renewals if renewal is None else renewal
        while index > 0 and not self.crl_available(index):
            index -= 1
        return index


_CA_OPTION = re.compile(
    r"<Option\b[^<>]{0,2048}?\bValue\s*=\s*[\"']?(\d{1,6})[^<>]{0,2048}>(.*?)(?=<Option\b|\Z)", re.I | re.S
)


def parse_ca_info_page(body: bytes) -> CaInfo:
    """Read certcarc.asp ("Download a CA certificate, certificate chain, or CRL").

    Raises:
        UnrecognizedPageError: the page lacks ``var nRenewals=N;``.
    """
    markup = decode_page(body)
    renewals = re.search(r"\bvar\s+nRenewals\s*=\s*(\d{1,6})\s*;", markup)
    if renewals is None:
        raise UnrecognizedPageError("certcarc.asp", "no 'var nRenewals=N;' in the page", body=body)
    states_match = re.search(r"\bvar\s+rgCrlState\s*=\s*new\s+Array\s*\(([^)]{0,20000})\)", markup)
    states: tuple[int, ...] = ()
    if states_match:
        states = tuple(int(s) for s in re.findall(r"-?\d{1,9}", states_match.group(1)))
    available = re.search(r"\bvar\s+CRL_AVAILABLE\s*=\s*(\d{1,9})", markup)
    delta = re.search(r"OnClick\s*=\s*[\"']?\s*handleGetDeltaCrl\s*\(", markup, re.I) is not None
    count = int(renewals.group(1))
    instances: list[tuple[int, str]] = []
    select = re.search(
        r"<Select\b[^<>]{0,2048}?\bName\s*=\s*[\"']?lbCaInstance\b[^<>]{0,2048}>(.*?)(?:</Select|\Z)",
        markup,
        re.I | re.S,
    )
    if select:
        for value, label in _CA_OPTION.findall(select.group(1)):
            instances.append((count - int(value), visible_text(label)))
    return CaInfo(count, states, delta, int(available.group(1)) if available else 3, tuple(instances))


# -- certrqxt.asp: the templates offered --------------------------------------------------------------------


@dataclass(frozen=True)
class OfferedTemplate:
    """A certificate template the CA offers this user on certrqxt.asp.

    Attributes:
        name: The template's name (cn): what ``submit(template=...)`` takes.
        display_name: The name the page shows (the friendly name).
        value: The option's raw value (``;``-separated template properties).
    """

    name: str
    display_name: str
    value: str


def parse_template_page(body: bytes) -> list[OfferedTemplate]:
    """Read the templates of certrqxt.asp's ``lbCertTemplate`` list (empty when the CA offers none).

    Raises:
        UnrecognizedPageError: neither the list nor an AD CS page.
    """
    markup = decode_page(body)
    select = re.search(
        r"<Select\b[^<>]{0,2048}?\b(?:Name|ID)\s*=\s*[\"']?lbCertTemplate\w{0,40}\b[^<>]{0,2048}>(.*?)(?:</Select|\Z)",
        markup,
        re.I | re.S,
    )
    if select is None:
        if _is_adcs_page(markup):
            return []
        raise UnrecognizedPageError("certrqxt.asp", "no lbCertTemplate list and not an AD CS page", body=body)
    templates: list[OfferedTemplate] = []
    options = re.findall(
        r"<Option\b[^<>]{0,2048}?\bValue\s*=\s*(?:\"([^\"<>]{0,4096})\"|'([^'<>]{0,4096})'|([^\s<>]{0,4096}))"
        r"[^<>]{0,2048}>(.*?)(?=<Option\b|</Option|\Z)",
        select.group(1),
        re.I | re.S,
    )
    for double, single, bare, label in options:
        value = html.unescape(double or single or bare)
        fields = value.split(";")
        name = (fields[1] if len(fields) > 1 else fields[0]).strip()
        display = visible_text(label) or (fields[-1].strip() if len(fields) > 1 else name)
        if name:
            templates.append(OfferedTemplate(name, display, value))
    return templates


# -- IIS error pages ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IisErrorPage:
    """An IIS error page (401 and others).

    Attributes:
        status: The HTTP status the page states, when found.
        substatus: The IIS sub-status (401.1 wrong credentials, 401.2 no scheme in common, ...), when found.
        title: The page's headline.
        detail: The explanation below it.
    """

    status: int | None
    substatus: int | None
    title: str
    detail: str


def _first_tag_text(markup: str, tag: str) -> str | None:
    """Visible text of the first ``<tag>...</tag>`` (bounded in length), or ``None``."""
    opening = re.search(rf"<{tag}\b[^<>]{{0,2048}}>", markup, re.I)
    if opening is None:
        return None
    closing = re.compile(rf"</{tag}\s*>", re.I).search(markup, opening.end(), opening.end() + _MAX_FIELD)
    return visible_text(markup[opening.end() : closing.start()]) if closing else None


def parse_iis_error_page(body: bytes) -> IisErrorPage:
    """Read an IIS error page; any bytes give a result (empty fields when nothing is recognized)."""
    markup = decode_page(body)
    title = _first_tag_text(markup, "h2") or _first_tag_text(markup, "title") or ""
    detail = _first_tag_text(markup, "h3") or ""
    code = re.match(r"\s*(\d{3})(?:\.(\d{1,3}))?\s*-", title)
    return IisErrorPage(
        int(code.group(1)) if code else None,
        int(code.group(2)) if code and code.group(2) else None,
        title,
        detail,
    )
