"""Train one learned-keypoint detector per sim camera for the learner (issue 18 item 4), from the CLI.

The recipe the transfer figures in notes/keypoints.md use, on development seeds only:

1. ``--demos`` plain Place demos per goal region (seeds ``--seed`` ..), front camera as ``cam0`` and
   every further ``--cameras`` view beside it (``record --source sim --plain --view top``);
2. ``--explore`` plain exploration episodes (``record --source sim --plain --explore``, seed
   ``--explore-seed``): the arm in poses no demo reaches, so the detectors put keypoints on what
   moves there too (a detector trained on demos alone tracked the gripper only along the demos' paths);
3. per camera ``keypoints train --demos "tag:plain kind:demo,explore" --camera camI`` at ``--size``
   and ``--k``; the detectors are written to ``OUT/det_<camera>``.

    nice .venv/bin/python scripts/train_view_detectors.py --out runs/views [--cameras front,top]
        [--demos 15] [--explore 100] [--size 96] [--k 12] [--steps 1500]

Then ``scripts/eval_learned_transfer.py --detector OUT/det_front --detector OUT/det_top --camera front,top``.
The detectors train one after the other (``--parallel`` trains them at once, a process each).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path


def cli(*argv: str) -> list[str]:
    return [sys.executable, "-m", "robot_irl.cli", *argv]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="folder for the library and the detectors")
    ap.add_argument("--cameras", default="front,top", help="sim cameras, comma separated; the first is cam0")
    ap.add_argument("--demos", type=int, default=15, help="plain demos per goal region (development seeds)")
    ap.add_argument("--seed", type=int, default=0, help="first demo seed (0-2 ... development)")
    ap.add_argument("--explore", type=int, default=100, help="exploration episodes")
    ap.add_argument("--explore-seed", type=int, default=55)
    ap.add_argument("--size", type=int, default=96, help="detector input width")
    ap.add_argument("--k", type=int, default=12, help="keypoints per camera")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--parallel", action="store_true", help="train the detectors at once, one process each")
    args = ap.parse_args()
    out = Path(args.out)
    lib = str(out / "library")
    cams = [c.strip() for c in args.cameras.split(",") if c.strip()]
    views = [a for c in cams[1:] for a in ("--view", c)]
    t0 = time.perf_counter()
    if not (out / "library").exists():
        for region in ("left", "right"):
            subprocess.run(cli("record", "--source", "sim", "--plain", "--episodes", str(args.demos), "--seed",
                               str(args.seed), "--variant", f'{{"goal_region": "{region}"}}', "--library", lib,
                               *views), check=True)
        subprocess.run(cli("record", "--source", "sim", "--plain", "--explore", "--episodes", str(args.explore),
                           "--seed", str(args.explore_seed), "--library", lib, *views), check=True)
    t_rec = time.perf_counter() - t0
    jobs = []
    for i, cam in enumerate(cams):
        argv = cli("keypoints", "train", "--demos", "tag:plain kind:demo,explore", "--library", lib, "--camera",
                   f"cam{i}", "--size", str(args.size), "--k", str(args.k), "--steps", str(args.steps),
                   "--out", str(out / f"det_{cam}"), "--force", "--quiet")
        if args.parallel:
            jobs.append(subprocess.Popen(argv))
        else:
            subprocess.run(argv, check=True)
    if any(j.wait() for j in jobs):
        return 1
    print(f"recorded in {t_rec / 60:.1f} min, trained {len(cams)} detectors in "
          f"{(time.perf_counter() - t0 - t_rec) / 60:.1f} min: " + ", ".join(str(out / f"det_{c}") for c in cams))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
