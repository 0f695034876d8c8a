"""The EST server's request-head parsing: the same outcome as ``http.server`` for any bytes, only cheaper.

The server reads request heads with its own parser for the everyday shape and hands anything else to the stdlib
(``BaseHTTPRequestHandler.parse_request``, the email parser). These tests compare it with an unmodified stdlib
handler byte for byte, and pin over a real TLS connection the answers and fields that clients and tests see.
"""

from __future__ import annotations

import email.utils
import http.client
import http.server
import io
import re
import socket
import ssl
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from estclient.testing import EstServer, _http
from estclient.testing._http import MAX_HEAD_LINE, MAX_HEAD_LINES, _Handler, parse_fields, read_head_lines

_DATE = "Fri, 27 Nov 2026 00:00:00 GMT"


class _Stdlib(http.server.BaseHTTPRequestHandler):
    """An unmodified stdlib handler with the EST server's settings (the reference)."""

    protocol_version = _Handler.protocol_version
    server_version = _Handler.server_version

    def log_message(self, format: str, *args: Any) -> None:
        return

    def date_time_string(self, timestamp: float | None = None) -> str:
        return _DATE


class _Ours(_Handler):
    def date_time_string(self, timestamp: float | None = None) -> str:
        return _DATE


def _run(
    cls: type[http.server.BaseHTTPRequestHandler], data: bytes, buffer_size: int | None = None
) -> tuple[Any, bool | None]:
    """Run the request-head part of ``handle_one_request`` on ``data`` without a socket: the handler, the result.

    With a ``buffer_size``, the handler reads through a ``BufferedReader`` of that size, as from a socket (where a
    head whole in the buffer is read in one step); without, from a ``BytesIO`` (line by line).
    """
    handler = cls.__new__(cls)  # no socket: set what parse_request uses by hand
    rfile: Any = io.BytesIO(data) if buffer_size is None else io.BufferedReader(io.BytesIO(data), buffer_size)
    wfile = io.BytesIO()
    handler.rfile, handler.wfile = rfile, wfile
    handler.client_address = ("127.0.0.1", 40000)
    handler.close_connection = True
    raw = rfile.readline(65537)
    handler.raw_requestline = raw  # type: ignore[attr-defined]
    return handler, (handler.parse_request() if 0 < len(raw) <= 65536 else None)


def _parse(
    cls: type[http.server.BaseHTTPRequestHandler], data: bytes, buffer_size: int | None = None
) -> dict[str, object]:
    """Run the request-head part of ``handle_one_request`` on ``data`` without a socket; return what it left."""
    handler, ok = _run(cls, data, buffer_size)
    rfile, wfile = handler.rfile, handler.wfile
    headers = getattr(handler, "headers", None)
    return {
        "ok": ok,
        "command": getattr(handler, "command", None),
        "path": getattr(handler, "path", None),
        "version": getattr(handler, "request_version", None),
        "requestline": getattr(handler, "requestline", None),
        "close": handler.close_connection,
        "fields": None if headers is None else headers.items(),
        "get": None if headers is None else [headers.get(n) for n in ("content-length", "CONNECTION", "x-a", "")],
        "all": None if headers is None else headers.get_all("x-a"),
        "written": wfile.getvalue(),
        "consumed": rfile.tell(),
    }


_NAMES = st.sampled_from(["Host", "Content-Length", "content-length", "X-A", "x-a", "Connection", "Expect", "From"])
_VALUES = st.sampled_from(["", " 12", "\t5 ", "close", "keep-alive", "100-continue", "a, b", "é", "\x00", "x\ry"])
_LINE_ENDS = st.sampled_from(["\r\n", "\n", "\r", "", "\r\r\n"])


@st.composite
def _field_lines(draw: st.DrawFn) -> bytes:
    """Header lines near the everyday shape, with the odd cases mixed in (folds, no colon, bad names, lone CR)."""
    lines = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.integers(0, 9))
        if kind < 6:
            sep = draw(st.sampled_from([":", ": ", ":\t ", " : ", "::"]))
            lines.append(f"{draw(_NAMES)}{sep}{draw(_VALUES)}{draw(_LINE_ENDS)}")
        elif kind == 6:
            lines.append(draw(st.sampled_from([" folded\r\n", "\tfolded\r\n", ": no name\r\n", "From x: y\r\n"])))
        else:
            lines.append(draw(st.text(max_size=20)) + draw(_LINE_ENDS))
    return "".join(lines).encode("utf-8", "surrogatepass")


_REQUEST_LINES = st.one_of(
    st.sampled_from(
        [
            b"POST /.well-known/est/simpleenroll HTTP/1.1\r\n",
            b"GET / HTTP/1.1\n",
            b"GET //evil.example/x HTTP/1.1\r\n",
            b"GET /x HTTP/1.0\r\n",
            b"GET /x HTTP/2.0\r\n",
            b"GET /x HTTP/1.1.1\r\n",
            b"GET /x\r\n",
            b"POST /x\r\n",
            b"get /x HTTP/1.1\r\n",
            b"GET  /x  HTTP/1.1\r\n",
            b"GET /x\xa0y HTTP/1.1\r\n",
            b"GET /x HTTP/1.\xb2\r\n",
            b"\r\n",
            b"GET /x HTTP/1.1",
        ]
    ),
    st.binary(max_size=40).map(lambda b: b + b"\r\n"),
)


#: None: a BytesIO (read line by line); else a BufferedReader of that size (from 1 byte to the socket's 8192).
_BUFFER_SIZES = st.sampled_from([None, 1, 2, 16, 64, 8192])


@settings(max_examples=600, deadline=None)
@given(
    request_line=_REQUEST_LINES,
    fields=_field_lines(),
    end=st.sampled_from([b"\r\n", b"\n", b""]),
    rest=st.binary(max_size=8),
    buffer_size=_BUFFER_SIZES,
)
def test_a_head_is_read_exactly_as_http_server_reads_it(
    request_line: bytes, fields: bytes, end: bytes, rest: bytes, buffer_size: int | None
) -> None:
    data = request_line + fields + end + rest
    assert _parse(_Ours, data, buffer_size) == _parse(_Stdlib, data, buffer_size)


_ASKED = ("content-length", "connection", "expect", "transfer-encoding", "x-a", "host", "from", "authorization", "")


@settings(max_examples=400, deadline=None)
@given(
    request_line=_REQUEST_LINES,
    fields=_field_lines(),
    end=st.sampled_from([b"\r\n", b"\n", b""]),
    buffer_size=_BUFFER_SIZES,
)
def test_the_fields_the_handler_reads_are_the_message_s(
    request_line: bytes, fields: bytes, end: bytes, buffer_size: int | None
) -> None:
    """The handler reads fields from maps made once per head (plain heads) or from the message (any other head):
    either way what ``headers.get`` and ``headers.items`` give."""
    handler, ok = _run(_Ours, request_line + fields + end, buffer_size)
    if not ok:
        return
    assert [handler._field(n) for n in _ASKED] == [handler.headers.get(n) for n in _ASKED]
    expected = {k.lower(): v for k, v in handler.headers.items()}
    assert list(handler._field_map().items()) == list(expected.items())


@pytest.mark.parametrize(
    "fields",
    [
        b"X-A: x\ry\r\nHost: h\r\n",  # a lone CR in a value
        b"X-A: x\r\r\nHost: h\r\n",
        b"X-A: x\r\n y\r\n",  # a folded value
        b"X-A: x\r\nno colon\r\n",
        b"X A: x\r\n",  # a space in the name
        b"X-A:x\r\n\xc3\xa9: y\r\n",  # a name outside ASCII
        b"X-A: \xe9\x00\r\n",  # any byte but CR and LF is a value's
        b": x\r\n",
        b"X-A: x\r",  # cut
        b"X-A: 1\r\n" * 99,
        b"X-A: 1\r\n" * 100,  # one line too many with the blank line
    ],
)
@pytest.mark.parametrize("end", [b"\r\n", b"\n", b""])
def test_odd_heads_in_the_buffer_are_read_as_http_server_reads_them(fields: bytes, end: bytes) -> None:
    data = b"POST /x HTTP/1.1\r\n" + fields + end + b"rest"
    assert _parse(_Ours, data, 8192) == _parse(_Stdlib, data, 8192)


def test_a_plain_head_in_the_buffer_is_read_in_one_step_and_no_further(monkeypatch: pytest.MonkeyPatch) -> None:
    head = b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 4\nX-A:\t a b \r\n\r\nbody"
    lines_read: list[object] = []

    def read_head_lines(rfile: object) -> list[bytes]:
        lines_read.append(rfile)
        return []

    monkeypatch.setattr(_http, "read_head_lines", read_head_lines)
    handler, ok = _run(_Ours, head, 8192)
    assert ok is True
    assert lines_read == []
    assert handler.headers.items() == [("Host", "h"), ("Content-Length", "4"), ("X-A", "a b ")]
    assert handler.rfile.read() == b"body"


def test_a_plain_head_is_read_from_the_field_maps() -> None:
    head = b"POST /x HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2\r\nContent-Length: 0\r\nX-A: 3\r\n\r\n"
    handler, ok = _run(_Ours, head)
    assert ok is True
    assert handler._fields is not None
    assert handler._field("x-a") == "1"
    assert handler._field_map() == {"host": "h", "x-a": "3", "content-length": "0"}
    folded, ok = _run(_Ours, b"POST /x HTTP/1.1\r\nX-A: 1\r\n 2\r\n\r\n")
    assert ok is True
    assert folded._fields is None
    assert folded._field("x-a") == "1\r\n 2"
    assert folded._field_map() == {"x-a": "1\r\n 2"}


@settings(max_examples=400, deadline=None)
@given(data=st.binary(max_size=300), buffer_size=_BUFFER_SIZES)
def test_arbitrary_bytes_give_a_request_or_an_error_answer(data: bytes, buffer_size: int | None) -> None:
    for head in (data, b"POST /x HTTP/1.1\r\n" + data):
        seen = _parse(_Ours, head, buffer_size)
        assert seen == _parse(_Stdlib, head, buffer_size)
        if seen["ok"]:
            assert seen["written"] in (b"", b"HTTP/1.1 100 Continue\r\n\r\n")
        elif seen["written"]:
            # a bad request line or version (400, 505) or a head over the limits (431); an empty line: no answer.
            # An HTTP/0.9-style line (fewer than three words) gets the error page without a status line.
            assert isinstance(seen["written"], bytes)
            code = re.search(rb"<p>Error code: (\d+)</p>", seen["written"])
            assert code is not None
            assert code[1] in (b"400", b"431", b"505")


def test_limits_are_the_ones_http_client_applies() -> None:
    assert getattr(http.client, "_MAXLINE") == MAX_HEAD_LINE  # noqa: B009 (private, not in the type stubs)
    assert getattr(http.client, "_MAXHEADERS") == MAX_HEAD_LINES  # noqa: B009


@pytest.mark.parametrize(
    ("head", "status", "reason"),
    [
        (b"A: b\r\n" * (MAX_HEAD_LINES - 1) + b"\r\n", None, None),
        (b"A: b\r\n" * MAX_HEAD_LINES + b"\r\n", 431, b"Too many headers"),
        (b"A: " + b"b" * (MAX_HEAD_LINE - 5) + b"\r\n\r\n", None, None),
        (b"A: " + b"b" * (MAX_HEAD_LINE - 4) + b"\r\n\r\n", 431, b"Line too long"),
    ],
)
@pytest.mark.parametrize("buffer_size", [None, 8192, 1 << 17])
def test_head_limits(head: bytes, status: int | None, reason: bytes | None, buffer_size: int | None) -> None:
    ours = _parse(_Ours, b"POST /x HTTP/1.1\r\n" + head, buffer_size)
    assert ours == _parse(_Stdlib, b"POST /x HTTP/1.1\r\n" + head, buffer_size)
    if status is None:
        assert ours["ok"] is True
    else:
        assert ours["ok"] is False
        assert isinstance(ours["written"], bytes)
        assert ours["written"].startswith(f"HTTP/1.1 {status} ".encode() + reason)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("head", "close", "written"),
    [
        (
            b"POST /x HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\nabc",
            False,
            b"HTTP/1.1 100 Continue\r\n\r\n",
        ),
        (b"POST /x HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", True, b""),  # not for HTTP/1.0 clients
        (b"GET /x HTTP/1.1\r\nConnection: Close\r\n\r\n", True, b""),
        (b"GET /x HTTP/1.1\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", False, b""),  # the first counts
        (b"GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", False, b""),
        (b"GET /x HTTP/1.0\r\n\r\n", True, b""),
        (b"GET /x\r\nConnection: keep-alive\r\n\r\n", False, b""),  # HTTP/0.9 form, as http.server treats it
    ],
)
@pytest.mark.parametrize("buffer_size", [None, 8192])
def test_connection_and_expect(head: bytes, close: bool, written: bytes, buffer_size: int | None) -> None:
    ours = _parse(_Ours, head, buffer_size)
    assert ours == _parse(_Stdlib, head, buffer_size)
    assert (ours["ok"], ours["close"], ours["written"]) == (True, close, written)


def test_date_is_formatted_as_http_server_formats_it() -> None:
    handler = _Handler.__new__(_Handler)
    before = int(time.time())
    value = handler.date_time_string()
    after = int(time.time())
    assert value in {email.utils.formatdate(t, usegmt=True) for t in range(before, after + 1)}
    assert handler.date_time_string(86400.5) == "Fri, 02 Jan 1970 00:00:00 GMT"


def test_read_head_lines_stops_at_the_blank_line_or_eof() -> None:
    rfile = io.BytesIO(b"A: 1\r\nB: 2\n\r\nbody")
    assert read_head_lines(rfile) == [b"A: 1\r\n", b"B: 2\n", b"\r\n"]
    assert rfile.read() == b"body"
    assert read_head_lines(io.BytesIO(b"A: 1\r\n")) == [b"A: 1\r\n", b""]
    with pytest.raises(http.client.LineTooLong):
        read_head_lines(io.BytesIO(b"A" * (MAX_HEAD_LINE + 1)))
    with pytest.raises(http.client.HTTPException, match="got more than 100 headers"):
        read_head_lines(io.BytesIO(b"A: 1\r\n" * MAX_HEAD_LINES))


@pytest.mark.parametrize(
    ("lines", "fields"),
    [
        # duplicates kept in order; lookups are case-insensitive and give the first
        ([b"X-A: 1\r\n", b"x-a: 2\r\n", b"\r\n"], [("X-A", "1"), ("x-a", "2")]),
        # spaces and tabs after the colon go, trailing ones stay; values are Latin-1
        ([b"A:\t  v \t\r\n", b"B:\r\n", b"C: \xe9\n", b"\n"], [("A", "v \t"), ("B", ""), ("C", "\xe9")]),
        # obs-fold: the continuation is appended to the value, line break included (email parser behaviour)
        ([b"A: 1\r\n", b" 2\r\n", b"B: 3\r\n", b"\r\n"], [("A", "1\r\n 2"), ("B", "3")]),
        # a line that is not a field (no colon, a space in the name) ends the fields: later ones are ignored
        ([b"A: 1\r\n", b"no colon\r\n", b"B: 2\r\n", b"\r\n"], [("A", "1")]),
        ([b"A : 1\r\n", b"B: 2\r\n", b"\r\n"], []),
        # a lone CR ends a line for the email parser
        ([b"A: 1\rB: 2\r\n", b"\r\n"], [("A", "1"), ("B", "2")]),
        # a leading continuation line and an empty name are dropped
        ([b" x\r\n", b": y\r\n", b"A: 1\r\n", b"\r\n"], [("A", "1")]),
    ],
)
def test_parse_fields_semantics(lines: list[bytes], fields: list[tuple[str, str]]) -> None:
    message = parse_fields(lines)
    assert message.items() == fields
    assert message.items() == http.client.parse_headers(io.BytesIO(b"".join(lines))).items()
    if fields:
        assert message.get(fields[0][0].upper()) == fields[0][1]


# -- over a real TLS connection --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[EstServer]:
    with EstServer() as srv:
        yield srv


def _exchange(server: EstServer, data: bytes) -> bytes:
    """Send raw bytes on a new TLS connection; return everything the server sends until it closes."""
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(data)
        chunks = []
        while chunk := tls.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_duplicate_fields_are_recorded_last_wins_and_read_first_wins(server: EstServer) -> None:
    server.clear_requests()
    answer = _exchange(
        server,
        b"GET /.well-known/est/cacerts HTTP/1.1\r\nHost: localhost\r\nX-Dup: one\r\nx-dup: two\r\n"
        b"Content-Length: 0\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",  # the same length twice: allowed
    )
    assert answer.startswith(b"HTTP/1.1 200 ")
    (recorded,) = server.requests
    assert recorded.headers["x-dup"] == "two"
    assert recorded.headers["content-length"] == "0"
    assert recorded.body == b""


_ENROLL = b"POST /.well-known/est/simpleenroll HTTP/1.1\r\nHost: localhost\r\n"


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        (b"Content-Length: 0\r\nContent-Length: 7\r\n", b"not one number: 0, 7"),
        (b"Content-Length: 3, 4\r\n", b"not one number: 3, 4"),
        (b"Content-Length: +5\r\n", b"not one number: +5"),
        (b"Content-Length: 5_0\r\n", b"not one number: 5_0"),
        (b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", b"both Transfer-Encoding and Content-Length"),
        (b"Transfer-Encoding: chunked, gzip\r\n", b"does not end with chunked"),
    ],
)
def test_a_request_whose_body_length_is_ambiguous_gets_400_and_a_closed_connection(
    server: EstServer, fields: bytes, fragment: bytes
) -> None:
    # RFC 9112 §6.1 and §6.3: the server must not guess where the body ends (request smuggling), and closes.
    server.clear_requests()
    follow_up = b"GET /.well-known/est/cacerts HTTP/1.1\r\nHost: localhost\r\n\r\n"
    answer = _exchange(server, _ENROLL + fields + b"\r\n" + b"abcde" + follow_up)
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert fragment in answer
    assert b"Connection: close\r\n" in answer
    assert answer.count(b"HTTP/1.1 ") == 1  # nothing after it was read as another request
    assert [r.status for r in server.requests] == [400]


def test_a_chunk_size_that_is_not_hex_digits_is_refused(server: EstServer) -> None:
    answer = _exchange(server, _ENROLL + b"Transfer-Encoding: chunked\r\n\r\n+5\r\nabcde\r\n0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"badly chunked" in answer


def test_too_many_fields_get_431_over_tls(server: EstServer) -> None:
    answer = _exchange(server, b"GET /.well-known/est/cacerts HTTP/1.1\r\n" + b"X: y\r\n" * MAX_HEAD_LINES + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 431 Too many headers\r\n")
    assert b"Connection: close\r\n" in answer


def test_a_bad_request_line_gets_400_over_tls(server: EstServer) -> None:
    answer = _exchange(server, b"GET /x y HTTP/1.1\r\n\r\n")  # four words
    assert answer.startswith(b"HTTP/1.1 400 Bad request syntax")


def test_connection_close_and_folded_fields_over_tls(server: EstServer) -> None:
    server.clear_requests()
    request = (
        b"GET /.well-known/est/cacerts HTTP/1.1\r\nHost: localhost\r\nX-Fold: a\r\n b\r\nConnection: close\r\n\r\n"
    )
    answer = _exchange(server, request + request)  # the server closes after the first answer
    assert answer.count(b"HTTP/1.1 200 ") == 1
    (recorded,) = server.requests
    assert recorded.headers["x-fold"] == "a\r\n b"
