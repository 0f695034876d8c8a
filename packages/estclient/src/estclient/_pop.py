"""Proof-of-possession linking (RFC 7030 §3.5): tls-unique of the very connection that sends the CSR.

The CSR's challengePassword must carry base64(tls-unique) of the TLS connection that carries it, so the CSR
can only be built and signed after that connection's handshake. The clients do it this way: a first,
lightweight request (``GET /csrattrs``, which also tells what the server wants) opens the connection; its
response names the connection (httpx's ``network_stream``), whose ``ssl_object`` gives tls-unique; the CSR is
built and signed; the POST goes out on the same connection, because the clients give each linked enrollment a
connection of its own while it runs (a "lane", see ``estclient._operations.Lane``). The POST's response names its
connection too: when it differs (the server closed the connection and it was made again, e.g. after a 401), the
CSR is re-signed with the new connection's tls-unique and sent again.

TLS 1.3 has no tls-unique (RFC 9266 defines tls-exporter, which RFC 7030 does not use and Python's ``ssl``
module cannot compute), so linking needs TLS 1.2: a client constructed with ``pop_linking=True`` caps the TLS
version at 1.2.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from cryptography import x509

from estclient._csr import PrivateKey, SanValue, build_csr, pop_challenge
from estclient._csrattrs import CsrAttribute, CsrAttrs
from estclient._errors import PopLinkingError, ProtocolVersionError
from estclient._trust import verified_anchor

__all__ = ["CsrSpec", "LinkingMode", "TlsBinding", "decide_linking", "tls_binding"]

#: ``"auto"``: link when the connection is TLS 1.2 or the server asks (challengePassword in /csrattrs);
#: ``"always"``: link or fail; ``"never"``: do not link.
LinkingMode = Literal["auto", "always", "never"]

#: How many times a linked CSR is re-signed when its connection changed before it was sent.
MAX_RELINKS = 3


@dataclass(frozen=True, repr=False)
class CsrSpec:
    """A certificate request for the client to build and sign itself (needed for PoP linking).

    Unlike a finished ``x509.CertificateSigningRequest``, the client builds this one on the connection that
    sends it: it applies the server's ``/csrattrs`` (key type and hash checks, requested extensions, template
    subject) and, when linking, puts base64(tls-unique) into challengePassword before signing.

    Args:
        key: The private key; its public key is certified (for ``/serverkeygen`` the server ignores it).
        subject: The subject (an ``x509.Name`` or text such as ``"CN=phone1,O=Example"``); None: the server
            template's subject.
        sans: subjectAltName entries (host names, IP addresses, ``email:``/``uri:`` text, GeneralNames).
        hash_algorithm: Signature hash name (``"sha256"``...), default the server's choice or SHA-256.
        extensions: More extensions, as ``x509.Extension`` objects.
        attributes: Raw CSR attributes to add.
        decrypt_key_id: ``/serverkeygen``: DecryptKeyIdentifier of a symmetric key (RFC 7030 §4.4.1.1).
        asymmetric_decrypt_key_id: ``/serverkeygen``: AsymmetricDecryptKeyIdentifier (§4.4.1.2).
        apply_server_requirements: Apply the server's ``/csrattrs`` (on by default).

    Attributes:
        key: The private key (never shown by ``repr``).
    """

    key: PrivateKey
    subject: x509.Name | str | None = None
    sans: Sequence[SanValue] = ()
    hash_algorithm: str | None = None
    extensions: Sequence[x509.Extension[x509.ExtensionType]] = ()
    attributes: Sequence[CsrAttribute] = ()
    decrypt_key_id: bytes | None = None
    asymmetric_decrypt_key_id: bytes | None = None
    apply_server_requirements: bool = True

    def __repr__(self) -> str:
        """Show the subject, never the key."""
        subject = self.subject.rfc4514_string() if isinstance(self.subject, x509.Name) else self.subject
        return f"CsrSpec(subject={subject!r}, key={type(self.key).__name__})"

    def build(
        self, *, challenge_password: str | None = None, requirements: CsrAttrs | None = None
    ) -> x509.CertificateSigningRequest:
        """Build and sign the request.

        Args:
            challenge_password: The PoP linking value (base64 of tls-unique), or None.
            requirements: The server's ``/csrattrs`` (ignored when ``apply_server_requirements`` is off).

        Returns:
            The signed request.

        Raises:
            CsrBuildError: When the request cannot be built as asked.
        """
        return build_csr(
            self.key,
            self.subject,
            requirements=requirements if self.apply_server_requirements else None,
            sans=tuple(self.sans),
            challenge_password=challenge_password,
            hash_algorithm=self.hash_algorithm,
            extensions=tuple(self.extensions),
            attributes=tuple(self.attributes),
            decrypt_key_id=self.decrypt_key_id,
            asymmetric_decrypt_key_id=self.asymmetric_decrypt_key_id,
        )


@dataclass(frozen=True)
class TlsBinding:
    """The TLS facts of the connection a response came on.

    Attributes:
        version: ``"TLSv1.2"``, ``"TLSv1.3"``... or None when unknown (no TLS object exposed).
        tls_unique: The tls-unique channel binding (RFC 5929), None for TLS 1.3 or when unknown.
        anchor_der: DER of the trust anchor that ended the verified server chain, or None when unknown.
    """

    version: str | None
    tls_unique: bytes | None
    anchor_der: bytes | None = None


def tls_binding(response: httpx.Response, *, with_anchor: bool = True) -> TlsBinding:
    """Read the TLS version and tls-unique of the connection that carried ``response``.

    Args:
        response: An httpx response (its ``network_stream`` extension names the connection).
        with_anchor: Also find the trust anchor that ended the verified chain (it costs a copy of the chain;
            only ``/cacerts`` reports which anchor authenticated the server).

    Returns:
        The binding; fields are None when httpx does not expose the connection.
    """
    stream: Any = response.extensions.get("network_stream")
    ssl_object: Any = stream.get_extra_info("ssl_object") if stream is not None else None
    if ssl_object is None:
        return TlsBinding(None, None)
    version = ssl_object.version()
    unique: bytes | None = None
    if version != "TLSv1.3":  # CPython returns a value for TLS 1.3 too, but tls-unique is undefined there
        try:
            unique = ssl_object.get_channel_binding("tls-unique")
        except (ValueError, OSError):
            unique = None
    return TlsBinding(version, unique or None, verified_anchor(ssl_object) if with_anchor else None)


def decide_linking(mode: LinkingMode, binding: TlsBinding, requirements: CsrAttrs | None) -> str | None:
    """Decide whether to link the CSR, and return the challengePassword to use (None: no linking).

    Args:
        mode: The client's linking mode.
        binding: The connection's TLS facts.
        requirements: The server's ``/csrattrs`` (challengePassword listed = the server wants linking).

    Returns:
        The challengePassword (base64 of tls-unique), or None.

    Raises:
        ProtocolVersionError: Linking is required (by ``"always"`` or by the server) on a TLS 1.3 connection.
        PopLinkingError: Linking is required and the connection's tls-unique cannot be read.
    """
    if mode == "never":
        return None
    required = mode == "always" or bool(requirements is not None and requirements.requires_challenge_password)
    if binding.tls_unique is not None:
        return pop_challenge(binding.tls_unique)
    if not required:
        return None
    if binding.version == "TLSv1.3":
        who = "this client is set to always link" if mode == "always" else "the server asks for it in /csrattrs"
        raise ProtocolVersionError(
            f"PoP linking is required ({who}), but the connection uses TLS 1.3, which has no tls-unique.",
            hint="Construct the client with pop_linking='always' (it caps TLS at 1.2) and do not force "
            "TLS 1.3; or, if the server does not require it, use pop_linking='never'.",
        )
    raise PopLinkingError(
        "PoP linking is required, but the connection's tls-unique could not be read (the httpx client does not "
        "expose its TLS connection)."
    )
