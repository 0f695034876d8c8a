"""Certificate requests for EST: build a PKCS#10 that meets /csrattrs, PoP linking values, keys to match.

:func:`build_csr` applies what the server asks (CsrAttrs: key type/curve/size, hash, extensions, RFC 9908
template subject) to the caller's key and subject. Attributes cryptography's builder cannot write (a
PrintableString challengePassword, the /serverkeygen decrypt-key identifiers of RFC 7030 §4.4.1.1/§4.4.1.2,
SMIMECapabilities, raw attributes) are added by re-assembling the request and signing it again with the key.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Sequence
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtensionOID, NameOID, ObjectIdentifier

from estclient import _asn1
from estclient._csrattrs import (
    OID_CHALLENGE_PASSWORD,
    CsrAttribute,
    CsrAttrs,
    CsrRequirements,
    RequestedExtension,
)
from estclient._errors import CsrBuildError, MalformedMessageError, MalformedRequestError
from estclient._sigs import csr_signature_valid

__all__ = [
    "build_csr",
    "csr_challenge_password",
    "csr_decrypt_key_ids",
    "key_for",
    "load_csr",
    "parse_subject",
    "pop_challenge",
]

#: id-aa-decryptKeyID (RFC 4108 §2.2.5), RFC 7030 §4.4.1.1.
OID_DECRYPT_KEY_ID = ObjectIdentifier("1.2.840.113549.1.9.16.2.37")
#: id-aa-asymmDecryptKeyID (RFC 7030 §4.4.1.2).
OID_ASYMMETRIC_DECRYPT_KEY_ID = ObjectIdentifier("1.2.840.113549.1.9.16.2.54")
#: smimeCapabilities (RFC 8551 §2.5.2).
OID_SMIME_CAPABILITIES = ObjectIdentifier("1.2.840.113549.1.9.15")

OID_AES256_WRAP = "2.16.840.1.101.3.4.1.45"
OID_AES128_WRAP = "2.16.840.1.101.3.4.1.5"
OID_RSAES_OAEP = "1.2.840.113549.1.1.7"
OID_RSA_ENCRYPTION = "1.2.840.113549.1.1.1"

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}

_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "secp256r1": ec.SECP256R1,
    "secp384r1": ec.SECP384R1,
    "secp521r1": ec.SECP521R1,
    "secp256k1": ec.SECP256K1,
    "brainpoolP256r1": ec.BrainpoolP256R1,
    "brainpoolP384r1": ec.BrainpoolP384R1,
    "brainpoolP512r1": ec.BrainpoolP512R1,
}

_SIGNING_HASHES = (
    hashes.SHA224,
    hashes.SHA256,
    hashes.SHA384,
    hashes.SHA512,
    hashes.SHA3_224,
    hashes.SHA3_256,
    hashes.SHA3_384,
    hashes.SHA3_512,
)

PrivateKey = CertificateIssuerPrivateKeyTypes
SanValue = str | x509.GeneralName | ipaddress.IPv4Address | ipaddress.IPv6Address


def _requirements(requirements: CsrAttrs | CsrRequirements | None) -> CsrRequirements:
    if requirements is None:
        return CsrRequirements()
    if isinstance(requirements, CsrAttrs):
        return requirements.requirements()
    return requirements


def key_for(
    requirements: CsrAttrs | CsrRequirements | None = None,
    *,
    default: Literal["ec", "rsa", "ed25519"] = "ec",
    rsa_key_size: int = 2048,
) -> PrivateKey:
    """Make a new private key of the type, size or curve the server asks for.

    Args:
        requirements: The server's /csrattrs (or its interpreted requirements); None: ``default``.
        default: Key type when the server does not say (``"ec"`` = P-256).
        rsa_key_size: RSA size when the server asks for RSA without a size.

    Returns:
        A new private key.

    Raises:
        CsrBuildError: The server asks for a key type or curve this library cannot make.
    """
    req = _requirements(requirements)
    key_type = req.key_type or default
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=req.key_size or rsa_key_size)
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if key_type == "ed448":
        return ed448.Ed448PrivateKey.generate()
    curve_name = req.curve or "secp256r1"
    curve = _CURVES.get(curve_name)
    if curve is None:
        raise CsrBuildError(
            f"The server asks for an EC key on {curve_name}, which is not supported here.",
            hint=f"Use a key of a supported curve ({', '.join(_CURVES)}), made elsewhere, with build_csr.",
        )
    return ec.generate_private_key(curve())


def pop_challenge(tls_unique: bytes) -> str:
    """The challengePassword that links a CSR to its TLS connection: base64 of tls-unique (RFC 7030 §3.5).

    Args:
        tls_unique: The connection's tls-unique channel binding (12 bytes in TLS 1.2).

    Returns:
        The base64 text (RFC 4648 §4, with padding) to pass as ``challenge_password``.

    Raises:
        CsrBuildError: ``tls_unique`` is empty.
    """
    if not tls_unique:
        raise CsrBuildError(
            "No tls-unique value was given for PoP linking.",
            hint="Read tls-unique from the TLS 1.2 connection after the handshake (TLS 1.3 has none).",
            libest_error="EST_ERR_AUTH_FAIL_TLSUID",
        )
    return base64.b64encode(tls_unique).decode("ascii")


def parse_subject(text: str) -> x509.Name:
    """Parse a subject given as text: RFC 4514 (``CN=a,O=b``) or OpenSSL's slash form (``/O=b/CN=a``).

    Args:
        text: The subject.

    Returns:
        The name.

    Raises:
        CsrBuildError: The text is not a distinguished name.
    """
    stripped = text.strip()
    try:
        if stripped.startswith("/"):
            parts = [p for p in stripped.split("/") if p]
            rdns = []
            for part in parts:
                attr, sep, value = part.partition("=")
                if not sep:
                    raise ValueError(f"{part!r} has no '='")
                rdns.append(x509.Name.from_rfc4514_string(f"{attr}={_escape(value)}").rdns[0])
            return x509.Name(rdns)
        if "=" not in stripped:
            return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, stripped)])
        return x509.Name.from_rfc4514_string(stripped)
    except ValueError as exc:
        raise CsrBuildError(
            f"The subject {text!r} is not a distinguished name ({exc}).",
            hint="Write it as RFC 4514 text, e.g. 'CN=phone1,O=Example', or '/O=Example/CN=phone1'.",
        ) from None


def _escape(value: str) -> str:
    out = []
    for i, ch in enumerate(value):
        if ch in ',+"\\<>;' or (ch == "#" and i == 0) or (ch == " " and i in (0, len(value) - 1)):
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def _general_name(value: SanValue) -> x509.GeneralName:
    if isinstance(value, x509.GeneralName):
        return value
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return x509.IPAddress(value)
    text = value.strip()
    lowered = text.lower()
    for prefix, kind in (("dns:", "dns"), ("ip:", "ip"), ("email:", "email"), ("uri:", "uri")):
        if lowered.startswith(prefix):
            return _general_name_of(kind, text[len(prefix) :])
    try:
        return x509.IPAddress(ipaddress.ip_address(text))
    except ValueError:
        pass
    if "://" in text:
        return x509.UniformResourceIdentifier(text)
    if "@" in text:
        return x509.RFC822Name(text)
    return x509.DNSName(text)


def _general_name_of(kind: str, text: str) -> x509.GeneralName:
    if kind == "ip":
        try:
            return x509.IPAddress(ipaddress.ip_address(text))
        except ValueError:
            raise CsrBuildError(f"{text!r} is not an IP address.", hint="Give an IPv4 or IPv6 address.") from None
    if kind == "email":
        return x509.RFC822Name(text)
    if kind == "uri":
        return x509.UniformResourceIdentifier(text)
    return x509.DNSName(text)


def _hash_for(
    key: PrivateKey, hash_algorithm: hashes.HashAlgorithm | str | None, req: CsrRequirements
) -> hashes.HashAlgorithm | None:
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return None
    if isinstance(hash_algorithm, hashes.HashAlgorithm):
        return hash_algorithm
    name = hash_algorithm or req.hash_algorithm or "sha256"
    cls = _HASHES.get(name.lower().replace("-", ""))
    if cls is None:
        raise CsrBuildError(f"The hash algorithm {name!r} is not supported.", hint=f"Use one of {', '.join(_HASHES)}.")
    return cls()


def _key_type(key: PrivateKey) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        return "rsa"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return "ec"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    if isinstance(key, ed448.Ed448PrivateKey):
        return "ed448"
    return type(key).__name__


def _check_key(key: PrivateKey, req: CsrRequirements) -> None:
    have = _key_type(key)
    problems = []
    if req.key_type and req.key_type != have:
        problems.append(f"a {req.key_type} key (this key is {have})")
    if req.curve and isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name != req.curve:
        problems.append(f"curve {req.curve} (this key is on {key.curve.name})")
    if req.key_size and isinstance(key, rsa.RSAPrivateKey) and key.key_size != req.key_size:
        problems.append(f"{req.key_size}-bit RSA (this key has {key.key_size} bits)")
    if problems:
        raise CsrBuildError(
            "The server's CSR attributes ask for " + " and ".join(problems) + ".",
            hint="Make a matching key with estclient.key_for(csrattrs), or pass check_key=False to send anyway.",
            libest_error="EST_ERR_CSR_ATTR_MISSING",
        )


def _fill_extension(ext: RequestedExtension, key: PrivateKey, sans: list[x509.GeneralName]) -> x509.ExtensionType:
    if ext.value is not None:
        return x509.UnrecognizedExtension(ext.oid, ext.value)
    if ext.oid == ExtensionOID.SUBJECT_ALTERNATIVE_NAME and sans:
        return x509.SubjectAlternativeName(sans)
    if ext.oid == ExtensionOID.KEY_USAGE:
        return x509.KeyUsage(
            digital_signature=True,
            content_commitment=False,
            key_encipherment=isinstance(key, rsa.RSAPrivateKey),
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=False,
            crl_sign=False,
            encipher_only=False,
            decipher_only=False,
        )
    if ext.oid == ExtensionOID.BASIC_CONSTRAINTS:
        return x509.BasicConstraints(ca=False, path_length=None)
    if ext.oid == ExtensionOID.SUBJECT_KEY_IDENTIFIER:
        return x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    raise CsrBuildError(
        f"The server's template asks for a {ext.oid.dotted_string} extension whose value the client must choose.",
        hint="Pass that extension in extensions=... (or the names in sans=... for subjectAltName).",
        libest_error="EST_ERR_CSR_ATTR_MISSING",
    )


def build_csr(
    key: PrivateKey,
    subject: x509.Name | str | None,
    *,
    requirements: CsrAttrs | CsrRequirements | None = None,
    sans: Sequence[SanValue] = (),
    challenge_password: str | None = None,
    hash_algorithm: hashes.HashAlgorithm | str | None = None,
    extensions: Sequence[x509.Extension[x509.ExtensionType] | tuple[x509.ExtensionType, bool]] = (),
    attributes: Sequence[CsrAttribute] = (),
    decrypt_key_id: bytes | None = None,
    asymmetric_decrypt_key_id: bytes | None = None,
    smime_capabilities: Sequence[str] | None = None,
    check_key: bool = True,
) -> x509.CertificateSigningRequest:
    """Build and sign a PKCS#10 request meeting the server's CSR attributes.

    The caller's choices win over the server's; the server's requirements fill in the rest: hash algorithm,
    extensions (with values, or filled in for template extensions: subjectAltName from ``sans``, keyUsage,
    basicConstraints, subjectKeyIdentifier), the template's subject values. challengePassword is only written
    when ``challenge_password`` is given (for PoP linking pass ``pop_challenge(tls_unique)``).

    Args:
        key: The private key (its public key goes into the request; it signs it).
        subject: The subject (a Name, or text such as ``"CN=phone1,O=Example"``); None: the template's subject.
        requirements: The server's /csrattrs, or their interpretation.
        sans: subjectAltName entries: host names, IP addresses, ``email:``/``uri:``-prefixed text, GeneralNames.
        challenge_password: The challengePassword attribute (PrintableString when it fits, else UTF8String).
        hash_algorithm: Signature hash (``"sha384"`` or a cryptography hash); default: the server's, or SHA-256.
        extensions: More extensions: ``x509.Extension`` or ``(value, critical)`` pairs.
        attributes: Raw attributes to add (e.g. macAddress).
        decrypt_key_id: /serverkeygen: DecryptKeyIdentifier of the symmetric key to encrypt the key to
            (RFC 7030 §4.4.1.1); adds SMIMECapabilities listing AES key wrap.
        asymmetric_decrypt_key_id: /serverkeygen: AsymmetricDecryptKeyIdentifier, the subjectKeyIdentifier of
            the client certificate to encrypt the key to (RFC 7030 §4.4.1.2); adds SMIMECapabilities.
        smime_capabilities: Override the SMIMECapabilities OIDs sent with a decrypt-key identifier.
        check_key: Refuse a key whose type/curve/size differs from what the server asks.

    Returns:
        The signed request.

    Raises:
        CsrBuildError: Bad subject text, an unmet requirement, or a key that cannot sign requests.
    """
    req = _requirements(requirements)
    if check_key:
        _check_key(key, req)
    name = _subject(subject, req)
    hash_alg = _hash_for(key, hash_algorithm, req)
    general_names = [_general_name(s) for s in sans]

    builder = x509.CertificateSigningRequestBuilder().subject_name(name)
    seen: set[ObjectIdentifier] = set()
    for item in extensions:
        value, critical = (item.value, item.critical) if isinstance(item, x509.Extension) else item
        builder = builder.add_extension(value, critical=critical)
        seen.add(value.oid)
    if general_names and ExtensionOID.SUBJECT_ALTERNATIVE_NAME not in seen:
        builder = builder.add_extension(x509.SubjectAlternativeName(general_names), critical=False)
        seen.add(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    for wanted in req.extensions:
        if wanted.oid in seen:
            continue
        builder = builder.add_extension(_fill_extension(wanted, key, general_names), critical=wanted.critical)
        seen.add(wanted.oid)
    if hash_alg is not None and not isinstance(hash_alg, _SIGNING_HASHES):
        raise CsrBuildError(
            f"Requests cannot be signed with {hash_alg.name} here.",
            hint="Use SHA-256 or stronger (hash_algorithm='sha256').",
            libest_error="EST_ERR_INVALID_DIGEST",
        )
    try:
        csr = builder.sign(key, hash_alg)
    except (TypeError, ValueError) as exc:
        raise CsrBuildError(f"The request cannot be signed with this key: {exc}.") from None

    extra = _extra_attributes(
        challenge_password, attributes, decrypt_key_id, asymmetric_decrypt_key_id, smime_capabilities
    )
    if not extra:
        return csr
    return _resign_with_attributes(csr, key, hash_alg, extra)


def _subject(subject: x509.Name | str | None, req: CsrRequirements) -> x509.Name:
    if isinstance(subject, x509.Name):
        return subject
    if isinstance(subject, str):
        return parse_subject(subject)
    if req.subject is not None:
        rdns = []
        for rdn in req.subject:
            attrs = []
            for a in rdn:
                if a.value is None:
                    raise CsrBuildError(
                        f"The server's template leaves the subject attribute {a.oid.dotted_string} open.",
                        hint="Pass subject=... with a value for it.",
                    )
                attrs.append(x509.NameAttribute(a.oid, a.value))
            rdns.append(x509.RelativeDistinguishedName(attrs))
        return x509.Name(rdns)
    return x509.Name([])


def _extra_attributes(
    challenge_password: str | None,
    attributes: Sequence[CsrAttribute],
    decrypt_key_id: bytes | None,
    asymmetric_decrypt_key_id: bytes | None,
    smime_capabilities: Sequence[str] | None,
) -> list[_asn1.AttributeParts]:
    extra: list[_asn1.AttributeParts] = []
    if challenge_password is not None:
        if len(challenge_password.encode()) > 255:
            raise CsrBuildError(
                "The challengePassword is longer than 255 bytes.", hint="Use a shorter challenge password."
            )
        extra.append(
            _asn1.AttributeParts(OID_CHALLENGE_PASSWORD.dotted_string, (_asn1.text_to_der(challenge_password),))
        )
    for attr in attributes:
        if not attr.values:
            raise CsrBuildError(f"The attribute {attr.name} has no values.", hint="Give it at least one DER value.")
        extra.append(_asn1.AttributeParts(attr.oid.dotted_string, attr.values))
    capabilities: list[str] = []
    if decrypt_key_id is not None:
        extra.append(_asn1.AttributeParts(OID_DECRYPT_KEY_ID.dotted_string, (_asn1.octets_to_der(decrypt_key_id),)))
        capabilities += [OID_AES256_WRAP, OID_AES128_WRAP]
    if asymmetric_decrypt_key_id is not None:
        extra.append(
            _asn1.AttributeParts(
                OID_ASYMMETRIC_DECRYPT_KEY_ID.dotted_string, (_asn1.octets_to_der(asymmetric_decrypt_key_id),)
            )
        )
        capabilities += [OID_RSAES_OAEP, OID_RSA_ENCRYPTION]
    if capabilities or smime_capabilities:
        oids = list(smime_capabilities) if smime_capabilities is not None else capabilities
        extra.append(
            _asn1.AttributeParts(OID_SMIME_CAPABILITIES.dotted_string, (_asn1.smime_capabilities_encode(oids),))
        )
    return extra


def _resign_with_attributes(
    csr: x509.CertificateSigningRequest,
    key: PrivateKey,
    hash_alg: hashes.HashAlgorithm | None,
    extra: list[_asn1.AttributeParts],
) -> x509.CertificateSigningRequest:
    try:
        info, algorithm, _ = _asn1.csr_split(csr.public_bytes(serialization.Encoding.DER))
        new_info = _asn1.csr_info_add_attributes(info, extra)
    except _asn1.Asn1Error as exc:
        raise CsrBuildError(
            f"An attribute value is not valid DER ({exc}).", hint="Give DER attribute values."
        ) from None
    signature = _sign(key, new_info, hash_alg)
    return x509.load_der_x509_csr(_asn1.csr_assemble(new_info, algorithm, signature))


def _sign(key: PrivateKey, data: bytes, hash_alg: hashes.HashAlgorithm | None) -> bytes:
    if isinstance(key, rsa.RSAPrivateKey) and hash_alg is not None:
        return key.sign(data, padding.PKCS1v15(), hash_alg)
    if isinstance(key, ec.EllipticCurvePrivateKey) and hash_alg is not None:
        return key.sign(data, ec.ECDSA(hash_alg))
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return key.sign(data)
    raise CsrBuildError(
        f"A {type(key).__name__} cannot sign a request with extra attributes here.",
        hint="Use an RSA, EC, Ed25519 or Ed448 key.",
    )


# --- reading requests (the server side) -------------------------------------------------------------------------


def load_csr(
    der: bytes,
    *,
    verify_signature: bool = True,
    error: type[MalformedMessageError] = MalformedRequestError,
) -> x509.CertificateSigningRequest:
    """Parse a DER PKCS#10 request (and check its signature).

    Args:
        der: The DER request (decode the base64 body first).
        verify_signature: Check the self-signature (proof of possession of the key).
        error: The error class to raise.

    Returns:
        The request.

    Raises:
        MalformedRequestError: (or ``error``) when the bytes are not a request or its signature is invalid.
    """
    try:
        csr = x509.load_der_x509_csr(der)
        # Touch the lazily parsed parts so a malformed request fails here, not later.
        _ = csr.subject, csr.extensions, csr.attributes, csr.public_key()
    except ValueError as exc:
        raise error(f"The certificate request does not parse ({exc}).", libest_error="EST_ERR_BAD_PKCS10") from None
    except Exception as exc:  # cryptography may raise e.g. UnsupportedAlgorithm for exotic keys
        raise error(
            f"The certificate request cannot be used ({type(exc).__name__}: {exc}).",
            libest_error="EST_ERR_BAD_PKCS10",
        ) from None
    if verify_signature and not csr_signature_valid(csr):
        raise error(
            "The certificate request's signature does not verify (no proof of possession of the key).",
            hint="Sign the request with the private key whose public key it carries.",
            libest_error="EST_ERR_BAD_PKCS10",
        )
    return csr


def csr_challenge_password(csr: x509.CertificateSigningRequest) -> str | None:
    """Read the challengePassword of a request (the server compares it with base64(tls-unique)).

    Args:
        csr: The request.

    Returns:
        The challengePassword text, or None when the request has none (or it is not text).
    """
    try:
        attr = csr.attributes.get_attribute_for_oid(OID_CHALLENGE_PASSWORD)
    except (x509.AttributeNotFound, ValueError):
        return None
    try:
        return attr.value.decode("utf-8")
    except UnicodeDecodeError:
        return None


def csr_decrypt_key_ids(csr: x509.CertificateSigningRequest) -> tuple[bytes | None, bytes | None]:
    """Read the /serverkeygen decrypt-key identifiers of a request (RFC 7030 §4.4.1.1 / §4.4.1.2).

    Args:
        csr: The request.

    Returns:
        ``(decrypt_key_id, asymmetric_decrypt_key_id)``, each None when absent.
    """
    try:
        attrs = _asn1.csr_attributes(csr.public_bytes(serialization.Encoding.DER))
    except _asn1.Asn1Error:
        return None, None
    symmetric = asymmetric = None
    for attr in attrs:
        if not attr.values:
            continue
        try:
            if attr.oid == OID_DECRYPT_KEY_ID.dotted_string:
                symmetric = _asn1.der_to_octets(attr.values[0])
            elif attr.oid == OID_ASYMMETRIC_DECRYPT_KEY_ID.dotted_string:
                asymmetric = _asn1.der_to_octets(attr.values[0])
        except _asn1.Asn1Error:
            continue
    return symmetric, asymmetric
