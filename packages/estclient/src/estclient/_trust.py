"""Trust anchors for EST servers and the server authorization checks of RFC 7030 §3.3.1, §3.6 and §4.1.1.

RFC 7030 keeps two kinds of trust anchors apart:

* **explicit** anchors, configured for this EST service (typically the CA certificates a previous ``/cacerts``
  returned). A server verified through one is authorized when its certificate matches the URL's host
  (RFC 6125) **or** carries the extended key usage id-kp-cmcRA (§3.6.1);
* **implicit** anchors, for example the operating system's store. A server verified through one is authorized
  only when its certificate matches the URL's host (§3.6.2).

In **bootstrap** mode (§4.1.1) there is no anchor yet: the TLS handshake finishes provisionally, only
``/cacerts`` may be asked, no credentials are sent, and the returned CA certificates are accepted only when a
SHA-256 fingerprint matches one the caller confirms (out of band).
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import re
import ssl
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from estclient._auth import ClientCertificate
from estclient._errors import BootstrapError, EstError, HostnameMismatchError, RaAuthorizationError
from estclient._x509 import read_der_certificate, read_pem_certificates

__all__ = [
    "ID_KP_CMC_RA",
    "AnchorKind",
    "BootstrapConfirm",
    "TrustAnchors",
    "certificate_fingerprint",
    "certificate_names",
    "host_matches",
    "load_pem_certificates",
]

_log = logging.getLogger("estclient")

#: id-kp-cmcRA (RFC 6402): an EST server certificate with this extended key usage is an RA (RFC 7030 §3.6.1).
ID_KP_CMC_RA = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.28")

#: How a server was authenticated: through an explicit or an implicit anchor, or provisionally (bootstrap).
AnchorKind = Literal["explicit", "implicit", "bootstrap"]

#: Called in bootstrap mode with the CA certificates ``/cacerts`` returned; returns True to accept them.
BootstrapConfirm = Callable[[Sequence[x509.Certificate]], bool]

_HEX64 = re.compile(r"[0-9a-f]{64}")


def certificate_fingerprint(certificate: x509.Certificate) -> str:
    """Return the SHA-256 fingerprint of a certificate as upper-case hex pairs joined by colons.

    This is the form ``openssl x509 -fingerprint -sha256`` prints, for comparing with a fingerprint the CA
    operator publishes.

    Args:
        certificate: The certificate.

    Returns:
        For example ``"3A:F1:...:9C"`` (32 pairs).
    """
    digest = hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def _normalize_fingerprint(text: str) -> str:
    compact = re.sub(r"[\s:]", "", text).lower()
    if compact.startswith("sha256/") or compact.startswith("sha-256/"):
        compact = compact.split("/", 1)[1]
    if not _HEX64.fullmatch(compact):
        raise BootstrapError(
            f"{text!r} is not a SHA-256 fingerprint (64 hex digits, colons optional).",
            hint="Copy the SHA-256 fingerprint of the CA certificate as published by its operator.",
        )
    return compact


def load_pem_certificates(source: str | Path | bytes) -> tuple[x509.Certificate, ...]:
    """Load every certificate of a PEM file (or PEM bytes).

    Args:
        source: A path to a PEM file, or the PEM bytes themselves.

    Returns:
        The certificates in file order.

    Raises:
        EstError: When the file cannot be read or holds no certificate.
    """
    if isinstance(source, bytes):
        data, where = source, "the PEM data given"
    else:
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise EstError(
                f"Cannot read the certificate file {str(source)!r}: {exc.strerror or exc}.",
                hint="Check the path and the file's permissions.",
                libest_error="EST_ERR_LOAD_TRUST_CERTS",
            ) from None
        where = repr(str(source))
    try:
        certs = tuple(read_pem_certificates(data))
    except ValueError:
        certs = ()
    if not certs:
        raise EstError(
            f"No PEM certificate found in {where}.",
            hint="Give a file with one or more '-----BEGIN CERTIFICATE-----' blocks.",
            libest_error="EST_ERR_LOAD_TRUST_CERTS",
        )
    return certs


def _certs(value: Iterable[x509.Certificate] | str | Path | bytes | None) -> tuple[x509.Certificate, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, Path, bytes)):
        return load_pem_certificates(value)
    return tuple(value)


def certificate_names(certificate: x509.Certificate) -> tuple[str, ...]:
    """The DNS names and IP addresses of a certificate's subjectAltName (for messages and matching).

    Args:
        certificate: The certificate.

    Returns:
        DNS names and IP addresses as text; when there is no subjectAltName, ``"CN=<common name>"`` entries so
        an error message can still show what the certificate names.
    """
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    names: list[str] = []
    if san is not None:
        names += [str(n) for n in san.get_values_for_type(x509.DNSName)]
        names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    if not names:
        names = [f"CN={cn.value!s}" for cn in certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]
    return tuple(names)


def _dns_label_match(pattern: str, host: str) -> bool:
    if pattern == host:
        return True
    # RFC 6125 §6.4.3: a wildcard only as the complete left-most label, matching exactly one label, and never
    # directly under a public suffix-like single label ("*.com").
    if not pattern.startswith("*.") or "*" in pattern[2:]:
        return False
    suffix = pattern[2:]
    if suffix.count(".") < 1:
        return False
    head, sep, rest = host.partition(".")
    return bool(sep) and bool(head) and rest == suffix


def host_matches(certificate: x509.Certificate, host: str) -> bool:
    """Check a server certificate against the host of the URL (RFC 6125 §6.4, as TLS clients do today).

    DNS hosts match a subjectAltName dNSName exactly (case-insensitive, trailing dot ignored) or through a
    left-most ``*`` label; IP-address hosts match an iPAddress entry. The subject common name is not used
    (RFC 6125 §6.4.4 allows it only for certificates without subjectAltName DNS entries; browsers and Python's
    ``ssl`` module dropped it).

    Args:
        certificate: The server's certificate.
        host: The host name or IP address the client connected to.

    Returns:
        True when the certificate is for ``host``.
    """
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    host = host.strip("[]")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        return any(ip == address for ip in san.get_values_for_type(x509.IPAddress))
    wanted = host.lower().rstrip(".")
    for name in san.get_values_for_type(x509.DNSName):
        if _dns_label_match(str(name).lower().rstrip("."), wanted):
            return True
    return False


def _has_cmc_ra(certificate: x509.Certificate) -> bool:
    try:
        eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    return ID_KP_CMC_RA in eku


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


@dataclass(frozen=True)
class TrustAnchors:
    """The certificates an EST client trusts to authenticate EST servers, kept apart by kind (RFC 7030 §3.3.1).

    Build one with :meth:`explicit_anchors`, :meth:`system`, :meth:`bootstrap` or the constructor.

    Args:
        explicit: Explicit trust anchors: CA certificates configured for this EST service. A server verified
            through one may match the URL's host or carry id-kp-cmcRA (RFC 7030 §3.6.1). Intermediate CA
            certificates are allowed as anchors.
        implicit: Implicit trust anchors (a server verified through one must match the URL's host, §3.6.2).
        system_store: Also use the operating system's CA store as implicit anchors.
        allow_ra_certificates: Accept a server whose certificate carries id-kp-cmcRA instead of the host name,
            when an explicit anchor verified it (§3.6.1). On by default, as the RFC allows.
        bootstrap_fingerprints: Bootstrap mode: SHA-256 fingerprints (hex, colons optional) of CA certificates
            the caller has confirmed out of band.
        bootstrap_confirm: Bootstrap mode: a callback shown the ``/cacerts`` certificates that returns True to
            accept them (for example after a person compared the fingerprints).

    Attributes:
        explicit: The explicit anchors.
        implicit: The implicit anchors given as certificates.
        system_store: Whether the system store adds implicit anchors.
        allow_ra_certificates: Whether id-kp-cmcRA may stand in for the host name.
        bootstrap_fingerprints: Normalized confirmed fingerprints (lower-case hex without colons).
        bootstrap_confirm: The confirmation callback, if any.
    """

    explicit: tuple[x509.Certificate, ...] = ()
    implicit: tuple[x509.Certificate, ...] = ()
    system_store: bool = False
    allow_ra_certificates: bool = True
    bootstrap_fingerprints: frozenset[str] = frozenset()
    bootstrap_confirm: BootstrapConfirm | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        """Normalize the fingerprints and check that the anchors are usable."""
        object.__setattr__(self, "explicit", tuple(self.explicit))
        object.__setattr__(self, "implicit", tuple(self.implicit))
        object.__setattr__(
            self, "bootstrap_fingerprints", frozenset(_normalize_fingerprint(f) for f in self.bootstrap_fingerprints)
        )
        if self.is_bootstrap and (self.explicit or self.implicit or self.system_store):
            raise BootstrapError(
                "Bootstrap mode cannot be combined with trust anchors: it exists for clients that have none.",
                hint="Use TrustAnchors.bootstrap(...) alone to fetch /cacerts, then a client with the accepted "
                "anchors for everything else.",
            )
        if not self.is_bootstrap and not (self.explicit or self.implicit or self.system_store):
            raise EstError(
                "No trust anchor configured: the EST server could not be authenticated.",
                hint="Give the CA certificate that issued the server's certificate (TrustAnchors.explicit_anchors"
                "(...)), use TrustAnchors.system(), or fetch the CA certificates with TrustAnchors.bootstrap(...).",
                libest_error="EST_ERR_LOAD_TRUST_CERTS",
            )

    # -- constructors -------------------------------------------------------------------------------------------

    @classmethod
    def explicit_anchors(
        cls,
        certificates: Iterable[x509.Certificate] | str | Path | bytes,
        *,
        allow_ra_certificates: bool = True,
    ) -> TrustAnchors:
        """Trust the given CA certificates as explicit anchors (the usual EST configuration).

        Args:
            certificates: Certificates, or a PEM file path, or PEM bytes.
            allow_ra_certificates: Accept id-kp-cmcRA certificates in place of the host name (§3.6.1).

        Returns:
            The anchors.
        """
        return cls(explicit=_certs(certificates), allow_ra_certificates=allow_ra_certificates)

    @classmethod
    def system(cls, *, extra_implicit: Iterable[x509.Certificate] | str | Path | bytes | None = None) -> TrustAnchors:
        """Trust the operating system's CA store (implicit anchors: the host name must always match).

        Args:
            extra_implicit: More implicit anchors (certificates, a PEM path or PEM bytes).

        Returns:
            The anchors.
        """
        return cls(implicit=_certs(extra_implicit), system_store=True)

    @classmethod
    def bootstrap(
        cls,
        *,
        fingerprints: Iterable[str] = (),
        confirm: BootstrapConfirm | None = None,
    ) -> TrustAnchors:
        """Bootstrap mode (RFC 7030 §4.1.1): no anchor yet; accept ``/cacerts`` only after out-of-band checking.

        Args:
            fingerprints: SHA-256 fingerprints of CA certificates confirmed out of band.
            confirm: Or a callback that sees the returned certificates and answers True to accept them.

        Returns:
            Anchors in bootstrap mode.

        Raises:
            BootstrapError: When neither fingerprints nor a callback are given, or a fingerprint is malformed.
        """
        prints = frozenset(fingerprints)
        if not prints and confirm is None:
            raise BootstrapError(
                "Bootstrap mode needs a way to confirm the CA certificates: none was given.",
                hint="Pass fingerprints={'AB:CD:...'} (SHA-256, as published by the CA operator) or a confirm "
                "callback that shows the fingerprints to a person.",
            )
        return cls(bootstrap_fingerprints=prints, bootstrap_confirm=confirm)

    # -- queries --------------------------------------------------------------------------------------------------

    @property
    def is_bootstrap(self) -> bool:
        """True in bootstrap mode (no anchors; only /cacerts, no credentials)."""
        return bool(self.bootstrap_fingerprints) or self.bootstrap_confirm is not None

    def kind_of(self, anchor_der: bytes | None) -> AnchorKind:
        """Tell whether the anchor that verified a server is explicit or implicit.

        Args:
            anchor_der: The DER of the last certificate of the verified chain (None when unknown).

        Returns:
            ``"explicit"`` when that certificate is one of the explicit anchors, else ``"implicit"`` (the
            stricter rule applies when in doubt).
        """
        if self.is_bootstrap:
            return "bootstrap"
        if anchor_der is not None and any(_der(c) == anchor_der for c in self.explicit):
            return "explicit"
        return "implicit"

    def authorize_server(self, host: str, leaf: x509.Certificate, anchor_der: bytes | None) -> AnchorKind:
        """Apply RFC 7030 §3.6 to a server whose chain the TLS layer verified.

        Args:
            host: The host of the URL (or of the latest redirect).
            leaf: The server's certificate.
            anchor_der: DER of the anchor that ended the verified chain (None if unknown).

        Returns:
            The kind of anchor that authorized the server.

        Raises:
            HostnameMismatchError: The certificate is not for ``host`` (and no id-kp-cmcRA rule applies).
            RaAuthorizationError: The certificate carries id-kp-cmcRA but an implicit anchor verified it.
        """
        kind = self.kind_of(anchor_der)
        if kind == "bootstrap" or host_matches(leaf, host):
            return kind
        names = certificate_names(leaf)
        if _has_cmc_ra(leaf):
            if kind == "explicit" and self.allow_ra_certificates:
                _log.debug("EST server %s authorized as an RA (id-kp-cmcRA, explicit anchor)", host)
                return kind
            raise RaAuthorizationError(
                f"The server certificate for {host!r} (names: {', '.join(names) or 'none'}) does not match the "
                "host; it carries id-kp-cmcRA, which RFC 7030 §3.6.1 accepts only when an explicit trust anchor "
                "verified it"
                + (", but RA certificates are disabled." if kind == "explicit" else ", not an implicit one.")
            )
        hint = (
            f"Use a URL whose host is one of the certificate's names, or reissue the server certificate with "
            f"{host!r} in its subjectAltName"
            + (" (or, for an RA, with the id-kp-cmcRA extended key usage)." if kind == "explicit" else ".")
        )
        raise HostnameMismatchError(host, names, hint=hint)

    def accept_bootstrap(self, certificates: Sequence[x509.Certificate]) -> tuple[x509.Certificate, ...]:
        """Decide, in bootstrap mode, whether the ``/cacerts`` certificates may be trusted.

        A certificate is accepted when its SHA-256 fingerprint is one of ``bootstrap_fingerprints``; when none
        matches and a ``bootstrap_confirm`` callback exists, it decides for all of them.

        Args:
            certificates: The certificates ``/cacerts`` returned over the provisional connection.

        Returns:
            The confirmed certificates (those whose fingerprint matched, or all when the callback accepted).

        Raises:
            BootstrapError: No fingerprint matched and the callback (if any) declined.
        """
        matched = tuple(
            c for c in certificates if _normalize_fingerprint(certificate_fingerprint(c)) in self.bootstrap_fingerprints
        )
        if matched:
            return matched
        if self.bootstrap_confirm is not None and self.bootstrap_confirm(tuple(certificates)):
            return tuple(certificates)
        shown = "; ".join(f"{c.subject.rfc4514_string()}: {certificate_fingerprint(c)}" for c in certificates)
        raise BootstrapError(
            "None of the CA certificates the server returned was confirmed"
            + (f" (received: {shown})." if shown else " (the response held no certificate).")
        )


_TEMP_PREFIX = "estclient-"


def build_ssl_context(
    trust: TrustAnchors,
    *,
    minimum_version: ssl.TLSVersion | None = None,
    maximum_version: ssl.TLSVersion | None = None,
    client_certificate: ClientCertificate | None = None,
) -> ssl.SSLContext:
    """Make the client-side ``ssl.SSLContext`` for EST (private: the host checks happen after the handshake).

    The context verifies the chain (except in bootstrap mode) but does not check the host name: RFC 7030 §3.6
    needs to know which kind of anchor verified the chain first, so :meth:`TrustAnchors.authorize_server` runs
    once the handshake is done. Never use this context without that check.

    Args:
        trust: The anchors.
        minimum_version: Lowest TLS version (default TLS 1.2; RFC 8996 deprecated older ones).
        maximum_version: Highest TLS version (TLS 1.2 when PoP linking is needed).
        client_certificate: A :class:`~estclient.ClientCertificate` to present, or None.

    Returns:
        The context.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = minimum_version or ssl.TLSVersion.TLSv1_2
    if maximum_version is not None:
        ctx.maximum_version = maximum_version
    ctx.check_hostname = False
    if trust.is_bootstrap:
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.verify_mode = ssl.CERT_REQUIRED
        anchors = trust.explicit + trust.implicit
        if anchors:
            ctx.load_verify_locations(
                cadata="".join(c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in anchors)
            )
        if trust.system_store:
            ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        # Explicit anchors may be intermediate CA certificates (RFC 5280 trust anchors need not be roots).
        ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    if client_certificate is not None and not trust.is_bootstrap:
        client_certificate.load_into(ctx)
    return ctx


def _as_der_list(items: Any) -> list[bytes]:
    result: list[bytes] = []
    for item in items or ():
        if isinstance(item, bytes):
            result.append(item)
        elif hasattr(item, "public_bytes"):
            result.append(item.public_bytes(2))  # _ssl.ENCODING_DER
    return result


def _chain_method(ssl_object: Any, name: str) -> Callable[[], Any] | None:
    for candidate in (ssl_object, getattr(ssl_object, "_sslobj", None)):
        method = getattr(candidate, name, None)
        if callable(method):
            return method  # type: ignore[no-any-return]
    return None


def presented_chain(ssl_object: Any) -> list[x509.Certificate]:
    """The certificates the server sent in its handshake (leaf first), as far as the ``ssl`` module shows them.

    Args:
        ssl_object: An ``ssl.SSLObject``/``SSLSocket`` (or the low-level object httpx exposes).

    Returns:
        The certificates; at least the leaf when the handshake finished, empty when unknown.
    """
    method = _chain_method(ssl_object, "get_unverified_chain")
    ders: list[bytes] = []
    if method is not None:
        try:
            ders = _as_der_list(method())
        except (ssl.SSLError, ValueError, AttributeError):
            ders = []
    if not ders:
        try:
            leaf = ssl_object.getpeercert(binary_form=True)
        except (ssl.SSLError, ValueError, AttributeError):
            leaf = None
        ders = [leaf] if leaf else []
    certs: list[x509.Certificate] = []
    for der in ders:
        try:
            certs.append(read_der_certificate(der))
        except ValueError:
            continue
    return certs


def verified_anchor(ssl_object: Any) -> bytes | None:
    """DER of the trust anchor that ended the verified chain of a finished handshake, or None if unknown."""
    method = _chain_method(ssl_object, "get_verified_chain")
    if method is None:
        return None
    try:
        ders = _as_der_list(method())
    except (ssl.SSLError, ValueError, AttributeError):
        return None
    return ders[-1] if ders else None
