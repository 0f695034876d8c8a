"""The transports send a request's head and body in one write (one TLS record, one wake-up of the server)."""

from __future__ import annotations

import ssl
import typing

import httpcore
import pytest

from estclient import TrustAnchors
from estclient._transport import ServerChecks, _AsyncBackend, _AsyncStream, _SyncBackend, _SyncStream

HEAD = b"POST /.well-known/est/simpleenroll HTTP/1.1\r\nHost: est\r\nContent-Length: 4\r\n\r\n"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class _Recorder(httpcore.NetworkStream):
    def __init__(self) -> None:
        self.events: list[tuple[str, bytes]] = []

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self.events.append(("read", b""))
        return b"HTTP/1.1 200 OK\r\n\r\n"

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.events.append(("write", buffer))

    def close(self) -> None:
        self.events.append(("close", b""))


class _AsyncRecorder(httpcore.AsyncNetworkStream):
    def __init__(self) -> None:
        self.events: list[tuple[str, bytes]] = []

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self.events.append(("read", b""))
        return b"HTTP/1.1 200 OK\r\n\r\n"

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.events.append(("write", buffer))

    async def aclose(self) -> None:
        self.events.append(("close", b""))


def _checks() -> ServerChecks:
    return ServerChecks(TrustAnchors.system(), ssl.create_default_context(), may_probe=False)


def _sync_stream() -> tuple[_SyncStream, _Recorder]:
    inner = _Recorder()
    backend = _SyncBackend(typing.cast(httpcore.NetworkBackend, None), _checks(), via_proxy=False)
    return _SyncStream(inner, backend, "est", 443, via_proxy=False), inner


def test_head_and_body_go_out_together() -> None:
    stream, inner = _sync_stream()
    stream.write(HEAD)
    assert inner.events == []
    stream.write(b"MIIB")
    stream.read(100)
    assert inner.events == [("write", HEAD + b"MIIB"), ("read", b"")]


def test_a_held_head_is_sent_before_any_read() -> None:
    stream, inner = _sync_stream()
    stream.write(HEAD.replace(b"Content-Length: 4", b"Content-Length: 0"))
    stream.read(100)
    assert [kind for kind, _ in inner.events] == ["write", "read"]
    assert inner.events[0][1].startswith(b"POST ")


def test_get_requests_and_other_writes_are_not_held() -> None:
    stream, inner = _sync_stream()
    stream.write(b"GET /.well-known/est/cacerts HTTP/1.1\r\nHost: est\r\n\r\n")
    stream.write(b"more")
    assert [kind for kind, _ in inner.events] == ["write", "write"]


def test_close_drops_a_held_head() -> None:
    stream, inner = _sync_stream()
    stream.write(HEAD)
    stream.close()
    assert inner.events == [("close", b"")]


@pytest.mark.anyio
async def test_async_head_and_body_go_out_together() -> None:
    inner = _AsyncRecorder()
    backend = _AsyncBackend(typing.cast(httpcore.AsyncNetworkBackend, None), _checks(), via_proxy=False)
    stream = _AsyncStream(inner, backend, "est", 443, via_proxy=False)
    await stream.write(HEAD)
    assert inner.events == []
    await stream.write(b"MIIB")
    await stream.read(100)
    assert inner.events == [("write", HEAD + b"MIIB"), ("read", b"")]
    await stream.write(HEAD)
    await stream.read(100)
    assert inner.events[-2:] == [("write", HEAD), ("read", b"")]
    await stream.write(HEAD)
    await stream.aclose()
    assert inner.events[-1] == ("close", b"")
