"""Make a tiny sample demo library from the sim, so examples and tests need no committed binaries.

    .venv/bin/python demos/make_sample_library.py [--out demos/sample_library] [--episodes 4]

Records scripted-expert episodes of robot_irl/Place-v0 with a spread of variants (colours, goal
regions), seeds 0.. so the result is the same on every run, and prints what it wrote.
"""
from __future__ import annotations

import argparse
import itertools
from pathlib import Path

from robot_irl.library import Library
from robot_irl.record.sim import record_sim

VARIANTS = [{"color": c, "goal_region": g} for c, g in itertools.product(("red", "blue"), ("right", "left"))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "sample_library")
    ap.add_argument("--episodes", type=int, default=4)
    ap.add_argument("--env", default="robot_irl/Place-v0")
    ap.add_argument("--size", default="160x120", help="render size WxH (small keeps it tiny)")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    lib = Library.open(args.out, create=True)
    for i in range(args.episodes):
        for ep in record_sim(lib, args.env, episodes=1, seed=i, variant=VARIANTS[i % len(VARIANTS)],
                             render_size=(w, h), tags=["sample"]):
            print(f"{ep.id}  {ep.frame_count('cam0'):3d} frames  success={ep.success}  {ep.task}")
    print(f"sample library at {lib.path}: try `robot-irl demos list --library {lib.path} tag:sample`")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
