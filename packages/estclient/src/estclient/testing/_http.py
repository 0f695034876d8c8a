"""The HTTP/1.1-over-TLS transport of the EST server: connections, keep-alive, request bodies, raw replies.

Handshakes run in each connection's thread (never in the accept loop); Nagle is off and every reply carries
Content-Length, so keep-alive and connection-bound authentication behave as with production servers.

The request head is read as ``http.server`` reads it, with a cheaper header parser for the everyday shape (see
:func:`parse_fields`); what the handler sees is the same either way.
"""

from __future__ import annotations

import email.message
import email.parser
import email.utils
import functools
import http.client
import http.server
import logging
import re
import socket
import ssl
import threading
import time
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Protocol

from cryptography import x509

from estclient._b64 import encode_body
from estclient._version import __version__
from estclient.testing._faults import Fault, FaultKind

__all__ = ["EstApp", "Exchange", "HttpServer", "Reply"]

_log = logging.getLogger("estclient.testing")
MAX_BODY = 1 << 20
_DRAIN_LIMIT = 16 << 20

#: The limits http.server puts on a request head (http.client's, which it uses): a header line longer than
#: MAX_HEAD_LINE bytes, or more than MAX_HEAD_LINES lines counting the blank line that ends the head, gets a 431.
MAX_HEAD_LINE = 65536
MAX_HEAD_LINES = 100
_HEAD_ENDS = (b"\r\n", b"\n", b"")
#: A request line in the everyday shape: an upper-case method, a target starting with one "/", and HTTP/1.1.
_PLAIN_REQUEST_LINE = re.compile(rb"([A-Z]+) (/(?!/)[!-~]*) HTTP/1\.1\r?\n")
#: A field name as the email parser takes one: printable ASCII other than ":" (its headerRE).
_FIELD_NAME = re.compile(rb"[!-9;-~]+")


#: A whole plain head (see :func:`_plain_fields`): "name:value" lines, each ending in CRLF or LF, then an empty line.
_PLAIN_HEAD = re.compile(rb"(?:[!-9;-~]+:[^\r\n]*\r?\n)*\r?\n")
#: One line of a plain head: the name, and the value without the spaces and tabs after the colon.
_PLAIN_FIELD = re.compile(rb"([!-9;-~]+):[ \t]*([^\r\n]*)\r?\n")


class _LineReader(Protocol):
    def readline(self, size: int = -1, /) -> bytes: ...


def read_buffered_plain_head(rfile: object) -> list[tuple[str, str]] | None:
    """The (name, value) pairs of a plain head already in ``rfile``'s buffer, read in one step; else None.

    Same result as :func:`read_head_lines` then :func:`_plain_fields`, for a head that those accept and that is
    whole in the buffer of a ``BufferedReader`` (within the limits: at most :data:`MAX_HEAD_LINES` lines, none
    longer than :data:`MAX_HEAD_LINE`). Anything else, nothing is consumed and None tells the caller to read line
    by line.
    """
    peek = getattr(rfile, "peek", None)
    if peek is None:
        return None
    buffered = peek()  # like readline, at most one read from the socket when nothing is buffered
    match = _PLAIN_HEAD.match(buffered)
    if match is None or match.end() > MAX_HEAD_LINE or buffered.count(b"\n", 0, match.end()) > MAX_HEAD_LINES:
        return None
    head = rfile.read(match.end())  # type: ignore[attr-defined]
    return [(name.decode("ascii"), value.decode("iso-8859-1")) for name, value in _PLAIN_FIELD.findall(head)]


def read_head_lines(rfile: _LineReader) -> list[bytes]:
    """Read the header lines of a request, up to and including the line that ends them (empty, or b"" at EOF).

    Raises:
        http.client.LineTooLong: A line is longer than :data:`MAX_HEAD_LINE` bytes.
        http.client.HTTPException: There are more than :data:`MAX_HEAD_LINES` lines.
    """
    lines: list[bytes] = []
    while True:
        line = rfile.readline(MAX_HEAD_LINE + 1)
        if len(line) > MAX_HEAD_LINE:
            raise http.client.LineTooLong("header line")
        lines.append(line)
        if len(lines) > MAX_HEAD_LINES:
            raise http.client.HTTPException(f"got more than {MAX_HEAD_LINES} headers")
        if line in _HEAD_ENDS:
            return lines


def _plain_fields(lines: Sequence[bytes]) -> list[tuple[str, str]] | None:
    """The (name, value) pairs of a head whose every line is ``name:value`` ending in CRLF or LF, else None.

    For such a head the email parser yields exactly these pairs: the name as written, the value without the
    spaces and tabs after the colon and without the line end. Continuation lines (obs-fold), lines without a colon
    or with another name, a lone CR, a last line without its line end: None, and the email parser decides.
    """
    if not lines or lines[-1] not in _HEAD_ENDS:
        return None
    pairs: list[tuple[str, str]] = []
    for line in lines[:-1]:
        if line.endswith(b"\r\n"):
            content = line[:-2]
        elif line.endswith(b"\n"):
            content = line[:-1]
        else:
            return None
        name, colon, value = content.partition(b":")
        if not colon or b"\r" in value or b"\n" in value or _FIELD_NAME.fullmatch(name) is None:
            return None
        pairs.append((name.decode("ascii"), value.lstrip(b" \t").decode("iso-8859-1")))
    return pairs


def parse_fields(lines: Sequence[bytes], message_class: type = http.client.HTTPMessage) -> email.message.Message:
    """Parse the header lines of a request into the message ``http.client.parse_headers`` makes of them.

    Heads in the everyday shape are parsed directly; anything else goes through the email parser, as in
    ``http.client.parse_headers``, so both give the same fields (case-insensitive ``get`` returning the first of
    duplicate fields, ``items`` in order).
    """
    pairs = _plain_fields(lines)
    return _email_message(lines, message_class) if pairs is None else _message(pairs, message_class)


def _email_message(lines: Sequence[bytes], message_class: type) -> email.message.Message:
    message: email.message.Message = email.parser.Parser(_class=message_class).parsestr(
        b"".join(lines).decode("iso-8859-1")
    )
    return message


def _message(pairs: Sequence[tuple[str, str]], message_class: type) -> email.message.Message:
    message: email.message.Message = message_class()
    for name, value in pairs:
        message.set_raw(name, value)
    return message


def field_maps(pairs: Sequence[tuple[str, str]]) -> tuple[dict[str, str], dict[str, str]]:
    """The fields of a plain head (see :func:`_plain_fields`) by lower-case name: the first and the last value.

    For the message :func:`parse_fields` makes of that head, ``message.get(name)`` is the first value (the
    email parser's rule, which ``http.server`` follows), and ``{k.lower(): v for k, v in message.items()}`` is the
    second map, in the same order. Read from the pairs, without going through the message for each field.
    """
    first: dict[str, str] = {}
    last: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        last[key] = value
        if key not in first:
            first[key] = value
    return first, last


@functools.lru_cache(maxsize=2)
def _imf_date(second: int) -> str:
    return email.utils.formatdate(second, usegmt=True)


@dataclass
class Reply:
    """An answer to send (status, body, headers) and how to send it (fault, close)."""

    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    der: bytes | None = None  # the DER inside a base64 body, for the truncation fault
    fault: Fault | None = None
    close: bool = False

    @classmethod
    def text(cls, status: int, reason: str, **headers: str) -> Reply:
        """A text/plain answer (``Retry_After="5"`` becomes the header ``Retry-After: 5``)."""
        hdrs = [(k.replace("_", "-"), v) for k, v in headers.items()]
        return cls(status, (reason.rstrip() + "\n").encode(), "text/plain; charset=utf-8", hdrs)

    @classmethod
    def base64(cls, content_type: str, der: bytes) -> Reply:
        """A 200 answer carrying ``der`` as RFC 2045 base64."""
        return cls(200, encode_body(der), content_type, [("Content-Transfer-Encoding", "base64")], der=der)


@dataclass
class Exchange:
    """One request as the EST layer sees it, with the TLS connection it came on."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    tls: ssl.SSLSocket
    address: str
    client_certificate: x509.Certificate | None
    operation: str | None = None
    label: str | None = None
    user: str | None = None


class EstApp(Protocol):
    """What the transport calls: the EST layer."""

    def handle(self, exchange: Exchange) -> Reply:
        """Answer one request."""
        ...

    def record(self, exchange: Exchange, status: int, fault: Fault | None, connection: int) -> None:
        """Record one answered request."""
        ...

    def log_access(self, address: str, request_line: str, status: int, length: int) -> None:
        """Log one access line."""
        ...


def _is_digits(text: str) -> bool:
    """1*DIGIT in ASCII (``str.isdigit`` also takes other scripts' digits, ``int`` also takes ``+5`` and ``5_0``)."""
    return bool(text) and text.isascii() and text.isdigit()


def _is_hex(text: bytes) -> bool:
    """1*HEXDIG: a chunk size (``int(..., 16)`` also takes signs, underscores and ``0x``)."""
    return bool(text) and all(c in b"0123456789abcdefABCDEF" for c in text)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = f"estclient-testing/{__version__}"
    server: HttpServer
    raw_requestline: bytes
    timeout = 60.0  # idle keep-alive connections are closed after this
    _fields: tuple[dict[str, str], dict[str, str]] | None = None  # of a plain head (field_maps), per request

    def setup(self) -> None:
        sock = self.request
        assert isinstance(sock, ssl.SSLSocket)
        sock.settimeout(self.server.handshake_timeout)
        try:
            sock.do_handshake()
        except (OSError, ssl.SSLError) as exc:
            _log.info(
                "***EST [INFO][est_server_handle_request]--> TLS handshake with %s failed: %s",
                self.client_address[0],
                exc,
            )
            raise
        super().setup()
        self.connection_number = self.server.next_connection_number()
        der = sock.getpeercert(binary_form=True)
        self.client_certificate = x509.load_der_x509_certificate(der) if der else None

    def log_message(self, format: str, *args: Any) -> None:
        return  # access lines are logged by the EST layer in libest's style

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The Date header value, formatted once per second."""
        if timestamp is None:
            return _imf_date(int(time.time()))
        return super().date_time_string(timestamp)

    def parse_request(self) -> bool:
        """Parse the request line and head as ``BaseHTTPRequestHandler.parse_request`` does, at less cost.

        A request line in another shape than ``METHOD /target HTTP/1.1`` goes to the stdlib method unchanged. For
        the usual one, this does what that method does after the request line (CPython 3.11 to 3.13): read the
        head with http.client's limits (431 beyond them), parse it (:func:`parse_fields`), then honour
        ``Connection: close`` and ``Expect: 100-continue``. A plain head that arrived whole is read in one step
        (:func:`read_buffered_plain_head`), and its fields are looked up in maps made once (:func:`field_maps`).
        """
        self._fields = None
        match = _PLAIN_REQUEST_LINE.fullmatch(self.raw_requestline)
        if match is None or self.protocol_version != "HTTP/1.1":
            return super().parse_request()
        self.command = match[1].decode("ascii")
        self.path = match[2].decode("ascii")
        self.request_version = "HTTP/1.1"
        self.requestline = self.raw_requestline.rstrip(b"\r\n").decode("ascii")
        self.close_connection = False
        pairs = read_buffered_plain_head(self.rfile)
        if pairs is None:
            try:
                lines = read_head_lines(self.rfile)
            except http.client.LineTooLong as exc:
                self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Line too long", str(exc))
                return False
            except http.client.HTTPException as exc:
                self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers", str(exc))
                return False
            pairs = _plain_fields(lines)
            if pairs is None:
                self.headers = _email_message(lines, self.MessageClass)
        if pairs is not None:
            self.headers = _message(pairs, self.MessageClass)
            self._fields = field_maps(pairs)
        if (self._field("connection") or "").lower() == "close":  # ("keep-alive" is what HTTP/1.1 does anyway)
            self.close_connection = True
        if (self._field("expect") or "").lower() == "100-continue":
            return self.handle_expect_100()
        return True

    def _field(self, name: str) -> str | None:
        """``self.headers.get(name)`` for a lower-case name (the first field of that name)."""
        if self._fields is not None:
            return self._fields[0].get(name)
        value: str | None = self.headers.get(name)
        return value

    def _field_map(self) -> dict[str, str]:
        """The request's fields by lower-case name, the last of duplicates (as EstServer.requests records them)."""
        if self._fields is not None:
            return self._fields[1]
        return {k.lower(): v for k, v in self.headers.items()}

    def _framing_error(self) -> str | None:
        """Why the request's body length cannot be trusted (RFC 9112 §6.1, §6.3), or None.

        A request with both Transfer-Encoding and Content-Length, a Transfer-Encoding whose last coding is not
        chunked, or Content-Length values that differ or are not digits: the answer is 400 and the connection
        closes, as RFC 9112 requires, so no reading of the body can be smuggled past another one's.
        """
        encodings = self.headers.get_all("Transfer-Encoding") or []
        lengths = self.headers.get_all("Content-Length") or []
        if encodings and lengths:
            return "The request has both Transfer-Encoding and Content-Length (RFC 9112 §6.1)."
        if encodings:
            codings = [c.strip().lower() for value in encodings for c in value.split(",")]
            if codings[-1] != "chunked":
                return "The request's Transfer-Encoding does not end with chunked (RFC 9112 §6.3)."
            return None
        values = {v.strip() for value in lengths for v in value.split(",")}
        if len(values) > 1 or any(not _is_digits(v) for v in values):
            return f"The request's Content-Length is not one number: {', '.join(sorted(values))} (RFC 9112 §6.3)."
        return None

    def _read_body(self) -> bytes | None:
        if self._field("transfer-encoding") is not None:  # _framing_error vetted the codings
            chunks: list[bytes] = []
            total = 0
            while True:
                line = self.rfile.readline(100).split(b";", 1)[0].strip()
                if not _is_hex(line):
                    raise ValueError("bad chunk size")
                size = int(line, 16)
                if size == 0:
                    while self.rfile.readline(1000) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline(10)
        length = int((self._field("content-length") or "0").split(",", 1)[0].strip())
        if length > MAX_BODY:
            # Read (and drop) what the client sends, up to a bound, so it can read the 413 instead of hitting a
            # reset while it is still writing.
            left = min(length, _DRAIN_LIMIT)
            while left > 0 and (piece := self.rfile.read(min(left, 1 << 16))):
                left -= len(piece)
            return None
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        assert isinstance(self.connection, ssl.SSLSocket)
        framing = self._framing_error()
        body: bytes | None = None
        if framing is None:
            try:
                body = self._read_body()
            except ValueError:
                body = None
        exchange = Exchange(
            self.command,
            self.path,
            self._field_map(),
            body or b"",
            self.connection,
            self.client_address[0],
            self.client_certificate,
        )
        if framing is not None:
            reply = Reply.text(400, framing)
            reply.close = True
        elif body is None:
            reply = Reply.text(413, f"The request body is larger than {MAX_BODY} bytes or badly chunked.")
            reply.close = True
        else:
            reply = self.server.est.handle(exchange)
        dropped = reply.fault is not None and reply.fault.kind is FaultKind.DROP_BEFORE_RESPONSE
        # Recorded before the answer goes out, so a client that has its answer finds the request recorded.
        self.server.est.record(exchange, 0 if dropped else reply.status, reply.fault, self.connection_number)
        if dropped:
            self._drop()
        else:
            self._send(reply)

    def _send(self, reply: Reply) -> None:
        # Status line, headers and body leave in one write: one TLS record and one segment for small answers.
        status = reply.status
        head = [
            f"{self.protocol_version} {status} {self.responses.get(status, ('',))[0]}",
            f"Server: {self.version_string()}",
            f"Date: {self.date_time_string()}",
        ]
        if reply.content_type is not None:
            head.append(f"Content-Type: {reply.content_type}")
        head += [f"{name}: {value}" for name, value in reply.headers]
        if status != 204:  # RFC 9110 §8.6: no Content-Length on a 204
            head.append(f"Content-Length: {len(reply.body)}")
        if reply.close:
            head.append("Connection: close")
            self.close_connection = True
        cut = reply.fault is not None and reply.fault.kind is FaultKind.DROP_MID_BODY
        body = reply.body[: len(reply.body) // 2] if cut else reply.body
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        if cut:
            self._drop()
        self.server.est.log_access(self.client_address[0], self.requestline, reply.status, len(reply.body))

    def _drop(self) -> None:
        self.close_connection = True
        with suppress(OSError):
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)  # no TLS close_notify: an abrupt end, as a crash looks

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle


class HttpServer(http.server.ThreadingHTTPServer):
    """A threading HTTP server whose connections are TLS sockets handshaken in their own thread."""

    daemon_threads = True
    allow_reuse_address = True
    est: EstApp
    context: ssl.SSLContext
    handshake_timeout: float = 30.0

    def __init__(self, address: tuple[str, int]) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)
        self._counter_lock = threading.Lock()
        self._counter = 0
        self.open_sockets: set[socket.socket] = set()

    def next_connection_number(self) -> int:
        """Number the connections (so tests can tell a reused connection from a new one)."""
        with self._counter_lock:
            self._counter += 1
            return self._counter

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = self.socket.accept()
        tls = self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        with self._counter_lock:
            self.open_sockets.add(tls)
        return tls, addr

    def shutdown_request(self, request: Any) -> None:
        with self._counter_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        _log.debug("connection from %s ended with an error", client_address[0], exc_info=True)

    def close_open_connections(self) -> None:
        """Shut every open client connection down (used on stop)."""
        with self._counter_lock:
            sockets = list(self.open_sockets)
        for sock in sockets:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
