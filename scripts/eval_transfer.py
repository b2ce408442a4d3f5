"""Transfer of a learned cost to new goals, from video demos, run as ``robot-irl run`` runs it (issues 5, 16).

1. Record scripted-expert demos of robot_irl/Place-v0 as video (640x480, FFV1) into a temporary
   library, alternating the 'right' and 'left' goal regions; extract keypoints with OpenCV.
2. Build the DemoSet through the library API (robot keypoints, extracted, cut where the arm comes
   to rest, 10 rows; training goals = where each demo's extracted keypoints ended, or with
   ``--train-goals recorded`` the simulator's goal_3d, privileged) and learn with 1, 3 and 5 demos
   (``--counts``): MBIRL costs (time-dependent, RBF) and feature matching from each; from all
   demos also the default Euclidean cost and behaviour cloning (linear, MLP with action chunks), on
   the kinematic model. Start joints still come from the demos' state stream.
3. For 20 held-out goals (10 per region; x over both regions, y from the start box) run each
   through ``robot_irl.control.mpc.run_learned`` on an :class:`Arm` with the default safety filter
   (``robot_irl.control.scene_arm.SceneArmBackend``: the env's robot in its scene, the gripper as
   the demos' gripper column says: hold while moving, let go once at rest), render the scene camera
   every tick (``--render-size``, default the demos' 640x480; at 480x360 the 4 cm marker's 3D was
   off by up to 2 cm), save the run as a library episode with its video, extract its keypoints from
   that video with the extraction stage, and compare with the expert's own trajectory for the same
   goal: path error = mean robot-keypoint distance over normalised time (both cut where the arm
   comes to rest, resampled to 50 samples), success = every robot keypoint within 2 cm of its goal
   at the end (median over the frames at rest), on the *observed* keypoints; the simulator's true
   keypoints at the same frames are scored beside them (``truth`` columns).
4. Learned dynamics: collect exploration rows in the sim, train an MLP ensemble (``fk`` structure:
   keypoints = g(joints), joints q + u; ``--dynamics-structure fk_joint`` also learns the joint
   transition q' = q + u + r(q, u) from how the arm tracked, which on dev seed 0 made MBIRL fail:
   notes/irl.md), learn the same cost through it from the 5 demos and run its plans the same way.

Seeds (``--seeds``, evalkit.py): each seed records its own demos and held-out goals. Seeds 0-2 are
for development (everything in this script was tuned on seed 0, the runner path and planning
within the filter's joint range included); report seeds (100+) are run only to report. Per-seed tables, then
mean and worst over the seeds.
Last line: one JSON object: path_err_cm (mean over seeds), path_err_cm_max, success_rate_min,
path_ratio (timedep / default cost, mean over seeds), success_{1,3}demo_min (timedep),
fm_success_{1,3}demo_min (feature matching), the per-seed figures, seeds, data.
With ``--out`` each seed's figures are kept (``seedS/figures.json``); ``--resume`` reuses those made
with the same settings, so seeds run apart (``--jobs N`` runs N at once) end in one summary.
Usage: nice -n 10 .venv/bin/python scripts/eval_transfer.py [--seeds 0-2] [--counts 1,3] [--methods ...]
       [--out DIR [--resume]] [--jobs 2]
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
DENSE = 300           # samples along each path for the time-free (spatial) path error
SUCCESS_M = 0.02
METHODS = ("default", "timedep", "rbf", "feature_matching", "bc", "bc_mlp")
SMALL_METHODS = ("timedep", "rbf", "feature_matching")   # also learned from 1 and 3 demos


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
                    "dense": resample(r["t"], r["x"][:, robot_idx], t_end, DENSE),
                    "expert_s": float(t_end - r["t"][0]),
                    "expert_final_m": float(np.linalg.norm(r["x"][-1, robot_idx] - r["goal"][robot_idx], axis=-1).max())})
    return out


def resample(t: np.ndarray, x: np.ndarray, t_end: float, n: int = SAMPLES) -> np.ndarray:
    tq = np.linspace(t[0], t_end, n)
    flat = x.reshape(len(t), -1)
    return np.stack([np.interp(tq, t, flat[:, c]) for c in range(flat.shape[1])], 1).reshape(n, *x.shape[1:])


def spatial_error(a: np.ndarray, b: np.ndarray) -> float:
    """Time-free path error: the mean over ``a``'s samples of the distance to the nearest of ``b``'s
    and the other way round, averaged (per keypoint, then over keypoints; NaN samples left out).
    Printed beside the time-normalised path error, which also charges a path followed at another
    pace (the runner's rows of equal length, the wait at the drop point): the two apart say how much
    of an error is timing and how much is where the keypoints went."""
    ok_a, ok_b = np.isfinite(a).all(axis=(1, 2)), np.isfinite(b).all(axis=(1, 2))
    if ok_a.sum() < 2 or ok_b.sum() < 2:
        return np.inf
    d = np.linalg.norm(a[ok_a][:, None] - b[ok_b][None], axis=-1)      # [Na, Nb, K]
    return float((d.min(1).mean() + d.min(0).mean()) / 2)


def execute(env, run, refs: list[dict], robot_idx: list[int], ctx: dict) -> dict[str, float]:
    """Run every held-out goal as ``robot-irl run`` does and score it against the expert.

    Each goal: the env reset to the goal's episode, its robot driven through an :class:`Arm` (safety
    filter on, default settings) by :func:`robot_irl.control.mpc.run_learned`, the gripper as the
    demos' column says (:class:`SceneArmBackend`), the scene rendered every tick at ``ctx['camera']``;
    the run saved as a library episode with its video, and its keypoints extracted from that video
    by the extraction stage (``extract_and_store``, the demos' robot keypoint spec). Path error and
    success are judged on those observed keypoints; the simulator's true keypoints at the same
    frames are scored beside them (``*_truth``), and the task's own check on the simulator's state
    after the run (``placed``: Place's object within 2 cm of its goal and released), the figure
    eval_learned_transfer.py compares the learned pipeline with."""
    from robot_irl.control import FakeClock, SafetyConfig
    from robot_irl.control.arm import Arm
    from robot_irl.control.mpc import run_learned, save_learned_run
    from robot_irl.control.scene_arm import SceneArmBackend
    from robot_irl.irl.library_demos import resample_track
    from robot_irl.keypoints.episodes import extract_and_store
    from robot_irl.models.collect import settle_time

    scores: dict[str, list[float]] = {k: [] for k in ("path", "final", "path_truth", "final_truth", "missing",
                                                       "refused", "clamped", "model_final", "spatial",
                                                       "spatial_truth", "run_s", "placed")}
    for ref in refs:
        env.reset(seed=ref["seed"], options={"variant": {"goal_region": ref["region"]}})
        clock = FakeClock()
        backend = SceneArmBackend(env, ctx["gripper"], clock)
        with Arm(backend, safety=SafetyConfig(), clock=clock) as arm:
            rec = run_learned(arm, run, ref["goal"], camera=ctx["camera"])
        u = env.unwrapped
        u.scene.sync_features()
        scores["placed"].append(float(u.task.is_success(u.scene.keypoints_3d(), u.goal)))   # the task's own check
        ep = save_learned_run(ctx["library"], rec, run, robot="iiwa", task=ENV_ID, arm_name="pybullet-scene",
                              camera=ctx["camera"],
                              extra={"goal_seed": ref["seed"], "method": ctx["label"], "outcome": rec.outcome,
                                     "model_final_err_cm": rec.final_err_m * 100, "expert_s": ref["expert_s"],
                                     "replans": rec.replans, "plans": len(rec.planned_paths),
                                     "approach_from_cm": rec.summary()["approach_from_cm"], "released_at_s":
                                     None if backend.released_at is None else backend.released_at - rec.t[0]})
        track = extract_and_store(ep, "cam0", spec=ctx["spec"], progress=False)
        state = ep.arrays("state")
        t_end = settle_time(state["timestamp"], state["joint_pos"])
        t_kp = np.asarray(track.timestamps, float)
        observed = np.asarray(track.xyz, float)
        truth = np.array(backend.truth)[:, robot_idx]
        tq = np.linspace(t_kp[0], max(t_end, t_kp[0] + 1e-6), SAMPLES)
        for key, x in (("", observed), ("_truth", truth)):
            path = resample_track(t_kp, x, tq)
            d = np.linalg.norm(path - ref["path"], axis=-1)
            scores["path" + key].append(float(np.nanmean(d)) if np.isfinite(d).any() else np.inf)
            scores["spatial" + key].append(spatial_error(resample_track(t_kp, x, np.linspace(tq[0], tq[-1], DENSE)),
                                                         ref["dense"]))
            last = final_position(t_kp, x, t_end)
            scores["final" + key].append(float(np.linalg.norm(last - ref["goal"], axis=-1).max()))
        scores["missing"].append(float(np.mean(~np.isfinite(observed).all(-1))))
        scores["run_s"].append(float(t_end - t_kp[0]) / ref["expert_s"])
        s = rec.summary()
        scores["refused"].append(s["refused_steps"])
        scores["clamped"].append(s["clamped_steps"])
        scores["model_final"].append(rec.final_err_m)
    path, final = np.array(scores["path"]), np.array(scores["final"])
    by_region = {r: float(np.mean([p for p, ref in zip(path, refs) if ref["region"] == r]) * 100) for r in REGIONS}
    return {"path_err_cm": float(np.mean(path) * 100), "final_err_cm": float(np.mean(final) * 100),
            "success_rate": float(np.mean(final < SUCCESS_M)),
            "path_err_truth_cm": float(np.mean(scores["path_truth"]) * 100),
            "spatial_err_cm": float(np.mean(scores["spatial"]) * 100),
            "spatial_err_truth_cm": float(np.mean(scores["spatial_truth"]) * 100),
            "duration_ratio": float(np.median(scores["run_s"])),
            "final_err_truth_cm": float(np.mean(scores["final_truth"]) * 100),
            "success_rate_truth": float(np.mean(np.array(scores["final_truth"]) < SUCCESS_M)),
            "success_rate_model": float(np.mean(np.array(scores["model_final"]) < SUCCESS_M)),
            "placed_rate_truth": float(np.mean(scores["placed"])), "placed": [bool(v) for v in scores["placed"]],
            "missing_frac": float(np.mean(scores["missing"])), "refused_steps": float(np.sum(scores["refused"])),
            "clamped_steps": float(np.sum(scores["clamped"])),
            **{f"path_err_{r}_cm": v for r, v in by_region.items()}}


def final_position(t: np.ndarray, x: np.ndarray, t_rest: float, tail: int = 5) -> np.ndarray:
    """Where the keypoints ``x [T, K, 3]`` ended: the median over the frames from ``t_rest`` (the arm
    at rest) on, or over the last ``tail`` frames when fewer than ``tail`` come after it, of the
    frames where every keypoint was observed (inf when none was: an unobserved end is a failure).
    Why a median: a single frame's 3D from a 4 cm marker carries a few mm of noise."""
    seen = np.isfinite(x).all(axis=(1, 2))
    use = seen & (t >= t_rest - 1e-9)
    if use.sum() < tail:
        use = seen & (np.arange(len(t)) >= len(t) - tail)
    return np.median(x[use], axis=0) if use.any() else np.full(x.shape[1:], np.inf)


def parse_counts(text: str) -> list[int]:
    return [int(c) for c in text.split(",") if c.strip()]


def parse_size(text: str) -> tuple[int, int]:
    w, _, h = text.lower().partition("x")
    return int(w), int(h)


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
    ap.add_argument("--methods", default=",".join(METHODS),
                    help="methods in the table (timedep needed; default for path_ratio)")
    ap.add_argument("--counts", default="1,3",
                    help="smaller demo counts learned from beside --demos (e.g. 1,3; '' for --demos only)")
    ap.add_argument("--train-goals", choices=("final", "recorded"), default="final",
                    help="training goals: where each demo's extracted keypoints ended (default), or the "
                         "simulator's recorded goal_3d (privileged)")
    ap.add_argument("--render-size", default="640x480", help="the runs' video size, WIDTHxHEIGHT")
    ap.add_argument("--out", help="keep the libraries, learned models and each seed's figures here (default: a "
                                  "temporary folder)")
    ap.add_argument("--resume", action="store_true",
                    help="reuse the figures of seeds already finished under --out with the same settings (their "
                         "own --methods/--counts; the summary says which seed has which columns)")
    ap.add_argument("--jobs", type=int, default=1, help="seeds run in this many processes at once (one core each)")
    args = ap.parse_args()
    methods = [m for m in args.methods.split(",") if m]        # checked now, not after hours of recording
    unknown = sorted(set(methods) - set(METHODS))
    needed = {"timedep"} | ({"feature_matching"} if parse_counts(args.counts) else set())
    if unknown or not needed <= set(methods):
        ap.error(f"--methods {args.methods}: " + (f"unknown {unknown} (known: {', '.join(METHODS)})" if unknown else
                 f"needs {', '.join(sorted(needed - set(methods)))} (the figures compare against it)"))
    seeds = parse_seeds(args.seeds)
    if args.resume and not args.out:
        ap.error("--resume needs --out (where the finished seeds' figures are)")
    if args.jobs < 1:
        ap.error(f"--jobs {args.jobs}: expected a positive number of processes")
    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="eval_transfer_"))
    per = {seed: stored for seed in seeds if args.resume and (stored := load_seed(args, root / f"seed{seed}"))}
    todo = [seed for seed in seeds if seed not in per]
    if args.jobs > 1 and len(todo) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(min(args.jobs, len(todo)), mp_context=mp.get_context("spawn")) as pool:
            done = dict(zip(todo, pool.map(run_seed, [args] * len(todo), todo,
                                           [root / f"seed{seed}" for seed in todo])))
    else:
        done = {seed: run_seed(args, seed, root / f"seed{seed}") for seed in todo}
    per.update(done)
    for seed in seeds:            # every seed's table, reused or not, in seed order
        print(per[seed].pop("table"))
    n = args.demos
    # the smaller demo counts over the seeds that have them (a reused seed keeps its own --counts)
    small = sorted({int(k.split("_")[1]) for s in seeds for k in per[s]
                    if k.startswith("timedep_") and k.endswith("_success_rate") and k.split("_")[1] != str(n)})

    def over(key: str) -> list[float]:
        return [per[s][key] for s in seeds if key in per[s]]

    out: dict = {}
    out["path_err_cm"], out["path_err_cm_max"] = mean_worst(over("path_err_cm"))
    out["success_rate"], out["success_rate_min"] = mean_worst(over("success_rate"), higher_is_better=True)
    out["success_rate_truth_min"] = min(over("success_rate_truth"))
    out["path_ratio"] = float(np.mean([per[s]["path_err_cm"] / per[s]["default_path_err_cm"] for s in seeds]))
    out["spatial_err_cm"], out["spatial_err_cm_max"] = mean_worst(over("spatial_err_cm"))
    out["spatial_ratio"] = float(np.mean([per[s]["spatial_err_cm"] / per[s]["default_spatial_err_cm"] for s in seeds]))
    for k in small:
        out[f"success_{k}demo_min"] = min(over(f"timedep_{k}_success_rate"))
        out[f"fm_success_{k}demo_min"] = min(over(f"feature_matching_{k}_success_rate"))
        out[f"path_err_{k}demo_cm"] = float(np.mean(over(f"timedep_{k}_path_err_cm")))
        out[f"seeds_{k}demo"] = [s for s in seeds if f"timedep_{k}_success_rate" in per[s]]
    for method in ("feature_matching", "bc_mlp"):
        if over(f"{method}_{n}_path_err_cm"):
            out[f"{method}_path_err_cm"] = float(np.mean(over(f"{method}_{n}_path_err_cm")))
            out[f"{method}_success_rate_min"] = min(over(f"{method}_{n}_success_rate"))
    print(f"over seeds {seeds} ({seed_kind(seeds)}): timedep x{n} path error mean {out['path_err_cm']:.2f} cm, worst "
          f"{out['path_err_cm_max']:.2f} cm; success mean {out['success_rate']:.0%}, worst {out['success_rate_min']:.0%}; "
          f"path / default cost's {out['path_ratio']:.2f}; time-free (spatial) path error mean "
          f"{out['spatial_err_cm']:.2f} cm, worst {out['spatial_err_cm_max']:.2f} cm, / default's {out['spatial_ratio']:.2f}; "
          + "; ".join(f"x{k} success worst (seeds {out[f'seeds_{k}demo']}): timedep {out[f'success_{k}demo_min']:.0%}, "
                      f"feature matching {out[f'fm_success_{k}demo_min']:.0%}" for k in small))
    for s in seeds:
        out.update({f"seed{s}_{k}": v for k, v in per[s].items()})
    out.update(seeds=seeds, seed_kind=seed_kind(seeds), data="place-sim-video", train_goals=args.train_goals,
               judged_on="keypoints extracted from the runs' video (sim truth beside: *_truth)",
               runner="run_learned via Arm + SafetyFilter (SceneArmBackend)", render_size=args.render_size)
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
    from robot_irl.control.scene_arm import gripper_from_demos
    from sim.camera import get_camera

    torch.set_num_threads(1)
    t_start = time.perf_counter()
    lib = Library.open(root / "library", create=True)
    figures: dict[str, float] = {}
    figures.update(record_demos(lib, args.demos, seed=1000 * (seed + 1)))
    t_rec = time.perf_counter()
    log(f"recorded + extracted {args.demos} demos")
    demos, spec = demos_from_library(lib, "tag:train", rows=10, keypoints="extracted", goals=args.train_goals)
    ctx = {"gripper": gripper_from_demos(lib.select("tag:train")), "spec": spec, "label": "",
           "camera": get_camera("front", parse_size(args.render_size)),
           "library": Library.open(root / "runs", create=True)}
    log(f"gripper from the demos' column: {ctx['gripper']}")
    dyn = KinematicDynamics(os.path.join(pybullet_data.getDataPath(), ROBOTS["iiwa"].urdf), frames_from_spec(spec))
    env = gym.make(ENV_ID, robot="iiwa", render_size=(64, 48))
    full = env.unwrapped.keypoint_spec
    robot_idx = [full.index(n) for n in spec.names]
    refs = held_out(env, args.goals, 5000 + 1000 * seed, robot_idx)
    figures["expert_success_rate"] = float(np.mean([r["expert_final_m"] < SUCCESS_M for r in refs]))
    cfg = LearnerConfig(rows=10, outer_iters=args.iters, seed=seed)
    counts = sorted({min(c, args.demos) for c in parse_counts(args.counts)} | {args.demos})
    methods = args.methods.split(",")
    table: dict[tuple[str, int], dict[str, float]] = {}
    for n in counts:
        sub = demos.subset(list(range(n)))
        for method in methods:
            if n != counts[-1] and method not in SMALL_METHODS:
                continue  # fewer demos: the learned costs and feature matching (nothing learned by default)
            t0 = time.process_time()
            run = fit(method, sub, dyn, cfg)
            fit_s = time.process_time() - t0
            ctx["label"] = f"{method} x{n}"
            table[(method, n)] = {**execute(env, run, refs, robot_idx, ctx), "fit_cpu_s": fit_s}
            m = table[(method, n)]
            log(f"{method} x{n}: path {m['path_err_cm']:.2f} cm (truth {m['path_err_truth_cm']:.2f}), success "
                f"{m['success_rate']:.0%} (truth {m['success_rate_truth']:.0%}), fit {fit_s:.1f} s CPU")
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
        ctx["label"] = "timedep learned-dynamics"
        learned = execute(env, fit("timedep", demos, model, cfg), refs, robot_idx, ctx)
    env.close()
    t_end = time.perf_counter()

    lines: list[str] = []   # the seed's table, printed by main in seed order
    lines.append(f"seed {seed}: {args.demos} demos recorded as video + OpenCV keypoints (robot keypoint 3D error median "
          f"{figures['extract_median_3d_err_mm']:.1f} mm, p90 {figures['extract_p90_3d_err_mm']:.1f} mm); "
          f"{args.goals} held-out goals, {args.goals // 2} per region; expert reaches 2 cm on "
          f"{figures['expert_success_rate']:.0%} of them")
    lines.append(f"training goals: {args.train_goals}; runs through run_learned + safety filter, judged on keypoints "
          f"extracted from each run's {args.render_size} video (truth: the simulator's keypoints at the same frames)")
    lines.append("path cm: over normalised time (both cut where the arm comes to rest); spatial cm: time-free (nearest "
          "points, both ways); run/expert: median duration ratio")
    head = (f"{'method':<18}{'demos':>6}{'path cm':>9}{'left':>7}{'right':>7}{'spatial':>8}{'final cm':>10}{'success':>9}"
            f"{'path truth':>11}{'succ truth':>11}{'missing':>8}{'run/exp':>8}{'fit CPU s':>10}")
    lines.append(head)
    for (method, n), m in table.items():
        lines.append(f"{method:<18}{n:>6}{m['path_err_cm']:>9.2f}{m['path_err_left_cm']:>7.2f}{m['path_err_right_cm']:>7.2f}"
              f"{m['spatial_err_cm']:>8.2f}{m['final_err_cm']:>10.2f}{m['success_rate']:>9.0%}{m['path_err_truth_cm']:>11.2f}"
              f"{m['success_rate_truth']:>11.0%}{m['missing_frac']:>8.0%}{m['duration_ratio']:>8.2f}{m['fit_cpu_s']:>10.1f}")
    if learned is not None:
        lines.append(f"timedep through learned dynamics ({model.learns()}):")
        lines.append(f"{'timedep (learned)':<18}{args.demos:>6}{learned['path_err_cm']:>9.2f}{learned['path_err_left_cm']:>7.2f}"
              f"{learned['path_err_right_cm']:>7.2f}{learned['final_err_cm']:>10.2f}{learned['success_rate']:>9.0%}")
        lines.append(f"learned dynamics: {args.explore} exploration episodes, held-out one-step "
              f"{dyn_err['one_step_err_cm']:.2f} cm, {dyn_err['multistep_steps']:.0f}-step "
              f"{dyn_err['multistep_err_cm']:.2f} cm")
    lines.append(f"wall time: record+extract {t_rec - t_start:.0f} s, learn+execute {t_learn - t_rec:.0f} s, "
          f"collect {t_col - t_learn:.0f} s, dynamics+learned MBIRL {t_end - t_col:.0f} s")
    best = table[("timedep", args.demos)]
    default = table.get(("default", args.demos), {})
    out = {"path_err_cm": best["path_err_cm"], "default_path_err_cm": default.get("path_err_cm", float("nan")),
           "spatial_err_cm": best["spatial_err_cm"], "default_spatial_err_cm": default.get("spatial_err_cm", float("nan")),
           "success_rate": best["success_rate"], "final_err_cm": best["final_err_cm"], **figures}
    if learned is not None:
        out.update(learned_path_err_cm=learned["path_err_cm"], learned_success_rate=learned["success_rate"],
                   learned_dynamics=model.learns(),
                   dyn_one_step_err_cm=dyn_err["one_step_err_cm"], dyn_multistep_err_cm=dyn_err["multistep_err_cm"])
    for (method, n), m in table.items():
        out[f"{method}_{n}_path_err_cm"] = m["path_err_cm"]
        out[f"{method}_{n}_success_rate"] = m["success_rate"]
        out[f"{method}_{n}_success_rate_truth"] = m["success_rate_truth"]
        out[f"{method}_{n}_spatial_err_cm"] = m["spatial_err_cm"]
    out.update(success_rate_truth=best["success_rate_truth"], path_err_truth_cm=best["path_err_truth_cm"],
               placed_rate_truth=best["placed_rate_truth"], placed=best["placed"])
    out["wall_s"] = t_end - t_start
    out["table"] = "\n".join(lines)
    if args.out:
        from robot_irl.core.io import atomic_write_json
        atomic_write_json(root / "figures.json", {"settings": settings(args), "methods": methods,
                                                  "counts": counts, "figures": out})
    return out


SAME_RUN = ("demos", "goals", "iters", "explore", "dynamics_structure", "train_goals", "render_size")


def settings(args: argparse.Namespace) -> dict:
    """What must match for a finished seed's figures to be reused (``--resume``)."""
    return {k: getattr(args, k) for k in SAME_RUN}


def load_seed(args: argparse.Namespace, root: Path) -> dict | None:
    """A finished seed's figures under ``root`` when they were made with the same settings, else None."""
    path = root / "figures.json"
    if not path.exists():
        return None
    stored = json.loads(path.read_text())
    if stored.get("settings") != settings(args):
        log(f"{path}: made with {stored.get('settings')}, not {settings(args)}: run again")
        return None
    log(f"{path}: reused (methods {','.join(stored['methods'])}, demo counts {stored['counts']})")
    return stored["figures"]


if __name__ == "__main__":
    raise SystemExit(main())
