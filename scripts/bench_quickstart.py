"""Benchmark the quickstart: wall time per stage for ``--fast`` and the default run.

The baseline is the budget the quickstart issue sets on this machine kind (2 cores, no GPU):
≤ 120 s with --fast and ≤ 300 s for the default run; ``ratio`` = measured / budget (≤ 1 is good).
Usage: ``python scripts/bench_quickstart.py [--only-fast]``. Last line: one JSON object.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGET_S = {"fast": 120.0, "default": 300.0}


def run(mode: str, out: Path) -> dict[str, float]:
    cmd = [sys.executable, "-m", "robot_irl.cli", "quickstart", "--out", str(out)] + (["--fast"] if mode == "fast" else [])
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    stages = {p.stem: json.loads(p.read_text())["seconds"] for p in sorted((out / "stages").glob("*.json"))
              if p.stem != "order"}
    return {"wall_s": round(wall, 1), **{f"stage_{k}_s": v for k, v in stages.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only-fast", action="store_true")
    args = ap.parse_args()
    result: dict[str, float] = {}
    for mode in ("fast",) if args.only_fast else ("fast", "default"):
        out = Path(tempfile.mkdtemp(prefix=f"qs-{mode}-"))
        try:
            r = run(mode, out)
        finally:
            shutil.rmtree(out, ignore_errors=True)
        for k, v in r.items():
            print(f"{mode:8s} {k:24s} {v:8.1f}")
            result[f"{mode}_{k}"] = v
        result[f"{mode}_ratio"] = round(r["wall_s"] / BUDGET_S[mode], 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
