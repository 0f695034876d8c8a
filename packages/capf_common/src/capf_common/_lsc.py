"""The LSC (Locally Significant Certificate) profile and CUCM device names.

What an LSC looks like comes from two sources: Cisco's CUCM documentation (an Online CA LSC without the key
usages digitalSignature and keyEncipherment makes secure registration fail; in AD CS the issued common name is
"the phone's model appended by the device name") and the profile of CUCM's own CAPF-issued LSCs as observed
by a third-party reimplementation (CN = device name, BasicConstraints CA:FALSE, key usage digitalSignature +
keyEncipherment, extended key usages serverAuth, clientAuth and ipsecEndSystem, a SAN URI holding the device
name, SHA-256 signature). The separator between model and device name in the Online CA form is not published;
this module uses ``-`` (``CP-8865-SEP74A02FC0A675``) and accepts any model prefix when checking.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from typing import Any, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes, CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from capf_common._errors import DeviceNameError

__all__ = [
    "DEVICE_NAME_PREFIXES",
    "DeviceName",
    "parse_device_name",
    "is_valid_device_name",
    "lsc_common_name",
    "LSC_EXTENDED_KEY_USAGES",
    "build_lsc",
    "build_lsc_csr",
    "LscDeviation",
    "LscCheck",
    "check_lsc",
]

_Ext = TypeVar("_Ext", bound=x509.ExtensionType)
_EXTENSION_ERRORS = (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType)

#: Device name prefixes CUCM uses, with what they name. ``SEP`` and ``ATA`` are followed by the 12 hex digits
#: of the MAC address; the Cisco Jabber prefixes by up to 12 letters, digits, ``.``, ``_`` or ``-``.
DEVICE_NAME_PREFIXES: dict[str, str] = {
    "SEP": "IP phone (Selsius Ethernet Phone) named after its MAC address",
    "ATA": "analog telephone adapter (ATA 190/191) named after its MAC address",
    "CSF": "Cisco Jabber for Windows or Mac (Client Services Framework)",
    "BOT": "Cisco Jabber for Android",
    "TCT": "Cisco Jabber for iPhone",
    "TAB": "Cisco Jabber for tablets",
}
_MAC_PREFIXES = ("SEP", "ATA")
_MAC_NAME = re.compile(r"^(SEP|ATA)([0-9A-F]{12})$")
_CLIENT_NAME = re.compile(r"^(CSF|BOT|TCT|TAB)([A-Z0-9._-]{1,12})$")
_MODEL_FORM = re.compile(
    r"^(?P<model>.+?)-(?P<device>(?:SEP|ATA)[0-9A-Fa-f]{12}|(?:CSF|BOT|TCT|TAB)[A-Za-z0-9._-]{1,12})$"
)

#: ipsecEndSystem (RFC 2459 §4.2.1.13, deprecated later but still in CUCM's LSCs).
ID_KP_IPSEC_END_SYSTEM = ObjectIdentifier("1.3.6.1.5.5.7.3.5")

#: The extended key usages of a CUCM LSC: serverAuth, clientAuth, ipsecEndSystem.
LSC_EXTENDED_KEY_USAGES: tuple[ObjectIdentifier, ...] = (
    ExtendedKeyUsageOID.SERVER_AUTH,
    ExtendedKeyUsageOID.CLIENT_AUTH,
    ID_KP_IPSEC_END_SYSTEM,
)


@dataclass(frozen=True)
class DeviceName:
    """A validated CUCM device name.

    Attributes:
        name: The canonical (upper-case) name, e.g. ``SEP74A02FC0A675``.
        prefix: The prefix, one of :data:`DEVICE_NAME_PREFIXES`.
        kind: What the prefix names.
        mac: The MAC address (12 hex digits) for ``SEP``/``ATA`` names, else ``None``.
    """

    name: str
    prefix: str
    kind: str
    mac: str | None

    def __str__(self) -> str:
        return self.name


def parse_device_name(name: str) -> DeviceName:
    """Validate a device name and return its parts.

    CUCM compares device names case-insensitively (its SQL uses ``my_lower(name)``); the canonical form is
    upper case.

    Args:
        name: The name, e.g. ``SEP74A02FC0A675`` or ``CSFJSMITH``.

    Returns:
        The parsed name.

    Raises:
        DeviceNameError: The name matches none of the documented forms.
    """
    if not isinstance(name, str):
        raise DeviceNameError(f"a device name is text, not {type(name).__name__}")
    canonical = name.strip().upper()
    match = _MAC_NAME.match(canonical)
    if match:
        prefix = match.group(1)
        return DeviceName(canonical, prefix, DEVICE_NAME_PREFIXES[prefix], match.group(2))
    match = _CLIENT_NAME.match(canonical)
    if match:
        prefix = match.group(1)
        return DeviceName(canonical, prefix, DEVICE_NAME_PREFIXES[prefix], None)
    prefix = canonical[:3]
    if prefix in _MAC_PREFIXES:
        raise DeviceNameError(
            f"invalid device name {name!r}: {prefix} must be followed by the 12 hex digits of the MAC address, "
            f"e.g. {prefix}74A02FC0A675"
        )
    if prefix in DEVICE_NAME_PREFIXES:
        raise DeviceNameError(
            f"invalid device name {name!r}: {prefix} must be followed by 1 to 12 letters, digits, '.', '_' or '-' "
            "(15 characters at most)"
        )
    known = ", ".join(DEVICE_NAME_PREFIXES)
    raise DeviceNameError(
        f"invalid device name {name!r}: it must start with one of {known} (phones: SEP and the MAC address)"
    )


def is_valid_device_name(name: str) -> bool:
    """Tell whether a name is a valid CUCM device name (see :func:`parse_device_name`).

    Args:
        name: The name to test.

    Returns:
        ``True`` when :func:`parse_device_name` accepts it.
    """
    try:
        parse_device_name(name)
    except DeviceNameError:
        return False
    return True


def lsc_common_name(device_name: str, model: str | None = None) -> str:
    """The subject common name of an LSC.

    Args:
        device_name: The device name.
        model: The phone model for the Online CA form, e.g. ``CP-8865``; ``None`` for the CAPF form.

    Returns:
        ``SEP74A02FC0A675`` (CAPF-issued) or ``CP-8865-SEP74A02FC0A675`` (Online CA, model prefix).

    Raises:
        DeviceNameError: The device name is invalid, or the model is empty or holds spaces.
    """
    device = parse_device_name(device_name).name
    if model is None:
        return device
    if not model or any(ch.isspace() for ch in model):
        raise DeviceNameError(f"invalid model {model!r}: use the model identifier without spaces, e.g. CP-8865")
    return f"{model}-{device}"


def _subject(common_name: str, issuer: x509.Name | None) -> x509.Name:
    attributes: list[x509.NameAttribute[Any]] = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if issuer is not None:
        copied = (
            NameOID.ORGANIZATIONAL_UNIT_NAME,
            NameOID.ORGANIZATION_NAME,
            NameOID.LOCALITY_NAME,
            NameOID.STATE_OR_PROVINCE_NAME,
            NameOID.COUNTRY_NAME,
        )
        attributes += [a for a in issuer if a.oid in copied]
    return x509.Name(attributes)


def _key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
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


def build_lsc(
    device_name: str,
    public_key: CertificatePublicKeyTypes,
    issuer_certificate: x509.Certificate,
    issuer_key: CertificateIssuerPrivateKeyTypes,
    *,
    model: str | None = None,
    days: int = 365,
    not_before: datetime.datetime | None = None,
    serial_number: int | None = None,
) -> x509.Certificate:
    """Issue an LSC with the CUCM profile (what CAPF or the Online CA issues to a phone).

    Args:
        device_name: The device name (becomes the CN, or its end with ``model``, and the SAN URI).
        public_key: The phone's public key.
        issuer_certificate: The issuing CA (CAPF) certificate.
        issuer_key: The issuing CA's private key.
        model: The phone model for the Online CA common name form (see :func:`lsc_common_name`).
        days: Validity in days (CUCM allows 1 to 1825).
        not_before: Start of validity (default: now, UTC).
        serial_number: The serial number (default: a random positive number of up to 159 bits).

    Returns:
        The signed certificate (SHA-256).

    Raises:
        DeviceNameError: The device name or model is invalid.
        ValueError: ``days`` is outside 1..1825.
    """
    if not 1 <= days <= 1825:
        raise ValueError(f"days must be between 1 and 1825 (the CUCM range), not {days}")
    device = parse_device_name(device_name).name
    start = not_before or datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_subject(lsc_common_name(device, model), issuer_certificate.subject))
        .issuer_name(issuer_certificate.subject)
        .public_key(public_key)
        .serial_number(serial_number if serial_number is not None else x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(), critical=True)
        .add_extension(x509.ExtendedKeyUsage(list(LSC_EXTENDED_KEY_USAGES)), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(device)]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_certificate.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    )
    return builder.sign(issuer_key, hashes.SHA256())


def build_lsc_csr(
    device_name: str,
    private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    *,
    model: str | None = None,
) -> x509.CertificateSigningRequest:
    """Build the PKCS#10 request a phone hands to CAPF for an Online CA enrollment.

    The request carries the LSC's subject, SAN URI, key usage and extended key usages as requested
    extensions (an AD CS template with "Supply in the request" takes the subject from it).

    Args:
        device_name: The device name.
        private_key: The phone's key (Online CA supports RSA only; EC is accepted for other CAs).
        model: The phone model for the Online CA common name form.

    Returns:
        The CSR signed with SHA-256.

    Raises:
        DeviceNameError: The device name or model is invalid.
    """
    device = parse_device_name(device_name).name
    builder = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(_subject(lsc_common_name(device, model), None))
        .add_extension(_key_usage(), critical=True)
        .add_extension(x509.ExtendedKeyUsage(list(LSC_EXTENDED_KEY_USAGES)), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(device)]), critical=False)
    )
    return builder.sign(private_key, hashes.SHA256())


@dataclass(frozen=True)
class LscDeviation:
    """One way a certificate departs from the LSC profile.

    Attributes:
        code: A stable identifier: ``subject-cn``, ``device-name``, ``extensions``, ``basic-constraints``,
            ``key-usage``, ``extended-key-usage``, ``san-uri``, ``signature-hash``, ``key-size``, ``validity``,
            ``issuer``.
        severity: ``error`` (the phone or CUCM will reject or misuse it) or ``warning`` (differs from CUCM's own
            LSCs but may be accepted, e.g. no extended key usage when the AD CS template removed them).
        message: What is wrong and what to change.
    """

    code: str
    severity: str
    message: str


@dataclass(frozen=True)
class LscCheck:
    """The result of :func:`check_lsc`.

    Attributes:
        device_name: The device name found in (or expected in) the certificate, ``None`` if none.
        model: The model prefix of an Online CA common name, ``None`` for the plain form.
        common_name: The subject common name, ``None`` if the subject has none.
        deviations: Every deviation from the profile, errors first.
    """

    device_name: str | None
    model: str | None
    common_name: str | None
    deviations: tuple[LscDeviation, ...]

    @property
    def ok(self) -> bool:
        """``True`` when no deviation is an error (warnings allowed)."""
        return not any(d.severity == "error" for d in self.deviations)

    @property
    def codes(self) -> tuple[str, ...]:
        """The codes of all deviations, in order."""
        return tuple(d.code for d in self.deviations)


def _split_common_name(cn: str) -> tuple[str | None, str | None]:
    """Return ``(model, device)`` from a CN in either form; ``(None, None)`` when no device name is found."""
    if is_valid_device_name(cn):
        return None, parse_device_name(cn).name
    match = _MODEL_FORM.match(cn)
    if match and is_valid_device_name(match.group("device")):
        return match.group("model"), parse_device_name(match.group("device")).name
    return None, None


def check_lsc(
    cert: x509.Certificate,
    device_name: str | None = None,
    *,
    issuer: x509.Certificate | None = None,
    now: datetime.datetime | None = None,
) -> LscCheck:
    """Check a certificate against the LSC profile and list each deviation.

    Args:
        cert: The certificate (e.g. from :func:`~capf_common.load_certificate`).
        device_name: The device it must belong to; when ``None`` the name is taken from the common name.
        issuer: When given, the certificate's signature is verified with this CA certificate.
        now: The time for the validity check (default: now, UTC).

    Returns:
        The check result; ``result.ok`` is ``False`` when any deviation is an error.

    Raises:
        DeviceNameError: ``device_name`` is given and invalid.
    """
    expected = parse_device_name(device_name).name if device_name is not None else None
    errors: list[LscDeviation] = []
    warnings: list[LscDeviation] = []

    def error(code: str, message: str) -> None:
        errors.append(LscDeviation(code, "error", message))

    def warning(code: str, message: str) -> None:
        warnings.append(LscDeviation(code, "warning", message))

    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    cn = str(cns[0].value) if cns else None
    model, found = _split_common_name(cn) if cn else (None, None)
    if cn is None:
        error("subject-cn", "the subject has no common name; the CN must be the device name (or MODEL-DEVICENAME)")
    elif found is None:
        error(
            "device-name",
            f"the common name {cn!r} holds no valid device name (SEP + 12 hex digits, or another CUCM prefix)",
        )
    elif expected is not None and found != expected:
        error("subject-cn", f"the common name {cn!r} names {found}, not the device {expected}")
    device = expected or found

    try:
        _ = cert.extensions
    except _EXTENSION_ERRORS as exc:
        error("extensions", f"the extensions cannot be parsed ({exc}); reissue the certificate")

    constraints = _extension(cert, x509.BasicConstraints)
    if constraints is not None and constraints.ca:
        error("basic-constraints", "BasicConstraints says CA:TRUE; an LSC is an end-entity certificate (CA:FALSE)")

    usage = _extension(cert, x509.KeyUsage)
    if usage is None:
        error("key-usage", "no KeyUsage extension; an LSC needs digitalSignature and keyEncipherment")
    else:
        missing = [
            label
            for label, present in (
                ("digitalSignature", usage.digital_signature),
                ("keyEncipherment", usage.key_encipherment),
            )
            if not present
        ]
        if missing:
            error(
                "key-usage",
                f"KeyUsage lacks {' and '.join(missing)}; without them secure registration fails "
                "(add them to the CA template)",
            )

    eku = _extension(cert, x509.ExtendedKeyUsage)
    names = {
        ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
        ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
        ID_KP_IPSEC_END_SYSTEM: "ipsecEndSystem",
    }
    if eku is None:
        warning("extended-key-usage", "no ExtendedKeyUsage; CUCM's LSCs carry serverAuth, clientAuth, ipsecEndSystem")
    else:
        absent = [names[oid] for oid in LSC_EXTENDED_KEY_USAGES if oid not in list(eku)]
        if absent:
            warning("extended-key-usage", f"ExtendedKeyUsage lacks {', '.join(absent)}")

    san = _extension(cert, x509.SubjectAlternativeName)
    uris = [u.upper() for u in san.get_values_for_type(x509.UniformResourceIdentifier)] if san is not None else []
    if device is not None and device not in uris:
        warning("san-uri", f"no subjectAltName URI {device}; CUCM's LSCs carry the device name as a SAN URI")

    try:
        algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm as exc:
        error("signature-hash", f"the signature algorithm is not one phones support ({exc}); sign with SHA-256")
    else:
        if algorithm is not None and algorithm.name in ("sha1", "md5"):
            name = algorithm.name.upper()
            warning("signature-hash", f"signed with {name}; CUCM issues SHA-256 LSCs since 11.5(1)SU1")

    try:
        public_key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        error("key-size", f"the public key cannot be read ({exc}); the phone's key must be RSA or EC")
    else:
        if isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size < 2048:
            warning("key-size", f"RSA key of {public_key.key_size} bits; use 2048 bits or more")

    checked_at = now or datetime.datetime.now(datetime.UTC)
    if checked_at.tzinfo is None:
        checked_at = checked_at.replace(tzinfo=datetime.UTC)
    if checked_at < cert.not_valid_before_utc:
        error(
            "validity",
            f"not yet valid: valid from {cert.not_valid_before_utc.isoformat()}, checked at "
            f"{checked_at.isoformat()} (check the clock/NTP of CUCM and the CA)",
        )
    elif checked_at > cert.not_valid_after_utc:
        error("validity", f"expired on {cert.not_valid_after_utc.isoformat()}; schedule an Install/Upgrade")

    if issuer is not None:
        try:
            cert.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm) as exc:
            error(
                "issuer",
                f"not issued by {issuer.subject.rfc4514_string()} ({exc or 'signature does not verify'}); "
                "upload the issuing CA to CAPF-trust",
            )
    return LscCheck(device, model, cn, tuple(errors + warnings))


def _extension(cert: x509.Certificate, kind: type[_Ext]) -> _Ext | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None
    except _EXTENSION_ERRORS:  # malformed extensions: check_lsc reports them once, as "extensions"
        return None
