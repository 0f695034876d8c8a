"""The clients' cookie jar: cookies work as in httpx, without httpx's per-response cost when none is set.

EST needs no cookies, but load balancers in front of EST servers pin a client to one backend with them, so the
clients keep a jar (one per client, shared by all its connections). httpx hands every response to the jar
through a urllib shim that first copies all the response's headers into an ``email.message.Message``: about
40 µs per request, more than the rest of reading an enrollment answer. This jar looks at the headers first and
skips the shim when the response sets no cookie, which is what EST servers answer.
"""

from __future__ import annotations

import http.cookiejar
import urllib.request
from typing import Any

import httpx

__all__ = ["SetCookieJar"]


class SetCookieJar(http.cookiejar.CookieJar):
    """A ``CookieJar`` that ignores responses without ``Set-Cookie``/``Set-Cookie2`` before parsing them."""

    def extract_cookies(self, response: Any, request: urllib.request.Request) -> None:
        """Store the cookies a response sets (nothing to do when it sets none)."""
        headers = getattr(getattr(response, "response", None), "headers", None)  # httpx's shim keeps the response
        if isinstance(headers, httpx.Headers) and "set-cookie" not in headers and "set-cookie2" not in headers:
            return
        super().extract_cookies(response, request)
