"""Transfer of MBIRL on *learned* keypoints (no markers) to held-out goals given as target images (issue 18 item 4).

Per seed (``--seeds``; 0-2 development, >= 100 report):
1. Record ``--demos`` scripted-expert Place-v0 demos rendered plain (no markers, no blobs) at the
   detector's frame size through every ``--camera`` (the first as ``cam0``), alternating the goal
   regions (the seeds eval_transfer.py's demos use).
2. Keypoints: the trained detectors (``--detector``, ``robot-irl keypoints train`` folders, one per
   camera; ``scripts/train_view_detectors.py`` trains them) on their camera's frames, each pixel put
   on its camera ray at the depth where the optical axis meets the ground
   (``keypoints.learned.space``: the image in metres, a plane facing the camera); with several
   cameras the keypoints of all of them side by side (``ViewsObserver``).
3. Dynamics: ``--explore`` exploration episodes (``models.collect``: perturbed-expert and random
   row plans) rendered plain through every camera at every row boundary, the detectors run on
   those frames, and the ``fk``-structured learned model (keypoints = g(joints)) fitted on them.
4. MBIRL: the time-dependent cost (timedep) from the demos' learned tracks through that model
   (training goals: where each demo's learned keypoints ended).
5. Held-out goals (eval_transfer.py's: 20 seeds, half per region): the expert's run for the goal
   rendered plain; its final frame (one per camera) is the **target image**; the goal keypoints are
   the detectors' keypoints of it. Each goal is run through ``robot_irl.control.mpc.run_learned`` on the
   env's robot (``SceneArmBackend``, default safety filter, the demos' gripper column: hold, let
   go at rest) exactly as eval_transfer.py runs the marker pipeline, and as ``robot-irl run`` runs a
   learned-keypoint run: each plan landed on the goal with the tool as the demos ended it
   (``robot_irl.control.tool.ToolHold.from_demos`` on the demos' last joints; ``--no-land``: not),
   and where a goal asks a joint past the filter's range with the tool so held, the tool tilted to put
   the held object where the reach on the arm's whole range would (``ToolHold.tilt_to``; the held
   point is the sim robot's tool centre point, a fact of its gripper as a real arm's TCP is;
   ``--no-tilt``: not).
6. Judged on simulator truth: **success** = the task's own check after the run (the object's
   keypoint within 2 cm of its goal position and released: ``task.is_success``); the object's final
   error beside it; **path error** = the robot keypoints' true path (wrist marker and flange points of
   the spec, which the learned pipeline never sees) against the expert's path for that goal over
   normalised time, eval_transfer.py's measure (its ``path_err_truth_cm``), and the time-free one.
   Beside it, split by the goal: **success within the filter** on the goals whose expert's final
   joints lie inside the range the safety filter lets a run reach, and on the others (the scripted
   expert runs without the filter and ends some left-region goals with the elbow at its hard limit;
   a run's joints stay ``limit_margin`` inside it). Only the report is split by this privileged
   figure; the runs never see it.
7. ``--markers``: the marker pipeline on the same seed and goals (eval_transfer.run_seed with timedep
   only: 640x480 marker video, OpenCV keypoints, the same runner), for ``path_err_ratio_vs_markers``
   = learned path error (truth) / marker path error (truth), both on the same 20 goals. Its runs are
   judged on the same task check too (``marker_transfer_success``).

Last line: one JSON object (transfer_success = success rate over the goals, mean over seeds;
success_within_filter / success_outside_filter pooled over the seeds' goals, the markers' beside;
path_err_ratio_vs_markers; per-seed figures; seeds; what was judged on what).

    nice -n 10 .venv/bin/python scripts/eval_learned_transfer.py --detector DIR [--detector DIR2
        --camera front,top] [--seeds 0] [--goals 20] [--explore 400] [--markers] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from evalkit import mean_worst, parse_seeds, seed_kind  # noqa: E402

ENV_ID = "robot_irl/Place-v0"
REGIONS = ("right", "left")
SUCCESS_M = 0.02


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def make_env(size: tuple[int, int], camera: str):
    import sim
    return sim.make(ENV_ID, robot="iiwa", render_size=size, markers=False, blobs=False, camera=camera)


def record_plain_demos(lib, n: int, seed: int, size: tuple[int, int], cameras: list[str]) -> list:
    from robot_irl.record.sim import record_sim
    if len(lib.select("tag:train")) >= n:
        return sorted(lib.select("tag:train"), key=lambda e: e.meta["seed"])[:n]
    return [record_sim(lib, ENV_ID, episodes=1, seed=seed + i, variant={"goal_region": REGIONS[i % 2]},
                       render_size=size, tags=["train"], plain=True, camera=cameras[0],
                       views=tuple(cameras[1:]))[0] for i in range(n)]


def learned_demos(eps: list, observer, rows: int):
    from robot_irl.irl.library_demos import demos_from_arrays
    from robot_irl.keypoints.learned.observe import observe_episodes
    return demos_from_arrays(observe_episodes(observer, eps), rows=rows,
                             source=f"{len(eps)} plain demos, learned keypoints")


def explore_and_fit(args, seed: int, observer, size, root: Path):
    from robot_irl.models import LearnedDynamics, train_dynamics
    from robot_irl.models.cli import robot_description
    from robot_irl.models.collect import collect_exploration
    from robot_irl.models.learned import DynamicsTrainConfig

    path = root / "learned_dynamics.pt"
    if path.exists():
        return LearnedDynamics.load(path), json.loads((root / "dynamics_metrics.json").read_text())
    t0 = time.perf_counter()
    cams = cameras(args)
    data = collect_exploration(ENV_ID, robot="iiwa", episodes=args.explore, seed=seed + 7, observe=observer,
                               render_size=size, plain=True, camera=cams[0], views=tuple(cams[1:]), progress=True)
    t_col = time.perf_counter() - t0
    model, err = train_dynamics(data["x"], data["q"], data["u"], lower=data["lower"], upper=data["upper"],
                                cfg=DynamicsTrainConfig(seed=seed), **robot_description(data))
    err.update(collect_s=t_col, fit_s=time.perf_counter() - t0 - t_col, explore_episodes=args.explore)
    model.save(path)
    (root / "dynamics_metrics.json").write_text(json.dumps(err))
    return model, err


def goal_refs(env, n: int, seed: int, observer, robot_idx: list[int], obj_idx: int) -> list[dict]:
    """eval_transfer.py's held-out goals, with each expert run's final frame and its learned keypoints."""
    from eval_transfer import DENSE, resample
    from robot_irl.models.collect import expert_rollout, settle_time
    out = []
    for j in range(n):
        region, s = REGIONS[j % 2], seed + j
        r = expert_rollout(env, s, {"goal_region": region})
        frames = {observer.cameras[0]: env.render()[None],
                  **{c: env.unwrapped.render_view(c)[None] for c in observer.cameras[1:]}}
        t_end = settle_time(r["t"], r["q"])
        out.append({"seed": s, "region": region, "goal": observer(frames)[0],
                    "goal_obj": r["goal"][obj_idx], "goal_robot": r["goal"][robot_idx],
                    "path": resample(r["t"], r["x"][:, robot_idx], t_end),
                    "dense": resample(r["t"], r["x"][:, robot_idx], t_end, DENSE),
                    "expert_obj_err_m": float(np.linalg.norm(r["x"][-1, obj_idx] - r["goal"][obj_idx])),
                    "expert_q_end": np.asarray(r["q"][-1], float)})
    return out


def execute(env, run, refs: list[dict], robot_idx: list[int], obj_idx: int, gripper, hold=None) -> dict[str, float]:
    """Every goal through run_learned as eval_transfer.py runs it; judged on simulator truth. ``hold``:
    land each plan with the tool held so (``robot-irl run``'s default on learned keypoints)."""
    from eval_transfer import DENSE, SAMPLES, spatial_error
    from robot_irl.control import FakeClock, SafetyConfig
    from robot_irl.control.arm import Arm
    from robot_irl.control.mpc import run_learned
    from robot_irl.control.scene_arm import SceneArmBackend
    from robot_irl.irl.library_demos import resample_track
    from robot_irl.models.collect import settle_time
    from sim.camera import get_camera

    cam = get_camera("front", (32, 24))        # rendered only so the backend logs the true keypoints per tick
    rows = []
    for ref in refs:
        env.reset(seed=ref["seed"], options={"variant": {"goal_region": ref["region"]}})
        clock = FakeClock()
        backend = SceneArmBackend(env, gripper, clock)
        with Arm(backend, safety=SafetyConfig(), clock=clock) as arm:
            rec = run_learned(arm, run, ref["goal"], camera=cam, land=hold is not None, hold_tool=hold)
        u = env.unwrapped
        u.scene.sync_features()
        final = u.scene.keypoints_3d()
        success = bool(u.task.is_success(final, u.goal))
        truth = np.array(backend.truth)[:, robot_idx]
        t = np.asarray(rec.t, float)[:len(truth)]
        truth = truth[:len(t)]
        t_end = settle_time(t, np.asarray(rec.q, float)[:len(t)])
        tq = np.linspace(t[0], max(t_end, t[0] + 1e-6), SAMPLES)
        path = resample_track(t, truth, tq)
        rows.append({"success": success, "obj_err_m": float(np.linalg.norm(final[obj_idx] - ref["goal_obj"])),
                     "robot_final_m": float(np.linalg.norm(final[robot_idx] - ref["goal_robot"], axis=-1).max()),
                     "path_m": float(np.nanmean(np.linalg.norm(path - ref["path"], axis=-1))),
                     "spatial_m": spatial_error(resample_track(t, truth, np.linspace(tq[0], tq[-1], DENSE)), ref["dense"]),
                     "model_final_m": rec.final_err_m, "outcome": rec.outcome, "replans": rec.replans})
        r = rows[-1]
        log(f"goal {ref['seed']} ({ref['region']}): {'ok ' if success else 'MISS'} object {r['obj_err_m'] * 100:.2f} cm, "
            f"path {r['path_m'] * 100:.2f} cm, model {r['model_final_m'] * 100:.2f} cm, {r['outcome']}")
    col = {k: np.array([r[k] for r in rows], float) for k in ("obj_err_m", "robot_final_m", "path_m", "spatial_m",
                                                              "model_final_m")}
    by_region = {g: float(np.mean([r["path_m"] for r, ref in zip(rows, refs) if ref["region"] == g]) * 100)
                 for g in REGIONS}
    return {"success_rate": float(np.mean([r["success"] for r in rows])),
            "obj_err_cm_median": float(np.median(col["obj_err_m"]) * 100),
            "obj_err_cm_max": float(col["obj_err_m"].max() * 100),
            "robot_success_rate": float(np.mean(col["robot_final_m"] < SUCCESS_M)),
            "path_err_truth_cm": float(col["path_m"].mean() * 100),
            "spatial_err_truth_cm": float(col["spatial_m"].mean() * 100),
            "model_success_rate": float(np.mean(col["model_final_m"] < SUCCESS_M)),
            "placed": [r["success"] for r in rows],
            **{f"path_err_{g}_cm": v for g, v in by_region.items()}}


def marker_figures(seed: int, goals: int, demos: int, iters: int, root: Path) -> dict[str, float]:
    """eval_transfer.py's timedep (5 marker demos, 640x480, OpenCV keypoints) on the same seed and goals."""
    import eval_transfer
    ns = argparse.Namespace(demos=demos, goals=goals, iters=iters, explore=0, dynamics_structure="fk",
                            methods="timedep", counts="", train_goals="final", render_size="640x480", out=str(root))
    figs = eval_transfer.run_seed(ns, seed, root)
    return {"marker_" + k: v for k, v in figs.items() if isinstance(v, (int, float)) or k == "placed"}


def within_filter(refs: list[dict], limits: np.ndarray) -> np.ndarray:
    """Per goal: whether the expert's final joints lie inside the range the arm's safety filter lets
    a run reach (the arm's limits less the default ``limit_margin``). The scripted expert runs without
    the filter and may end a joint at its hard limit; a run cannot go there. Privileged simulator data,
    used only to split the report, never by the runs."""
    from robot_irl.control import SafetyConfig
    m = SafetyConfig().limit_margin
    q = np.stack([r["expert_q_end"] for r in refs])
    return np.all((q > limits[:, 0] + m) & (q < limits[:, 1] - m), axis=1)


def split_rates(placed: list[bool], inside: np.ndarray) -> tuple[float, float]:
    """Success on the goals inside the filter's range and on the others (nan where there are none)."""
    p = np.asarray(placed, float)
    return (float(p[inside].mean()) if inside.any() else float("nan"),
            float(p[~inside].mean()) if (~inside).any() else float("nan"))


def pooled_split(per: dict[int, dict], seeds: list[int], markers: bool) -> dict[str, float]:
    """The within / outside-the-filter split over every seed's goals together (and the markers')."""
    inside = np.concatenate([per[s]["inside"] for s in seeds])
    out = {"goals_within_filter": int(inside.sum())}
    out["success_within_filter"], out["success_outside_filter"] = split_rates(
        [p for s in seeds for p in per[s]["placed"]], inside)
    if markers:
        out["marker_transfer_success"] = float(np.mean([per[s]["marker_placed_rate_truth"] for s in seeds]))
        out["marker_success_within_filter"], out["marker_success_outside_filter"] = split_rates(
            [p for s in seeds for p in per[s]["marker_placed"]], inside)
    return out


def run_seed(args, seed: int, root: Path) -> dict:
    import torch

    from robot_irl.control.scene_arm import gripper_from_demos
    from robot_irl.control.tool import ToolHold, tool_link
    from robot_irl.irl import LearnerConfig, fit_cost
    from robot_irl.keypoints.learned.detector import LearnedDetector
    from robot_irl.keypoints.learned.observe import LearnedObserver, ViewsObserver
    from robot_irl.keypoints.learned.space import ImageSpace
    from robot_irl.library import Library
    from sim.camera import get_camera

    torch.set_num_threads(1)
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    cams = cameras(args)
    size = LearnedDetector.load(args.detector[0]).source_size
    env = make_env(size, cams[0])
    views = [LearnedObserver(d, ImageSpace.facing(get_camera(c, size).model(), args.depth))
             for d, c in zip(args.detector, cams)]
    observer = views[0] if len(views) == 1 else ViewsObserver(views)
    lib = Library.open(root / "library", create=True)
    eps = record_plain_demos(lib, args.demos, 1000 * (seed + 1), size, cams)
    demos = learned_demos(eps, observer, rows=10)
    log(f"seed {seed}: {len(eps)} plain demos, learned keypoints {observer.names} through {cams}")
    model, dyn_err = explore_and_fit(args, seed, observer, size, root)
    log(f"dynamics on learned keypoints: {dyn_err}")
    from robot_irl.irl.inner import InnerConfig
    run = fit_cost(demos, model, "timedep", LearnerConfig(rows=10, outer_iters=args.iters, seed=seed,
                                                          inner=InnerConfig(damping=args.damping)))
    log(f"timedep fitted: train path {run.metrics.get('train_path_err_cm', float('nan')):.2f} cm (learned-keypoint space)")
    spec = env.unwrapped.keypoint_spec
    robot_idx = [spec.index(k.name) for k in spec.on_body("robot")]
    obj_idx = spec.index("obj")
    refs = goal_refs(env, args.goals, 5000 + 1000 * seed, observer, robot_idx, obj_idx)
    dyn = run.dynamics
    link = tool_link(dyn.urdf, list(dyn.joints))
    held = None if args.no_tilt else env.unwrapped.robot.held_point(link)
    hold = None if args.no_land else ToolHold.from_demos(dyn.urdf, list(dyn.joints), demos.q_end, link=link,
                                                         held_point=held)
    log(f"landing: {hold.to_dict() if hold is not None else 'off'}")
    res = execute(env, run, refs, robot_idx, obj_idx, gripper_from_demos(eps), hold)
    inside = within_filter(refs, env.unwrapped.robot.joint_limits)
    env.close()
    out = {**res, **{f"dyn_{k}": v for k, v in dyn_err.items()},
           "expert_success_rate": float(np.mean([r["expert_obj_err_m"] < SUCCESS_M for r in refs])),
           "learned_wall_s": time.perf_counter() - t0}
    if args.markers:
        t1 = time.perf_counter()
        out.update(marker_figures(seed, args.goals, args.demos, args.iters, root / "markers"))
        out["marker_wall_s"] = time.perf_counter() - t1
        out["path_err_ratio_vs_markers"] = out["path_err_truth_cm"] / out["marker_path_err_truth_cm"]
    out["goals_within_filter"], out["inside"] = int(inside.sum()), [bool(v) for v in inside]
    out["success_within_filter"], out["success_outside_filter"] = split_rates(out["placed"], inside)
    if args.markers:
        out["marker_placed_within_filter"], out["marker_placed_outside_filter"] = split_rates(out["marker_placed"], inside)
    print(f"seed {seed}: learned keypoints ({len(observer.names)}), {args.demos} plain demos, {args.explore} exploration "
          f"episodes; {args.goals} held-out goals given as target images")
    print(f"{'pipeline':<26}{'success':>9}{'object cm med':>15}{'robot kp ok':>13}{'path cm':>9}{'spatial':>9}")
    print(f"{'learned keypoints':<26}{out['success_rate']:>9.0%}{out['obj_err_cm_median']:>15.2f}"
          f"{out['robot_success_rate']:>13.0%}{out['path_err_truth_cm']:>9.2f}{out['spatial_err_truth_cm']:>9.2f}")
    if args.markers:
        print(f"{'markers (eval_transfer)':<26}{out['marker_placed_rate_truth']:>9.0%}{'':>15}"
              f"{out['marker_success_rate_truth']:>13.0%}"
              f"{out['marker_path_err_truth_cm']:>9.2f}{out['marker_spatial_err_cm']:>9.2f}   (spatial: observed)")
        print(f"path error ratio (learned / markers, both simulator truth): {out['path_err_ratio_vs_markers']:.2f}")
    n_in = out["goals_within_filter"]
    line = (f"success on the {n_in} goals whose expert pose the safety filter lets a run reach: "
            f"{out['success_within_filter']:.0%}; on the other {len(refs) - n_in} (a joint within the filter's margin "
            f"of its limit): {out['success_outside_filter']:.0%}")
    if args.markers:
        line += (f" (markers: {out['marker_placed_within_filter']:.0%} / {out['marker_placed_outside_filter']:.0%})")
    print(line)
    return out


def cameras(args) -> list[str]:
    cams = [c.strip() for c in args.camera.split(",") if c.strip()]
    if len(cams) != len(args.detector):
        raise SystemExit(f"--camera {args.camera!r}: give one camera per --detector ({len(args.detector)})")
    return cams


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--detector", required=True, action="append",
                    help="model folder from `robot-irl keypoints train`; once per --camera")
    ap.add_argument("--seeds", default="0", help="0-2 development, >= 100 report")
    ap.add_argument("--demos", type=int, default=5)
    ap.add_argument("--goals", type=int, default=20)
    ap.add_argument("--explore", type=int, default=400, help="exploration episodes for the learned dynamics")
    ap.add_argument("--iters", type=int, default=400, help="MBIRL outer iterations")
    ap.add_argument("--damping", type=float, default=0.03,
                    help="the inner Gauss-Newton step's Levenberg damping (relative; the learner's default is 1e-3: "
                         "on learned keypoints through front+top, 0.03 was chosen on dev seeds 0-1 among 0.01/0.03/0.1; "
                         "through the front camera alone 0.1 on dev seed 0; notes/keypoints.md)")
    ap.add_argument("--depth", type=float, help="depth (m) of the plane the pixels are put on (default: where the "
                                                "optical axis meets the ground)")
    ap.add_argument("--camera", default="front", help="the sim cameras the demos, exploration and goal images are "
                                                      "rendered from, comma separated, one per --detector")
    ap.add_argument("--no-land", action="store_true",
                    help="leave each plan's end where the learned cost puts it (before session 9; the default, as "
                         "`robot-irl run`, lands it on the goal with the tool as the demos ended it)")
    ap.add_argument("--no-tilt", action="store_true",
                    help="keep the tool as the demos held it even where a goal asks a joint past the safety filter's "
                         "range (before session 11; the default tilts it to put the held object where it goes)")
    ap.add_argument("--markers", action="store_true", help="also run the marker pipeline on the same goals")
    ap.add_argument("--out", help="keep libraries and models here (reused on a rerun)")
    args = ap.parse_args()
    seeds = parse_seeds(args.seeds)
    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="eval_learned_transfer_"))
    per = {s: run_seed(args, s, root / f"seed{s}") for s in seeds}
    out: dict = {}
    out["transfer_success"], out["transfer_success_min"] = mean_worst([per[s]["success_rate"] for s in seeds],
                                                                       higher_is_better=True)
    out["path_err_truth_cm"], out["path_err_truth_cm_max"] = mean_worst([per[s]["path_err_truth_cm"] for s in seeds])
    if args.markers:
        out["path_err_ratio_vs_markers"] = float(np.mean([per[s]["path_err_ratio_vs_markers"] for s in seeds]))
        out["path_err_ratio_vs_markers_max"] = float(max(per[s]["path_err_ratio_vs_markers"] for s in seeds))
    out.update(pooled_split(per, seeds, args.markers))
    for s in seeds:
        out.update({f"seed{s}_{k}": v for k, v in per[s].items()})
    out.update(seeds=seeds, seed_kind=seed_kind(seeds), detector=[str(Path(d).resolve()) for d in args.detector],
               cameras=cameras(args), landed=not args.no_land, tilted=not (args.no_land or args.no_tilt),
               judged_on="simulator truth: success = task.is_success (object within 2 cm of its goal, released); "
                         "path = robot spec keypoints' true path vs the expert's",
               goals_given_as="learned keypoints of the expert's final plain frame for the goal (target image)")
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
