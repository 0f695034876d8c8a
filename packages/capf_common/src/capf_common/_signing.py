"""CAPF authentication signatures, both sides: make them (phone) and verify them (CAPF).

Facts (reverse-engineered, see docs/capf_common/protocol.md):

* With an existing LSC or MIC the phone signs ``device name || 0x00 || certificate DER`` twice: SHA-1 into
  SIGNED_DATA and SHA-512 into SHA2_SIGNED_DATA.
* RSA keys sign the *bare* hash: PKCS#1 v1.5 type-1 padding ``00 01 FF.. 00 || H`` with no DigestInfo, then the
  private-key operation. A standard PKCS#1 v1.5 verify fails on it. EC keys make ordinary DER ECDSA signatures.
* SUDI_DATA signs the session id as a little-endian u32 followed by the SUDI certificate's DER.

``cryptography`` has no call that signs a bare hash with PKCS#1 v1.5 padding (``Prehashed`` still adds the
DigestInfo), so the RSA private-key operation is done here on the key's numbers, blinded and with CRT;
verification uses ``recover_data_from_signature(..., PKCS1v15(), None)``, which checks the padding and returns
the bare hash.
"""

from __future__ import annotations

import datetime as dt
import hmac
import math
import secrets
from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from capf_common._codes import CapfOperationResult
from capf_common._elements import CertificateElement, HashedSignature, SudiData
from capf_common._enums import AuthType, CertificateType, HashId
from capf_common._errors import CapfAuthenticationError, CapfSignatureError
from capf_common._messages import AuthResponse

__all__ = [
    "SigningKey",
    "auth_data",
    "make_auth_signatures",
    "make_sudi_data",
    "sign_auth_data",
    "sudi_signed_data",
    "verify_auth_response",
    "verify_auth_signature",
    "verify_sudi_data",
]

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
"""The private keys a phone can authenticate with: RSA or EC."""

_HASHES: dict[int, type[hashes.HashAlgorithm]] = {
    HashId.SHA1: hashes.SHA1,
    HashId.SHA256: hashes.SHA256,
    HashId.SHA512: hashes.SHA512,
}

CAPF_OP_FAIL_INVALID_AUTH_STR = CapfOperationResult.CAPF_OP_FAIL_INVALID_AUTH_STR
CAPF_OP_FAIL_INVALID_LSC = CapfOperationResult.CAPF_OP_FAIL_INVALID_LSC
CAPF_OP_FAIL_INVALID_MIC = CapfOperationResult.CAPF_OP_FAIL_INVALID_MIC
CAPF_OP_FAIL_INVALID_CREDENTIALS = CapfOperationResult.CAPF_OP_FAIL_INVALID_CRENDENTIALS
CAPF_OP_FAIL_LATE_REQUEST = CapfOperationResult.CAPF_OP_FAIL_LATE_REQUEST


def _hash(hash_id: HashId | int) -> hashes.HashAlgorithm:
    try:
        return _HASHES[hash_id]()
    except KeyError:
        raise CapfSignatureError(
            f"hash id {hash_id} is not one CAPF uses", hint="use HashId.SHA1, HashId.SHA256 or HashId.SHA512"
        ) from None


def _digest(data: bytes, hash_id: HashId | int) -> bytes:
    h = hashes.Hash(_hash(hash_id))
    h.update(data)
    return h.finalize()


def auth_data(device_name: str, certificate_der: bytes) -> bytes:
    """Return the bytes an LSC/MIC authentication signs: device name (UTF-8), a NUL, the certificate's DER."""
    return device_name.encode("utf-8") + b"\x00" + certificate_der


def sudi_signed_data(session_id: int, certificate_der: bytes) -> bytes:
    """Return the bytes SUDI_DATA signs: the session id as little-endian u32, then the SUDI certificate's DER."""
    return session_id.to_bytes(4, "little") + certificate_der


def _rsa_sign_bare_hash(key: rsa.RSAPrivateKey, digest: bytes) -> bytes:
    numbers = key.private_numbers()
    public = numbers.public_numbers
    size = (public.n.bit_length() + 7) // 8
    if len(digest) > size - 11:
        raise CapfSignatureError(
            f"an RSA-{public.n.bit_length()} key is too small for a {len(digest)}-byte hash",
            hint="use an RSA key of 1024 bits or more",
        )
    encoded = b"\x00\x01" + b"\xff" * (size - 3 - len(digest)) + b"\x00" + digest
    message = int.from_bytes(encoded, "big")
    while True:  # blinding: the unblinded exponentiation would leak timing
        blind = secrets.randbelow(public.n - 2) + 2
        if math.gcd(blind, public.n) == 1:
            break
    blinded = message * pow(blind, public.e, public.n) % public.n
    m1 = pow(blinded, numbers.dmp1, numbers.p)
    m2 = pow(blinded, numbers.dmq1, numbers.q)
    signature = (m2 + numbers.q * (numbers.iqmp * (m1 - m2) % numbers.p)) * pow(blind, -1, public.n) % public.n
    if pow(signature, public.e, public.n) != message:  # a faulty CRT result would leak the key
        raise CapfSignatureError("RSA signing produced an inconsistent result", hint="check the private key")
    return signature.to_bytes(size, "big")


def sign_auth_data(private_key: SigningKey, data: bytes, hash_id: HashId | int) -> bytes:
    """Sign CAPF authentication data the way a phone does.

    Args:
        private_key: The phone's RSA or EC key (of its LSC, MIC or SUDI).
        data: The signed bytes (:func:`auth_data` or :func:`sudi_signed_data`).
        hash_id: SHA-1 for SIGNED_DATA, SHA-512 for SHA2_SIGNED_DATA.

    Returns:
        RSA: the PKCS#1 v1.5 signature over the bare hash (no DigestInfo); EC: a DER ECDSA signature.

    Raises:
        CapfSignatureError: Unsupported key type or hash, or an RSA key too small for the hash.
    """
    if isinstance(private_key, rsa.RSAPrivateKey):
        return _rsa_sign_bare_hash(private_key, _digest(data, hash_id))
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        return private_key.sign(data, ec.ECDSA(_hash(hash_id)))
    raise CapfSignatureError(
        f"{type(private_key).__name__} keys cannot make CAPF signatures", hint="use an RSA or EC private key"
    )


def verify_auth_signature(
    public_key: object, data: bytes, signature: bytes, hash_id: HashId | int, *, what: str = "signature"
) -> None:
    """Verify a CAPF authentication signature.

    Args:
        public_key: The signer's public key (from its certificate).
        data: The signed bytes.
        signature: The signature (bare-hash PKCS#1 v1.5 for RSA, DER ECDSA for EC).
        hash_id: The hash the signature was made with.
        what: Names the signature in the error message.

    Raises:
        CapfSignatureError: The signature does not verify, or the key type is not RSA or EC.
    """
    expected = _digest(data, hash_id)
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            recovered = public_key.recover_data_from_signature(signature, padding.PKCS1v15(), None)
            if hmac.compare_digest(recovered, expected):
                return
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, data, ec.ECDSA(_hash(hash_id)))
            return
        else:
            raise CapfSignatureError(
                f"{type(public_key).__name__} keys cannot carry CAPF signatures",
                hint="the certificate must hold an RSA or EC key",
            )
    except (InvalidSignature, ValueError):
        pass
    raise CapfSignatureError(
        f"{what} does not verify with the certificate's key",
        hint="the phone must sign with the private key of the certificate it sends; check that the phone's "
        "certificate and key belong together, or reinstall its LSC",
    )


def make_auth_signatures(
    device_name: str, certificate: x509.Certificate, private_key: SigningKey
) -> tuple[bytes, HashedSignature]:
    """Make the SIGNED_DATA (SHA-1) and SHA2_SIGNED_DATA (SHA-512) values for LSC/MIC authentication.

    Args:
        device_name: The phone's device name.
        certificate: The LSC or MIC the phone authenticates with.
        private_key: That certificate's private key.

    Returns:
        The SHA-1 signature and the SHA-512 hashed signature.

    Raises:
        CapfSignatureError: The key cannot sign.
    """
    data = auth_data(device_name, certificate.public_bytes(Encoding.DER))
    return sign_auth_data(private_key, data, HashId.SHA1), HashedSignature(
        HashId.SHA512, sign_auth_data(private_key, data, HashId.SHA512)
    )


def make_sudi_data(session_id: int, certificate: x509.Certificate, private_key: SigningKey) -> SudiData:
    """Make the SUDI_DATA value: the SUDI certificate and its SHA-1 and SHA-512 signatures over the session.

    Args:
        session_id: The session id of the CAPF session (signed little-endian).
        certificate: The SUDI certificate.
        private_key: Its private key.

    Raises:
        CapfSignatureError: The key cannot sign.
    """
    der = certificate.public_bytes(Encoding.DER)
    data = sudi_signed_data(session_id, der)
    return SudiData(
        der,
        tuple(HashedSignature(h, sign_auth_data(private_key, data, h)) for h in (HashId.SHA1, HashId.SHA512)),
    )


def verify_sudi_data(sudi: SudiData, session_id: int) -> x509.Certificate:
    """Verify SUDI_DATA's signatures (every one present, at least one) and return the SUDI certificate.

    Args:
        sudi: The SUDI_DATA value.
        session_id: The session id of the CAPF session.

    Raises:
        CapfSignatureError: The certificate does not parse, no signature is present, or one does not verify.
    """
    certificate = _load_certificate(sudi.certificate, "SUDI")
    if not sudi.signatures:
        raise CapfSignatureError("SUDI_DATA carries no signature", hint="the phone must sign its SUDI data")
    data = sudi_signed_data(session_id, sudi.certificate)
    for part in sudi.signatures:
        verify_auth_signature(certificate.public_key(), data, part.signature, part.hash_id, what="SUDI signature")
    return certificate


def _load_certificate(der: bytes, what: str) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        raise CapfSignatureError(
            f"the {what} certificate the phone sent is not DER X.509", hint="reinstall the phone's certificate"
        ) from None


def _issued_by_one_of(certificate: x509.Certificate, issuers: Sequence[x509.Certificate], now: dt.datetime) -> str:
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        return (
            f"it is valid from {certificate.not_valid_before_utc:%Y-%m-%d %H:%M} to "
            f"{certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC, not at {now:%Y-%m-%d %H:%M} UTC"
        )
    for issuer in issuers:
        if issuer.subject != certificate.issuer:
            continue
        try:
            certificate.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return ""
    return f"its issuer {certificate.issuer.rfc4514_string()} is not among the trusted CA certificates"


def _as_utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def _refuse(cause: str, hint: str, code: CapfOperationResult) -> CapfAuthenticationError:
    return CapfAuthenticationError(cause, hint=hint, capf_code=code)


def verify_auth_response(
    response: AuthResponse,
    *,
    mode: AuthType,
    session_id: int,
    password: str | None = None,
    lsc_issuers: Sequence[x509.Certificate] = (),
    mic_issuers: Sequence[x509.Certificate] = (),
    now: dt.datetime | None = None,
    complete_by: dt.datetime | None = None,
) -> x509.Certificate | None:
    """Check a phone's AUTH_RESPONSE against the authentication mode CUCM has for it (CAPF's side).

    * ``complete_by`` (CUCM's "Operation Completes By"), when given, is checked first: a phone that comes
      after it is refused whatever the mode.
    * ``PASSWORD``: the PASSWORD must equal ``password`` (compared in constant time).
    * ``NO_PASSWORD``: accepted as is.
    * ``LSC`` / ``MIC`` ("by existing certificate", precedence to LSC or MIC): the phone's CERTIFICATE with
      valid SHA-1 and/or SHA-512 signatures (every one present, at least one), issued by one of ``lsc_issuers``
      (an LSC, whose subject CN must be the device name or ``MODEL-`` and the device name) or ``mic_issuers``
      (a MIC); or, failing a certificate, SUDI_DATA whose certificate is issued by one of ``mic_issuers``.

    Args:
        response: The phone's AUTH_RESPONSE.
        mode: The device's CUCM authentication mode.
        session_id: The session id (signed inside SUDI_DATA).
        password: The device's authentication string (``PASSWORD`` mode).
        lsc_issuers: CA certificates trusted for LSCs (CAPF-trust). The certificate must be issued directly by
            one of them: with Online CA, list the issuing CA (intermediate) itself, not only its root.
        mic_issuers: CA certificates trusted for MICs and SUDIs (Cisco Manufacturing CA and friends), as
            direct issuers too.
        now: The time to check validity and the deadline at; the current time when ``None``. A time without a
            time zone counts as UTC.
        complete_by: The device's "Operation Completes By" deadline; ``None`` for none. A time without a time
            zone counts as UTC.

    Returns:
        The certificate the phone authenticated with, ``None`` for the string modes.

    Raises:
        CapfAuthenticationError: The authentication is refused; ``capf_code`` is the
            :class:`~capf_common.CapfOperationResult` CUCM logs for it (3 wrong authentication string,
            4 invalid LSC, 5 invalid MIC, 6 invalid credentials such as a bad signature or no device name,
            11 late request after ``complete_by``).
        ValueError: ``mode`` is NONE or ``password`` is missing in PASSWORD mode.
    """
    name = response.device_name or "?"
    now = _as_utc(now or dt.datetime.now(dt.UTC))
    if complete_by is not None and now > _as_utc(complete_by):
        raise _refuse(
            f"{name} asked at {now.isoformat()}, after its Operation Completes By deadline "
            f"{_as_utc(complete_by).isoformat()}",
            "schedule the operation again in CUCM with a later Operation Completes By date, then restart the phone",
            CAPF_OP_FAIL_LATE_REQUEST,
        )
    if mode == AuthType.NO_PASSWORD:
        return None
    if mode == AuthType.PASSWORD:
        if password is None:
            raise ValueError("PASSWORD mode needs the device's authentication string")
        sent = (response.password or "").encode("utf-8")
        if not hmac.compare_digest(sent, password.encode("utf-8")):
            raise _refuse(
                f"the authentication string {name} sent does not match the one configured in CUCM",
                "enter the device's authentication string on the phone (or generate a new one in CUCM)",
                CAPF_OP_FAIL_INVALID_AUTH_STR,
            )
        return None
    if mode not in (AuthType.LSC, AuthType.MIC):
        raise ValueError(f"{mode!r} is not a CUCM authentication mode")
    if response.certificate is not None:
        return _verify_certificate_auth(response, response.certificate, lsc_issuers, mic_issuers, now)
    if response.sudi_data is not None:
        try:
            certificate = verify_sudi_data(response.sudi_data, session_id)
        except CapfSignatureError as exc:
            raise _refuse(exc.cause, exc.hint, CAPF_OP_FAIL_INVALID_CREDENTIALS) from None
        problem = _issued_by_one_of(certificate, mic_issuers, now)
        if problem:
            raise _refuse(
                f"{name}'s SUDI certificate is refused: {problem}",
                "add the issuing Cisco CA to CAPF-trust",
                CAPF_OP_FAIL_INVALID_MIC,
            )
        return certificate
    lsc = mode == AuthType.LSC
    raise _refuse(
        f"{name} sent no certificate although CUCM authenticates it by existing certificate",
        "install an LSC first (authentication string mode) or change the device's authentication mode",
        CAPF_OP_FAIL_INVALID_LSC if lsc else CAPF_OP_FAIL_INVALID_MIC,
    )


def _verify_certificate_auth(
    response: AuthResponse,
    element: CertificateElement,
    lsc_issuers: Sequence[x509.Certificate],
    mic_issuers: Sequence[x509.Certificate],
    now: dt.datetime,
) -> x509.Certificate:
    name = response.device_name or ""
    is_lsc = element.certificate_type == CertificateType.LSC
    code = CAPF_OP_FAIL_INVALID_LSC if is_lsc else CAPF_OP_FAIL_INVALID_MIC
    kind = "LSC" if is_lsc else "MIC"
    if not name:
        raise _refuse(
            f"AUTH_RESPONSE with a {kind} but no device name",
            "the phone must send its device name (DEVICE_NAME) and sign it with its certificate",
            CAPF_OP_FAIL_INVALID_CREDENTIALS,
        )
    try:
        certificate = _load_certificate(element.der, kind)
        signatures: list[tuple[HashId | int, bytes]] = (
            [(HashId.SHA1, response.signed_data)] if response.signed_data is not None else []
        )
        if response.sha2_signed_data is not None:
            signatures.append((response.sha2_signed_data.hash_id, response.sha2_signed_data.signature))
        if not signatures:
            raise CapfSignatureError(
                f"{name or 'the phone'} sent its {kind} without a signature", hint="the phone must sign its data"
            )
        data = auth_data(name, element.der)
        for hash_id, signature in signatures:
            verify_auth_signature(certificate.public_key(), data, signature, hash_id, what=f"{kind} signature")
    except CapfSignatureError as exc:
        raise _refuse(exc.cause, exc.hint, CAPF_OP_FAIL_INVALID_CREDENTIALS) from None
    problem = _issued_by_one_of(certificate, lsc_issuers if is_lsc else mic_issuers, now)
    if not problem and is_lsc:
        names = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        common_name = str(names[0].value) if names else ""
        if common_name != name and not common_name.endswith(f"-{name}"):
            problem = (
                f"its common name {common_name!r} does not name the device {name} (expected {name} or MODEL-{name})"
            )
    if problem:
        fix = "install a new LSC (authentication string mode)" if is_lsc else "add the Cisco CA to CAPF-trust"
        raise _refuse(f"{name}'s {kind} is refused: {problem}", fix, code)
    return certificate
