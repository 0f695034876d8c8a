"""CSR attributes (/csrattrs): a typed model of CsrAttrs and what it asks of a certificate request.

Wire format (RFC 7030 §4.5.2 with the ASN.1 corrected by RFC 8951 §4)::

    CsrAttrs ::= SEQUENCE SIZE (0..MAX) OF AttrOrOID
    AttrOrOID ::= CHOICE { oid OBJECT IDENTIFIER, attribute Attribute }
    Attribute ::= SEQUENCE { type OBJECT IDENTIFIER, values SET SIZE (1..MAX) OF ANY }

Meaning (RFC 8951 §4, RFC 9908 §3):

* a bare OID asks to include that attribute (challengePassword: proof-of-possession linking) or to use that
  signature/hash algorithm (ecdsa-with-SHA384, sha384);
* ``extensionRequest`` carries one ``Extensions`` value: extensions to put in the request;
* ``ecPublicKey {curve}`` / ``rsaEncryption {size}`` give the key type;
* RFC 9908 §3.4: a ``CertificationRequestInfoTemplate`` (id-aa-certificationRequestInfoTemplate) describes the
  request as a whole (subject, key algorithm, extension templates whose values the client fills in); a
  client that understands it uses only the template and ignores every other element (RFC 9908 §4).

Unknown OIDs and attributes are kept but not acted on (clients MUST ignore them).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier

from estclient import _asn1
from estclient._errors import CsrAttrsError, MalformedMessageError

__all__ = [
    "CsrAttrItem",
    "CsrAttrOid",
    "CsrAttribute",
    "CsrAttrs",
    "CsrRequirements",
    "CsrTemplate",
    "NameTemplateAttribute",
    "RequestedExtension",
    "encode_csrattrs",
    "parse_csrattrs",
]

KeyType = Literal["rsa", "ec", "ed25519", "ed448"]

# Attribute types
OID_CHALLENGE_PASSWORD = ObjectIdentifier("1.2.840.113549.1.9.7")
OID_EXTENSION_REQUEST = ObjectIdentifier("1.2.840.113549.1.9.14")
OID_CRI_TEMPLATE = ObjectIdentifier("1.2.840.113549.1.9.16.2.61")
OID_EXTENSION_REQ_TEMPLATE = ObjectIdentifier("1.2.840.113549.1.9.16.2.62")
OID_MAC_ADDRESS = ObjectIdentifier("1.3.6.1.1.1.1.22")
# Key types
OID_EC_PUBLIC_KEY = ObjectIdentifier("1.2.840.10045.2.1")
OID_RSA_ENCRYPTION = ObjectIdentifier("1.2.840.113549.1.1.1")
OID_ED25519 = ObjectIdentifier("1.3.101.112")
OID_ED448 = ObjectIdentifier("1.3.101.113")

_KEY_TYPES: dict[str, KeyType] = {
    OID_EC_PUBLIC_KEY.dotted_string: "ec",
    OID_RSA_ENCRYPTION.dotted_string: "rsa",
    OID_ED25519.dotted_string: "ed25519",
    OID_ED448.dotted_string: "ed448",
}

#: Curve OID -> cryptography curve name.
CURVES: dict[str, str] = {
    "1.2.840.10045.3.1.7": "secp256r1",
    "1.3.132.0.34": "secp384r1",
    "1.3.132.0.35": "secp521r1",
    "1.3.132.0.10": "secp256k1",
    "1.3.36.3.3.2.8.1.1.7": "brainpoolP256r1",
    "1.3.36.3.3.2.8.1.1.11": "brainpoolP384r1",
    "1.3.36.3.3.2.8.1.1.13": "brainpoolP512r1",
}
_CURVE_OIDS = {name: oid for oid, name in CURVES.items()}

#: Hash OID -> name.
HASHES: dict[str, str] = {
    "1.3.14.3.2.26": "sha1",
    "2.16.840.1.101.3.4.2.4": "sha224",
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
}

#: Signature algorithm OID -> (key type, hash name).
SIGNATURE_ALGORITHMS: dict[str, tuple[KeyType, str | None]] = {
    "1.2.840.10045.4.1": ("ec", "sha1"),
    "1.2.840.10045.4.3.1": ("ec", "sha224"),
    "1.2.840.10045.4.3.2": ("ec", "sha256"),
    "1.2.840.10045.4.3.3": ("ec", "sha384"),
    "1.2.840.10045.4.3.4": ("ec", "sha512"),
    "1.2.840.113549.1.1.5": ("rsa", "sha1"),
    "1.2.840.113549.1.1.14": ("rsa", "sha224"),
    "1.2.840.113549.1.1.11": ("rsa", "sha256"),
    "1.2.840.113549.1.1.12": ("rsa", "sha384"),
    "1.2.840.113549.1.1.13": ("rsa", "sha512"),
    "1.3.101.112": ("ed25519", None),
    "1.3.101.113": ("ed448", None),
}


@dataclass(frozen=True)
class CsrAttrOid:
    """A bare OID in CsrAttrs: include this attribute, or use this algorithm.

    Attributes:
        oid: The object identifier.
    """

    oid: ObjectIdentifier

    @property
    def name(self) -> str:
        """A readable name for the OID (cryptography's, or the dotted string)."""
        return _oid_name(self.oid)


@dataclass(frozen=True)
class RequestedExtension:
    """An extension the server asks for; ``value`` is None when the client must fill it in (RFC 9908 template).

    Attributes:
        oid: The extension's OID.
        critical: Whether to mark it critical.
        value: The DER of the extension's value (the contents of extnValue), or None.
    """

    oid: ObjectIdentifier
    critical: bool = False
    value: bytes | None = None

    @classmethod
    def from_extension(cls, extension: x509.Extension[x509.ExtensionType]) -> RequestedExtension:
        """Make one from a cryptography extension (value included).

        Args:
            extension: A cryptography extension.

        Returns:
            The requested extension carrying that value.
        """
        return cls(extension.oid, extension.critical, extension.value.public_bytes())

    def to_extension_type(self) -> x509.ExtensionType | None:
        """The value as a cryptography extension type (None when the client has to fill it in)."""
        if self.value is None:
            return None
        return x509.UnrecognizedExtension(self.oid, self.value)


@dataclass(frozen=True)
class CsrAttribute:
    """An attribute in CsrAttrs: its type and the DER of each value.

    Attributes:
        oid: The attribute type.
        values: The DER of each value (at least one on the wire).
    """

    oid: ObjectIdentifier
    values: tuple[bytes, ...]

    @property
    def name(self) -> str:
        """A readable name for the attribute type."""
        return _oid_name(self.oid)

    def value_oids(self) -> tuple[ObjectIdentifier, ...]:
        """The values that are OBJECT IDENTIFIERs (e.g. the curve of ecPublicKey)."""
        out = []
        for value in self.values:
            if value[:1] == b"\x06":
                try:
                    out.append(ObjectIdentifier(_asn1.der_to_oid(value)))
                except (_asn1.Asn1Error, ValueError):
                    continue
        return tuple(out)

    def value_ints(self) -> tuple[int, ...]:
        """The values that are INTEGERs (e.g. the RSA modulus size)."""
        out = []
        for value in self.values:
            if value[:1] == b"\x02":
                try:
                    out.append(_asn1.der_to_int(value))
                except _asn1.Asn1Error:
                    continue
        return tuple(out)

    def extensions(self) -> tuple[RequestedExtension, ...]:
        """The extensions carried by an extensionRequest or extensionReqTemplate value (empty otherwise)."""
        out: list[RequestedExtension] = []
        for value in self.values:
            if value[:1] != b"\x30":
                continue
            try:
                parts = _asn1.extensions_decode(value)
            except _asn1.Asn1Error:
                continue
            for p in parts:
                try:
                    out.append(RequestedExtension(ObjectIdentifier(p.oid), p.critical, p.value))
                except ValueError:
                    continue
        return tuple(out)

    @classmethod
    def ec_public_key(cls, curve: str = "secp256r1") -> CsrAttribute:
        """Ask for an EC key on ``curve`` (cryptography curve name, e.g. ``"secp384r1"``).

        Args:
            curve: The curve name.

        Returns:
            The attribute ``ecPublicKey {curve OID}``.

        Raises:
            ValueError: The curve is unknown.
        """
        if curve not in _CURVE_OIDS:
            raise ValueError(f"unknown curve {curve!r}; known: {', '.join(sorted(_CURVE_OIDS))}")
        return cls(OID_EC_PUBLIC_KEY, (_asn1.oid_to_der(_CURVE_OIDS[curve]),))

    @classmethod
    def rsa_key(cls, key_size: int = 2048) -> CsrAttribute:
        """Ask for an RSA key of ``key_size`` bits (RFC 9908 §3.2: ``rsaEncryption {size}``).

        Args:
            key_size: The modulus size in bits.

        Returns:
            The attribute.
        """
        return cls(OID_RSA_ENCRYPTION, (_asn1.int_to_der(key_size),))

    @classmethod
    def extension_request(
        cls, extensions: Iterable[RequestedExtension | x509.Extension[x509.ExtensionType]]
    ) -> CsrAttribute:
        """Ask for extensions (one ``Extensions`` value, RFC 9908 §3.2).

        Args:
            extensions: The extensions, with their values.

        Returns:
            The ``extensionRequest`` attribute.

        Raises:
            ValueError: An extension has no value (use a template for that).
        """
        parts = []
        for ext in extensions:
            req = ext if isinstance(ext, RequestedExtension) else RequestedExtension.from_extension(ext)
            if req.value is None:
                raise ValueError("extensionRequest needs extension values; use CsrTemplate for open values")
            parts.append(_asn1.ExtensionParts(req.oid.dotted_string, req.critical, req.value))
        return cls(OID_EXTENSION_REQUEST, (_asn1.extensions_encode(parts),))


@dataclass(frozen=True)
class NameTemplateAttribute:
    """One attribute of a template subject: its type and the value to use, or None when the client chooses.

    Attributes:
        oid: The attribute type (e.g. commonName 2.5.4.3).
        value: The text value, or None to be filled in.
    """

    oid: ObjectIdentifier
    value: str | None = None


@dataclass(frozen=True)
class CsrTemplate:
    """An RFC 9908 CertificationRequestInfoTemplate: the shape of the request the server wants.

    Attributes:
        subject: RDNs of name attributes (value None: the client fills it in), or None when not specified.
        key_algorithm: The key algorithm OID (e.g. ecPublicKey), or None.
        key_parameters: DER of the algorithm parameters (e.g. the curve OID), or None.
        extensions: Extension templates (value None: the client fills it in).
        attributes: Other attributes the template lists.
    """

    subject: tuple[tuple[NameTemplateAttribute, ...], ...] | None = None
    key_algorithm: ObjectIdentifier | None = None
    key_parameters: bytes | None = None
    extensions: tuple[RequestedExtension, ...] = ()
    attributes: tuple[CsrAttribute, ...] = ()

    def subject_name(self, fill: dict[ObjectIdentifier, str] | None = None) -> x509.Name | None:
        """Build the subject, taking values the template leaves open from ``fill``.

        Args:
            fill: Values for the open attributes, by type.

        Returns:
            The name, or None if the template has no subject.

        Raises:
            ValueError: An open attribute has no value in ``fill``.
        """
        if self.subject is None:
            return None
        fill = fill or {}
        rdns = []
        for rdn in self.subject:
            attrs = []
            for a in rdn:
                value = a.value if a.value is not None else fill.get(a.oid)
                if value is None:
                    raise ValueError(f"the template leaves {_oid_name(a.oid)} open; give a value for it")
                attrs.append(x509.NameAttribute(a.oid, value))
            rdns.append(x509.RelativeDistinguishedName(attrs))
        return x509.Name(rdns)


CsrAttrItem = CsrAttrOid | CsrAttribute | CsrTemplate


@dataclass(frozen=True)
class CsrRequirements:
    """What a CsrAttrs asks of a request, interpreted (see the module docstring).

    Attributes:
        key_type: ``"rsa"``, ``"ec"``, ``"ed25519"``, ``"ed448"`` or None (no preference).
        key_size: RSA modulus size in bits, if asked.
        curve: EC curve name (cryptography's, e.g. ``"secp384r1"``), if asked.
        hash_algorithm: Hash name (``"sha256"``, ``"sha384"`` ...), if asked.
        signature_algorithm: The signature algorithm OID, if one was given.
        challenge_password: Whether the server wants challengePassword (PoP linking, RFC 7030 §3.5).
        extensions: Extensions to include (value None: fill in).
        subject: Template subject, or None.
        other_attributes: Attribute types asked for that this library does not fill in (e.g. macAddress).
        from_template: Whether these come from an RFC 9908 template (other elements ignored).
    """

    key_type: KeyType | None = None
    key_size: int | None = None
    curve: str | None = None
    hash_algorithm: str | None = None
    signature_algorithm: ObjectIdentifier | None = None
    challenge_password: bool = False
    extensions: tuple[RequestedExtension, ...] = ()
    subject: tuple[tuple[NameTemplateAttribute, ...], ...] | None = None
    other_attributes: tuple[ObjectIdentifier, ...] = ()
    from_template: bool = False


@dataclass(frozen=True)
class CsrAttrs:
    """A parsed /csrattrs response (empty: the server asks for nothing; also what 204/404 mean).

    Attributes:
        items: The elements in the server's order.
        ignored: DER of elements that are neither an OID nor an Attribute (ignored, RFC 8951 §4; not re-encoded).
    """

    items: tuple[CsrAttrItem, ...] = field(default=())
    ignored: tuple[bytes, ...] = field(default=(), compare=False)

    @property
    def is_empty(self) -> bool:
        """True when the server asks for nothing."""
        return not self.items

    @property
    def oids(self) -> tuple[ObjectIdentifier, ...]:
        """The bare OIDs."""
        return tuple(i.oid for i in self.items if isinstance(i, CsrAttrOid))

    @property
    def attributes(self) -> tuple[CsrAttribute, ...]:
        """The attributes (the template excluded)."""
        return tuple(i for i in self.items if isinstance(i, CsrAttribute))

    @property
    def template(self) -> CsrTemplate | None:
        """The RFC 9908 template, if the server sent one."""
        return next((i for i in self.items if isinstance(i, CsrTemplate)), None)

    def attribute(self, oid: ObjectIdentifier) -> CsrAttribute | None:
        """The first attribute of type ``oid``, or None.

        Args:
            oid: The attribute type.

        Returns:
            The attribute or None.
        """
        return next((a for a in self.attributes if a.oid == oid), None)

    @property
    def requires_challenge_password(self) -> bool:
        """Whether challengePassword is requested (the server wants PoP linking)."""
        return self.requirements().challenge_password

    def requirements(self) -> CsrRequirements:
        """Interpret the elements (RFC 8951 §4, RFC 9908 §3-§4).

        Returns:
            The summary. With a template, only the template counts.
        """
        template = self.template
        if template is not None:
            return _template_requirements(template)
        acc = _Accumulator()
        for item in self.items:
            if isinstance(item, CsrAttrOid):
                acc.bare_oid(item.oid)
            elif isinstance(item, CsrAttribute):
                acc.attribute(item)
        return acc.result()

    def encode(self) -> bytes:
        """DER encoding (see :func:`encode_csrattrs`)."""
        return encode_csrattrs(self)


class _Accumulator:
    def __init__(self) -> None:
        self.key_type: KeyType | None = None
        self.key_size: int | None = None
        self.curve: str | None = None
        self.hash: str | None = None
        self.sig: ObjectIdentifier | None = None
        self.challenge = False
        self.extensions: list[RequestedExtension] = []
        self.others: list[ObjectIdentifier] = []

    def bare_oid(self, oid: ObjectIdentifier) -> None:
        dotted = oid.dotted_string
        if oid == OID_CHALLENGE_PASSWORD:
            self.challenge = True
        elif dotted in SIGNATURE_ALGORITHMS:
            key_type, hash_name = SIGNATURE_ALGORITHMS[dotted]
            self.sig = oid
            self.key_type = self.key_type or key_type
            self.hash = hash_name or self.hash
        elif dotted in HASHES:
            self.hash = HASHES[dotted]
        elif dotted in _KEY_TYPES:
            self.key_type = _KEY_TYPES[dotted]
        elif dotted in CURVES:
            self.key_type = "ec"
            self.curve = CURVES[dotted]
        elif oid not in self.others:
            self.others.append(oid)

    def attribute(self, attr: CsrAttribute) -> None:
        dotted = attr.oid.dotted_string
        if attr.oid == OID_CHALLENGE_PASSWORD:
            self.challenge = True
        elif attr.oid in (OID_EXTENSION_REQUEST, OID_EXTENSION_REQ_TEMPLATE):
            self.extensions.extend(attr.extensions())
            # Tolerated legacy form (RFC 7030 §4.5.2 example): bare OIDs as extensionRequest values.
            for oid in attr.value_oids():
                self.bare_oid(oid)
        elif dotted in _KEY_TYPES:
            self.key_type = _KEY_TYPES[dotted]
            for oid in attr.value_oids():
                if oid.dotted_string in CURVES:
                    self.curve = CURVES[oid.dotted_string]
            sizes = [n for n in attr.value_ints() if 512 <= n <= 16384]
            if sizes:
                self.key_size = sizes[0]

    def result(
        self, subject: tuple[tuple[NameTemplateAttribute, ...], ...] | None = None, *, from_template: bool = False
    ) -> CsrRequirements:
        return CsrRequirements(
            key_type=self.key_type,
            key_size=self.key_size,
            curve=self.curve,
            hash_algorithm=self.hash,
            signature_algorithm=self.sig,
            challenge_password=self.challenge,
            extensions=tuple(self.extensions),
            subject=subject,
            other_attributes=tuple(self.others),
            from_template=from_template,
        )


def _template_requirements(template: CsrTemplate) -> CsrRequirements:
    acc = _Accumulator()
    if template.key_algorithm is not None:
        params = () if template.key_parameters is None else (template.key_parameters,)
        acc.attribute(CsrAttribute(template.key_algorithm, params))
    acc.extensions.extend(template.extensions)
    for attr in template.attributes:
        acc.attribute(attr)
    return acc.result(template.subject, from_template=True)


# --- parsing and encoding ------------------------------------------------------------------------------------


def parse_csrattrs(
    der: bytes,
    *,
    error: type[MalformedMessageError] = CsrAttrsError,
) -> CsrAttrs:
    """Parse DER CsrAttrs (decode the base64 body first).

    Tolerates what real servers send: an ``extensionRequest`` whose values are bare OIDs (the RFC 7030
    §4.5.2 example), unknown OIDs and attributes (kept, not interpreted).

    Args:
        der: The DER bytes.
        error: The error class to raise.

    Returns:
        The parsed attributes (empty for an empty SEQUENCE).

    Raises:
        CsrAttrsError: (or ``error``) when the bytes are not DER CsrAttrs, or an RFC 9908 template inside does
            not parse.
    """
    try:
        raw, ignored = _asn1.csrattrs_decode(der)
    except _asn1.Asn1Error as exc:
        raise error(f"The CSR attributes are not valid DER CsrAttrs ({exc}).") from None
    items: list[CsrAttrItem] = []
    for entry in raw:
        try:
            if isinstance(entry, str):
                items.append(CsrAttrOid(ObjectIdentifier(entry)))
            elif entry.oid == OID_CRI_TEMPLATE.dotted_string:
                items.append(_template_from_der(entry.values[0]))
            else:
                items.append(CsrAttribute(ObjectIdentifier(entry.oid), entry.values))
        except (_asn1.Asn1Error, ValueError, IndexError) as exc:
            raise error(f"A CSR attribute does not parse ({exc}).") from None
    return CsrAttrs(tuple(items), ignored=tuple(ignored))


def _template_from_der(der: bytes) -> CsrTemplate:
    parts = _asn1.cri_template_decode(der)
    subject = None
    if parts.subject is not None:
        subject = tuple(
            tuple(
                NameTemplateAttribute(ObjectIdentifier(oid), None if value is None else _asn1.der_to_text(value))
                for oid, value in rdn
            )
            for rdn in parts.subject
        )
    key_alg = ObjectIdentifier(parts.key_algorithm[0]) if parts.key_algorithm else None
    key_params = parts.key_algorithm[1] if parts.key_algorithm else None
    if key_params == b"\x05\x00":  # NULL parameters (rsaEncryption) carry nothing
        key_params = None
    extensions: list[RequestedExtension] = []
    attributes: list[CsrAttribute] = []
    for a in parts.attributes:
        attr = CsrAttribute(ObjectIdentifier(a.oid), a.values)
        if attr.oid in (OID_EXTENSION_REQ_TEMPLATE, OID_EXTENSION_REQUEST):
            extensions.extend(attr.extensions())
        else:
            attributes.append(attr)
    return CsrTemplate(subject, key_alg, key_params, tuple(extensions), tuple(attributes))


def _template_to_parts(template: CsrTemplate) -> _asn1.AttributeParts:
    subject = None
    if template.subject is not None:
        subject = tuple(
            tuple(
                (a.oid.dotted_string, None if a.value is None else _asn1.text_to_der(a.value, printable=False))
                for a in rdn
            )
            for rdn in template.subject
        )
    key_alg = None
    if template.key_algorithm is not None:
        key_alg = (template.key_algorithm.dotted_string, template.key_parameters)
    attrs = [_asn1.AttributeParts(a.oid.dotted_string, a.values) for a in template.attributes]
    if template.extensions:
        exts = [_asn1.ExtensionParts(e.oid.dotted_string, e.critical, e.value) for e in template.extensions]
        attrs.append(_asn1.AttributeParts(OID_EXTENSION_REQ_TEMPLATE.dotted_string, (_asn1.extensions_encode(exts),)))
    cri = _asn1.cri_template_encode(_asn1.CriTemplateParts(0, subject, key_alg, None, tuple(attrs)))
    return _asn1.AttributeParts(OID_CRI_TEMPLATE.dotted_string, (cri,))


def encode_csrattrs(attrs: CsrAttrs | Sequence[CsrAttrItem]) -> bytes:
    """Encode CsrAttrs as DER (base64-encode it with ``encode_body`` to send it).

    Args:
        attrs: The attributes (or a sequence of items).

    Returns:
        The DER bytes.

    Raises:
        CsrAttrsError: An attribute has no values, or a value is not DER.
    """
    items = attrs.items if isinstance(attrs, CsrAttrs) else tuple(attrs)
    out: list[str | _asn1.AttributeParts] = []
    for item in items:
        if isinstance(item, CsrAttrOid):
            out.append(item.oid.dotted_string)
        elif isinstance(item, CsrTemplate):
            out.append(_template_to_parts(item))
        else:
            if not item.values:
                raise CsrAttrsError(
                    f"The attribute {item.name} has no values; an Attribute needs at least one.",
                    hint="Give the attribute a value, or send its OID bare.",
                )
            out.append(_asn1.AttributeParts(item.oid.dotted_string, item.values))
    try:
        return _asn1.csrattrs_encode(out)
    except _asn1.Asn1Error as exc:
        raise CsrAttrsError(f"The CSR attributes cannot be encoded ({exc}).", hint="Give DER values.") from None


def _oid_name(oid: ObjectIdentifier) -> str:
    known = {
        OID_CHALLENGE_PASSWORD.dotted_string: "challengePassword",
        OID_EXTENSION_REQUEST.dotted_string: "extensionRequest",
        OID_CRI_TEMPLATE.dotted_string: "certificationRequestInfoTemplate",
        OID_EXTENSION_REQ_TEMPLATE.dotted_string: "extensionReqTemplate",
        OID_MAC_ADDRESS.dotted_string: "macAddress",
        OID_EC_PUBLIC_KEY.dotted_string: "ecPublicKey",
        OID_RSA_ENCRYPTION.dotted_string: "rsaEncryption",
    }
    dotted = oid.dotted_string
    if dotted in known:
        return known[dotted]
    if dotted in CURVES:
        return CURVES[dotted]
    if dotted in HASHES:
        return HASHES[dotted]
    name = oid._name
    return dotted if name == "Unknown OID" else name
