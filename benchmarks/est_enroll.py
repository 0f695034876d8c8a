"""Enrollments per second against the package's EST server, and the client's CPU time per enrollment.

The server (``estclient.testing.EstServer``, TLS + HTTP Basic, a local P-256 CA) runs in a separate process so
that the CPU time measured here is the client's alone. Every run sends pre-made CSRs (P-256) to
``/simpleenroll``:

* (a) one ``EstClient``: one kept-alive TLS connection for every enrollment;
* (b) one ``AsyncEstClient`` with 8 enrollments in flight;
* (c) a new ``EstClient`` per enrollment: a new TLS connection (and TLS context) each time, as a CLI process
  does (without the interpreter start-up, which would only widen the gap). This is the baseline.

It prints the ratios of (a) and (b) to (c); the target is (a) >= 3x (c). For reference it also runs (d): the
``est enroll`` command as one process per enrollment (a few runs; interpreter start-up and imports included).
Usage: ``uv run python benchmarks/est_enroll.py [ENROLLMENTS]`` (default 200).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: benchmarks/

from benchmarks._common import Measurement, measure, print_table
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from estclient import AsyncEstClient, BasicAuth, EnrollResult, EstClient, TrustAnchors

USER, PASSWORD = "bench", "bench-password"
CONCURRENCY = 8
CLI_RUNS = 10  # est processes are slow to start: a few suffice
TARGET_RATIO = 3.0


def _serve(conn: Connection) -> None:
    """Run the EST server in this (child) process until the parent says stop."""
    from estclient.testing import EstServer

    with EstServer(users={USER: PASSWORD}) as server:
        conn.send((server.url, str(server.ca_file)))
        while conn.recv() == "cpu":  # report this process's CPU seconds until told to stop
            usage = resource.getrusage(resource.RUSAGE_SELF)
            conn.send(usage.ru_utime + usage.ru_stime)


def _csrs(count: int) -> list[x509.CertificateSigningRequest]:
    key = ec.generate_private_key(ec.SECP256R1())  # one key keeps set-up short; the server issues per CSR
    return [
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"bench-{i}")]))
        .sign(key, hashes.SHA256())
        for i in range(count)
    ]


def _check(result: object) -> None:
    if not isinstance(result, EnrollResult):
        raise SystemExit(f"enrollment did not issue: {result!r}")


def one_client(url: str, trust: TrustAnchors, csrs: list[x509.CertificateSigningRequest]) -> None:
    """(a) One client, one connection."""
    with EstClient(url, trust=trust, auth=BasicAuth(USER, PASSWORD)) as client:
        for csr in csrs:
            _check(client.simple_enroll(csr))


def async_client(url: str, trust: TrustAnchors, csrs: list[x509.CertificateSigningRequest]) -> None:
    """(b) One async client, CONCURRENCY enrollments in flight."""

    async def run() -> None:
        limit = asyncio.Semaphore(CONCURRENCY)
        async with AsyncEstClient(url, trust=trust, auth=BasicAuth(USER, PASSWORD)) as client:

            async def one(csr: x509.CertificateSigningRequest) -> None:
                async with limit:
                    _check(await client.simple_enroll(csr))

            await asyncio.gather(*(one(csr) for csr in csrs))

    asyncio.run(run())


def new_connection_each(url: str, ca_file: str, csrs: list[x509.CertificateSigningRequest]) -> None:
    """(c) A new client (TLS context, connection, handshake) per enrollment, as a CLI process would."""
    for csr in csrs:
        with EstClient(url, trust=TrustAnchors.explicit_anchors(ca_file), auth=BasicAuth(USER, PASSWORD)) as client:
            _check(client.simple_enroll(csr))


def cli_processes(url: str, ca_file: str, count: int) -> Measurement:
    """(d) For reference: ``est enroll`` as a new process per enrollment (interpreter start-up included).

    The CPU time counted is the child processes' (RUSAGE_CHILDREN).
    """
    code = "import sys; from estclient._cli import main; sys.exit(main())"
    env = {**os.environ, "EST_PASSWORD": PASSWORD}
    with tempfile.TemporaryDirectory() as folder:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        for i in range(count):
            args = ["--server", url, "--ca-file", ca_file, "--user", USER, "enroll", "--new-key", "ec:P-256"]
            args += ["--subject", f"CN=cli-{i}", "--key-out", f"{folder}/{i}.key", "-o", f"{folder}/{i}.pem"]
            done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"est enroll failed ({done.returncode}): {done.stderr.strip()}")
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return Measurement("(d) est enroll, one process each (reference)", count, wall, cpu)


def main(count: int) -> None:
    """Run the three measurements and print them with the ratios to the baseline."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=_serve, args=(child,), daemon=True)
    process.start()
    try:
        url, ca_file = parent.recv()
        trust = TrustAnchors.explicit_anchors(ca_file)
        one_client(url, trust, _csrs(5))  # warm-up (imports, first handshake)
        csrs_a, csrs_b, csrs_c = _csrs(count), _csrs(count), _csrs(count)
        server_cpu: list[float] = []

        def server_seconds() -> float:
            parent.send("cpu")
            value: float = parent.recv()
            return value

        def timed(label: str, run: Callable[[], None]) -> Measurement:
            before = server_seconds()
            result = measure(label, count, run)
            server_cpu.append(1000 * (server_seconds() - before) / count)
            return result

        a = timed("(a) EstClient, one connection", lambda: one_client(url, trust, csrs_a))
        b = timed(f"(b) AsyncEstClient, concurrency {CONCURRENCY}", lambda: async_client(url, trust, csrs_b))
        c = timed("(c) new connection per enrollment", lambda: new_connection_each(url, ca_file, csrs_c))
        d = cli_processes(url, ca_file, min(count, CLI_RUNS))
    finally:
        parent.send("stop")
        process.join(10)
    print(f"{count} enrollments per run, TLS + HTTP Basic, server in a separate process")
    print_table([a, b, c, d], c)
    ratio_a = a.per_second / c.per_second
    ratio_b = b.per_second / c.per_second
    verdict = "met" if ratio_a >= TARGET_RATIO else "NOT met"
    print(f"(a)/(c) = {ratio_a:.2f}x  (target >= {TARGET_RATIO:.0f}x: {verdict})")
    print(f"(b)/(c) = {ratio_b:.2f}x")
    cpu = ", ".join(f"{m.label[:3]} {m.cpu_ms_per_op:.2f}" for m in (a, b, c))
    print(f"client CPU ms per enrollment: {cpu}")
    cpu = ", ".join(f"{m.label[:3]} {ms:.2f}" for m, ms in zip((a, b, c), server_cpu, strict=True))
    print(f"server CPU ms per enrollment (separate process, for reference): {cpu}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
