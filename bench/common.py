"""What the benchmarks share: reading a process's memory, percentiles."""

from __future__ import annotations

from pathlib import Path

__all__ = ["pct", "rss_mb"]


def rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    """The q-quantile by rank (no interpolation)."""
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]
