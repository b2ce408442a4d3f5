#!/usr/bin/env python
"""`robot-irl run` with default settings on a trained Place cost, to held-out goals (issues 14, 19).

Per seed: record Place-v0 expert demos in PyBullet (5 train, ``--goals`` held out; goal regions
alternate left/right), fit a timedep cost on the train demos' ground-truth robot keypoints with
the kinematic model or (``--dynamics learned``) with learned keypoint dynamics trained on sim
exploration rows, then call the `robot-irl run` command (in process, --arm pybullet, the safety
filter on, no other option) to each held-out demo's recorded goal, from that demo's start pose
(``--start like``: `--like`) or from the arm's home pose (``--start home``; both: half each).
Reached = every robot keypoint within 2 cm of the goal at the end, judged on the simulator's true
keypoints (the sim robot's own URDF at the run's last measured joints), not the run's model;
the command's exit code must agree (0 reached, 1 not).

Privileged inputs, said here as the house asks: goals are the demos' recorded goal_3d and starts
their logged joints (this checks the runner on learned dynamics, not learning from video).
Seeds: 0-2 for development, 100+ to report.

Usage: nice -n 10 .venv/bin/python scripts/eval_run.py [--seeds 100] [--dynamics kinematic|learned]
       [--start like|home|both] [--goals 20] [--explore 300]
Last line: one JSON object (reached_min, goals, exit_agrees, final_err_cm_median, seeds, data).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def parse_seeds(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
    return out


def one_seed(seed: int, root: Path, explore: int, goals: int, dynamics: str, start: str) -> dict:
    import pybullet_data

    from robot_irl.control import cli as control_cli
    from robot_irl.control.pybullet_arm import PyBulletBackend
    from robot_irl.irl import LearnerConfig, fit_cost
    from robot_irl.irl.library_demos import demos_from_library
    from robot_irl.library import Library
    from robot_irl.models.cli import robot_description
    from robot_irl.models.collect import collect_exploration
    from robot_irl.models.learned import DynamicsTrainConfig, train_dynamics
    from robot_irl.models import KinematicDynamics, frames_from_spec
    from robot_irl.record.sim import record_sim
    from sim.robots import ROBOTS

    lib_path = root / f"lib{seed}"
    lib = Library.open(lib_path, create=True)
    held = []
    for r, region in enumerate(("left", "right")):      # demos and goals in both goal regions
        record_sim(lib, "robot_irl/Place-v0", episodes=3 - r, seed=seed * 1000 + 10 * r, render_size=(64, 48),
                   variant={"goal_region": region}, tags=["train"])
        held += record_sim(lib, "robot_irl/Place-v0", episodes=(goals + 1 - r) // 2, seed=seed * 1000 + 500 + 100 * r,
                           render_size=(64, 48), variant={"goal_region": region}, tags=["heldout"])
    train, spec = demos_from_library(lib, "tag:train", rows=10, keypoints="truth")
    if dynamics == "learned":
        data = collect_exploration("robot_irl/Place-v0", robot="iiwa", episodes=explore, seed=seed + 7)
        model, dyn_err = train_dynamics(data["x"], data["q"], data["u"], lower=data["lower"], upper=data["upper"],
                                        cfg=DynamicsTrainConfig(seed=seed), **robot_description(data))
        model.save(root / f"dyn{seed}.pt")
    else:
        model, dyn_err = KinematicDynamics(os.path.join(pybullet_data.getDataPath(), ROBOTS["iiwa"].urdf),
                                           frames_from_spec(spec)), {}
    run_dir = root / f"run{seed}"
    fit_cost(train, model, "timedep", LearnerConfig(rows=10, outer_iters=60, checkpoint_every=10_000,
                                                    log_every=10_000), run_dir=run_dir)
    idx = [held[0].keypoint_spec.index(n) for n in spec.names]
    parser = control_cli.argparse.ArgumentParser()
    control_cli.register(parser.add_subparsers(dest="cmd"))
    finals, codes, outcomes, planned = [], [], [], []
    starts = []
    for i, ep in enumerate(held):
        goal = ep.arrays("state")["goal_3d"][0][idx]
        np.save(root / f"{ep.id}.npy", goal)
        like = start == "like" or (start == "both" and i % 2 == 0)
        starts.append("like" if like else "home")
        args = parser.parse_args(["run", "--arm", "pybullet", "--run", str(run_dir), "--goal", str(root / f"{ep.id}.npy"),
                                  "--library", str(lib_path), "--json"] + (["--like", ep.id] if like else []))
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            codes.append(args.func(args))
        out = json.loads(buf.getvalue().strip().splitlines()[-1])
        outcomes.append(out["outcome"])
        planned.append(round(out["planned_final_err_cm"], 2))
        run_ep = Library.open(lib_path).episode(out["episode"])
        q_end = run_ep.arrays("state")["joint_pos"][-1]
        truth = true_keypoints(q_end, spec)       # the simulator's keypoints at the run's last measured joints
        finals.append(float(np.max(np.linalg.norm(truth - goal, axis=-1))))
    finals_cm = np.array(finals) * 100
    agrees = all((c == 0) == (e < 2.0) for c, e in zip(codes, finals_cm))
    return {"seed": seed, "reached": int(np.sum(finals_cm < 2.0)), "goals": len(held),
            "final_err_cm": finals_cm.round(2).tolist(), "dyn_one_step_err_cm": dyn_err.get("one_step_err_cm"),
            "exit_codes": codes, "exit_agrees": agrees, "starts": starts, "outcomes": outcomes,
            "planned_final_err_cm": planned}


def true_keypoints(q: np.ndarray, spec) -> np.ndarray:
    """Robot keypoints of the PyBullet iiwa at joints ``q`` (the sim's own kinematics, not the run's model)."""
    from robot_irl.models import KinematicDynamics, frames_from_spec
    import pybullet_data
    from sim.robots import ROBOTS
    import torch

    dyn = KinematicDynamics(os.path.join(pybullet_data.getDataPath(), ROBOTS["iiwa"].urdf), frames_from_spec(spec))
    with torch.no_grad():
        return dyn.keypoints(dyn.as_tensor(q[None]))[0].numpy()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="100", help="e.g. 0-2 (development) or 100-102 (report)")
    ap.add_argument("--explore", type=int, default=300,
                    help="exploration episodes for the learned dynamics (300: chosen on dev seed 0; 150 missed the left region)")
    ap.add_argument("--goals", type=int, default=20, help="held-out goals per seed (regions alternate)")
    ap.add_argument("--dynamics", choices=("kinematic", "learned"), default="kinematic")
    ap.add_argument("--start", choices=("like", "home", "both"), default="both",
                    help="each run starts from its held-out demo's start pose, the home pose, or half each")
    a = ap.parse_args()
    rows = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in parse_seeds(a.seeds):
            r = one_seed(seed, Path(tmp), a.explore, a.goals, a.dynamics, a.start)
            dyn = "" if r["dyn_one_step_err_cm"] is None else f"; dynamics one-step {r['dyn_one_step_err_cm']:.2f} cm"
            print(f"seed {seed} ({a.dynamics} dynamics): reached {r['reached']}/{r['goals']} within 2 cm; final errors "
                  f"{r['final_err_cm']} cm (starts {r['starts']}; outcomes {r['outcomes']}; planned final errors "
                  f"{r['planned_final_err_cm']} cm){dyn}; exit codes {r['exit_codes']} "
                  f"({'agree' if r['exit_agrees'] else 'DISAGREE'} with the true error)")
            rows.append(r)
    errs = np.concatenate([r["final_err_cm"] for r in rows])
    print(json.dumps({"reached_min": min(r["reached"] for r in rows), "goals": a.goals, "dynamics": a.dynamics,
                      "start": a.start, "exit_agrees": all(r["exit_agrees"] for r in rows),
                      "final_err_cm_median": float(np.median(errs)), "final_err_cm_max": float(errs.max()),
                      "seeds": parse_seeds(a.seeds), "data": "sim Place-v0 (recorded goals, logged start joints)",
                      "wall_s": round(time.perf_counter() - t0, 1)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
