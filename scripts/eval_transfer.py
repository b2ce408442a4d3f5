"""Transfer of a learned cost to new goals, from video demos, executed in PyBullet (issue 5).

1. Record scripted-expert demos of robot_irl/Place-v0 as video (640x480, FFV1) into a temporary
   library, alternating the 'right' and 'left' goal regions; extract keypoints with OpenCV.
2. Build the DemoSet through the library API (robot keypoints, extracted, cut where the arm comes
   to rest, 10 rows) and learn with 1, 3 and 5 demos: MBIRL costs (time-dependent, RBF), the
   default Euclidean cost, feature matching and behaviour cloning, on the kinematic model.
3. For 20 held-out goals (10 per region; x over both regions, y from the start box) optimise a
   plan, execute it in the env with ``robot_irl.control.mpc.PlanTracker`` (as ``run_learned`` does on
   an arm: rows split into capped ticks, then a servo on the plan's final joints with the gripper
   opened, the task's release), and compare with the expert's
   own trajectory for the same goal: path error = mean robot-keypoint distance over normalised time
   (both cut where the arm comes to rest, resampled to 50 samples), success = every robot keypoint
   within 2 cm of its goal at the end.
4. Learned dynamics: collect exploration rows in the sim, train an MLP ensemble (``fk`` structure:
   keypoints = g(joints), joints q + u; ``--dynamics-structure fk_joint`` also learns the joint
   transition q' = q + u + r(q, u) from how the arm tracked, which on dev seed 0 made MBIRL fail:
   notes/irl.md), learn the same cost through it from the 5 demos and execute its plans the same way.

Seeds (``--seeds``, evalkit.py): each seed records its own demos and held-out goals. Seeds 0-2 are
for development (everything in this script was tuned on seed 0); report seeds (100+) are run only to
report. Per-seed tables, then mean and worst over the seeds.
Last line: one JSON object: path_err_cm (mean over seeds), path_err_cm_max, success_rate_min,
path_ratio (timedep / default cost, mean over seeds), success_{1,3}demo_min (timedep),
fm_success_{1,3}demo_min (feature matching), the per-seed figures, seeds, data.
Usage: nice -n 10 .venv/bin/python scripts/eval_transfer.py [--seeds 0-2] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evalkit import DEV_SEEDS, mean_worst, parse_seeds, seed_kind  # noqa: E402

ENV_ID = "robot_irl/Place-v0"
REGIONS = ("right", "left")
SAMPLES = 50          # normalised-time samples for the path error
SUCCESS_M = 0.02


def record_demos(lib, n: int, seed: int) -> dict[str, float]:
    from robot_irl.keypoints.episodes import extract_and_store
    from robot_irl.record.sim import CAMERA, record_sim

    errs = []
    for i in range(n):
        (ep,) = record_sim(lib, ENV_ID, episodes=1, seed=seed + i, variant={"goal_region": REGIONS[i % 2]},
                           render_size=(640, 480), tags=["train"])
        track = extract_and_store(ep, CAMERA, progress=False)
        state = ep.arrays("state")
        idx = np.searchsorted(state["timestamp"], track.timestamps).clip(0, len(state["timestamp"]) - 1)
        spec = ep.keypoint_spec
        robot = [spec.index(k.name) for k in spec.on_body("robot")]
        e = np.linalg.norm(track.xyz[:, robot] - state["keypoints_3d"][idx][:, robot], axis=-1)
        errs.append(e[np.isfinite(e)])
    e = np.concatenate(errs)
    return {"extract_median_3d_err_mm": float(np.median(e) * 1000), "extract_p90_3d_err_mm": float(np.percentile(e, 90) * 1000)}


def held_out(env, n: int, seed: int, robot_idx: list[int]) -> list[dict]:
    """Expert references for ``n`` goals, half per region, seeds disjoint from the demos'."""
    from robot_irl.models.collect import expert_rollout, settle_time

    out = []
    for j in range(n):
        region = REGIONS[j % 2]
        s = seed + j
        r = expert_rollout(env, s, {"goal_region": region})
        t_end = settle_time(r["t"], r["q"])
        out.append({"seed": s, "region": region, "goal": r["goal"][robot_idx], "path": resample(r["t"], r["x"][:, robot_idx], t_end),
                    "expert_final_m": float(np.linalg.norm(r["x"][-1, robot_idx] - r["goal"][robot_idx], axis=-1).max())})
    return out


def resample(t: np.ndarray, x: np.ndarray, t_end: float) -> np.ndarray:
    tq = np.linspace(t[0], t_end, SAMPLES)
    flat = x.reshape(len(t), -1)
    return np.stack([np.interp(tq, t, flat[:, c]) for c in range(flat.shape[1])], 1).reshape(SAMPLES, *x.shape[1:])


def execute(env, run, refs: list[dict], robot_idx: list[int], servo_ticks: int = 20) -> dict[str, float]:
    """Plan and execute every held-out goal in the env, score against the expert.

    Execution is ``robot_irl.control.mpc.PlanTracker``, the same as ``run_learned`` on an arm: the
    plan from the measured start, interpolated into capped ticks, then ``servo_ticks`` ticks of
    integral servoing on the plan's final joint state, with the gripper opened (the task's release)."""
    from robot_irl.control.mpc import PlanTracker, joint_index
    from robot_irl.models.collect import settle_time

    u = env.unwrapped
    cap = float(np.min(u.action_space.high[:-1]))
    # a learned model is trained on the env's own joint order; a kinematic one names its joints
    idx = joint_index(run, u.robot.joint_names)
    lo, hi = run.dynamics.lower.numpy(), run.dynamics.upper.numpy()
    path_err, final, ok = [], [], []
    for ref in refs:
        obs, _ = env.reset(seed=ref["seed"], options={"variant": {"goal_region": ref["region"]}})
        state = {"obs": obs}

        def plan_fn(qm, ref=ref, state=state):
            d, x = run.plan(qm, ref["goal"], x0=state["obs"]["keypoints"][robot_idx])
            # what the env does with the targets anyway (clipped to the joint limits), done up front
            # so that a wild plan cannot ask for thousands of capped ticks
            path = np.clip(qm + np.cumsum(d, axis=0), lo, hi)
            return np.diff(np.vstack([qm, path]), axis=0), x

        tracker = PlanTracker(plan_fn, len(u.robot.joint_names), idx, horizon=run.horizon,
                              replan_every=run.horizon, max_step=cap)
        xs, qs = [obs["keypoints"].copy()], [obs["joint_pos"].copy()]
        servo = 0
        while servo < servo_ticks:
            target = tracker(obs["joint_pos"])
            # the Place task ends by letting go (as its expert does once settled at the drop
            # point): holding on, the object pressed on the table keeps the arm 1-2 cm short
            obs, *_ = env.step(np.r_[target - u.joint_target, -1.0 if tracker.servoing else 1.0])
            state["obs"] = obs
            xs.append(obs["keypoints"].copy())
            qs.append(obs["joint_pos"].copy())
            servo += tracker.servoing
        x, q = np.array(xs)[:, robot_idx], np.array(qs)
        t = np.arange(len(x)) * u.control_dt
        path = resample(t, x, settle_time(t, q))
        path_err.append(np.linalg.norm(path - ref["path"], axis=-1).mean())
        f = np.linalg.norm(x[-1] - ref["goal"], axis=-1).max()
        final.append(f)
        ok.append(f < SUCCESS_M)
    by_region = {r: float(np.mean([p for p, ref in zip(path_err, refs) if ref["region"] == r]) * 100) for r in REGIONS}
    return {"path_err_cm": float(np.mean(path_err) * 100), "final_err_cm": float(np.mean(final) * 100),
            "success_rate": float(np.mean(ok)), **{f"path_err_{r}_cm": v for r, v in by_region.items()}}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def fit(method: str, demos, dyn, cfg):
    from robot_irl.irl import fit_bc, fit_bc_mlp, fit_cost, fit_feature_matching

    if method == "feature_matching":
        return fit_feature_matching(demos, dyn, cfg)
    if method == "bc":
        return fit_bc(demos, dyn, cfg)
    if method == "bc_mlp":
        return fit_bc_mlp(demos, dyn, cfg)
    return fit_cost(demos, dyn, method, cfg)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default=DEV_SEEDS.split("-")[0],
                    help=f"seeds to run, e.g. {DEV_SEEDS} (development) or 100-102 (report only)")
    ap.add_argument("--demos", type=int, default=5, help="demos recorded (the table uses 1, 3 and this many)")
    ap.add_argument("--goals", type=int, default=20)
    ap.add_argument("--iters", type=int, default=400, help="outer iterations per cost")
    ap.add_argument("--explore", type=int, default=200,
                    help="exploration episodes for the learned dynamics (0: skip the learned-dynamics row)")
    ap.add_argument("--dynamics-structure", choices=("fk", "fk_joint"), default="fk",
                    help="learned dynamics: keypoints g(q) with joints q + u (fk, default), or with the joint "
                         "transition learned from how the arm tracked (fk_joint)")
    ap.add_argument("--out", help="keep the libraries and learned models here (default: a temporary folder)")
    args = ap.parse_args()
    seeds = parse_seeds(args.seeds)
    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="eval_transfer_"))
    per = {seed: run_seed(args, seed, root / f"seed{seed}") for seed in seeds}
    n = args.demos
    small = sorted({1, min(3, n)} - {n})

    def over(key: str) -> list[float]:
        return [per[s][key] for s in seeds]

    out: dict = {}
    out["path_err_cm"], out["path_err_cm_max"] = mean_worst(over("path_err_cm"))
    out["success_rate"], out["success_rate_min"] = mean_worst(over("success_rate"), higher_is_better=True)
    out["path_ratio"] = float(np.mean([per[s]["path_err_cm"] / per[s]["default_path_err_cm"] for s in seeds]))
    for k in small:
        out[f"success_{k}demo_min"] = min(over(f"timedep_{k}_success_rate"))
        out[f"fm_success_{k}demo_min"] = min(over(f"feature_matching_{k}_success_rate"))
        out[f"path_err_{k}demo_cm"] = float(np.mean(over(f"timedep_{k}_path_err_cm")))
    print(f"over seeds {seeds} ({seed_kind(seeds)}): timedep x{n} path error mean {out['path_err_cm']:.2f} cm, worst "
          f"{out['path_err_cm_max']:.2f} cm; success mean {out['success_rate']:.0%}, worst {out['success_rate_min']:.0%}; "
          f"path / default cost's {out['path_ratio']:.2f}; "
          + "; ".join(f"x{k} success worst: timedep {out[f'success_{k}demo_min']:.0%}, feature matching "
                      f"{out[f'fm_success_{k}demo_min']:.0%}" for k in small))
    for s in seeds:
        out.update({f"seed{s}_{k}": v for k, v in per[s].items()})
    out.update(seeds=seeds, seed_kind=seed_kind(seeds), data="place-sim-video")
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}))
    return 0


def run_seed(args: argparse.Namespace, seed: int, root: Path) -> dict:
    """Record, learn, execute and score for one seed; prints its table; returns its figures."""
    import gymnasium as gym
    import pybullet_data
    import torch

    import sim  # noqa: F401
    from sim.robots import ROBOTS

    from robot_irl.irl import LearnerConfig
    from robot_irl.irl.library_demos import demos_from_library
    from robot_irl.library import Library
    from robot_irl.models import KinematicDynamics, frames_from_spec, train_dynamics
    from robot_irl.models.collect import collect_exploration
    from robot_irl.models.cli import robot_description
    from robot_irl.models.learned import DynamicsTrainConfig

    torch.set_num_threads(1)
    t_start = time.perf_counter()
    lib = Library.open(root / "library", create=True)
    figures: dict[str, float] = {}
    figures.update(record_demos(lib, args.demos, seed=1000 * (seed + 1)))
    t_rec = time.perf_counter()
    log(f"recorded + extracted {args.demos} demos")
    demos, spec = demos_from_library(lib, "tag:train", rows=10, keypoints="extracted")
    dyn = KinematicDynamics(os.path.join(pybullet_data.getDataPath(), ROBOTS["iiwa"].urdf), frames_from_spec(spec))
    env = gym.make(ENV_ID, robot="iiwa", render_size=(64, 48))
    full = env.unwrapped.keypoint_spec
    robot_idx = [full.index(n) for n in spec.names]
    refs = held_out(env, args.goals, 5000 + 1000 * seed, robot_idx)
    figures["expert_success_rate"] = float(np.mean([r["expert_final_m"] < SUCCESS_M for r in refs]))
    cfg = LearnerConfig(rows=10, outer_iters=args.iters, seed=seed)
    counts = sorted({1, min(3, args.demos), args.demos})
    methods = ("default", "timedep", "rbf", "feature_matching", "bc", "bc_mlp")
    table: dict[tuple[str, int], dict[str, float]] = {}
    for n in counts:
        sub = demos.subset(list(range(n)))
        for method in methods:
            if method == "default" and n != counts[-1]:
                continue  # nothing learned: one row is enough
            t0 = time.process_time()
            run = fit(method, sub, dyn, cfg)
            fit_s = time.process_time() - t0
            table[(method, n)] = {**execute(env, run, refs, robot_idx), "fit_cpu_s": fit_s}
            log(f"{method} x{n}: path {table[(method, n)]['path_err_cm']:.2f} cm, success "
                f"{table[(method, n)]['success_rate']:.0%}, fit {fit_s:.1f} s CPU")
    t_learn = time.perf_counter()

    learned, dyn_err = None, {}
    t_col = t_learn
    if args.explore:
        data = collect_exploration(ENV_ID, robot="iiwa", episodes=args.explore, seed=seed + 7)
        t_col = time.perf_counter()
        log(f"collected {args.explore} exploration episodes")
        model, dyn_err = train_dynamics(data["x"], data["q"], data["u"], lower=data["lower"], upper=data["upper"],
                                        **robot_description(data),
                                        cfg=DynamicsTrainConfig(seed=seed, structure=args.dynamics_structure))
        if args.out:
            model.save(root / "learned_dynamics.pt")
        log(f"trained dynamics: {dyn_err}")
        # the fk-structured model (keypoints = g(joints)) needs no trust region on the inner step (the old
        # delta model did, and still failed: 25 cm)
        learned = execute(env, fit("timedep", demos, model, cfg), refs, robot_idx)
    env.close()
    t_end = time.perf_counter()

    print(f"seed {seed}: {args.demos} demos recorded as video + OpenCV keypoints (robot keypoint 3D error median "
          f"{figures['extract_median_3d_err_mm']:.1f} mm, p90 {figures['extract_p90_3d_err_mm']:.1f} mm); "
          f"{args.goals} held-out goals, {args.goals // 2} per region; expert reaches 2 cm on "
          f"{figures['expert_success_rate']:.0%} of them")
    head = f"{'method':<18}{'demos':>6}{'path cm':>9}{'left':>7}{'right':>7}{'final cm':>10}{'success':>9}{'fit CPU s':>10}"
    print(head)
    for (method, n), m in table.items():
        print(f"{method:<18}{n:>6}{m['path_err_cm']:>9.2f}{m['path_err_left_cm']:>7.2f}{m['path_err_right_cm']:>7.2f}"
              f"{m['final_err_cm']:>10.2f}{m['success_rate']:>9.0%}{m['fit_cpu_s']:>10.1f}")
    if learned is not None:
        print(f"timedep through learned dynamics ({model.learns()}):")
        print(f"{'timedep (learned)':<18}{args.demos:>6}{learned['path_err_cm']:>9.2f}{learned['path_err_left_cm']:>7.2f}"
              f"{learned['path_err_right_cm']:>7.2f}{learned['final_err_cm']:>10.2f}{learned['success_rate']:>9.0%}")
        print(f"learned dynamics: {args.explore} exploration episodes, held-out one-step "
              f"{dyn_err['one_step_err_cm']:.2f} cm, {dyn_err['multistep_steps']:.0f}-step "
              f"{dyn_err['multistep_err_cm']:.2f} cm")
    print(f"wall time: record+extract {t_rec - t_start:.0f} s, learn+execute {t_learn - t_rec:.0f} s, "
          f"collect {t_col - t_learn:.0f} s, dynamics+learned MBIRL {t_end - t_col:.0f} s")
    best = table[("timedep", args.demos)]
    out = {"path_err_cm": best["path_err_cm"], "default_path_err_cm": table[("default", args.demos)]["path_err_cm"],
           "success_rate": best["success_rate"], "final_err_cm": best["final_err_cm"], **figures}
    if learned is not None:
        out.update(learned_path_err_cm=learned["path_err_cm"], learned_success_rate=learned["success_rate"],
                   learned_dynamics=model.learns(),
                   dyn_one_step_err_cm=dyn_err["one_step_err_cm"], dyn_multistep_err_cm=dyn_err["multistep_err_cm"])
    for (method, n), m in table.items():
        out[f"{method}_{n}_path_err_cm"] = m["path_err_cm"]
        out[f"{method}_{n}_success_rate"] = m["success_rate"]
    out["wall_s"] = t_end - t_start
    return out


if __name__ == "__main__":
    raise SystemExit(main())
