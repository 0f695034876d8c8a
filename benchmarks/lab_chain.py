"""The whole CAPF Online CA chain (``capf-lab``): phones per second and the time spent in each hop.

Each run is a fresh lab (its own PKI, AD CS emulator with NTLM, RA, CAPF) on loopback; the phones enroll with
EC keys (``--key ec``, so key generation does not dominate). The baseline is one phone at a time; the other runs
use more concurrency, in the same process. Per hop:

* phone: a phone's whole session as the phone sees it (TLS to CAPF, the CAPF exchange, the enrollment behind it);
* EST: CAPF's enrollment over EST (``CapfServer``'s ``est_seconds``: RA and AD CS included);
* AD CS: the ``time-taken`` IIS logged for the RA's requests, per enrollment.

Beside our HTTP requests to AD CS per enrollment stands the seed's count: its IIS log shows seven per phone
(401, 301, certrqxt.asp, 401, 301, certfnsh.asp, certnew.cer). Usage:
``uv run python benchmarks/lab_chain.py [PHONES]`` (default 40).
"""

from __future__ import annotations

import resource
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: benchmarks/

from benchmarks._common import Measurement, print_table

from capf_online_ca.lab import LabOptions, LabReport, run_lab

SEED_REQUESTS_PER_ENROLLMENT = 7


def _mean_ms(values: list[float]) -> float:
    return 1000 * statistics.fmean(values) if values else float("nan")


def run(phones: int, concurrency: int) -> tuple[Measurement, LabReport]:
    """One lab run: wall time of the phones only; CPU of this process (every hop) including the lab's start-up."""
    cpu_before = _cpu()
    with tempfile.TemporaryDirectory(prefix="lab-bench-") as folder:
        report = run_lab(LabOptions(Path(folder), phones=phones, concurrency=concurrency, key="ec", attempts=1))
    installed = sum(r.result.succeeded for r in report.rows)
    label = f"{phones} phones, concurrency {concurrency}"
    return Measurement(label, installed, report.elapsed, _cpu() - cpu_before), report


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    """Run the baseline and the concurrent runs, print phones/s, per-hop times and request counts."""
    phones = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    runs = [run(phones, concurrency) for concurrency in (1, 10, 20)]
    baseline = runs[0][0]
    print("phones per second through the whole chain (CPU: every hop runs in this process; start-up included)")
    print_table([m for m, _ in runs], baseline)
    print()
    print(f"{'run':<44} {'phone ms':>9} {'EST ms':>8} {'AD CS ms':>9} {'IIS req/enroll':>15} {'seed':>5}")
    for measurement, report in runs:
        enrollments = len(report.ca_request_ids) or 1
        phone = _mean_ms([r.result.elapsed for r in report.rows])
        est = _mean_ms([s.est_seconds for s in report.sessions if s.est_seconds is not None])
        adcs = sum(e.time_taken_ms for e in report.iis_requests) / enrollments
        per_enrollment = len(report.iis_requests) / enrollments
        print(
            f"{measurement.label:<44} {phone:>9.1f} {est:>8.1f} {adcs:>9.1f} {per_enrollment:>15.2f} "
            f"{SEED_REQUESTS_PER_ENROLLMENT:>5}"
        )
        if not report.ok:
            print(f"  warning: the run was not healthy: {report.analyzer_problems}")


if __name__ == "__main__":
    main()
