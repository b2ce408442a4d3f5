#!/usr/bin/env python
"""A person shows, the robot does (issue 20): person demos with no robot in view → the robot
carries the object to held-out goals under the learned cost, through the safety filter.

Per seed: render ``--demos`` person demos in the simulator (``sim.person``: an invisible hand
moves the cube along a human-like path — uneven speed, tremor, a pause, an arc — with the
reference ``world`` marker in view and no robot), record them into a library as camera episodes
(``tag:person``), extract the object's keypoints with OpenCV in the reference marker's world
frame (``robot-irl extract``), register the world frame to the robot base by touching the
marker's corners with the flange in teach mode (the sim's hand puts the arm there with ~1 mm
of touch error), learn a timedep cost over the object's keypoints with the held-object dynamics
(carries aligned by progress), then for each of ``--goals`` held-out (object start, goal) pairs:
a fresh PyBullet cell, the arm finds the object with the camera (same extraction), grasps it
from above, lifts it by the demos' lift, carries it under the learned cost (``run_learned``,
through the safety filter), lets go and retreats; success = the object's centre, extracted from
the run's own camera frames after release, within 2 cm of the goal. Path error = mean distance
(over equal steps of path length) of the carried object's path (model FK of the measured
joints) to the demos' style carried to the run's start and end
(``robot_irl.irl.object_demos.style_reference``: each coordinate's progress profile, fitted over
the demos' true paths — scoring only). Beside it, for comparison with figures before that
mapping: the same error against the demos' straight-line deviations moved unscaled onto the
run's ends (``*_devmap``), which put a ~1 cm floor under every path.

Beside it: the default cost (Euclidean to the goal, same pipeline) and the ceiling: the same
learner on the demos' true object keypoints with the true registration (what a robot-recorded
demo's joint log gives through FK: no video, no extraction, no registration error).
Privileged data, said as the house asks: the sim's truth is used for the ceiling and for the
style reference of the path error only; learning and judging use video.
Seeds: 0-2 development (tuned on), 100+ report.

Usage: nice -n 10 .venv/bin/python scripts/eval_person.py [--seeds 100,101] [--demos 5] [--goals 20]
       [--baseline-goals N] [--iters 150] [--rows 10]
Last line: one JSON object (success_rate_min, obj_path_err_cm, path_ratio, ceiling_obj_path_err_cm, seeds, ...).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evalkit import mean_worst, parse_seeds, seed_kind  # noqa: E402


def goals_for(seed: int, n: int) -> list[tuple[np.ndarray, np.ndarray, float]]:
    from sim.person import sample_start_goal

    rng = np.random.default_rng(70_000 + seed)   # a stream the demos never draw from
    out = []
    for _ in range(n):
        s, g = sample_start_goal(rng)
        out.append((s, g, float(rng.uniform(-10, 10))))
    return out


def devmap_path_error(path: np.ndarray, fine: np.ndarray) -> float:
    """The earlier style mapping, kept here only to compare with figures before the change: each
    demo's deviation from its own start-to-end line kept unscaled, its ends moved onto the path's,
    compared at the demos' progress steps (m)."""
    from robot_irl.irl.object_demos import progress_resample

    p = progress_resample(np.asarray(path, float), fine.shape[1])[:, 0]
    s = np.linspace(0.0, 1.0, fine.shape[1])[:, None]
    d = fine[:, :, 0]
    mapped = d + (1 - s) * (p[0] - d[:, :1]) + s * (p[-1] - d[:, -1:])
    return float(np.mean(np.linalg.norm(p - mapped.mean(0), axis=-1)))


def run_method(name: str, trained, setup, reg, goals, ref_fine) -> dict:
    from robot_irl.errors import InputError
    from robot_irl.irl.object_demos import style_path_error
    from robot_irl.record.person_pipeline import run_goal

    ok, errs, paths, devmap, clamps, refused, per_goal = [], [], [], [], [], [], []
    for s, g, yaw in goals:
        try:
            res = run_goal(trained, setup, reg, s, g, yaw_deg=yaw)
        except InputError as e:      # e.g. a grasp out of reach: the goal failed, said why
            ok.append(False)
            refused.append(str(e))
            per_goal.append(None)
            continue
        ok.append(res.record.succeeded)
        errs.append(res.record.err_m * 100)
        paths.append(style_path_error(res.path, ref_fine) * 100)
        per_goal.append(paths[-1])
        devmap.append(devmap_path_error(res.path, ref_fine) * 100)
        clamps.append(res.record.run.summary()["clamped_steps"])
    r = {"success": float(np.mean(ok)), "err_cm_median": float(np.median(errs)) if errs else float("nan"),
         "err_cm_max": float(np.max(errs)) if errs else float("nan"),
         "path_err_cm": float(np.mean(paths)) if paths else float("nan"),
         "path_err_cm_devmap": float(np.mean(devmap)) if devmap else float("nan"), "goals": len(goals),
         "path_err_cm_per_goal": per_goal,
         "refused": refused, "clamped_steps_max": int(max(clamps)) if clamps else 0}
    print(f"  {name:10s} success {r['success']:.0%} ({len(goals)} goals, {len(refused)} refused)  final err median "
          f"{r['err_cm_median']:.2f} max {r['err_cm_max']:.2f} cm  path err {r['path_err_cm']:.2f} cm "
          f"(devmap {r['path_err_cm_devmap']:.2f})"
          + "".join(f"\n    refused: {m}" for m in refused), flush=True)
    return r


def one_seed(seed: int, root: Path, n_demos: int, n_goals: int, n_base: int, iters: int, rows: int) -> dict:
    from robot_irl.control import FakeClock, SafetyConfig, make_arm
    from robot_irl.control.pybullet_arm import PyBulletConfig
    from robot_irl.control.registration import WorldRegistration
    from robot_irl.irl import LearnerConfig
    from robot_irl.keypoints.episodes import extract_and_store
    from robot_irl.library import Library
    from robot_irl.record import person_pipeline as pp
    from robot_irl.record.person import record_person_sim

    t0 = time.time()
    lib = Library.open(root / f"lib{seed}", create=True)
    eps = record_person_sim(lib, episodes=n_demos, seed=10_000 + 100 * seed)
    for ep in eps:
        extract_and_store(ep, progress=False)
    setup = pp.PersonSetup(rows=rows)
    arm = make_arm("pybullet", PyBulletConfig(robot=setup.robot), safety=SafetyConfig(), clock=FakeClock())
    with arm:
        reg = pp.touch_registration(arm, setup, np.random.default_rng(90_000 + seed))
    T_true = setup.layout.T_base_world
    reg_err_cm = float(np.linalg.norm(reg.T_base_world[:3, 3] - T_true[:3, 3]) * 100)
    cfg = LearnerConfig(outer_iters=iters)
    learned, od = pp.learn(lib, "tag:person", reg, setup, "timedep", cfg)
    default, _ = pp.learn(lib, "tag:person", reg, setup, "default", cfg)
    truth_reg = WorldRegistration(T_true, "typed")
    ceiling, od_truth = pp.learn(lib, "tag:person", truth_reg, setup, "timedep", cfg, keypoints="truth")
    ext_err = np.linalg.norm(od.fine[:, :, 0] - od_truth.fine[:, :, 0], axis=-1) * 100
    print(f"seed {seed}: {n_demos} demos, registration rms {reg.rms_m * 1000:.2f} mm (translation off {reg_err_cm:.2f} cm), "
          f"demo carry extracted vs true {np.median(ext_err):.2f} cm median, lift {od.lift_m * 100:.1f} cm, "
          f"set-up {time.time() - t0:.0f} s", flush=True)
    goals = goals_for(seed, n_goals)
    out = {"seed": seed, "registration_rms_mm": reg.rms_m * 1000, "registration_err_cm": reg_err_cm,
           "demo_extraction_err_cm": float(np.median(ext_err)), "lift_cm": od.lift_m * 100}
    out["learned"] = run_method("timedep", learned, setup, reg, goals, od_truth.fine)
    out["default"] = run_method("default", default, setup, reg, goals[:n_base], od_truth.fine)
    out["ceiling"] = run_method("ceiling", ceiling, setup, truth_reg, goals[:n_base], od_truth.fine)
    out["seconds"] = time.time() - t0
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="0", help="0-2 development, 100+ report")
    ap.add_argument("--demos", type=int, default=5)
    ap.add_argument("--goals", type=int, default=20)
    ap.add_argument("--baseline-goals", type=int, default=None, help="goals for the default cost and the ceiling (default: --goals)")
    ap.add_argument("--iters", type=int, default=150, help="outer iterations of the learner")
    ap.add_argument("--rows", type=int, default=10, help="rows of the learned carry (progress steps)")
    ap.add_argument("--out", type=Path, help="keep the libraries here (default: a temporary folder)")
    a = ap.parse_args()
    seeds = parse_seeds(a.seeds)
    n_base = a.baseline_goals or a.goals
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = a.out or Path(tmp)
        for s in seeds:
            results.append(one_seed(s, root, a.demos, a.goals, n_base, a.iters, a.rows))
    for r in results:   # the ratio on the goals both ran (the default cost runs on the first --baseline-goals)
        pairs = [(a, b) for a, b in zip(r["learned"]["path_err_cm_per_goal"], r["default"]["path_err_cm_per_goal"])
                 if a is not None and b is not None]
        r["path_ratio_paired"] = float(np.mean([a for a, _ in pairs]) / max(np.mean([b for _, b in pairs]), 1e-9)) \
            if pairs else float("nan")
    succ = [r["learned"]["success"] for r in results]
    path = [r["learned"]["path_err_cm"] for r in results]
    base = [r["default"]["path_err_cm"] for r in results]
    ceil = [r["ceiling"]["path_err_cm"] for r in results]
    pm, pw = mean_worst(path)
    summary = {"success_rate_min": min(succ), "success_rate_mean": float(np.mean(succ)), "obj_path_err_cm": pm,
               "obj_path_err_cm_worst": pw, "default_obj_path_err_cm": float(np.mean(base)),
               "path_ratio": float(np.mean(path) / max(np.mean(base), 1e-9)),
               "path_ratio_worst": float(max(p / max(b, 1e-9) for p, b in zip(path, base))),
               "path_ratio_paired_worst": float(max(r["path_ratio_paired"] for r in results)),
               "per_seed": [{"seed": r["seed"], "success": r["learned"]["success"],
                             "obj_path_err_cm": r["learned"]["path_err_cm"],
                             "default_obj_path_err_cm": r["default"]["path_err_cm"],
                             "path_ratio": r["learned"]["path_err_cm"] / max(r["default"]["path_err_cm"], 1e-9),
                             "path_ratio_paired": r["path_ratio_paired"],
                             "ceiling_obj_path_err_cm": r["ceiling"]["path_err_cm"],
                             "ceiling_success": r["ceiling"]["success"]} for r in results],
               "ceiling_obj_path_err_cm": float(np.mean(ceil)),
               "obj_path_err_cm_devmap": float(np.mean([r["learned"]["path_err_cm_devmap"] for r in results])),
               "default_obj_path_err_cm_devmap": float(np.mean([r["default"]["path_err_cm_devmap"] for r in results])),
               "ceiling_obj_path_err_cm_devmap": float(np.mean([r["ceiling"]["path_err_cm_devmap"] for r in results])),
               "ceiling_success_min": min(r["ceiling"]["success"] for r in results),
               "default_success_min": min(r["default"]["success"] for r in results),
               "final_err_cm_median": float(np.median([r["learned"]["err_cm_median"] for r in results])),
               "registration_err_cm_max": max(r["registration_err_cm"] for r in results),
               "demo_extraction_err_cm": float(np.mean([r["demo_extraction_err_cm"] for r in results])),
               "demos": a.demos, "goals": a.goals, "baseline_goals": n_base, "iters": a.iters, "rows": a.rows,
               "seeds": seeds, "seed_kind": seed_kind(seeds), "data": "sim person demos (video, no robot in view)",
               "seconds": float(sum(r["seconds"] for r in results))}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
