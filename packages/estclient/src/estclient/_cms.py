"""CMS (RFC 5652) signing, verification and enveloping with cryptography, laid out by the asn1 adapter.

Used by /fullcmc (signed PKIData / PKIResponse) and /serverkeygen (the server-generated key inside a
SignedData inside an EnvelopedData, RFC 7030 §4.4.2). Supported: signatures with RSA (PKCS#1 v1.5) and ECDSA
over SHA-256/384/512; key transport with RSA (RSAES-OAEP, or PKCS#1 v1.5 on receipt), key wrap with AES
(RFC 3394) for symmetric decrypt keys; content encryption AES-CBC (128/192/256).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, keywrap, padding, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.x963kdf import X963KDF

from estclient import _asn1
from estclient._x509 import read_der_certificate

__all__ = ["CmsError", "decrypt_enveloped", "encrypt_enveloped", "sign_content", "verify_signers"]

_DIGESTS: dict[str, tuple[str, type[hashes.HashAlgorithm]]] = {
    "sha256": ("2.16.840.1.101.3.4.2.1", hashes.SHA256),
    "sha384": ("2.16.840.1.101.3.4.2.2", hashes.SHA384),
    "sha512": ("2.16.840.1.101.3.4.2.3", hashes.SHA512),
}
_DIGEST_BY_OID: dict[str, type[hashes.HashAlgorithm]] = dict(_DIGESTS.values()) | {"1.3.14.3.2.26": hashes.SHA1}
_RSA_SIG = {"sha256": "1.2.840.113549.1.1.11", "sha384": "1.2.840.113549.1.1.12", "sha512": "1.2.840.113549.1.1.13"}
_EC_SIG = {"sha256": "1.2.840.10045.4.3.2", "sha384": "1.2.840.10045.4.3.3", "sha512": "1.2.840.10045.4.3.4"}
_AES_CBC = {"2.16.840.1.101.3.4.1.2": 16, "2.16.840.1.101.3.4.1.22": 24, "2.16.840.1.101.3.4.1.42": 32}
_AES256_CBC = "2.16.840.1.101.3.4.1.42"
_AES_WRAP = {"2.16.840.1.101.3.4.1.5": 16, "2.16.840.1.101.3.4.1.25": 24, "2.16.840.1.101.3.4.1.45": 32}
_AES256_WRAP = "2.16.840.1.101.3.4.1.45"
_DH_SHA256 = "1.3.132.1.11.1"  # dhSinglePass-stdDH-sha256kdf-scheme (RFC 5753)
# Key agreement schemes (RFC 5753 §7.1.4); the cofactor variants equal the standard ones on the prime curves
# (cofactor 1) cryptography supports. OpenSSL's cms command defaults to the SHA-1 KDF scheme.
_DH_SCHEMES: dict[str, type[hashes.HashAlgorithm]] = {
    "1.3.133.16.840.63.0.2": hashes.SHA1,  # dhSinglePass-stdDH-sha1kdf-scheme
    "1.3.133.16.840.63.0.3": hashes.SHA1,  # dhSinglePass-cofactorDH-sha1kdf-scheme
    "1.3.132.1.14.0": hashes.SHA224,
    "1.3.132.1.14.1": hashes.SHA256,
    "1.3.132.1.14.2": hashes.SHA384,
    "1.3.132.1.14.3": hashes.SHA512,
    "1.3.132.1.11.0": hashes.SHA224,
    "1.3.132.1.11.1": hashes.SHA256,
    "1.3.132.1.11.2": hashes.SHA384,
    "1.3.132.1.11.3": hashes.SHA512,
}
_RSAES_PKCS1 = "1.2.840.113549.1.1.1"
_RSAES_OAEP = "1.2.840.113549.1.1.7"
_HASH_BY_NAME: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
DecryptionKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | bytes


class CmsError(ValueError):
    """A CMS structure cannot be signed, verified, encrypted or decrypted (message names the cause)."""


def sign_content(
    content_type: str,
    content: bytes,
    *,
    signer_cert: x509.Certificate | None,
    signer_key: SigningKey | None,
    certificates: Sequence[x509.Certificate] = (),
    digest: str = "sha256",
) -> bytes:
    """Wrap ``content`` in a ContentInfo(SignedData), signed when a signer is given (else no SignerInfo)."""
    cert_ders = [c.public_bytes(serialization.Encoding.DER) for c in certificates]
    if signer_cert is None or signer_key is None:
        return _asn1.signed_data_encode(content_type, content, certificates=cert_ders)
    digest_oid, digest_cls = _DIGESTS[digest]
    h = hashes.Hash(digest_cls())
    h.update(content)
    signed_attrs = _asn1.signed_attrs_encode(content_type, h.finalize())
    if isinstance(signer_key, rsa.RSAPrivateKey):
        signature = signer_key.sign(signed_attrs, asym_padding.PKCS1v15(), digest_cls())
        sig_oid = _RSA_SIG[digest]
    else:
        signature = signer_key.sign(signed_attrs, ec.ECDSA(digest_cls()))
        sig_oid = _EC_SIG[digest]
    signer_der = signer_cert.public_bytes(serialization.Encoding.DER)
    if signer_der not in cert_ders:
        cert_ders.insert(0, signer_der)
    return _asn1.signed_data_encode(
        content_type,
        content,
        certificates=cert_ders,
        signer=_asn1.SignerInput(
            issuer_der=signer_cert.issuer.public_bytes(),
            serial=signer_cert.serial_number,
            digest_algorithm=digest_oid,
            signature_algorithm=sig_oid,
            signed_attrs_der=signed_attrs,
            signature=signature,
        ),
    )


def verify_signers(parts: _asn1.SignedDataParts) -> list[x509.Certificate]:
    """Verify every SignerInfo of a SignedData against the certificates it carries.

    Returns:
        The signer certificates (empty when the SignedData has no signers).

    Raises:
        CmsError: A signer's certificate is missing, or a signature or message digest does not verify.
    """
    try:
        certs = [read_der_certificate(d) for d in parts.certificates]
        return [_verify_one(parts, signer, certs) for signer in parts.signers]
    except (ValueError, TypeError, UnsupportedAlgorithm, x509.InvalidVersion) as exc:
        if isinstance(exc, CmsError):
            raise
        raise CmsError(f"a signer cannot be checked ({type(exc).__name__}: {exc})") from None


def _verify_one(
    parts: _asn1.SignedDataParts, signer: _asn1.SignerParts, certs: list[x509.Certificate]
) -> x509.Certificate:
    cert = next((c for c in certs if _matches(c, signer)), None)
    if cert is None:
        raise CmsError("the signer's certificate is not in the message")
    digest_cls = _DIGEST_BY_OID.get(signer.digest_algorithm)
    if digest_cls is None:
        raise CmsError(f"unsupported digest algorithm {signer.digest_algorithm}")
    if signer.signed_attrs_der is None:
        data = parts.content or b""
    else:
        h = hashes.Hash(digest_cls())
        h.update(parts.content or b"")
        if signer.message_digest != h.finalize():
            raise CmsError("the message digest does not match the content")
        data = signer.signed_attrs_der
    key = cert.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signer.signature, data, asym_padding.PKCS1v15(), digest_cls())
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signer.signature, data, ec.ECDSA(digest_cls()))
        else:
            raise CmsError(f"unsupported signer key type {type(key).__name__}")
    except InvalidSignature:
        raise CmsError("the signature does not verify") from None
    return cert


def _matches(cert: x509.Certificate, signer: _asn1.SignerParts) -> bool:
    if signer.serial is not None and signer.issuer_der is not None:
        return cert.serial_number == signer.serial and cert.issuer.public_bytes() == signer.issuer_der
    if signer.ski is not None:
        return _ski(cert) == signer.ski
    return False


def _ski(cert: x509.Certificate) -> bytes:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest


def encrypt_enveloped(
    content_type: str,
    content: bytes,
    *,
    recipient: x509.Certificate | None = None,
    kek: tuple[bytes, bytes] | None = None,
    oaep: bool = True,
) -> bytes:
    """Encrypt ``content`` into a ContentInfo(EnvelopedData) with AES-256-CBC.

    Args:
        content_type: The inner content type OID.
        content: The inner content DER.
        recipient: An RSA certificate to transport the content key to (ktri).
        kek: ``(key identifier, AES key)`` to wrap the content key with (kekri, RFC 3394).
        oaep: Use RSAES-OAEP with SHA-256 (else RSAES-PKCS1-v1_5).

    Raises:
        CmsError: No recipient, or a recipient key type that is not supported.
    """
    cek = os.urandom(32)
    iv = os.urandom(16)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(content) + padder.finalize()
    encryptor = Cipher(algorithms.AES(cek), modes.CBC(iv)).encryptor()
    encrypted = encryptor.update(padded) + encryptor.finalize()
    recipients = []
    if recipient is not None:
        key = recipient.public_key()
        if isinstance(key, ec.EllipticCurvePublicKey):
            recipients.append(_kari_for(recipient, key, cek))
        elif isinstance(key, rsa.RSAPublicKey):
            if oaep:
                pad: asym_padding.AsymmetricPadding = asym_padding.OAEP(
                    asym_padding.MGF1(hashes.SHA256()), hashes.SHA256(), None
                )
            else:
                pad = asym_padding.PKCS1v15()
            try:
                ski: bytes | None = recipient.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
            except x509.ExtensionNotFound:
                ski = None
            recipients.append(
                _asn1.RecipientInput(
                    kind="ktri",
                    encrypted_key=key.encrypt(cek, pad),
                    key_encryption_algorithm=_RSAES_OAEP if oaep else _RSAES_PKCS1,
                    issuer_der=recipient.issuer.public_bytes(),
                    serial=recipient.serial_number,
                    ski=ski,
                    oaep_sha256=oaep,
                )
            )
        else:
            raise CmsError(f"encrypting to a {type(key).__name__} is not supported (RSA or EC keys only)")
    if kek is not None:
        kek_id, kek_key = kek
        wrap_oid = {16: "2.16.840.1.101.3.4.1.5", 24: "2.16.840.1.101.3.4.1.25", 32: "2.16.840.1.101.3.4.1.45"}.get(
            len(kek_key)
        )
        if wrap_oid is None:
            raise CmsError("the key-encryption key must be 16, 24 or 32 bytes (AES)")
        recipients.append(
            _asn1.RecipientInput(
                kind="kekri",
                encrypted_key=keywrap.aes_key_wrap(kek_key, cek),
                key_encryption_algorithm=wrap_oid,
                kek_id=kek_id,
            )
        )
    if not recipients:
        raise CmsError("no recipient to encrypt to")
    return _asn1.enveloped_data_encode(
        recipients,
        content_type=content_type,
        content_encryption_algorithm=_AES256_CBC,
        iv=iv,
        encrypted_content=encrypted,
    )


def _kari_for(recipient: x509.Certificate, key: ec.EllipticCurvePublicKey, cek: bytes) -> _asn1.RecipientInput:
    """Ephemeral-static ECDH (RFC 5753 §3.1.1): X9.63 KDF with SHA-256, AES-256 key wrap."""
    ephemeral = ec.generate_private_key(key.curve)
    shared = ephemeral.exchange(ec.ECDH(), key)
    kek = _x963(shared, _DH_SHA256, _AES256_WRAP, None)
    point = ephemeral.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return _asn1.RecipientInput(
        kind="kari",
        encrypted_key=keywrap.aes_key_wrap(kek, cek),
        key_encryption_algorithm=_DH_SHA256,
        issuer_der=recipient.issuer.public_bytes(),
        serial=recipient.serial_number,
        originator_point=point,
        wrap_algorithm=_AES256_WRAP,
    )


def _x963(shared: bytes, scheme: str, wrap_algorithm: str, ukm: bytes | None) -> bytes:
    hash_cls = _DH_SCHEMES.get(scheme)
    size = _AES_WRAP.get(wrap_algorithm)
    if hash_cls is None or size is None:
        raise CmsError(f"unsupported key agreement {scheme} with key wrap {wrap_algorithm}")
    info = _asn1.ecc_cms_shared_info(wrap_algorithm, ukm, size * 8)
    return X963KDF(algorithm=hash_cls(), length=size, sharedinfo=info).derive(shared)


def decrypt_enveloped(der: bytes, key: DecryptionKey) -> tuple[str, bytes]:
    """Decrypt a ContentInfo(EnvelopedData) with an RSA key (ktri), an EC key (kari) or an AES key (kekri).

    Returns:
        ``(inner content type OID, inner content DER)``.

    Raises:
        _asn1.Asn1Error: The bytes are not an EnvelopedData.
        CmsError: No recipient fits the key, or decryption fails.
    """
    parts = _asn1.enveloped_data_decode(der)
    cek = _recover_cek(parts, key)
    size = _AES_CBC.get(parts.content_encryption_algorithm)
    if size is None:
        raise CmsError(f"unsupported content encryption algorithm {parts.content_encryption_algorithm}")
    if len(cek) != size or parts.iv is None or len(parts.iv) != 16:
        raise CmsError("the content-encryption key or IV has the wrong length")
    if not parts.encrypted_content or len(parts.encrypted_content) % 16:
        raise CmsError("the encrypted content is not a whole number of AES blocks")
    decryptor = Cipher(algorithms.AES(cek), modes.CBC(parts.iv)).decryptor()
    padded = decryptor.update(parts.encrypted_content) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        plain = unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise CmsError("the decrypted content has bad padding (wrong key?)") from None
    return parts.content_type, plain


def _recover_cek(parts: _asn1.EnvelopedParts, key: DecryptionKey) -> bytes:
    if isinstance(key, bytes):
        for r in parts.recipients:
            if r.kind == "kekri" and r.key_encryption_algorithm in _AES_WRAP:
                try:
                    return keywrap.aes_key_unwrap(key, r.encrypted_key)
                except (keywrap.InvalidUnwrap, ValueError):
                    continue
        raise CmsError("no key-encryption-key recipient could be unwrapped with the given symmetric key")
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return _kari_cek(parts, key)
    errors = []
    for r in parts.recipients:
        if r.kind != "ktri":
            continue
        try:
            if r.key_encryption_algorithm == _RSAES_OAEP:
                hash_cls = _HASH_BY_NAME.get(_asn1.oaep_hash(r.key_encryption_parameters), hashes.SHA1)
                pad: asym_padding.AsymmetricPadding = asym_padding.OAEP(asym_padding.MGF1(hash_cls()), hash_cls(), None)
            elif r.key_encryption_algorithm == _RSAES_PKCS1:
                pad = asym_padding.PKCS1v15()
            else:
                errors.append(f"unsupported key transport {r.key_encryption_algorithm}")
                continue
            return key.decrypt(r.encrypted_key, pad)
        except (ValueError, _asn1.Asn1Error) as exc:
            errors.append(str(exc) or type(exc).__name__)
    detail = "; ".join(errors) if errors else "no key-transport recipient"
    raise CmsError(f"the content key cannot be decrypted with the given RSA key ({detail})")


def _kari_cek(parts: _asn1.EnvelopedParts, key: ec.EllipticCurvePrivateKey) -> bytes:
    errors = []
    for r in parts.recipients:
        if r.kind != "kari" or r.originator_point is None or r.key_encryption_parameters is None:
            continue
        try:
            wrap_algorithm, _ = _asn1.algorithm_identifier(r.key_encryption_parameters)
            originator = ec.EllipticCurvePublicKey.from_encoded_point(key.curve, r.originator_point)
            shared = key.exchange(ec.ECDH(), originator)
            kek = _x963(shared, r.key_encryption_algorithm, wrap_algorithm, r.ukm)
            return keywrap.aes_key_unwrap(kek, r.encrypted_key)
        except (ValueError, _asn1.Asn1Error, keywrap.InvalidUnwrap) as exc:
            errors.append(str(exc) or type(exc).__name__)
    detail = "; ".join(errors) if errors else "no key-agreement recipient"
    raise CmsError(f"the content key cannot be recovered with the given EC key ({detail})")
