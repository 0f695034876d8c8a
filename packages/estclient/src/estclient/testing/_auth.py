"""Server side of HTTP Basic and Digest authentication (RFC 7617, RFC 7616 with qop=auth)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Mapping

__all__ = ["HttpAuthenticator"]

_PARAM = re.compile(r'\s*([a-zA-Z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')
_HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}
_NONCE_LIFETIME_S = 300


def _parse_params(text: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for match in _PARAM.finditer(text):
        value = match.group(2) if match.group(2) is not None else match.group(3)
        params[match.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
    return params


class HttpAuthenticator:
    """Checks ``Authorization`` headers against a user table and makes ``WWW-Authenticate`` challenges.

    Digest nonces are stateless: a timestamp with an HMAC under a per-server secret, valid for five minutes
    (an expired one gets ``stale=true`` so clients retry without asking the user again).

    Args:
        users: User name to password.
        scheme: ``"basic"`` or ``"digest"``.
        realm: The realm announced in challenges.
        digest_algorithm: ``"MD5"`` (what libest uses) or ``"SHA-256"``.
    """

    def __init__(
        self, users: Mapping[str, str], *, scheme: str = "basic", realm: str = "estrealm", digest_algorithm: str = "MD5"
    ) -> None:
        if scheme not in ("basic", "digest"):
            raise ValueError(f"Unknown HTTP authentication scheme {scheme!r}; use 'basic' or 'digest'.")
        if digest_algorithm not in _HASHES:
            raise ValueError(f"Unknown Digest algorithm {digest_algorithm!r}; use 'MD5' or 'SHA-256'.")
        self.users = users
        self.scheme = scheme
        self.realm = realm
        self.algorithm = digest_algorithm
        self._secret = secrets.token_bytes(32)

    @property
    def libest_auth_type(self) -> int:
        """The scheme's number in libest (1 Basic, 2 Digest), as its logs print it."""
        return 1 if self.scheme == "basic" else 2

    def _nonce(self, issued: int | None = None) -> str:
        stamp = str(int(time.time()) if issued is None else issued)
        mac = hmac.new(self._secret, stamp.encode(), hashlib.sha256).hexdigest()[:32]
        return f"{stamp}.{mac}"

    def _nonce_state(self, nonce: str) -> str:
        stamp, _, mac = nonce.partition(".")
        if (
            not (stamp.isascii() and stamp.isdigit())
            or not hmac.compare_digest(self._nonce(int(stamp)), nonce)
            or not mac
        ):
            return "invalid"
        return "stale" if time.time() - int(stamp) > _NONCE_LIFETIME_S else "fresh"

    def challenge(self, *, stale: bool = False) -> str:
        """Return the ``WWW-Authenticate`` value for a 401."""
        if self.scheme == "basic":
            return f'Basic realm="{self.realm}", charset="UTF-8"'
        extra = ", stale=true" if stale else ""
        opaque = hashlib.sha256(self.realm.encode()).hexdigest()[:16]
        return (
            f'Digest realm="{self.realm}", qop="auth", algorithm={self.algorithm}, '
            f'nonce="{self._nonce()}", opaque="{opaque}"{extra}'
        )

    def check(self, authorization: str | None, *, method: str, path: str) -> tuple[str | None, bool]:
        """Check an ``Authorization`` header.

        Args:
            authorization: The header value, or None.
            method: The request method (Digest hashes it).
            path: The request target; a Digest ``uri`` must name it.

        Returns:
            ``(user, stale)``: the authenticated user name or None, and whether a Digest nonce merely expired.
        """
        if not authorization:
            return None, False
        scheme, _, rest = authorization.strip().partition(" ")
        if scheme.lower() == "basic" and self.scheme == "basic":
            return self._check_basic(rest.strip()), False
        if scheme.lower() == "digest" and self.scheme == "digest":
            return self._check_digest(rest, method, path)
        return None, False

    def _check_basic(self, token: str) -> str | None:
        try:
            user, sep, password = base64.b64decode(token, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
        expected = self.users.get(user)
        if not sep or expected is None or not hmac.compare_digest(expected.encode(), password.encode()):
            return None
        return user

    def _check_digest(self, text: str, method: str, path: str) -> tuple[str | None, bool]:
        p = _parse_params(text)
        user, nonce, uri, response = p.get("username"), p.get("nonce", ""), p.get("uri", ""), p.get("response", "")
        if user is None or p.get("realm") != self.realm or user not in self.users or uri != path:
            return None, False
        algorithm = p.get("algorithm", "MD5").upper()
        if algorithm != self.algorithm.upper():
            return None, False
        state = self._nonce_state(nonce)
        if state != "fresh":
            return None, state == "stale"
        h = _HASHES[self.algorithm]

        def digest(text: str) -> str:
            return h(text.encode("utf-8")).hexdigest()

        ha1 = digest(f"{user}:{self.realm}:{self.users[user]}")
        ha2 = digest(f"{method}:{uri}")
        qop = p.get("qop")
        if qop == "auth":
            expected = digest(f"{ha1}:{nonce}:{p.get('nc', '')}:{p.get('cnonce', '')}:auth:{ha2}")
        elif qop is None:
            expected = digest(f"{ha1}:{nonce}:{ha2}")
        else:
            return None, False
        return (user if hmac.compare_digest(expected, response.lower()) else None), False
