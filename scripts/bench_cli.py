#!/usr/bin/env python
"""How fast the `robot-irl` command answers, and what the command costs over the API for a fit.

* ``version_s``, ``help_s``: wall time of ``robot-irl --version`` / ``--help`` (subprocess);
  ``bad_image_s``: of ``robot-irl search --image nosuch.png`` (refused); medians of 5 runs, each
  after one untimed warm-up. ``python_s``: a bare ``python -c pass``, the floor, in the same run.
* ``train_overhead_ratio``: CPU time (user + sys) of the whole ``robot-irl train`` process over the
  CPU time of the same fit from the Python API (``fit_cost`` with a run folder, so TensorBoard,
  checkpoints and plots are on in both), on the paper's task (scripts/bench_irl.py: Kuka iiwa,
  two flange keypoints, six L-shaped demos, train 0-2, test 3-4, timedep cost, default settings).
  The API figure is measured around ``fit_cost`` in a process of its own, after its imports.

Children run with compiled-bytecode caching on (PYTHONPYCACHEPREFIX in a temporary folder, warmed
first), as an installed package has; ``--cold`` measures without it (PYTHONDONTWRITEBYTECODE=1 and a
venv installed with ``pip --no-compile``: every process recompiles torch, ~20 s CPU of a train). Targets: version, help, bad image < 1 s; ratio
<= 1.3. Last line: one JSON object.

    .venv/bin/python scripts/bench_cli.py [--iters 400] [--runs 5]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FRAMES = "flange_5cm@lbr_iiwa_link_7:0,0,0.05;flange_10cm@lbr_iiwa_link_7:0,0,0.1"

API_FIT = """
import json, os, sys, time
import numpy as np, pybullet_data
from robot_irl.irl import DemoSet, LearnerConfig, fit_cost
from robot_irl.irl.demos import load_keypoint_file
from robot_irl.models import KinematicDynamics, parse_keypoint_frames
demos_file, out, iters = sys.argv[1], sys.argv[2], int(sys.argv[3])
demos = load_keypoint_file(demos_file)
model = KinematicDynamics(os.path.join(pybullet_data.getDataPath(), "kuka_iiwa", "model.urdf"),
                          parse_keypoint_frames(sys.argv[4]))
t0 = time.process_time()
fit_cost(demos.subset([0, 1, 2]), model, "timedep", LearnerConfig(outer_iters=iters), run_dir=out,
         eval_demos=demos.subset([3, 4]))
print(json.dumps({"fit_cpu_s": time.process_time() - t0}))
"""


def _env(cache: Path, cold: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
    env.update(PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    if cold:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    else:
        env["PYTHONPYCACHEPREFIX"] = str(cache)
    return env


def _wall(cmd: list[str], env: dict[str, str], runs: int) -> float:
    subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True)   # warm-up (bytecode cache, page cache)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _child_cpu(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stderr}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), r.stdout


def _demos_file(path: Path) -> None:
    """The paper's six L-shaped demos (scripts/bench_irl.py), as a keypoint file the CLI reads."""
    import numpy as np
    import pybullet_data

    sys.path.insert(0, str(ROOT / "scripts"))
    from bench_irl import make_demos

    from robot_irl.models import KinematicDynamics, parse_keypoint_frames

    model = KinematicDynamics(os.path.join(pybullet_data.getDataPath(), "kuka_iiwa", "model.urdf"),
                              parse_keypoint_frames(FRAMES))
    d = make_demos(model, seed=0)
    np.savez(path, keypoints=d.keypoints, timestamps=d.timestamps[0], q0=np.asarray(d.q0)[0])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iters", type=int, default=400, help="outer iterations of the fit (default: train's 400)")
    ap.add_argument("--runs", type=int, default=5, help="timed runs per start-up figure (median)")
    ap.add_argument("--cold", action="store_true", help="no bytecode cache (PYTHONDONTWRITEBYTECODE=1): every "
                    "process compiles what it imports, as in a venv installed with --no-compile under that setting")
    args = ap.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="bench_cli_") as tmp:
        tmp = Path(tmp)
        env = _env(tmp / "pycache", args.cold)
        cli = [py, "-m", "robot_irl.cli"]
        figures = {"python_s": _wall([py, "-c", "pass"], env, args.runs),
                   "version_s": _wall(cli + ["--version"], env, args.runs),
                   "help_s": _wall(cli + ["--help"], env, args.runs),
                   "bad_image_s": _wall(cli + ["search", "--image", "nosuch.png"], env, args.runs)}
        for key, value in figures.items():
            print(f"{key:<12} {value:.3f} s (median of {args.runs})")
        demos = tmp / "demos.npz"
        _demos_file(demos)
        train = cli + ["train", "--demos", str(demos), "--urdf",
                       os.path.join(__import__("pybullet_data").getDataPath(), "kuka_iiwa", "model.urdf"),
                       "--keypoint-frames", FRAMES, "--train", "0-2", "--test", "3,4", "--iters", str(args.iters),
                       "--quiet"]
        api = [py, "-c", API_FIT, str(demos), "", str(args.iters), FRAMES]
        _child_cpu(api[:4] + [str(tmp / "warm_api")] + api[5:], env)          # warm the bytecode cache
        cli_cpu, _ = _child_cpu(train + ["--out", str(tmp / "cli")], env)
        _, out = _child_cpu(api[:4] + [str(tmp / "api")] + api[5:], env)
        api_cpu = json.loads(out.strip().splitlines()[-1])["fit_cpu_s"]
        figures.update(train_cli_cpu_s=cli_cpu, train_api_fit_cpu_s=api_cpu,
                       train_overhead_ratio=cli_cpu / api_cpu, iters=args.iters, cold=args.cold)
        print(f"train ({args.iters} iterations): robot-irl train {cli_cpu:.1f} s CPU, fit_cost from the API "
              f"{api_cpu:.1f} s CPU, ratio {cli_cpu / api_cpu:.2f}")
    ok = max(figures["version_s"], figures["help_s"], figures["bad_image_s"]) < 1.0 \
        and figures["train_overhead_ratio"] <= 1.3
    print(f"targets (version, help, bad image < 1 s; train ratio <= 1.3): {'met' if ok else 'NOT met'}")
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
