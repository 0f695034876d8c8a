"""The one place estclient uses asn1crypto (it has no type hints): typed functions over DER bytes.

Everything here takes and returns bytes, str, int and small typed tuples. Any failure to parse raises
:class:`Asn1Error` (a ValueError); the callers turn it into the package's typed errors with context.
Nothing here does cryptography: signatures, encryption and key wrapping happen in the callers with
``cryptography``; this module only lays out the ASN.1 (CMS RFC 5652, CMC RFC 5272, CsrAttrs RFC 8951 / RFC 9908).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from asn1crypto import algos, cms, core
from asn1crypto import csr as a_csr
from asn1crypto import x509 as a_x509

__all__ = [
    "Asn1Error",
    "AttributeParts",
    "CmcStatusParts",
    "CriTemplateParts",
    "EnvelopedParts",
    "ExtensionParts",
    "RecipientParts",
    "SignedDataParts",
    "SignerParts",
]

T = TypeVar("T")

OID_DATA = "1.2.840.113549.1.7.1"
OID_SIGNED_DATA = "1.2.840.113549.1.7.2"
OID_ENVELOPED_DATA = "1.2.840.113549.1.7.3"


class Asn1Error(ValueError):
    """DER that does not parse as the expected structure."""


def _guard(what: str, func: Callable[[], T]) -> T:
    try:
        return func()
    except Asn1Error:
        raise
    except Exception as exc:  # asn1crypto raises many kinds (ValueError, TypeError, KeyError, OverflowError ...)
        raise Asn1Error(f"{what}: {type(exc).__name__}: {_short(exc)}") from None


def _short(exc: BaseException) -> str:
    text = str(exc).replace("\n", " ")
    return text[:200]


def _load(spec: type[Any], der: bytes) -> Any:
    if not der:
        raise Asn1Error("empty input")
    value = spec.load(der, strict=True)
    return value


class _AnySeq(core.SequenceOf):  # type: ignore[misc]
    _child_spec = core.Any


# --- small values --------------------------------------------------------------------------------------------


def der_to_oid(der: bytes) -> str:
    """Decode a DER OBJECT IDENTIFIER to dotted text."""
    return _guard("OBJECT IDENTIFIER", lambda: str(_load(core.ObjectIdentifier, der).dotted))


def oid_to_der(dotted: str) -> bytes:
    """Encode dotted text as a DER OBJECT IDENTIFIER."""
    return _guard("OBJECT IDENTIFIER", lambda: bytes(core.ObjectIdentifier(dotted).dump()))


def der_to_int(der: bytes) -> int:
    """Decode a DER INTEGER."""
    return _guard("INTEGER", lambda: int(_load(core.Integer, der).native))


def int_to_der(value: int) -> bytes:
    """Encode a DER INTEGER."""
    return bytes(core.Integer(value).dump())


def der_to_text(der: bytes) -> str:
    """Decode any ASN.1 string type (UTF8String, PrintableString, IA5String ...) to text."""

    def run() -> str:
        if not der:
            raise Asn1Error("empty input")
        value = core.load(der, strict=True)
        if isinstance(value, core.AbstractString):
            return str(value.native)
        raise Asn1Error(f"not a string type (tag {value.tag})")

    return _guard("string", run)


def text_to_der(text: str, *, printable: bool = True) -> bytes:
    """Encode text as PrintableString when it fits (and ``printable``), else UTF8String."""
    allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?")
    if printable and all(ch in allowed for ch in text):
        return bytes(core.PrintableString(text).dump())
    return bytes(core.UTF8String(text).dump())


def der_to_octets(der: bytes) -> bytes:
    """Decode a DER OCTET STRING."""
    return _guard("OCTET STRING", lambda: bytes(_load(core.OctetString, der).native))


def octets_to_der(value: bytes) -> bytes:
    """Encode a DER OCTET STRING."""
    return bytes(core.OctetString(value).dump())


def der_tag(der: bytes) -> tuple[int, int, bool]:
    """Return (class, tag number, constructed) of the DER element ``der``."""

    def run() -> tuple[int, int, bool]:
        value = _peek(der)
        return int(value.class_), int(value.tag), bool(value.method)

    return _guard("DER element", run)


@dataclass(frozen=True)
class _Head:
    class_: int
    method: int
    tag: int
    contents: bytes


def _peek(der: bytes) -> _Head:
    """Read the header of one DER element that must span all of ``der`` (definite lengths only)."""
    head, end = _read_tlv(der, 0)
    if end != len(der):
        raise Asn1Error("trailing data after a DER element")
    return head


def _read_tlv(der: bytes, offset: int) -> tuple[_Head, int]:
    if offset + 2 > len(der):
        raise Asn1Error("truncated DER header")
    first = der[offset]
    tag = first & 0x1F
    pos = offset + 1
    if tag == 0x1F:
        tag = 0
        while True:
            if pos >= len(der) or pos - offset > 6:
                raise Asn1Error("bad DER tag")
            byte = der[pos]
            pos += 1
            tag = (tag << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
    if pos >= len(der):
        raise Asn1Error("truncated DER length")
    length = der[pos]
    pos += 1
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or pos + count > len(der):
            raise Asn1Error("unsupported or truncated DER length")
        length = int.from_bytes(der[pos : pos + count], "big")
        pos += count
    end = pos + length
    if end > len(der):
        raise Asn1Error("DER length exceeds the data")
    return _Head(first >> 6, (first >> 5) & 1, tag, der[pos:end]), end


def _children(contents: bytes) -> list[bytes]:
    """Split the contents of a constructed element into the DER of each child."""
    out = []
    offset = 0
    while offset < len(contents):
        _, end = _read_tlv(contents, offset)
        out.append(contents[offset:end])
        offset = end
    return out


def algorithm_identifier(der: bytes) -> tuple[str, bytes | None]:
    """Split an AlgorithmIdentifier into (algorithm OID, parameters DER or None)."""

    def run() -> tuple[str, bytes | None]:
        seq = _load(_AnySeq, der)
        items = [seq[i] for i in range(len(seq))] if len(seq) else []
        if not items:
            raise Asn1Error("empty AlgorithmIdentifier")
        oid = der_to_oid(items[0].dump())
        params = items[1].dump() if len(items) > 1 else None
        return oid, params

    return _guard("AlgorithmIdentifier", run)


# --- CsrAttrs (RFC 7030 §4.5.2 as corrected by RFC 8951 §4) -----------------------------------------------------


class _AnySet(core.SetOf):  # type: ignore[misc]
    _child_spec = core.Any


class _Attribute(core.Sequence):  # type: ignore[misc]
    _fields = [("type", core.ObjectIdentifier), ("values", _AnySet)]  # noqa: RUF012


class _AttrOrOid(core.Choice):  # type: ignore[misc]
    _alternatives = [("oid", core.ObjectIdentifier), ("attribute", _Attribute)]  # noqa: RUF012


class _CsrAttrs(core.SequenceOf):  # type: ignore[misc]
    _child_spec = _AttrOrOid


@dataclass(frozen=True)
class AttributeParts:
    """An Attribute: its type OID and the DER of each value."""

    oid: str
    values: tuple[bytes, ...]


def csrattrs_decode(der: bytes) -> tuple[list[str | AttributeParts], list[bytes]]:
    """Decode CsrAttrs into bare OIDs (dotted text) and attributes, plus elements that are neither (ignored).

    RFC 8951 §4 asks clients to ignore what they do not understand; libest's own tests send CsrAttrs with
    elements of other types (e.g. a BOOLEAN), so those are returned apart instead of failing the whole body.
    """

    def run() -> tuple[list[str | AttributeParts], list[bytes]]:
        outer = _peek(der)
        if outer.class_ != 0 or outer.tag != 16 or not outer.method:
            raise Asn1Error("CsrAttrs is not a SEQUENCE")
        out: list[str | AttributeParts] = []
        ignored: list[bytes] = []
        for child in _children(outer.contents):
            head = _peek(child)
            if head.class_ == 0 and head.tag == 6:
                out.append(der_to_oid(child))
            elif head.class_ == 0 and head.tag == 16:
                attr = _load(_Attribute, child)
                values = tuple(sorted(bytes(v.dump()) for v in attr["values"]))  # a SET: DER order
                if not values:
                    raise Asn1Error("an Attribute has no values")
                for v in values:  # every value must be one complete DER element
                    _peek(v)
                out.append(AttributeParts(str(attr["type"].dotted), values))
            else:
                ignored.append(child)
        return out, ignored

    return _guard("CsrAttrs", run)


def csrattrs_encode(items: Sequence[str | AttributeParts]) -> bytes:
    """Encode bare OIDs and attributes as DER CsrAttrs (each value must be one DER element)."""

    def run() -> bytes:
        return _tlv(0x30, b"".join(oid_to_der(i) if isinstance(i, str) else attribute_encode(i) for i in items))

    return _guard("CsrAttrs", run)


def attribute_encode(attr: AttributeParts) -> bytes:
    """Encode an Attribute: SEQUENCE { type, SET OF values } (values sorted as DER requires)."""
    for value in attr.values:
        _peek(value)
    return _tlv(0x30, oid_to_der(attr.oid) + _tlv(0x31, b"".join(sorted(attr.values))))


# --- Extensions and RFC 9908 templates --------------------------------------------------------------------------


@dataclass(frozen=True)
class ExtensionParts:
    """An Extension or ExtensionTemplate: OID, critical flag, DER extnValue contents (None: to be filled in)."""

    oid: str
    critical: bool
    value: bytes | None


class _ExtensionTemplate(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012
        ("extn_id", core.ObjectIdentifier),
        ("critical", core.Boolean, {"default": False}),
        ("extn_value", core.OctetString, {"optional": True}),
    ]


class _ExtensionTemplates(core.SequenceOf):  # type: ignore[misc]
    _child_spec = _ExtensionTemplate


def extensions_decode(der: bytes) -> list[ExtensionParts]:
    """Decode ``Extensions`` or ``ExtensionTemplates`` (a SEQUENCE OF; extnValue optional in templates)."""

    def run() -> list[ExtensionParts]:
        seq = _load(_ExtensionTemplates, der)
        out = []
        for ext in seq:
            raw = ext["extn_value"]
            value = None if isinstance(raw, core.Void) else bytes(raw.native)
            out.append(ExtensionParts(str(ext["extn_id"].dotted), bool(ext["critical"].native), value))
        return out

    return _guard("Extensions", run)


def extensions_encode(exts: Sequence[ExtensionParts]) -> bytes:
    """Encode extensions (a template when some value is None)."""

    def run() -> bytes:
        items = []
        for ext in exts:
            fields: dict[str, Any] = {"extn_id": ext.oid, "critical": ext.critical}
            if ext.value is not None:
                fields["extn_value"] = ext.value
            items.append(_ExtensionTemplate(fields))
        return bytes(_ExtensionTemplates(items).dump(force=True))

    return _guard("Extensions", run)


class _SingleAttributeTemplate(core.Sequence):  # type: ignore[misc]
    _fields = [("type", core.ObjectIdentifier), ("value", core.Any, {"optional": True})]  # noqa: RUF012


class _RdnTemplate(core.SetOf):  # type: ignore[misc]
    _child_spec = _SingleAttributeTemplate


class _RdnSequenceTemplate(core.SequenceOf):  # type: ignore[misc]
    _child_spec = _RdnTemplate


class _SpkiTemplate(core.Sequence):  # type: ignore[misc]
    _fields = [("algorithm", core.Any), ("public_key", core.BitString, {"optional": True})]  # noqa: RUF012


class _Attributes(core.SetOf):  # type: ignore[misc]
    _child_spec = _Attribute


class _CriTemplate(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012
        ("version", core.Integer),
        ("subject", _RdnSequenceTemplate, {"optional": True}),
        ("subject_pk_info", _SpkiTemplate, {"implicit": 0, "optional": True}),
        ("attributes", _Attributes, {"implicit": 1}),
    ]


@dataclass(frozen=True)
class CriTemplateParts:
    """A CertificationRequestInfoTemplate (RFC 9908 §3.4) taken apart.

    ``subject`` is None when absent, else RDNs of (type OID, value DER or None). ``key_algorithm`` is the
    SubjectPublicKeyInfoTemplate's AlgorithmIdentifier split in (OID, parameters DER or None).
    """

    version: int
    subject: tuple[tuple[tuple[str, bytes | None], ...], ...] | None
    key_algorithm: tuple[str, bytes | None] | None
    public_key: bytes | None
    attributes: tuple[AttributeParts, ...]


def cri_template_decode(der: bytes) -> CriTemplateParts:
    """Decode a CertificationRequestInfoTemplate."""

    def run() -> CriTemplateParts:
        tpl = _load(_CriTemplate, der)
        subject = None
        if not isinstance(tpl["subject"], core.Void):
            rdns = []
            for rdn in tpl["subject"]:
                atvs = []
                for atv in rdn:
                    raw = atv["value"]
                    atvs.append((str(atv["type"].dotted), None if isinstance(raw, core.Void) else bytes(raw.dump())))
                rdns.append(tuple(atvs))
            subject = tuple(rdns)
        key_alg = None
        public_key = None
        spki = tpl["subject_pk_info"]
        if not isinstance(spki, core.Void):
            key_alg = algorithm_identifier(bytes(spki["algorithm"].dump()))
            if not isinstance(spki["public_key"], core.Void):
                public_key = bytes(spki["public_key"].contents)[1:]
        attrs = tuple(
            AttributeParts(str(a["type"].dotted), tuple(sorted(bytes(v.dump()) for v in a["values"])))
            for a in tpl["attributes"]
        )
        return CriTemplateParts(int(tpl["version"].native), subject, key_alg, public_key, attrs)

    return _guard("CertificationRequestInfoTemplate", run)


def cri_template_encode(parts: CriTemplateParts) -> bytes:
    """Encode a CertificationRequestInfoTemplate."""

    def run() -> bytes:
        fields: dict[str, Any] = {"version": parts.version}
        if parts.subject is not None:
            rdns = []
            for rdn in parts.subject:
                atvs = []
                for oid, value in rdn:
                    atv: dict[str, Any] = {"type": oid}
                    if value is not None:
                        atv["value"] = core.Any.load(value)
                    atvs.append(_SingleAttributeTemplate(atv))
                rdns.append(_RdnTemplate(atvs))
            fields["subject"] = _RdnSequenceTemplate(rdns)
        if parts.key_algorithm is not None:
            oid, params = parts.key_algorithm
            alg = core.Sequence.load(_algorithm_der(oid, params))
            spki: dict[str, Any] = {"algorithm": core.Any.load(alg.dump())}
            if parts.public_key is not None:
                spki["public_key"] = core.BitString.load(_tlv(0x03, b"\x00" + parts.public_key))
            fields["subject_pk_info"] = _SpkiTemplate(spki)
        fields["attributes"] = _Attributes(
            [_Attribute({"type": a.oid, "values": [core.Any.load(v) for v in a.values]}) for a in parts.attributes]
        )
        return bytes(_CriTemplate(fields).dump(force=True))

    return _guard("CertificationRequestInfoTemplate", run)


def _algorithm_der(oid: str, params: bytes | None) -> bytes:
    body = oid_to_der(oid) + (params or b"")
    return _tlv(0x30, body)


def _tlv(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + body


# --- PKCS#10 attributes (re-assembly after cryptography built the request) -------------------------------------


def csr_split(der: bytes) -> tuple[bytes, bytes, bytes]:
    """Split a CertificationRequest into (CertificationRequestInfo DER, signatureAlgorithm DER, signature)."""

    def run() -> tuple[bytes, bytes, bytes]:
        req = _load(a_csr.CertificationRequest, der)
        info = bytes(req["certification_request_info"].dump())
        alg = bytes(req["signature_algorithm"].dump())
        return info, alg, bytes(req["signature"].native)

    return _guard("CertificationRequest", run)


def csr_info_add_attributes(info_der: bytes, attributes: Sequence[AttributeParts]) -> bytes:
    """Return the CertificationRequestInfo with ``attributes`` appended to its attributes."""

    def run() -> bytes:
        info = _load(a_csr.CertificationRequestInfo, info_der)
        existing = [bytes(a.dump()) for a in info["attributes"]]
        extra = [attribute_encode(a) for a in attributes]
        body = (
            info["version"].dump()
            + info["subject"].dump()
            + info["subject_pk_info"].dump()
            + _tlv(0xA0, b"".join(sorted(existing + extra)))
        )
        return _tlv(0x30, body)

    return _guard("CertificationRequestInfo", run)


def csr_assemble(info_der: bytes, algorithm_der: bytes, signature: bytes) -> bytes:
    """Assemble a CertificationRequest from its signed info, algorithm and signature."""
    return _tlv(0x30, info_der + algorithm_der + _tlv(0x03, b"\x00" + signature))


def csr_attributes(der: bytes) -> list[AttributeParts]:
    """List the attributes of a CertificationRequest (type and value DERs)."""

    def run() -> list[AttributeParts]:
        req = _load(a_csr.CertificationRequest, der)
        out = []
        for attr in req["certification_request_info"]["attributes"]:
            raw = _load(_Attribute, bytes(attr.dump()))
            out.append(AttributeParts(str(raw["type"].dotted), tuple(bytes(v.dump()) for v in raw["values"])))
        return out

    return _guard("CertificationRequest", run)


# --- CMS SignedData (certs-only, signed content) ----------------------------------------------------------------


@dataclass(frozen=True)
class SignerParts:
    """One SignerInfo, enough to verify it with cryptography."""

    issuer_der: bytes | None
    serial: int | None
    ski: bytes | None
    digest_algorithm: str
    signature_algorithm: str
    signed_attrs_der: bytes | None  # DER with the SET tag (what is signed)
    signature: bytes
    message_digest: bytes | None
    content_type_attr: str | None


@dataclass(frozen=True)
class SignedDataParts:
    """A SignedData taken apart."""

    content_type: str
    content: bytes | None
    certificates: tuple[bytes, ...]
    crls: tuple[bytes, ...]
    signers: tuple[SignerParts, ...]


def content_info_decode(der: bytes) -> tuple[str, bytes]:
    """Split a ContentInfo into (content type OID, content DER).

    BER with indefinite lengths (as some Java CMS stacks send certs-only messages) is first re-encoded as DER.
    """

    def run() -> tuple[str, bytes]:
        try:
            outer = _peek(der)
        except Asn1Error:
            outer = _peek(_to_der(der))
        if outer.class_ != 0 or outer.tag != 16:
            raise Asn1Error("ContentInfo is not a SEQUENCE")
        items = _children(outer.contents)
        if len(items) != 2:
            raise Asn1Error("ContentInfo needs a content type and a content")
        ctype = der_to_oid(items[0])
        explicit = _peek(items[1])
        if explicit.class_ != 2 or explicit.tag != 0 or not explicit.method:
            raise Asn1Error("ContentInfo content is not [0] EXPLICIT")
        return ctype, explicit.contents

    return _guard("ContentInfo", run)


def _to_der(data: bytes) -> bytes:
    """Re-encode a BER ContentInfo (e.g. with indefinite lengths) as DER."""
    return bytes(cms.ContentInfo.load(data, strict=True).dump(force=True))


def content_info_encode(content_type: str, content_der: bytes) -> bytes:
    """Wrap content DER in a ContentInfo."""
    return _tlv(0x30, oid_to_der(content_type) + _tlv(0xA0, content_der))


def signed_data_decode(der: bytes) -> SignedDataParts:
    """Decode a ContentInfo(SignedData) (a PKCS#7/CMS message)."""
    return _certs_only_fast(der) or _signed_data_full(der)


# The DER of the OIDs the fast path compares against (encoding fixed by X.690).
_DER_OID_SIGNED_DATA = bytes.fromhex("06092a864886f70d010702")
_DER_OID_DATA = bytes.fromhex("06092a864886f70d010701")
_EMPTY_SET = b"\x31\x00"


def _certs_only_fast(der: bytes) -> SignedDataParts | None:
    """Take a plain-DER certs-only message apart with the TLV reader alone, or return None.

    Every enrollment answer is a certs-only message (RFC 5272 §3.1: SignedData, id-data, no content, no
    signers); splitting it here costs a fraction of asn1crypto's object model. Anything else (signers, content,
    BER lengths, other certificate or CRL choices, unexpected tags) returns None and goes to
    :func:`_signed_data_full`, which gives the same parts for what this accepts and the detailed error for what
    neither accepts.
    """
    try:
        # Tags are compared as bytes, never as decoded numbers: the TLV reader also takes the high-tag-number
        # form (0x3f 0x10 for SEQUENCE), which asn1crypto refuses inside the SignedData ("Non-minimal tag
        # encoding"). Such input goes to the full decoder.
        if der[:1] != b"\x30":
            return None
        info = _children(_peek(der).contents)
        if len(info) != 2 or info[0] != _DER_OID_SIGNED_DATA or info[1][:1] != b"\xa0":
            return None
        signed_der = _peek(info[1]).contents
        if signed_der[:1] != b"\x30":
            return None
        items = _children(_peek(signed_der).contents)
    except Asn1Error:
        return None
    if len(items) < 4 or items[-1] != _EMPTY_SET:
        return None
    version, digests, encap, *sets = items[:-1]
    if version[:1] != b"\x02" or digests[:1] != b"\x31" or encap != b"\x30\x0b" + _DER_OID_DATA:
        return None
    tags = [s[:1] for s in sets]
    if tags not in ([], [b"\xa0"], [b"\xa1"], [b"\xa0", b"\xa1"]):
        return None
    found: dict[bytes, tuple[bytes, ...]] = {}
    try:
        for tag, element in zip(tags, sets, strict=True):
            members = tuple(_children(_peek(element).contents))
            if any(m[:1] != b"\x30" for m in members):  # only the plain Certificate / CertificateList choices
                return None
            found[tag] = members
    except Asn1Error:
        return None
    return SignedDataParts(OID_DATA, None, found.get(b"\xa0", ()), found.get(b"\xa1", ()), ())


def _signed_data_full(der: bytes) -> SignedDataParts:
    """Decode any ContentInfo(SignedData) through asn1crypto (signers, content, BER)."""

    def run() -> SignedDataParts:
        ctype, body = content_info_decode(der)
        if ctype != OID_SIGNED_DATA:
            raise Asn1Error(f"content type {ctype} is not signedData")
        sd = _load(cms.SignedData, body)
        encap = sd["encap_content_info"]
        inner_type = str(encap["content_type"].dotted)
        raw = encap["content"]
        content = None if isinstance(raw, core.Void) else bytes(raw.contents)
        if content is not None and raw.method == 1:  # constructed (BER) OCTET STRING: join the pieces
            content = bytes(raw.native)
        certs: list[bytes] = []
        if not isinstance(sd["certificates"], core.Void):
            for choice in sd["certificates"]:
                if choice.name == "certificate":
                    certs.append(bytes(choice.chosen.dump()))
        crls: list[bytes] = []
        if not isinstance(sd["crls"], core.Void):
            for choice in sd["crls"]:
                if choice.name == "crl":
                    crls.append(bytes(choice.chosen.dump()))
        signers = tuple(_signer_parts(si) for si in sd["signer_infos"])
        return SignedDataParts(inner_type, content, tuple(certs), tuple(crls), signers)

    return _guard("SignedData", run)


def _signer_parts(si: Any) -> SignerParts:
    sid = si["sid"]
    issuer_der = serial = ski = None
    if sid.name == "issuer_and_serial_number":
        issuer_der = bytes(sid.chosen["issuer"].dump())
        serial = int(sid.chosen["serial_number"].native)
    else:
        ski = bytes(sid.chosen.native)
    signed_attrs_der = None
    message_digest = None
    content_type_attr = None
    attrs = si["signed_attrs"]
    if not isinstance(attrs, core.Void):
        # What is signed is the SET OF with the universal SET tag, not the [0] IMPLICIT tag.
        signed_attrs_der = _tlv(0x31, bytes(attrs.contents))
        for attr in attrs:
            atype = str(attr["type"].dotted)
            if atype == "1.2.840.113549.1.9.4":
                message_digest = bytes(attr["values"][0].native)
            elif atype == "1.2.840.113549.1.9.3":
                content_type_attr = str(attr["values"][0].dotted)
    return SignerParts(
        issuer_der=issuer_der,
        serial=serial,
        ski=ski,
        digest_algorithm=str(si["digest_algorithm"]["algorithm"].dotted),
        signature_algorithm=str(si["signature_algorithm"]["algorithm"].dotted),
        signed_attrs_der=signed_attrs_der,
        signature=bytes(si["signature"].native),
        message_digest=message_digest,
        content_type_attr=content_type_attr,
    )


def signed_attrs_encode(content_type: str, message_digest: bytes) -> bytes:
    """Encode signed attributes (contentType, messageDigest) as the DER SET OF that gets signed."""
    attrs = cms.CMSAttributes(
        [
            cms.CMSAttribute({"type": "content_type", "values": [content_type]}),
            cms.CMSAttribute({"type": "message_digest", "values": [message_digest]}),
        ]
    )
    return bytes(attrs.dump(force=True))


@dataclass(frozen=True)
class SignerInput:
    """What :func:`signed_data_encode` needs to add one SignerInfo (signature made by the caller)."""

    issuer_der: bytes
    serial: int
    digest_algorithm: str  # dotted OID, e.g. 2.16.840.1.101.3.4.2.1 (sha256)
    signature_algorithm: str  # dotted OID, e.g. 1.2.840.10045.4.3.2 (ecdsa-with-SHA256)
    signed_attrs_der: bytes  # from signed_attrs_encode
    signature: bytes


def signed_data_encode(
    content_type: str,
    content: bytes | None,
    *,
    certificates: Sequence[bytes] = (),
    crls: Sequence[bytes] = (),
    signer: SignerInput | None = None,
) -> bytes:
    """Encode a ContentInfo(SignedData); with no signer it is degenerate (certs-only style).

    Certificates and CRLs are copied as they are (not parsed), so any certificate cryptography produced can be
    carried, whatever its key type. DER orders the SET OF elements.
    """

    def run() -> bytes:
        version = 3 if content_type != OID_DATA else 1
        encap = oid_to_der(content_type)
        if content is not None:
            encap += _tlv(0xA0, octets_to_der(content))
        digest_algorithms = b""
        signer_infos = b""
        if signer is not None:
            digest_alg = {"algorithm": signer.digest_algorithm}
            digest_algorithms = bytes(algos.DigestAlgorithm(digest_alg).dump())
            info = cms.SignerInfo(
                {
                    "version": "v1",
                    "sid": cms.SignerIdentifier(
                        name="issuer_and_serial_number",
                        value=cms.IssuerAndSerialNumber(
                            {"issuer": a_x509.Name.load(signer.issuer_der), "serial_number": signer.serial}
                        ),
                    ),
                    "digest_algorithm": algos.DigestAlgorithm(digest_alg),
                    "signed_attrs": cms.CMSAttributes.load(signer.signed_attrs_der),
                    "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": signer.signature_algorithm}),
                    "signature": signer.signature,
                }
            )
            signer_infos = bytes(info.dump(force=True))
        for der in (*certificates, *crls):
            _peek(der)  # each must be one complete DER element
        body = int_to_der(version) + _tlv(0x31, digest_algorithms) + _tlv(0x30, encap)
        if certificates:
            body += _tlv(0xA0, b"".join(sorted(certificates)))
        if crls:
            body += _tlv(0xA1, b"".join(sorted(crls)))
        body += _tlv(0x31, signer_infos)
        return content_info_encode(OID_SIGNED_DATA, _tlv(0x30, body))

    return _guard("SignedData", run)


# --- CMS EnvelopedData -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecipientParts:
    """One RecipientInfo: ``kind`` is ``"ktri"``, ``"kekri"``, ``"kari"`` or ``"other"``."""

    kind: str
    issuer_der: bytes | None = None
    serial: int | None = None
    ski: bytes | None = None
    kek_id: bytes | None = None
    key_encryption_algorithm: str = ""
    key_encryption_parameters: bytes | None = None
    encrypted_key: bytes = b""
    originator_point: bytes | None = None  # kari: the originator's ephemeral EC public key (encoded point)
    ukm: bytes | None = None  # kari: user keying material


@dataclass(frozen=True)
class EnvelopedParts:
    """An EnvelopedData taken apart."""

    recipients: tuple[RecipientParts, ...]
    content_type: str
    content_encryption_algorithm: str
    iv: bytes | None
    encrypted_content: bytes


def enveloped_data_decode(der: bytes) -> EnvelopedParts:
    """Decode a ContentInfo(EnvelopedData)."""

    def run() -> EnvelopedParts:
        ctype, body = content_info_decode(der)
        if ctype != OID_ENVELOPED_DATA:
            raise Asn1Error(f"content type {ctype} is not envelopedData")
        ed = _load(cms.EnvelopedData, body)
        recipients = []
        for ri in ed["recipient_infos"]:
            chosen = ri.chosen
            if ri.name == "ktri":
                rid = chosen["rid"]
                alg = chosen["key_encryption_algorithm"]
                params = alg["parameters"]
                is_ias = rid.name == "issuer_and_serial_number"
                recipients.append(
                    RecipientParts(
                        "ktri",
                        issuer_der=bytes(rid.chosen["issuer"].dump()) if is_ias else None,
                        serial=int(rid.chosen["serial_number"].native) if is_ias else None,
                        ski=None if is_ias else bytes(rid.chosen.native),
                        key_encryption_algorithm=str(alg["algorithm"].dotted),
                        key_encryption_parameters=None if isinstance(params, core.Void) else bytes(params.dump()),
                        encrypted_key=bytes(chosen["encrypted_key"].native),
                    )
                )
            elif ri.name == "kekri":
                recipients.append(
                    RecipientParts(
                        "kekri",
                        kek_id=bytes(chosen["kekid"]["key_identifier"].native),
                        key_encryption_algorithm=str(chosen["key_encryption_algorithm"]["algorithm"].dotted),
                        encrypted_key=bytes(chosen["encrypted_key"].native),
                    )
                )
            elif ri.name == "kari":
                recipients.extend(_kari_decode(bytes(chosen.dump(force=False))))
            else:
                recipients.append(RecipientParts(str(ri.name)))
        eci = ed["encrypted_content_info"]
        alg = eci["content_encryption_algorithm"]
        params = alg["parameters"]
        iv = bytes(params.native) if isinstance(params, core.OctetString) else None
        if iv is None and not isinstance(params, core.Void):
            iv = _iv_from_any(bytes(params.dump()))
        content = eci["encrypted_content"]
        if isinstance(content, core.Void):
            raise Asn1Error("EnvelopedData without encrypted content")
        return EnvelopedParts(
            recipients=tuple(recipients),
            content_type=str(eci["content_type"].dotted),
            content_encryption_algorithm=str(alg["algorithm"].dotted),
            iv=iv,
            encrypted_content=bytes(content.native),
        )

    return _guard("EnvelopedData", run)


def _kari_decode(der: bytes) -> list[RecipientParts]:
    """Take a KeyAgreeRecipientInfo apart (one RecipientParts per RecipientEncryptedKey)."""
    head = _peek(der)
    items = _children(head.contents)
    if len(items) < 4:
        raise Asn1Error("KeyAgreeRecipientInfo is too short")
    originator = _peek(items[1])
    point = None
    inner = _children(originator.contents)
    if inner:
        key = _peek(inner[0])
        if key.class_ == 2 and key.tag == 1:  # originatorKey [1] OriginatorPublicKey
            parts = _children(key.contents)
            if len(parts) == 2:
                bits = _peek(parts[1])
                if bits.tag != 3 or not bits.contents:
                    raise Asn1Error("originator public key is not a BIT STRING")
                point = bits.contents[1:]
    rest = items[2:]
    ukm = None
    if rest and _peek(rest[0]).class_ == 2:
        ukm = der_to_octets(_children(_peek(rest[0]).contents)[0])
        rest = rest[1:]
    if len(rest) != 2:
        raise Asn1Error("KeyAgreeRecipientInfo has the wrong number of fields")
    kea_oid, kea_params = algorithm_identifier(rest[0])
    out = []
    for rek in _children(_peek(rest[1]).contents):
        fields = _children(_peek(rek).contents)
        if len(fields) != 2:
            raise Asn1Error("RecipientEncryptedKey needs rid and encryptedKey")
        rid = _peek(fields[0])
        issuer_der = serial = ski = None
        if rid.class_ == 0 and rid.tag == 16:
            name, number = _children(rid.contents)
            issuer_der, serial = name, der_to_int(number)
        elif rid.class_ == 2 and rid.tag == 0:
            ski = der_to_octets(_children(rid.contents)[0])
        out.append(
            RecipientParts(
                "kari",
                issuer_der=issuer_der,
                serial=serial,
                ski=ski,
                key_encryption_algorithm=kea_oid,
                key_encryption_parameters=kea_params,
                encrypted_key=der_to_octets(fields[1]),
                originator_point=point,
                ukm=ukm,
            )
        )
    return out


def kari_encode(
    *,
    originator_point: bytes,
    key_encryption_algorithm: str,
    wrap_algorithm: str,
    issuer_der: bytes,
    serial: int,
    encrypted_key: bytes,
) -> bytes:
    """Encode a RecipientInfo kari (RFC 5652 §6.2.2) with an ephemeral EC originator key (RFC 5753 §3.1.1)."""
    originator_key = _tlv(0xA1, _algorithm_der("1.2.840.10045.2.1", None) + _tlv(0x03, b"\x00" + originator_point))
    kea = _algorithm_der(key_encryption_algorithm, _algorithm_der(wrap_algorithm, None))
    rid = _tlv(0x30, issuer_der + int_to_der(serial))
    rek = _tlv(0x30, rid + octets_to_der(encrypted_key))
    body = int_to_der(3) + _tlv(0xA0, originator_key) + kea + _tlv(0x30, rek)
    return _tlv(0xA1, body)


def ecc_cms_shared_info(wrap_algorithm: str, ukm: bytes | None, key_bits: int) -> bytes:
    """ECC-CMS-SharedInfo (RFC 5753 §7.2), the KDF input naming the wrap algorithm and the key length."""
    body = _algorithm_der(wrap_algorithm, None)
    if ukm is not None:
        body += _tlv(0xA0, octets_to_der(ukm))
    body += _tlv(0xA2, octets_to_der(key_bits.to_bytes(4, "big")))
    return _tlv(0x30, body)


def _iv_from_any(der: bytes) -> bytes | None:
    try:
        return der_to_octets(der)
    except Asn1Error:
        return None


@dataclass(frozen=True)
class RecipientInput:
    """What :func:`enveloped_data_encode` needs for one recipient (key already encrypted by the caller)."""

    kind: str  # "ktri", "kekri" or "kari"
    encrypted_key: bytes
    key_encryption_algorithm: str  # dotted OID
    issuer_der: bytes | None = None
    serial: int | None = None
    ski: bytes | None = None
    kek_id: bytes | None = None
    oaep_sha256: bool = False
    originator_point: bytes | None = None  # kari
    wrap_algorithm: str | None = None  # kari: the key-wrap algorithm inside the key agreement


def enveloped_data_encode(
    recipients: Sequence[RecipientInput],
    *,
    content_type: str,
    content_encryption_algorithm: str,
    iv: bytes,
    encrypted_content: bytes,
) -> bytes:
    """Encode a ContentInfo(EnvelopedData)."""

    def run() -> bytes:
        infos: list[bytes] = []
        version = 0
        for r in recipients:
            if r.kind == "kari":
                if r.originator_point is None or r.wrap_algorithm is None or r.issuer_der is None or r.serial is None:
                    raise Asn1Error("kari needs the originator point, the wrap algorithm and the recipient")
                infos.append(
                    kari_encode(
                        originator_point=r.originator_point,
                        key_encryption_algorithm=r.key_encryption_algorithm,
                        wrap_algorithm=r.wrap_algorithm,
                        issuer_der=r.issuer_der,
                        serial=r.serial,
                        encrypted_key=r.encrypted_key,
                    )
                )
                version = 2
            elif r.kind == "ktri":
                if r.ski is not None:
                    rid = cms.RecipientIdentifier(name="subject_key_identifier", value=r.ski)
                    ri_version = "v2"
                    version = 2
                else:
                    rid = cms.RecipientIdentifier(
                        name="issuer_and_serial_number",
                        value=cms.IssuerAndSerialNumber(
                            {"issuer": a_x509.Name.load(r.issuer_der), "serial_number": r.serial}
                        ),
                    )
                    ri_version = "v0"
                alg: dict[str, Any] = {"algorithm": r.key_encryption_algorithm}
                if r.oaep_sha256:
                    alg["parameters"] = algos.RSAESOAEPParams(
                        {
                            "hash_algorithm": {"algorithm": "sha256"},
                            "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": "sha256"}},
                        }
                    )
                info = cms.RecipientInfo(
                    name="ktri",
                    value=cms.KeyTransRecipientInfo(
                        {
                            "version": ri_version,
                            "rid": rid,
                            "key_encryption_algorithm": cms.KeyEncryptionAlgorithm(alg),
                            "encrypted_key": r.encrypted_key,
                        }
                    ),
                )
                infos.append(bytes(info.dump(force=True)))
            else:
                version = 2
                info = cms.RecipientInfo(
                    name="kekri",
                    value=cms.KEKRecipientInfo(
                        {
                            "version": "v4",
                            "kekid": cms.KEKIdentifier({"key_identifier": r.kek_id}),
                            "key_encryption_algorithm": cms.KeyEncryptionAlgorithm(
                                {"algorithm": r.key_encryption_algorithm}
                            ),
                            "encrypted_key": r.encrypted_key,
                        }
                    ),
                )
                infos.append(bytes(info.dump(force=True)))
        eci = cms.EncryptedContentInfo(
            {
                "content_type": content_type,
                "content_encryption_algorithm": algos.EncryptionAlgorithm(
                    {"algorithm": content_encryption_algorithm, "parameters": iv}
                ),
                "encrypted_content": encrypted_content,
            }
        )
        body = int_to_der(version) + _tlv(0x31, b"".join(sorted(infos))) + bytes(eci.dump(force=True))
        return content_info_encode(OID_ENVELOPED_DATA, _tlv(0x30, body))

    return _guard("EnvelopedData", run)


def oaep_hash(parameters_der: bytes | None) -> str:
    """Return the hash name ("sha1", "sha256" ...) of RSAES-OAEP parameters (sha1 when absent)."""
    if parameters_der is None:
        return "sha1"

    def run() -> str:
        params = _load(algos.RSAESOAEPParams, parameters_der)
        return str(params["hash_algorithm"]["algorithm"].native)

    return _guard("RSAES-OAEP-params", run)


# --- AsymmetricKeyPackage (RFC 5958) ----------------------------------------------------------------------------


def key_package_decode(der: bytes) -> list[bytes]:
    """Decode an AsymmetricKeyPackage (SEQUENCE OF OneAsymmetricKey) into the DER of each key."""

    def run() -> list[bytes]:
        seq = _load(_AnySeq, der)
        return [bytes(seq[i].dump()) for i in range(len(seq))]

    return _guard("AsymmetricKeyPackage", run)


def key_package_encode(keys_der: Sequence[bytes]) -> bytes:
    """Encode OneAsymmetricKey DERs as an AsymmetricKeyPackage."""
    return _tlv(0x30, b"".join(keys_der))


# --- CMC (RFC 5272) ---------------------------------------------------------------------------------------------


class _TaggedAttribute(core.Sequence):  # type: ignore[misc]
    _fields = [("body_part_id", core.Integer), ("attr_type", core.ObjectIdentifier), ("attr_values", _AnySet)]  # noqa: RUF012


class _TaggedAttributes(core.SequenceOf):  # type: ignore[misc]
    _child_spec = _TaggedAttribute


class _TaggedCertificationRequest(core.Sequence):  # type: ignore[misc]
    _fields = [("body_part_id", core.Integer), ("certification_request", core.Any)]  # noqa: RUF012


class _TaggedRequest(core.Choice):  # type: ignore[misc]
    _alternatives = [  # noqa: RUF012
        ("tcr", _TaggedCertificationRequest, {"implicit": 0}),
        ("crm", core.Any, {"implicit": 1}),
        ("orm", core.Any, {"implicit": 2}),
    ]


class _TaggedRequests(core.SequenceOf):  # type: ignore[misc]
    _child_spec = _TaggedRequest


class _PkiData(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012
        ("control_sequence", _TaggedAttributes),
        ("req_sequence", _TaggedRequests),
        ("cms_sequence", _AnySeq),
        ("other_msg_sequence", _AnySeq),
    ]


class _PkiResponse(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012
        ("control_sequence", _TaggedAttributes),
        ("cms_sequence", _AnySeq),
        ("other_msg_sequence", _AnySeq),
    ]


@dataclass(frozen=True)
class TaggedAttributeParts:
    """A CMC control: body part id, type OID, value DERs."""

    body_part_id: int
    oid: str
    values: tuple[bytes, ...]


def _controls(seq: Any) -> list[TaggedAttributeParts]:
    return [
        TaggedAttributeParts(
            int(c["body_part_id"].native), str(c["attr_type"].dotted), tuple(bytes(v.dump()) for v in c["attr_values"])
        )
        for c in seq
    ]


def _controls_encode(controls: Sequence[TaggedAttributeParts]) -> Any:
    return _TaggedAttributes(
        [
            _TaggedAttribute(
                {
                    "body_part_id": c.body_part_id,
                    "attr_type": c.oid,
                    "attr_values": [core.Any.load(v) for v in c.values],
                }
            )
            for c in controls
        ]
    )


def pki_data_decode(der: bytes) -> tuple[list[TaggedAttributeParts], list[tuple[int, bytes]], int]:
    """Decode PKIData: (controls, [(body part id, PKCS#10 DER)], number of other (CRMF/ORM) requests)."""

    def run() -> tuple[list[TaggedAttributeParts], list[tuple[int, bytes]], int]:
        pd = _load(_PkiData, der)
        requests = []
        others = 0
        for req in pd["req_sequence"]:
            if req.name == "tcr":
                requests.append(
                    (int(req.chosen["body_part_id"].native), bytes(req.chosen["certification_request"].dump()))
                )
            else:
                others += 1
        return _controls(pd["control_sequence"]), requests, others

    return _guard("PKIData", run)


def pki_data_encode(controls: Sequence[TaggedAttributeParts], requests: Sequence[tuple[int, bytes]]) -> bytes:
    """Encode PKIData with PKCS#10 TaggedRequests."""

    def run() -> bytes:
        pd = _PkiData(
            {
                "control_sequence": _controls_encode(controls),
                "req_sequence": _TaggedRequests(
                    [
                        _TaggedRequest(
                            name="tcr",
                            value=_TaggedCertificationRequest(
                                {"body_part_id": bpid, "certification_request": core.Any.load(csr_der)}
                            ),
                        )
                        for bpid, csr_der in requests
                    ]
                ),
                "cms_sequence": _AnySeq([]),
                "other_msg_sequence": _AnySeq([]),
            }
        )
        return bytes(pd.dump(force=True))

    return _guard("PKIData", run)


def pki_response_decode(der: bytes) -> list[TaggedAttributeParts]:
    """Decode PKIResponse and return its controls."""
    return _guard("PKIResponse", lambda: _controls(_load(_PkiResponse, der)["control_sequence"]))


def pki_response_encode(controls: Sequence[TaggedAttributeParts]) -> bytes:
    """Encode a PKIResponse with the given controls."""

    def run() -> bytes:
        pr = _PkiResponse(
            {
                "control_sequence": _controls_encode(controls),
                "cms_sequence": _AnySeq([]),
                "other_msg_sequence": _AnySeq([]),
            }
        )
        return bytes(pr.dump(force=True))

    return _guard("PKIResponse", run)


@dataclass(frozen=True)
class CmcStatusParts:
    """CMCStatusInfo(V2) taken apart (fail_info None when absent or not a failInfo)."""

    status: int
    body_list: tuple[int, ...]
    status_string: str | None
    fail_info: int | None
    extended_fail_oid: str | None = None


def cmc_status_decode(der: bytes) -> CmcStatusParts:
    """Decode CMCStatusInfoV2 or CMCStatusInfo (their layout is compatible for what is read here)."""

    def run() -> CmcStatusParts:
        outer = _peek(der)
        if outer.class_ != 0 or outer.tag != 16:
            raise Asn1Error("CMCStatusInfo is not a SEQUENCE")
        items = _children(outer.contents)
        if len(items) < 2:
            raise Asn1Error("CMCStatusInfo needs status and bodyList")
        status = der_to_int(items[0])
        body = _peek(items[1])
        if body.class_ != 0 or body.tag != 16:
            raise Asn1Error("bodyList is not a SEQUENCE")
        body_list = [der_to_int(ref) for ref in _children(body.contents) if _peek(ref).tag == 2]
        status_string = None
        fail_info = None
        extended = None
        for item_der in items[2:]:
            item = _peek(item_der)
            if item.class_ == 0 and item.tag == 12:
                status_string = der_to_text(item_der)
            elif item.class_ == 0 and item.tag == 2:
                fail_info = der_to_int(item_der)
            elif item.class_ == 0 and item.tag == 16:
                inner = _children(item.contents)
                if inner and _peek(inner[0]).tag == 6:
                    extended = der_to_oid(inner[0])
        return CmcStatusParts(status, tuple(body_list), status_string, fail_info, extended)

    return _guard("CMCStatusInfo", run)


def cmc_status_encode(status: int, body_list: Sequence[int], status_string: str | None, fail_info: int | None) -> bytes:
    """Encode CMCStatusInfoV2 (bodyList of BodyPartIDs; failInfo as OtherStatusInfo)."""
    body = int_to_der(status) + _tlv(0x30, b"".join(int_to_der(b) for b in body_list))
    if status_string is not None:
        body += bytes(core.UTF8String(status_string).dump())
    if fail_info is not None:
        body += int_to_der(fail_info)
    return _tlv(0x30, body)


def tagged_certificate_request_check(der: bytes) -> None:
    """Raise Asn1Error unless ``der`` is a CertificationRequest."""
    _guard("CertificationRequest", lambda: _load(a_csr.CertificationRequest, der)["certification_request_info"].native)


def smime_capabilities_encode(oids: Sequence[str]) -> bytes:
    """Encode SMIMECapabilities (RFC 8551 §2.5.2): a SEQUENCE OF SEQUENCE { capabilityID } without parameters."""
    return _tlv(0x30, b"".join(_tlv(0x30, oid_to_der(o)) for o in oids))


def smime_capabilities_decode(der: bytes) -> list[str]:
    """Decode SMIMECapabilities into the capability OIDs (parameters ignored)."""

    def run() -> list[str]:
        seq = _load(_AnySeq, der)
        out = []
        for cap in seq:
            inner = _load(_AnySeq, bytes(cap.dump()))
            if len(inner):
                out.append(der_to_oid(bytes(inner[0].dump())))
        return out

    return _guard("SMIMECapabilities", run)
