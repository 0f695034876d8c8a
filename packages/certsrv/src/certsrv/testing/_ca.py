"""The certification authority behind the AD CS emulator: templates, policies, request database, renewals, CRLs.

:class:`EmulatedCa` keeps what a Microsoft enterprise CA keeps for web enrollment: a request database with
increasing request ids, the disposition of each request (issued, pending, denied, error) with the HRESULT AD CS
would record, the CA certificate of every renewal (``nRenewals`` on certcarc.asp), and a base and a delta CRL per
renewal. It signs with real keys (P-256), so the certificates, chains and CRLs it hands out verify.

Thread-safe: the emulator's connection threads call it concurrently.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import enum
import ipaddress
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

__all__ = [
    "CaRequest",
    "CertificateTemplate",
    "Disposition",
    "EmulatedCa",
    "HResult",
    "Policy",
]

#: szOID_CERTIFICATE_TEMPLATE_NAME: the template's name in the issued certificate (a BMPString).
OID_CERTIFICATE_TEMPLATE_NAME = ObjectIdentifier("1.3.6.1.4.1.311.20.2")
_UTC = dt.UTC


class Policy(enum.StrEnum):
    """What the emulated CA does with a request for a template.

    Attributes:
        ISSUE: Issue at once (the certificate is on the certfnsh.asp result page).
        PENDING: Keep the request "Taken Under Submission" until :meth:`EmulatedCa.approve` or
            :meth:`EmulatedCa.deny` decides it.
        DENY: Deny it in the policy module (``0x80094012 CERTSRV_E_TEMPLATE_DENIED``: no enroll permission).
    """

    ISSUE = "issue"
    PENDING = "pending"
    DENY = "deny"


class Disposition(enum.IntEnum):
    """The request disposition codes AD CS shows on its pages (``CR_DISP_*`` of certcli.h)."""

    INCOMPLETE = 0
    ERROR = 1
    DENIED = 2
    ISSUED = 3
    ISSUED_OUT_OF_BAND = 4
    UNDER_SUBMISSION = 5
    REVOKED = 6


@dataclass(frozen=True)
class HResult:
    """An AD CS status code as its pages print it: ``text 0x80094800 (-2146875392 SYMBOL)``.

    Attributes:
        code: The HRESULT as an unsigned 32-bit number.
        symbol: The symbolic name (``CERTSRV_E_UNSUPPORTED_CERT_TYPE``), locale-independent.
        text: The English message text.
        text_de: The German message text.
    """

    code: int
    symbol: str
    text: str
    text_de: str

    @property
    def signed(self) -> int:
        """The code as the signed 32-bit number in the parentheses."""
        return self.code - (1 << 32) if self.code & 0x80000000 else self.code

    def line(self, language: str = "en") -> str:
        """The status line as the pages show it, for ``language`` ``"en"`` or ``"de"``."""
        text = self.text_de if language == "de" else self.text
        if self.code == 0:
            return f"{text} 0x0 (WIN32: 0)"
        if self.code & 0xFFFFF000 == 0x80093000:  # CRYPT_E_ASN1_*: AD CS names the ASN.1 error number
            return f"{text} 0x{self.code:x} (ASN: {self.code & 0xFFF} {self.symbol})"
        if self.code & 0xFFFF0000 == 0x80070000:
            return f"{text} 0x{self.code:x} (WIN32: {self.code & 0xFFFF} {self.symbol})"
        return f"{text} 0x{self.code:x} ({self.signed} {self.symbol})"


S_OK = HResult(0, "S_OK", "The operation completed successfully.", "Der Vorgang wurde erfolgreich beendet.")
UNSUPPORTED_CERT_TYPE = HResult(
    0x80094800,
    "CERTSRV_E_UNSUPPORTED_CERT_TYPE",
    "The request was for a certificate template that is not supported by this CA.",
    "Die Anforderung bezieht sich auf eine Zertifikatvorlage, die von dieser Zertifizierungsstelle nicht "
    "unterstützt wird.",
)
NO_CERT_TYPE = HResult(
    0x80094801,
    "CERTSRV_E_NO_CERT_TYPE",
    "The request contains no certificate template information.",
    "Die Anforderung enthält keine Zertifikatvorlageninformationen.",
)
TEMPLATE_DENIED = HResult(
    0x80094012,
    "CERTSRV_E_TEMPLATE_DENIED",
    "The permissions on the certificate template do not allow the current user to enroll for this type of certificate.",
    "Die Berechtigungen für die Zertifikatvorlage lassen nicht zu, dass der aktuelle Benutzer sich für diesen "
    "Zertifikattyp registriert.",
)
ADMIN_DENIED_REQUEST = HResult(
    0x80094014,
    "CERTSRV_E_ADMIN_DENIED_REQUEST",
    "The request was denied by a certificate manager or CA administrator.",
    "Die Anforderung wurde von einem Zertifikat-Manager oder dem Administrator der Zertifizierungsstelle abgelehnt.",
)
PROPERTY_EMPTY = HResult(
    0x80094004,
    "CERTSRV_E_PROPERTY_EMPTY",
    "The requested property value is empty.",
    "Der angeforderte Eigenschaftswert ist leer.",
)
ASN1_BADTAG = HResult(
    0x8009310B,
    "CRYPT_E_ASN1_BADTAG",
    "ASN1 bad tag value met.",
    "Ungültiger ASN1-Tagwert gefunden.",
)
INVALID_PARAMETER = HResult(0x80070057, "ERROR_INVALID_PARAMETER", "The parameter is incorrect.", "Falscher Parameter.")
BAD_SIGNATURE = HResult(0x80090006, "NTE_BAD_SIGNATURE", "Invalid Signature.", "Ungültige Signatur.")

#: Every status code the emulated CA writes (for translating page texts).
KNOWN_HRESULTS = (
    S_OK,
    UNSUPPORTED_CERT_TYPE,
    NO_CERT_TYPE,
    TEMPLATE_DENIED,
    ADMIN_DENIED_REQUEST,
    PROPERTY_EMPTY,
    ASN1_BADTAG,
    INVALID_PARAMETER,
    BAD_SIGNATURE,
)

#: The EKUs a template gets when none are named: TLS server and client authentication.
DEFAULT_EKUS: tuple[ObjectIdentifier, ...] = (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH)
#: The key usage AD CS's stock end-entity templates (Web Server, Computer, User) write: signature + key encipherment.
DEFAULT_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=True,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


@dataclass(frozen=True)
class CertificateTemplate:
    """A certificate template the emulated CA publishes.

    Attributes:
        name: The template's common name, as a client sends it in ``CertificateTemplate:NAME`` (matched
            case-insensitively, as AD CS does).
        validity: How long issued certificates are valid.
        ekus: The extended key usages written into issued certificates.
        key_usage: The key usage written into issued certificates (critical); ``None`` writes none.
        policy: Issue at once, keep pending, or deny (see :class:`Policy`).
        display_name: The friendly name shown in certrqxt.asp's list (defaults to ``name``).
    """

    name: str
    validity: dt.timedelta = dt.timedelta(days=365)
    ekus: tuple[ObjectIdentifier, ...] = DEFAULT_EKUS
    key_usage: x509.KeyUsage | None = DEFAULT_KEY_USAGE
    policy: Policy = Policy.ISSUE
    display_name: str | None = None

    @property
    def friendly_name(self) -> str:
        """The name certrqxt.asp shows."""
        return self.display_name or self.name


@dataclass
class CaRequest:
    """One row of the emulated CA's request database.

    Attributes:
        request_id: The request id (increasing, unique).
        requester: The authenticated user name that submitted it.
        template: The template name from ``CertAttrib`` (``None`` when missing).
        attributes: Every ``Name:Value`` line of ``CertAttrib``.
        disposition: The current disposition.
        status: The HRESULT recorded for the request (``S_OK`` while fine).
        disposition_message: The disposition message AD CS shows ("Issued", "Taken Under Submission", ...).
        certificate: The issued certificate, once issued.
        renewal: The CA renewal that signed it.
        csr: The parsed request (``None`` when it could not be parsed).
    """

    request_id: int
    requester: str
    template: str | None
    attributes: dict[str, str]
    disposition: Disposition
    status: HResult
    disposition_message: str
    certificate: x509.Certificate | None = None
    renewal: int = 0
    csr: x509.CertificateSigningRequest | None = field(default=None, repr=False)


@dataclass
class _CaGeneration:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    crl_number: int = 1
    base_crl_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(_UTC))
    revoked: list[tuple[int, dt.datetime]] = field(default_factory=list)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "test"),
            x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "example"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _bmp_string(text: str) -> bytes:
    data = text.encode("utf-16-be")
    if len(data) >= 128:
        raise ValueError("template name too long for the template-name extension")
    return bytes([0x1E, len(data)]) + data


def parse_cert_attrib(text: str) -> dict[str, str]:
    """Split a ``CertAttrib`` form value into its ``Name:Value`` lines (CRLF or LF separated)."""
    result: dict[str, str] = {}
    for raw in text.replace("\r\n", "\n").split("\n"):
        name, sep, value = raw.strip().partition(":")
        if sep and name.strip():
            result[name.strip()] = value.strip()
    return result


class EmulatedCa:
    """An AD CS enterprise CA in memory: a root, the issuing CA's certificate per renewal, and the request database.

    Args:
        name: The CA's name (the common name of its certificates; shown in every page header).
        templates: The templates it publishes.
        renewals: How many times the CA certificate was renewed (``nRenewals``): there are ``renewals + 1`` CA
            certificates, each with its own key; the newest signs new certificates.
        first_request_id: The id the first request gets.
        delta_crl: Whether delta CRLs are published (certcarc.asp then offers the delta CRL link).
        allow_san_attribute: Honour ``SAN:dns=...&upn=...`` request attributes (the CA flag
            ``EDITF_ATTRIBUTESUBJECTALTNAME2``); off by default, as on a well-configured CA.
    """

    def __init__(
        self,
        name: str = "EMULATED-CA",
        templates: Iterable[CertificateTemplate] = (),
        *,
        renewals: int = 0,
        first_request_id: int = 1,
        delta_crl: bool = True,
        allow_san_attribute: bool = False,
    ) -> None:
        if renewals < 0:
            raise ValueError("renewals must be 0 or more")
        self.name = name
        self.delta_crl = delta_crl
        self.allow_san_attribute = allow_san_attribute
        self._lock = threading.Lock()
        self._templates: dict[str, CertificateTemplate] = {}
        for template in templates:
            self.add_template(template)
        self._requests: dict[int, CaRequest] = {}
        self._next_id = first_request_id
        now = dt.datetime.now(_UTC).replace(microsecond=0)
        root_key = ec.generate_private_key(ec.SECP256R1())
        self.root_certificate = self._ca_cert(
            _name(f"{name} Root"), root_key, root_key, None, now - dt.timedelta(days=3650), now, path_length=1
        )
        self._root_key = root_key
        self._generations: list[_CaGeneration] = []
        for index in range(renewals + 1):
            key = ec.generate_private_key(ec.SECP256R1())
            start = now - dt.timedelta(days=365 * (renewals - index) + 1)
            cert = self._ca_cert(_name(name), key, root_key, self.root_certificate, start, now, path_length=0)
            self._generations.append(_CaGeneration(key, cert))

    # -- configuration ---------------------------------------------------------------------------------

    def add_template(self, template: CertificateTemplate) -> None:
        """Publish ``template`` (replacing one of the same name)."""
        with self._lock:
            self._templates[template.name.lower()] = template

    def remove_template(self, name: str) -> None:
        """Stop publishing the template ``name``."""
        with self._lock:
            self._templates.pop(name.lower(), None)

    @property
    def templates(self) -> list[CertificateTemplate]:
        """The published templates, in the order they were added."""
        with self._lock:
            return list(self._templates.values())

    def template(self, name: str) -> CertificateTemplate | None:
        """The published template called ``name`` (case-insensitive), or ``None``."""
        with self._lock:
            return self._templates.get(name.lower())

    # -- CA certificates and CRLs ------------------------------------------------------------------------

    @property
    def renewals(self) -> int:
        """How many times the CA certificate was renewed (``nRenewals``)."""
        return len(self._generations) - 1

    def ca_certificate(self, renewal: int | None = None) -> x509.Certificate:
        """The CA certificate of ``renewal`` (``None`` or a negative number: the newest)."""
        return self._generation(renewal).cert

    @property
    def ca_certificates(self) -> list[x509.Certificate]:
        """Every CA certificate, renewal 0 first."""
        return [g.cert for g in self._generations]

    def ca_chain(self, renewal: int | None = None) -> list[x509.Certificate]:
        """The CA certificate of ``renewal`` followed by the root."""
        return [self.ca_certificate(renewal), self.root_certificate]

    def renewal_index(self, renewal: int | None) -> int:
        """The renewal index ``renewal`` stands for (``None`` or negative: the newest).

        Raises:
            LookupError: ``renewal`` is larger than the number of renewals.
        """
        if renewal is None or renewal < 0:
            return len(self._generations) - 1
        if renewal >= len(self._generations):
            raise LookupError(f"renewal {renewal} does not exist (nRenewals={self.renewals})")
        return renewal

    def _generation(self, renewal: int | None) -> _CaGeneration:
        return self._generations[self.renewal_index(renewal)]

    def revoke(self, request_id: int, when: dt.datetime | None = None) -> None:
        """Revoke the certificate issued for ``request_id``: it appears on the next delta CRL and base CRL.

        Raises:
            LookupError: No issued certificate has that request id.
        """
        with self._lock:
            req = self._requests.get(request_id)
            if req is None or req.certificate is None:
                raise LookupError(f"request {request_id} has no issued certificate")
            req.disposition = Disposition.REVOKED
            req.disposition_message = "Revoked"
            self._generations[req.renewal].revoked.append(
                (req.certificate.serial_number, when or dt.datetime.now(_UTC))
            )

    def publish_crls(self) -> None:
        """Publish a new base CRL for every renewal (the delta CRLs start empty again)."""
        with self._lock:
            now = dt.datetime.now(_UTC)
            for gen in self._generations:
                gen.crl_number += 2 if self.delta_crl else 1
                gen.base_crl_at = now

    def crl(self, renewal: int | None = None, *, delta: bool = False) -> x509.CertificateRevocationList:
        """The base (or delta) CRL signed by the CA key of ``renewal``.

        Raises:
            LookupError: ``delta`` is asked for while delta CRLs are off, or the renewal does not exist.
        """
        if delta and not self.delta_crl:
            raise LookupError("delta CRLs are not published by this CA")
        with self._lock:
            gen = self._generation(renewal)
            now = dt.datetime.now(_UTC).replace(microsecond=0)
            entries = [(serial, when) for serial, when in gen.revoked if not delta or when >= gen.base_crl_at]
            base_number = gen.crl_number
            number = base_number + 1 if delta else base_number
            builder = (
                x509.CertificateRevocationListBuilder()
                .issuer_name(gen.cert.subject)
                .last_update(now - dt.timedelta(minutes=10))
                .next_update(now + dt.timedelta(days=1 if delta else 7))
                .add_extension(x509.CRLNumber(number), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(gen.key.public_key()), critical=False)
            )
            if delta:
                builder = builder.add_extension(x509.DeltaCRLIndicator(base_number), critical=True)
            for serial, when in entries:
                builder = builder.add_revoked_certificate(
                    x509.RevokedCertificateBuilder()
                    .serial_number(serial)
                    .revocation_date(when.replace(microsecond=0))
                    .build()
                )
            return builder.sign(gen.key, hashes.SHA256())

    # -- the request database ----------------------------------------------------------------------------

    def get(self, request_id: int) -> CaRequest | None:
        """The request ``request_id``, or ``None`` when the database has no such row."""
        with self._lock:
            return self._requests.get(request_id)

    @property
    def requests(self) -> list[CaRequest]:
        """Every request, in id order."""
        with self._lock:
            return [self._requests[k] for k in sorted(self._requests)]

    def submit(self, csr_text: str | bytes, cert_attrib: str = "", requester: str = "") -> CaRequest:
        """Process a request as certfnsh.asp does and return its database row.

        ``csr_text`` is the ``CertRequest`` form field (PEM, or bare base64). Requests that cannot be parsed get
        no row and an error result (``request_id`` 0); every other request gets the next id, even when denied.
        """
        attributes = parse_cert_attrib(cert_attrib)
        csr = _load_csr(csr_text)
        if csr is None or not csr.is_signature_valid:
            status = ASN1_BADTAG if csr is None else BAD_SIGNATURE
            message = f"Error Parsing Request  {status.line()}"
            return CaRequest(0, requester, None, attributes, Disposition.ERROR, status, message)
        template_name = next((v for k, v in attributes.items() if k.lower() == "certificatetemplate"), None)
        with self._lock:
            request_id = self._next_id
            self._next_id += 1
            template = self._templates.get(template_name.lower()) if template_name else None
            req = CaRequest(request_id, requester, template_name, attributes, Disposition.INCOMPLETE, S_OK, "", csr=csr)
            self._requests[request_id] = req
            if not template_name:
                self._deny(req, NO_CERT_TYPE, policy_module=True)
            elif template is None:
                self._deny(req, UNSUPPORTED_CERT_TYPE, policy_module=True)
            elif template.policy is Policy.DENY:
                self._deny(req, TEMPLATE_DENIED, policy_module=True)
            elif template.policy is Policy.PENDING:
                req.disposition = Disposition.UNDER_SUBMISSION
                req.disposition_message = "Taken Under Submission"
            else:
                self._issue(req, template)
            return req

    def approve(self, request_id: int) -> CaRequest:
        """Issue the pending request ``request_id`` (what "Issue" in the CA console does).

        Raises:
            LookupError: There is no pending request with that id.
        """
        with self._lock:
            req = self._pending(request_id)
            template = self._templates.get((req.template or "").lower()) or CertificateTemplate(req.template or "")
            self._issue(req, template)
            return req

    def deny(self, request_id: int) -> CaRequest:
        """Deny the pending request ``request_id`` (``0x80094014 CERTSRV_E_ADMIN_DENIED_REQUEST``).

        Raises:
            LookupError: There is no pending request with that id.
        """
        with self._lock:
            req = self._pending(request_id)
            self._deny(req, ADMIN_DENIED_REQUEST, policy_module=False)
            return req

    def _pending(self, request_id: int) -> CaRequest:
        req = self._requests.get(request_id)
        if req is None or req.disposition is not Disposition.UNDER_SUBMISSION:
            raise LookupError(f"request {request_id} is not pending")
        return req

    @staticmethod
    def _deny(req: CaRequest, status: HResult, *, policy_module: bool) -> None:
        req.disposition = Disposition.DENIED
        req.status = status
        if policy_module:
            req.disposition_message = f"Denied by Policy Module  0x{status.code:x}, {status.text}"
        else:
            req.disposition_message = "Denied by Administrator"

    def _issue(self, req: CaRequest, template: CertificateTemplate) -> None:
        assert req.csr is not None
        gen = self._generations[-1]
        now = dt.datetime.now(_UTC).replace(microsecond=0)
        not_after = min(now + template.validity, gen.cert.not_valid_after_utc)
        builder = (
            x509.CertificateBuilder()
            .subject_name(req.csr.subject)
            .issuer_name(gen.cert.subject)
            .public_key(req.csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=10))
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(gen.key.public_key()), critical=False)
            .add_extension(
                x509.UnrecognizedExtension(OID_CERTIFICATE_TEMPLATE_NAME, _bmp_string(template.name)), critical=False
            )
        )
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(req.csr.public_key()), critical=False)
        if template.key_usage is not None:
            builder = builder.add_extension(template.key_usage, critical=True)
        if template.ekus:
            builder = builder.add_extension(x509.ExtendedKeyUsage(list(template.ekus)), critical=False)
        sans = _requested_sans(req, allow_attribute=self.allow_san_attribute)
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        req.certificate = builder.sign(gen.key, hashes.SHA256())
        req.renewal = len(self._generations) - 1
        req.disposition = Disposition.ISSUED
        req.status = S_OK
        req.disposition_message = "Issued"

    @staticmethod
    def _ca_cert(
        subject: x509.Name,
        key: ec.EllipticCurvePrivateKey,
        signer: ec.EllipticCurvePrivateKey,
        issuer: x509.Certificate | None,
        start: dt.datetime,
        now: dt.datetime,
        *,
        path_length: int,
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer.subject if issuer else subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(now + dt.timedelta(days=3650 if issuer is None else 1825))
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        )
        if issuer is not None:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False
            )
        return builder.sign(signer, hashes.SHA256())

    def issue_tls_certificate(
        self, dns_names: Sequence[str], ip_addresses: Sequence[str] = ()
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """Issue a TLS server certificate from the newest CA certificate (the emulator's IIS certificate)."""
        key = ec.generate_private_key(ec.SECP256R1())
        gen = self._generations[-1]
        now = dt.datetime.now(_UTC).replace(microsecond=0)
        names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
        names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ip_addresses]
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0] if dns_names else "iis")]))
            .issuer_name(gen.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(gen.key.public_key()), critical=False)
            .sign(gen.key, hashes.SHA256())
        )
        return cert, key


def _load_csr(text: str | bytes) -> x509.CertificateSigningRequest | None:
    data = text.encode("ascii", "replace") if isinstance(text, str) else text
    data = data.strip()
    try:
        if b"-----BEGIN" in data:
            body = b"".join(
                line for line in data.replace(b"\r", b"").split(b"\n") if line and not line.startswith(b"-----")
            )
            data = body
        der = base64.b64decode(b"".join(data.split()), validate=True)
        return x509.load_der_x509_csr(der)
    except (ValueError, binascii.Error):
        return None


def _requested_sans(req: CaRequest, *, allow_attribute: bool) -> list[x509.GeneralName]:
    assert req.csr is not None
    names: list[x509.GeneralName] = []
    with contextlib.suppress(x509.ExtensionNotFound):
        names.extend(req.csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    san = next((v for k, v in req.attributes.items() if k.lower() == "san"), None)
    if allow_attribute and san:
        for part in san.split("&"):
            kind, _, value = part.partition("=")
            if kind.lower() == "dns" and value:
                names.append(x509.DNSName(value))
            elif kind.lower() == "url" and value:
                names.append(x509.UniformResourceIdentifier(value))
            elif kind.lower() == "email" and value:
                names.append(x509.RFC822Name(value))
    return names
