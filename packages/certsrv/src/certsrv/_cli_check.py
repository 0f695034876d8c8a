"""``certsrv check``: walk the troubleshooting guide's common problems in order and say which one is hit.

The steps and their stable identifiers (the ``id`` in ``--json`` output; a failed step also names a ``problem``,
which is the step's id unless said otherwise):

- ``dns``: the URL's host name resolves;
- ``tcp``: a TCP connection to the port opens;
- ``tls``: a TLS handshake completes (certificates not yet judged);
- ``missing-issuer``: the server's certificate chains up to a CA in the trust store (no issuer missing);
- ``self-signed``: the server's certificate is not self-signed;
- ``hostname-mismatch``: the URL's host is one of the certificate's names;
- ``validity``: the certificate is valid by the local clock (problem ``not-yet-valid`` or ``expired``);
- ``authentication``: the credentials are accepted (problem ``auth-timeout`` when the server is too slow);
- ``template``: the CA offers the template (the failure lists the templates offered);
- ``enrollment``: the CA chain downloads (``certnew.p7b?ReqID=CACert``, as the RA does at start) and, with
  ``--test-enroll``, a throwaway request is answered (problem ``enroll-timeout`` when the CA is too slow).

The TLS steps look at the certificate the server presents with Python's ``ssl`` module only; the last two steps
use :class:`certsrv.CertsrvClient`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import NameOID

__all__ = ["STEPS", "CheckReport", "StepResult", "run_check"]

Status = Literal["ok", "failed", "skipped"]

#: (id, title, exit code when it fails), in the order they run.
STEPS: tuple[tuple[str, str, int], ...] = (
    ("dns", "DNS name resolution", 11),
    ("tcp", "TCP connection", 12),
    ("tls", "TLS handshake", 13),
    ("missing-issuer", "Issuer chain of the IIS certificate", 14),
    ("self-signed", "IIS certificate not self-signed", 15),
    ("hostname-mismatch", "Host name matches the certificate", 16),
    ("validity", "Certificate validity and local clock", 17),
    ("authentication", "Authentication", 18),
    ("template", "Certificate template", 19),
    ("enrollment", "CA chain and enrollment", 20),
)
_TITLES = {step_id: title for step_id, title, _ in STEPS}
EXIT_CODES = {step_id: code for step_id, _, code in STEPS}

#: X509_V_FLAG_NO_CHECK_TIME: judge the chain apart from the clock (the validity step does that).
_NO_CHECK_TIME = 0x200000
_MISSING_ISSUER_CODES = {2, 20, 21}  # unable to get issuer certificate (locally), unable to verify leaf signature
_UNTRUSTED_ROOT_CODE = 19  # self-signed certificate in chain: the chain ends at a root that is not trusted


@dataclass
class StepResult:
    """One step's verdict.

    Attributes:
        id: The step's stable identifier.
        title: What the step checks.
        status: ``"ok"``, ``"failed"`` or ``"skipped"`` (a step after a failure, or not applicable).
        detail: What was found.
        fix: What to do about a failure (empty otherwise).
        problem: The problem identifier on failure (the step id, or ``auth-timeout``), else empty.
    """

    id: str
    title: str
    status: Status
    detail: str = ""
    fix: str = ""
    problem: str = ""


@dataclass
class CheckReport:
    """All steps of one ``certsrv check`` run.

    Attributes:
        url: The URL checked.
        steps: Every step, in order.
    """

    url: str
    steps: list[StepResult] = field(default_factory=list)

    @property
    def failed(self) -> StepResult | None:
        """The first failed step, or ``None``."""
        return next((s for s in self.steps if s.status == "failed"), None)

    @property
    def exit_code(self) -> int:
        """0 when every step passed, else the failed step's exit code (see :data:`STEPS`)."""
        failed = self.failed
        return 0 if failed is None else EXIT_CODES[failed.id]

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        failed = self.failed
        return {
            "url": self.url,
            "ok": failed is None,
            "failed_step": failed.id if failed else None,
            "problem": failed.problem if failed else None,
            "exit_code": self.exit_code,
            "steps": [asdict(s) for s in self.steps],
        }


class _Failed(Exception):
    def __init__(self, detail: str, fix: str, problem: str = "") -> None:
        super().__init__(detail)
        self.detail = detail
        self.fix = fix
        self.problem = problem


def _names(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        cns = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        return cns, []
    return san.get_values_for_type(x509.DNSName), [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]


def host_matches(host: str, cert: x509.Certificate) -> bool:
    """Whether ``host`` is one of the certificate's names (DNS names with a left-most ``*`` label, or IPs)."""
    dns_names, ips = _names(cert)
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        address = None
    if address is not None:
        return any(ipaddress.ip_address(ip) == address for ip in ips)
    wanted = host.lower().rstrip(".").split(".")
    for name in dns_names:
        labels = name.lower().rstrip(".").split(".")
        if len(labels) != len(wanted):
            continue
        if labels[0] == "*" and labels[1:] == wanted[1:] and len(labels) > 2:
            return True
        if labels == wanted:
            return True
    return False


def _self_signed(cert: x509.Certificate) -> bool:
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _describe(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or "(empty subject)"


def _connect(addresses: list[tuple[Any, ...]], timeout: float) -> socket.socket:
    last: OSError | None = None
    for family, kind, proto, _, address in addresses:
        sock = socket.socket(family, kind, proto)
        sock.settimeout(timeout)
        try:
            sock.connect(address)
            return sock
        except OSError as exc:
            sock.close()
            last = exc
    assert last is not None
    raise last


def _handshake(
    addresses: list[tuple[Any, ...]], host: str, context: ssl.SSLContext, timeout: float
) -> tuple[bytes, list[x509.Certificate]]:
    with _connect(addresses, timeout) as raw, context.wrap_socket(raw, server_hostname=host) as tls:
        leaf = tls.getpeercert(True) or b""
        presented: list[x509.Certificate] = []
        unverified = getattr(getattr(tls, "_sslobj", None), "get_unverified_chain", None)
        if callable(unverified):
            for item in unverified() or ():
                der = item.public_bytes(ssl._ssl.ENCODING_DER)  # type: ignore[attr-defined]
                presented.append(x509.load_der_x509_certificate(der))
        return leaf, presented


def _trust_context(ca_file: str | None, client_cert: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
    context.check_hostname = False
    context.verify_flags = context.verify_flags | _NO_CHECK_TIME
    if client_cert:
        context.load_cert_chain(client_cert)
    return context


AuthProbe = Callable[[], None]
TemplateProbe = Callable[[], list[str]]
EnrollProbe = Callable[[], str]


def run_check(
    url: str,
    *,
    ca_file: str | None,
    timeout: float,
    template: str | None,
    authenticate: AuthProbe,
    list_templates: TemplateProbe,
    enroll: EnrollProbe,
    classify: Callable[[BaseException, str], tuple[str, str, str] | None],
    client_cert: str | None = None,
    now: dt.datetime | None = None,
) -> CheckReport:
    """Run every step in order, stopping at the first failure (later steps are reported as skipped).

    Args:
        url: The web enrollment URL (``https://HOST[:PORT]/certsrv``).
        ca_file: The trust store for the IIS certificate (``None``: the system's).
        timeout: Seconds allowed for each network step.
        template: The template that must be offered (``None`` skips the template step).
        authenticate: Authenticates a client to the site (raises on failure).
        list_templates: The names of the templates the CA offers (raises on failure).
        enroll: Downloads the CA chain (and submits a test request when asked); returns what it found.
        classify: Maps an exception of a probe and the step's id to ``(problem, detail, fix)`` (``None``:
            re-raise).
        client_cert: A PEM file with a TLS client certificate and key to present in the TLS steps.
        now: The local clock (for tests); default the current UTC time.
    """
    parts = urlsplit(url if "://" in url else f"https://{url}")
    host = parts.hostname or ""
    port = parts.port or 443
    report = CheckReport(url)
    state: dict[str, Any] = {}
    clock = now or dt.datetime.now(dt.UTC)

    def dns() -> str:
        try:
            state["addresses"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise _Failed(
                f"name resolution failed for {host}: {exc}",
                f"check the host name in the URL for a typo and that this machine's DNS servers know {host} "
                "(nslookup/dig); the CA's IIS must be reachable under exactly this name",
            ) from exc
        addresses = sorted({str(a[4][0]) for a in state["addresses"]})
        return f"{host} resolves to {', '.join(addresses)}"

    def tcp() -> str:
        try:
            _connect(state["addresses"], timeout).close()
        except OSError as exc:
            raise _Failed(
                f"no TCP connection to {host} port {port}: {exc}",
                f"check that IIS listens on port {port} (HTTPS binding of the site) and that no firewall blocks it",
            ) from exc
        return f"connected to {host}:{port}"

    def tls() -> str:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the certificate is judged by the next steps
        if client_cert:
            context.load_cert_chain(client_cert)
        try:
            leaf, presented = _handshake(state["addresses"], host, context, timeout)
        except (OSError, ssl.SSLError) as exc:
            raise _Failed(
                f"the TLS handshake with {host}:{port} failed: {exc}",
                "check that the port serves HTTPS (an IIS HTTPS binding with a certificate) and that the server "
                "allows TLS 1.2 or newer",
            ) from exc
        state["leaf"] = x509.load_der_x509_certificate(leaf)
        state["presented"] = presented or [state["leaf"]]
        return f"TLS established; the server presents {_describe(state['leaf'])}"

    def missing_issuer() -> str:
        leaf: x509.Certificate = state["leaf"]
        if _self_signed(leaf):
            raise _Skip("the certificate is self-signed (next step)")
        try:
            _handshake(state["addresses"], host, _trust_context(ca_file, client_cert), timeout)
        except ssl.SSLCertVerificationError as exc:
            presented: list[x509.Certificate] = state["presented"]
            top = presented[-1]
            store = ca_file or "the system trust store"
            if exc.verify_code in _MISSING_ISSUER_CODES:
                detail = (
                    f"unable to get the issuer certificate: the server sent {len(presented)} certificate(s) and the "
                    f"chain stops at {_describe(top)}, whose issuer {top.issuer.rfc4514_string()} is not in {store}"
                )
            elif exc.verify_code == _UNTRUSTED_ROOT_CODE:
                detail = f"the chain ends at the root {_describe(top)}, which is not in {store}"
            else:
                detail = f"the certificate chain does not verify: {exc.verify_message}"
            raise _Failed(
                detail,
                f"add the issuing CA's certificate ({top.issuer.rfc4514_string()}) and its root to the trust store "
                "(--ca-file), or bind IIS to a certificate whose whole chain is installed on the server so it sends "
                "the intermediates",
            ) from exc
        except (OSError, ssl.SSLError) as exc:
            raise _Failed(f"the verifying TLS handshake failed: {exc}", "retry; check the server's TLS setup") from exc
        return f"the chain of {_describe(state['leaf'])} verifies up to a trusted CA"

    def self_signed() -> str:
        leaf: x509.Certificate = state["leaf"]
        if _self_signed(leaf):
            raise _Failed(
                f"IIS presents a self-signed certificate ({_describe(leaf)}); this is not supported, even when "
                "the certificate is trusted explicitly",
                "issue the IIS certificate from the CA (e.g. the Web Server template) and bind it to the site",
            )
        return f"issued by {leaf.issuer.rfc4514_string()}"

    def hostname_mismatch() -> str:
        leaf: x509.Certificate = state["leaf"]
        if not host_matches(host, leaf):
            dns_names, ips = _names(leaf)
            names = ", ".join(dns_names + ips) or "(none)"
            raise _Failed(
                f"the URL's host {host} is not among the certificate's names: {names}",
                f"use one of the certificate's names ({names}) in the URL, or issue an IIS certificate that "
                f"names {host}",
            )
        return f"{host} is a name of the certificate"

    def validity() -> str:
        leaf: x509.Certificate = state["leaf"]
        start, end = leaf.not_valid_before_utc, leaf.not_valid_after_utc
        dates = f"valid from {start:%Y-%m-%d %H:%M:%S} to {end:%Y-%m-%d %H:%M:%S} UTC"
        local = f"the local clock says {clock:%Y-%m-%d %H:%M:%S} UTC"
        if clock < start:
            raise _Failed(
                f"the certificate is not yet valid: {dates}; {local}",
                "check NTP on this machine and on the CA (clock skew), or wait until the certificate is valid",
                "not-yet-valid",
            )
        if clock > end:
            raise _Failed(
                f"the certificate has expired: {dates}; {local}",
                "renew the IIS certificate and bind the new one; if it should still be valid, check NTP here",
                "expired",
            )
        return f"{dates}; {local}"

    def authentication() -> str:
        try:
            authenticate()
        except Exception as exc:
            found = classify(exc, "authentication")
            if found is None:
                raise
            problem, detail, fix = found
            raise _Failed(detail, fix, problem) from exc
        return "the credentials were accepted"

    def template_step() -> str:
        if template is None:
            raise _Skip("no --template given")
        try:
            offered = list_templates()
        except Exception as exc:
            found = classify(exc, "template")
            if found is None:
                raise
            problem, detail, fix = found
            raise _Failed(detail, fix, problem) from exc
        if template.lower() not in (name.lower() for name in offered):
            listed = ", ".join(offered) or "(none)"
            raise _Failed(
                f"the CA does not offer the template {template!r} to this user; it offers: {listed}",
                "use the template's name (cn, not the display name) exactly, publish the template on the CA "
                "(Certificate Templates to Issue) and give the account Enroll permission",
                "template",
            )
        return f"the CA offers {template}"

    def enrollment() -> str:
        try:
            return enroll()
        except Exception as exc:
            found = classify(exc, "enrollment")
            if found is None:
                raise
            problem, detail, fix = found
            raise _Failed(detail, fix, problem) from exc

    runners: dict[str, Callable[[], str]] = {
        "dns": dns,
        "tcp": tcp,
        "tls": tls,
        "missing-issuer": missing_issuer,
        "self-signed": self_signed,
        "hostname-mismatch": hostname_mismatch,
        "validity": validity,
        "authentication": authentication,
        "template": template_step,
        "enrollment": enrollment,
    }
    stopped = False
    for step_id, title, _ in STEPS:
        if stopped:
            report.steps.append(StepResult(step_id, title, "skipped", "not run: an earlier step failed"))
            continue
        try:
            detail = runners[step_id]()
        except _Skip as skip:
            report.steps.append(StepResult(step_id, title, "skipped", str(skip)))
            continue
        except _Failed as failure:
            report.steps.append(
                StepResult(step_id, title, "failed", failure.detail, failure.fix, failure.problem or step_id)
            )
            stopped = True
            continue
        report.steps.append(StepResult(step_id, title, "ok", detail))
    return report


class _Skip(Exception):
    pass
