"""Helpers shared by the benchmark scripts: timing with CPU time beside wall time, and a printed table."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Measurement:
    """One measured run: how many operations, wall seconds and this process's CPU seconds."""

    label: str
    operations: int
    wall_s: float
    cpu_s: float

    @property
    def per_second(self) -> float:
        """Operations per wall-clock second."""
        return self.operations / self.wall_s if self.wall_s else float("inf")

    @property
    def cpu_ms_per_op(self) -> float:
        """CPU milliseconds of this process per operation."""
        return 1000 * self.cpu_s / self.operations if self.operations else 0.0


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(label: str, operations: int, run: Callable[[], object]) -> Measurement:
    """Run ``run`` once and measure it as ``operations`` operations."""
    cpu0, wall0 = _cpu(), time.perf_counter()
    run()
    return Measurement(label, operations, time.perf_counter() - wall0, _cpu() - cpu0)


def print_table(rows: Sequence[Measurement], baseline: Measurement) -> None:
    """Print the measurements with each one's speed relative to ``baseline``."""
    print(f"{'run':<44} {'ops':>6} {'ops/s':>10} {'cpu ms/op':>10} {'vs baseline':>12}")
    for m in rows:
        ratio = m.per_second / baseline.per_second if baseline.per_second else float("nan")
        print(f"{m.label:<44} {m.operations:>6} {m.per_second:>10.1f} {m.cpu_ms_per_op:>10.2f} {ratio:>11.2f}x")
