"""Enrollments per second against the package's EST server, and the client's CPU time per enrollment.

The server (``estclient.testing.EstServer``, TLS + HTTP Basic, a local P-256 CA) runs in a separate process so
that the CPU time measured here is the client's alone. Every run sends pre-made CSRs (P-256) to
``/simpleenroll``:

* (a) one ``EstClient`` for the whole run: one kept-alive TLS connection for every enrollment (made in its
  first round, so the run pays for it once);
* (b) one ``AsyncEstClient`` for the whole run with 8 enrollments in flight;
* (c) a new ``EstClient`` per enrollment: a new TLS connection (and TLS context) each time, as a CLI process
  does (without the interpreter start-up, which would only widen the gap). This is the baseline.

It prints the ratios of (a) and (b) to (c); the target is (a) >= 3x (c). For reference it also runs (d): the
``est enroll`` command as one process per enrollment (a few runs; interpreter start-up and imports included).
Usage, from the repository root: ``uv run python -m benchmarks.est_enroll [ENROLLMENTS]`` (default 1500: rounds of
150, so that (a)'s rounds last a few tenths of a second and one scheduling hiccup of another process does not decide
a round's ratio).
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import multiprocessing
import os
import resource
import statistics
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
ROUNDS = 10
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
    """One client, one connection, for ``csrs`` (the warm-up)."""
    with EstClient(url, trust=trust, auth=BasicAuth(USER, PASSWORD)) as client:
        for csr in csrs:
            _check(client.simple_enroll(csr))


class OneClientForTheRun:
    """(a) One ``EstClient`` for every enrollment of the run, across the interleaved rounds.

    The client is made, and its connection opened, inside the first round's measurement, so the run pays for
    them once, as a program that keeps one client does.
    """

    def __init__(self, url: str, trust: TrustAnchors) -> None:
        self._url, self._trust = url, trust
        self._client: EstClient | None = None

    def __call__(self, csrs: list[x509.CertificateSigningRequest]) -> None:
        """Enroll ``csrs`` with the run's client."""
        if self._client is None:
            self._client = EstClient(self._url, trust=self._trust, auth=BasicAuth(USER, PASSWORD))
        for csr in csrs:
            _check(self._client.simple_enroll(csr))

    def close(self) -> None:
        """Close the run's client."""
        if self._client is not None:
            self._client.close()


class OneAsyncClientForTheRun:
    """(b) One ``AsyncEstClient`` for the whole run, CONCURRENCY enrollments in flight.

    One event loop (an ``asyncio.Runner``) lives across the interleaved rounds, so the client and its connections
    do too; they are made inside the first round's measurement.
    """

    def __init__(self, url: str, trust: TrustAnchors) -> None:
        self._url, self._trust = url, trust
        self._runner = asyncio.Runner()
        self._client: AsyncEstClient | None = None

    def __call__(self, csrs: list[x509.CertificateSigningRequest]) -> None:
        """Enroll ``csrs`` with the run's client, CONCURRENCY at a time."""
        self._runner.run(self._enroll(csrs))

    async def _enroll(self, csrs: list[x509.CertificateSigningRequest]) -> None:
        if self._client is None:
            self._client = AsyncEstClient(self._url, trust=self._trust, auth=BasicAuth(USER, PASSWORD))
        client, limit = self._client, asyncio.Semaphore(CONCURRENCY)

        async def one(csr: x509.CertificateSigningRequest) -> None:
            async with limit:
                _check(await client.simple_enroll(csr))

        await asyncio.gather(*(one(csr) for csr in csrs))

    def close(self) -> None:
        """Close the run's client and its event loop."""
        if self._client is not None:
            self._runner.run(self._client.aclose())
        self._runner.close()


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
    """Run the measurements in interleaved rounds and print them with the ratios to the baseline."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=_serve, args=(child,), daemon=True)
    process.start()
    per_round = max(1, count // ROUNDS)
    results: dict[str, list[tuple[Measurement, float]]] = {"a": [], "b": [], "c": []}
    try:
        url, ca_file = parent.recv()
        trust = TrustAnchors.explicit_anchors(ca_file)
        one_client(url, trust, _csrs(5))  # warm-up (imports, first handshake)

        def server_seconds() -> float:
            parent.send("cpu")
            value: float = parent.recv()
            return value

        run_client, run_async_client = OneClientForTheRun(url, trust), OneAsyncClientForTheRun(url, trust)
        modes: list[tuple[str, str, Callable[[list[x509.CertificateSigningRequest]], None]]] = [
            ("a", "(a) EstClient, one connection", run_client),
            ("b", f"(b) AsyncEstClient, concurrency {CONCURRENCY}", run_async_client),
            ("c", "(c) new connection per enrollment", lambda csrs: new_connection_each(url, ca_file, csrs)),
        ]
        # Interleaved rounds: a load spike from other processes hits every mode alike, not one run.
        for _ in range(ROUNDS):
            for key, label, run in modes:
                csrs = _csrs(per_round)
                before = server_seconds()
                measured = measure(label, per_round, functools.partial(run, csrs))
                results[key].append((measured, 1000 * (server_seconds() - before) / per_round))
        run_client.close()
        run_async_client.close()
        d = cli_processes(url, ca_file, min(count, CLI_RUNS))
    finally:
        parent.send("stop")
        process.join(10)
    best = {key: max(rounds, key=lambda r: r[0].per_second) for key, rounds in results.items()}
    a, b, c = best["a"][0], best["b"][0], best["c"][0]
    print(
        f"{ROUNDS} interleaved rounds of {per_round} enrollments per mode, TLS + HTTP Basic, server in its own process"
    )
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"machine: {os.cpu_count()} CPUs, load average {load} (other processes slow every mode; compare ratios)")
    if importlib.util.find_spec("sniffio") is None:
        print("sniffio is not installed: (b) pays httpcore's repeated failed 'import sniffio' (see docs/estclient)")
    print("best round of each mode:")
    print_table([a, b, c, d], c)
    ratios_a = [ra.per_second / rc.per_second for (ra, _), (rc, _) in zip(results["a"], results["c"], strict=True)]
    ratios_b = [rb.per_second / rc.per_second for (rb, _), (rc, _) in zip(results["b"], results["c"], strict=True)]
    median_a = statistics.median(ratios_a)
    verdict = "met" if median_a >= TARGET_RATIO else "NOT met"
    print(f"(a)/(c): best rounds {a.per_second / c.per_second:.2f}x; per round {_fmt(ratios_a)}")
    print(f"(a)/(c) median of rounds = {median_a:.2f}x  (target >= {TARGET_RATIO:.0f}x: {verdict})")
    print(
        f"(b)/(c): best rounds {b.per_second / c.per_second:.2f}x; median of rounds {statistics.median(ratios_b):.2f}x"
    )
    client_cpu = {k: statistics.median(m.cpu_ms_per_op for m, _ in results[k]) for k in "abc"}
    cpu = ", ".join(f"({k}) {ms:.2f}" for k, ms in client_cpu.items())
    print(f"client CPU ms per enrollment (median of rounds): {cpu}")
    saved = ", ".join(f"(c)/({k}) {client_cpu['c'] / client_cpu[k]:.2f}x" for k in "ab")
    print(f"client CPU per enrollment, the baseline's over each mode's: {saved}")
    cpu = ", ".join(f"({k}) {statistics.median(ms for _, ms in results[k]):.2f}" for k in "abc")
    print(f"server CPU ms per enrollment (median of rounds; separate process, for reference): {cpu}")


def _fmt(values: list[float]) -> str:
    return " ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1500)
