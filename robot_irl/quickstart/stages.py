"""The quickstart's stages, in pipeline order. Each calls the stage's public API (never its files)
and returns the figures it measured; nothing here computes a figure a stage API already reports."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pybullet_data

from sim.robots import ROBOTS

from robot_irl.library import Library
from robot_irl.quickstart.pipeline import Context
from robot_irl.report.media import write_gif

ENV_ID = "robot_irl/Place-v0"
# Variants recorded for search: colours × shapes × regions; the learner trains on the first.
SEARCH_VARIANTS = [{"color": c, "shape": s, "goal_region": r}
                   for c in ("red", "blue") for s in ("cube", "cylinder") for r in ("right", "left")]


def library(ctx: Context) -> Library:
    return Library.open(ctx.out / "library", create=True)


def record(ctx: Context) -> dict[str, Any]:
    """Record expert demos of the place task as rendered video, over several variants."""
    from robot_irl.record.sim import CAMERA, record_sim

    lib = library(ctx)
    n_train = 6 if ctx.fast else 7   # 5 demos to learn from, the rest held out
    per_variant = 1 if ctx.fast else 2
    eps = record_sim(lib, ENV_ID, episodes=n_train, seed=ctx.seed, variant=SEARCH_VARIANTS[0],
                     render_size=(640, 480), tags=["train"])
    # Episodes only searched (CLIP crops the workspace from each episode's own camera model and
    # shrinks it to the model's input) need no more than 320x240; only the train demos are extracted
    # (640x480: the 4 cm wrist marker's 3D). Rendering is most of recording: 43 vs 84 ms a frame.
    for i, v in enumerate(SEARCH_VARIANTS[1:], 1):
        eps += record_sim(lib, ENV_ID, episodes=per_variant, seed=ctx.seed + 100 * i, variant=v,
                          render_size=(320, 240), tags=["search"])
    first = eps[0]
    gif = write_gif(first.video_frames(CAMERA), ctx.path("media", "demo.gif"), fps=first.fps)
    rows = [{"episode": e.id, "task": e.task, "frames": e.frame_count(CAMERA), "success": e.success} for e in eps[:8]]
    return {"episodes": len(eps), "train_episodes": n_train, "variants": len(SEARCH_VARIANTS),
            "expert_success_rate": float(np.mean([bool(e.success) for e in eps])),
            "images": {"a recorded demo (rendered video)": str(gif.relative_to(ctx.out))},
            "tables": {"recorded episodes (first 8)": rows},
            "text": f"{len(eps)} scripted-expert demos of {ENV_ID} recorded into {lib.path} as lossless video "
                    f"with state, ground-truth keypoints and the camera model."}


def extract(ctx: Context) -> dict[str, Any]:
    """Extract keypoints from the training demos' videos with OpenCV; score them against the sim's
    ground truth (which the extractor never sees)."""
    import cv2

    from robot_irl.keypoints.episodes import extract_and_store
    from robot_irl.record.sim import CAMERA

    lib = library(ctx)
    rows, err3d, err2d, detected, visible_total = [], [], [], 0, 0
    overlay = None
    for ep in lib.select("tag:train"):
        track = extract_and_store(ep, CAMERA, progress=False)
        state = ep.arrays("state")
        # align ground truth to the video by timestamp
        idx = np.searchsorted(state["timestamp"], track.timestamps).clip(0, len(state["timestamp"]) - 1)
        truth3d, truth2d, vis = state["keypoints_3d"][idx], state["keypoints_2d_cam0"][idx], state["keypoints_visible_cam0"][idx]
        e3 = np.linalg.norm(track.xyz - truth3d, axis=-1)
        e2 = np.linalg.norm(track.uv - truth2d, axis=-1)
        ok = vis & np.isfinite(e3)
        err3d.append(e3[ok])
        err2d.append(e2[vis & np.isfinite(e2)])
        detected += int(np.isfinite(track.uv[..., 0][vis]).sum())
        visible_total += int(vis.sum())
        rows.append({"episode": ep.id, "frames": len(track), "median_3d_err_mm": float(np.median(e3[ok]) * 1000)
                     if ok.any() else float("nan"), "missing_all": ", ".join(track.meta.get("missing_all", [])) or "-"})
        if overlay is None:
            frames = []
            for i, f in enumerate(ep.video_frames(CAMERA)):
                f = f.copy()
                for k in range(len(track.names)):
                    if np.isfinite(track.uv[i, k]).all():
                        cv2.circle(f, tuple(int(round(v)) for v in track.uv[i, k]), 6, (0, 255, 0), 2)
                    if vis[i, k]:
                        cv2.drawMarker(f, tuple(int(round(v)) for v in truth2d[i, k]), (255, 0, 0), cv2.MARKER_CROSS, 8, 1)
                frames.append(f)
            overlay = write_gif(frames, ctx.path("media", "keypoints.gif"), fps=ep.fps)
    e3 = np.concatenate(err3d)
    e2 = np.concatenate(err2d)
    return {"episodes": len(rows), "detect_rate_visible": detected / max(visible_total, 1),
            "median_2d_err_px": float(np.median(e2)), "median_3d_err_mm": float(np.median(e3) * 1000),
            "p90_3d_err_mm": float(np.percentile(e3, 90) * 1000),
            "images": {"extracted (green circles) vs ground truth (red crosses)": str(overlay.relative_to(ctx.out))},
            "tables": {"per episode": rows},
            "text": "ArUco markers and colour blobs detected with OpenCV, tracked with Lucas-Kanade flow, lifted to "
                    "3D in the robot base frame, gap-filled and smoothed; errors against the simulator's truth."}


def diagnose(ctx: Context) -> dict[str, Any]:
    """t-SNE (PCA init) of the demos' keypoint trajectories, with the measures that say how far
    to trust the picture."""
    from robot_irl.diagnostics import EmbedConfig
    from robot_irl.diagnostics import diagnose as run_diagnosis
    from robot_irl.diagnostics.collectors import collect_keypoints
    from robot_irl.runs import RunDir

    latents = collect_keypoints(ctx.out / "library")
    perplexity = float(min(30.0, max(5.0, (len(latents.X) - 1) / 3.5)))
    run = RunDir.create(ctx.out / "diagnose", {"latent": "keypoints", "library": str(ctx.out / "library"),
                                                "method": "tsne", "perplexity": perplexity}, kind="diagnose")
    result = run_diagnosis(latents, run, EmbedConfig(method="tsne", perplexity=perplexity, seed=ctx.seed),
                           compare_init=not ctx.fast)
    images = {f"keypoints coloured by {p.stem}": str(p.relative_to(ctx.out)) for p in result.plots
              if p.stem in ("goal_region", "step")}
    m = result.metrics
    figures = {k: v for k, v in m.items()
               if k.startswith(("tsne_pca.", "tsne_random.", "original.")) and not k.endswith("_s")}
    return {"points": len(latents.X), **figures, "images": images,
            "text": "Each point is one time step of one demo (its keypoints and where they end up, robot base "
                    "frame). trust10 and "
                    "knn_kept10 measure local faithfulness, spearman_pdist global structure, knn_acc10 how well "
                    "labels separate in the map (compare original.knn_acc10, the same in the input space)."}


def learn(ctx: Context) -> dict[str, Any]:
    """Learn costs with model-based IRL from the extracted keypoints of the training demos; compare
    with the default Euclidean cost and the baselines on held-out demos."""
    from robot_irl.irl import LearnerConfig, fit_bc, fit_cost, fit_feature_matching
    from robot_irl.irl.library_demos import demos_from_library
    from robot_irl.models import KinematicDynamics, frames_from_spec

    lib = library(ctx)
    eps = lib.select("tag:train")
    n_test = 1 if ctx.fast else 2
    train_eps, test_eps = eps[:-n_test], eps[-n_test:]
    rows = 10
    train_q = "id:" + ",".join(e.id for e in train_eps)
    test_q = "id:" + ",".join(e.id for e in test_eps)
    train, robot_spec = demos_from_library(lib, train_q, rows=rows, keypoints="auto")
    test, _ = demos_from_library(lib, test_q, rows=rows, keypoints="auto")
    urdf = os.path.join(pybullet_data.getDataPath(), ROBOTS[train_eps[0].robot].urdf)   # the episodes' robot
    dyn = KinematicDynamics(urdf, frames_from_spec(robot_spec))
    # --fast: 100 outer iterations (measured on a quickstart library: timedep train loss 10.75 vs 10.27
    # at 200, held-out path 1.07 vs 1.08 cm, at half the CPU: 6 s per cost instead of 12)
    cfg = LearnerConfig(rows=rows, outer_iters=100 if ctx.fast else 400, seed=ctx.seed)
    table, best = [], None
    for method in ("default", "weighted", "timedep", "rbf", "feature_matching", "bc"):
        run_dir = ctx.out / "learn" / method
        if method == "feature_matching":
            tr = fit_feature_matching(train, dyn, cfg, run_dir=run_dir)
        elif method == "bc":
            tr = fit_bc(train, dyn, cfg, run_dir=run_dir)
        else:
            tr = fit_cost(train, dyn, method, cfg, run_dir=run_dir, eval_demos=test)
        m = tr.evaluate(test)
        table.append({"method": method, "test_irl_loss": m["irl_loss"], "test_final_err_cm": m["final_err_cm"],
                      "test_path_err_cm": m["path_err_cm"]})
        if method == "timedep":
            best = m
    plot = ctx.out / "learn" / "timedep" / "plots" / "trajectory.png"
    return {"train_demos": len(train_eps), "test_demos": len(test_eps),
            "timedep_test_final_err_cm": best["final_err_cm"], "timedep_test_path_err_cm": best["path_err_cm"],
            "default_test_path_err_cm": table[0]["test_path_err_cm"],
            "tables": {"held-out demos, by method": table},
            "images": {"time-dependent cost: optimised vs demonstrated": str(plot.relative_to(ctx.out))}
            if plot.exists() else {},
            "text": "Costs learned from OpenCV-extracted keypoints (robot keypoints, 10 rows) through the iiwa's "
                    "kinematic keypoint model; each is optimised for the held-out demos' goals and compared with them."}


def run_arm(ctx: Context) -> dict[str, Any]:
    """Drive the PyBullet arm with the learned time-dependent cost (receding-horizon MPC through the
    safety filter) to held-out goals from both goal regions; record every run as a library episode."""
    import gymnasium as gym

    import sim  # noqa: F401  (registers the envs)
    from robot_irl import load_run
    from robot_irl.control import FakeClock, SafetyConfig, backend_config, make_arm
    from robot_irl.control.mpc import run_learned
    from robot_irl.control.runner import save_run_episode

    # The watchdog rightly warns each time a run ends and the arm holds; the report shows the runs.
    logging.getLogger("robot_irl.control").setLevel(logging.ERROR)
    trained = load_run(ctx.out / "learn" / "timedep")
    lib = library(ctx)
    n_goals = 4 if ctx.fast else 10
    env = gym.make(ENV_ID, robot="iiwa")
    spec = env.unwrapped.keypoint_spec
    robot_idx = [spec.index(k.name) for k in spec.on_body("robot")]
    rows, errors, sent_max = [], [], 0.0
    try:
        for i in range(n_goals):
            region = ("right", "left")[i % 2]
            obs, info = env.reset(seed=10_000 + ctx.seed * 100 + i, options={"variant": {"goal_region": region}})
            goal = obs["goal"][robot_idx]
            arm = make_arm("pybullet", backend_config("pybullet", {"robot": "iiwa", "start": tuple(obs["joint_pos"])}),
                           safety=SafetyConfig(), clock=FakeClock())
            with arm:
                rec = run_learned(arm, trained, goal, steps=120)
            ep = save_run_episode(lib, rec, robot="iiwa", task=f"learned cost: {info['task_text']}", arm_name="pybullet",
                                  extra={"goal_keypoints": goal.tolist(), "run": str(ctx.out / "learn" / "timedep")})
            a = rec.arrays()
            steps = np.abs(np.diff(a["sent"], axis=0)).max() if len(a["sent"]) > 1 else 0.0
            sent_max = max(sent_max, float(steps))
            errors.append(rec.final_err_m)
            rows.append({"goal_region": region, "goal_x": float(goal[0, 0]), "final_err_cm": rec.final_err_m * 100,
                         "ticks": len(rec), "episode": ep.id})
    finally:
        env.close()
    errors = np.array(errors)
    return {"held_out_goals": n_goals, "success_rate": float(np.mean(errors < 0.02)),
            "median_final_err_cm": float(np.median(errors) * 100), "max_final_err_cm": float(errors.max() * 100),
            "max_sent_step_rad": sent_max, "tables": {"runs on held-out goals": rows},
            "text": "Success = every robot keypoint within 2 cm of its goal at the end. Every command went through "
                    "the safety filter (joint limits, delta and velocity caps, watchdog); runs are library episodes "
                    "(source arm) that `robot-irl demos show` opens."}


CLIP_SECONDS = {"fast": 25.0, "default": 90.0, "full": 1200.0}
EXAMPLE_QUERIES = ["place the blue cylinder on the left", "the red cube is put down to the right",
                   "a robot arm carrying a blue cube"]


def clip_search(ctx: Context) -> dict[str, Any]:
    """Train the library's own CLIP for a bounded time (no downloaded weights), report its recall on
    held-out caption templates beside the random-init model and chance, and answer example queries."""
    from robot_irl.retrieval import example_queries, train_library_clip

    lib = library(ctx)
    budget = CLIP_SECONDS["full" if ctx.full else "fast" if ctx.fast else "default"]
    fig = train_library_clip(lib, seconds=budget, query="source:sim", seed=ctx.seed)
    answers = example_queries(lib, EXAMPLE_QUERIES, k=3, sheet_dir=ctx.path("search", "x").parent)
    rows = [{"query": a["query"], "rank": h["rank"], "task": h["task"], "score": h["score"]}
            for a in answers for h in a["hits"]]
    images = {f"search: {a['query']}": str((ctx.out / "search" / Path(a["sheet"]).name).relative_to(ctx.out))
              for a in answers if a.get("sheet")}
    keys = ("text_recall5", "random_text_recall5", "chance_text_recall5", "image_recall1", "random_image_recall1",
            "chance_image_recall1", "pairs_per_s", "steps", "train_seconds", "episodes")
    return {**{k: fig[k] for k in keys if k in fig}, "tables": {"example queries (top 3)": rows}, "images": images,
            "text": f"The project's own small CLIP, trained from scratch on library frames and captions made from "
                    f"episode meta for at most {budget:.0f} s (`--full` trains longer). Recall is on held-out "
                    f"caption templates (new sentence frames) and held-out episodes."}
