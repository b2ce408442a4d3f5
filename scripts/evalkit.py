"""Shared by the evaluation scripts: seed lists and their summaries.

Seeds 0-2 are development seeds (tune on them); report seeds (100 and up) are run only to report,
never while tuning. Every script takes ``--seeds`` and prints mean and worst over the seeds it ran.
"""
from __future__ import annotations

from typing import Iterable

DEV_SEEDS = "0-2"
REPORT_SEEDS = "100-104"


def parse_seeds(text: str) -> list[int]:
    """'0-2', '100,101' or '0-2,100' -> sorted unique seeds."""
    out: set[int] = set()
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part[1:]:
                a, b = part.split("-", 1)
                lo, hi = int(a), int(b)
                if hi < lo:
                    raise ValueError
                out.update(range(lo, hi + 1))
            else:
                out.add(int(part))
        except ValueError:
            raise SystemExit(f"--seeds: cannot parse '{part}' (expected e.g. 0-2 or 100,101)") from None
    if not out:
        raise SystemExit("--seeds: no seeds given")
    return sorted(out)


def seed_kind(seeds: Iterable[int]) -> str:
    """'dev', 'report' or 'mixed' (report seeds are >= 100)."""
    kinds = {"report" if s >= 100 else "dev" for s in seeds}
    return kinds.pop() if len(kinds) == 1 else "mixed"


def mean_worst(values: list[float], *, higher_is_better: bool = False) -> tuple[float, float]:
    """Mean and worst (min if higher is better, else max) of per-seed figures."""
    mean = float(sum(values) / len(values))
    return mean, float(min(values) if higher_is_better else max(values))
