"""`robot-irl sim`: look at the simulated world and run its scripted experts."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from robot_irl.cliargs import format_table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sim", help="list, render and roll out the simulated tasks",
                       description="The PyBullet world: env ids, robots, cameras; expert rollouts with video.")
    s = p.add_subparsers(dest="sim_command", metavar="ACTION", required=True)

    ls = s.add_parser("list", help="env ids, robots, cameras, variant options")
    ls.add_argument("--json", action="store_true", help="print one JSON object instead of a listing")
    ls.set_defaults(func=_list)

    ro = s.add_parser("rollout", help="run the scripted expert and report success (optionally write a video)")
    ro.add_argument("--env", default="robot_irl/Place-v0", help="env id (see `robot-irl sim list`)")
    ro.add_argument("--robot", default="iiwa", help="iiwa | panda")
    ro.add_argument("--camera", default="front", help="scene camera name")
    ro.add_argument("--episodes", type=int, default=3)
    ro.add_argument("--seed", type=int, default=0)
    ro.add_argument("--variant", default="{}", help='JSON object, e.g. \'{"color": "blue", "goal_region": "left"}\'')
    ro.add_argument("--video", type=Path, help="write the renders as a lossless .mkv (FFV1) or .mp4")
    ro.add_argument("--size", default="320x240", help="render size WxH")
    ro.add_argument("--json", action="store_true", help="one JSON object per episode, then a summary object")
    ro.set_defaults(func=_rollout)


def _list(args) -> int:
    import sim
    from sim.camera import CAMERAS
    from sim.robots import ROBOTS
    from sim.tasks import GOAL_REGIONS, OBJECT_COLORS, SHAPES
    listing = {"env_ids": sorted(sim.ENV_IDS), "robots": sorted(ROBOTS), "cameras": sorted(CAMERAS),
               "variant": {"shape": SHAPES, "color": OBJECT_COLORS, "goal_region": sorted(GOAL_REGIONS)}}
    if args.json:
        print(json.dumps(listing, indent=2))
        return 0
    for name in ("env_ids", "robots", "cameras"):
        print(f"{name.replace('_', ' ') + ':':10} {', '.join(listing[name])}")
    for key, values in listing["variant"].items():
        print(f"{'variant':10} {key}: {', '.join(values)}")
    return 0


def _rollout(args) -> int:
    import cv2

    import sim
    from sim.expert import expert_for

    variant, (w, h) = sim.parse_render_options(args.variant, args.size)
    env = sim.make(args.env, robot=args.robot, camera=args.camera, variant=variant, render_size=(w, h))
    writer = None
    if args.video:
        fourcc = cv2.VideoWriter_fourcc(*("FFV1" if args.video.suffix == ".mkv" else "mp4v"))
        args.video.parent.mkdir(parents=True, exist_ok=True)
        writer = cv2.VideoWriter(str(args.video), fourcc, env.metadata["render_fps"], (w, h))
    results = []
    t0 = time.perf_counter()
    try:
        for ep in range(args.episodes):
            obs, info = env.reset(seed=args.seed + ep)
            expert = expert_for(env)
            for _ in range(env.unwrapped.max_steps):
                if writer is not None:
                    writer.write(cv2.cvtColor(env.render(), cv2.COLOR_RGB2BGR))
                obs, _, terminated, truncated, info = env.step(expert.act(obs))
                if terminated or truncated:
                    break
            kp_err = float(np.linalg.norm(obs["keypoints"] - obs["goal"], axis=1).max())
            results.append({"episode": ep, "task": info["task_text"], "success": bool(info["is_success"]),
                            "steps": env.unwrapped.steps, "max_keypoint_error_m": round(kp_err, 4)})
            if args.json:
                print(json.dumps(results[-1]))
    finally:
        if writer is not None:
            writer.release()
        env.close()
    rate = sum(r["success"] for r in results) / max(len(results), 1)
    summary = {"success_rate": rate, "episodes": len(results), "seconds": round(time.perf_counter() - t0, 2),
               "video": str(args.video) if args.video else None}
    if args.json:
        print(json.dumps(summary))
    else:
        print(format_table(["episode", "success", "steps", "max keypoint error (cm)", "task"],
                           [[r["episode"], "yes" if r["success"] else "NO", r["steps"],
                             100 * r["max_keypoint_error_m"], r["task"]] for r in results]))
        print(f"{sum(r['success'] for r in results)}/{len(results)} succeeded in {summary['seconds']:.1f} s"
              + (f"; video {args.video}" if args.video else ""))
    return 0 if rate == 1.0 else 1
