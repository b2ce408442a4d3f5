"""`robot-irl dynamics collect|train`: exploration data in the sim, and a learned keypoint model.

``collect`` writes an .npz (x [N, T, K, 3], q [N, T, n], u [N, T-1, n], lower, upper, names, ...;
see collect.py; ``--ray [ADDRESS]``: the episodes as Ray tasks, the same arrays); ``train`` fits the MLP ensemble on it and writes a run folder: ``model.pt``
(what ``robot-irl train --dynamics learned --model`` takes), ``config.json`` and ``metrics.json``
with the held-out one-step and multi-step keypoint errors (cm).
"""
from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np

from robot_irl.cliargs import format_table
from robot_irl.core.cluster import add_ray_option
from robot_irl.core.io import atomic_write_bytes
from robot_irl.errors import InputError

REQUIRED = ("x", "q", "u", "lower", "upper")


def cmd_collect(args: argparse.Namespace) -> int:
    from robot_irl.models.collect import collect_exploration

    names = [n.strip() for n in args.keypoint_names.split(",")] if args.keypoint_names else None
    kwargs = dict(robot=args.robot, episodes=args.episodes, rows=args.rows, extra=args.extra, noise=args.noise,
                  random_frac=args.random_frac, keypoint_names=names, seed=args.seed, progress=not args.quiet)
    if args.detector:
        if names:
            raise InputError("--keypoint-names with --detector", field="--keypoint-names",
                             expected="no names: a learned detector's keypoints are lk0.. (all of them)")
        kwargs.update(_learned_observation(args))
    else:
        for option, given in (("--depth", args.depth is not None), ("--camera", args.camera != "front")):
            if given:
                print(f"note: {option} is for --detector; ignored", file=sys.stderr)
    if args.ray:
        from robot_irl.core.cluster import RayCluster

        with RayCluster.start(args.ray) as cluster:
            data = collect_exploration(args.env, cluster=cluster, **kwargs)
    else:
        data = collect_exploration(args.env, **kwargs)
    buf = io.BytesIO()
    np.savez_compressed(buf, **data)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, buf.getvalue())
    x = data["x"]
    print(f"{x.shape[0]} episodes x {x.shape[1]} rows, keypoints {list(data['names'])} -> {out}")
    return 0


def _learned_observation(args: argparse.Namespace) -> dict:
    """``collect_exploration`` options for keypoints learned detectors see: each ``--detector``
    through its ``--camera`` (comma list, one per detector, all at one frame size), rendered plain
    (no markers or blobs) at the size the detectors were trained on, pixels put on the plane facing
    each camera (``keypoints.learned.space``); several detectors see the scene side by side."""
    from robot_irl.keypoints.learned.detector import LearnedDetector
    from robot_irl.keypoints.learned.observe import LearnedObserver, ViewsObserver
    from robot_irl.keypoints.learned.space import ImageSpace
    from sim.camera import get_camera

    cams = [c.strip() for c in args.camera.split(",") if c.strip()]
    if len(cams) != len(args.detector):
        raise InputError(f"{len(args.detector)} --detector and cameras {cams}", field="--camera",
                         expected="one sim camera per --detector, comma separated, in the same order")
    dets = [LearnedDetector.load(d) for d in args.detector]
    sizes = {tuple(d.source_size) for d in dets}
    if len(sizes) > 1:
        raise InputError(f"detectors trained on frames of sizes {sorted(sizes)}", field="--detector",
                         expected="detectors trained on frames of one size (the sim renders every camera at one size)")
    views = [LearnedObserver(d.path, ImageSpace.facing(get_camera(c, d.source_size).model(), args.depth))
             for d, c in zip(dets, cams)]
    return {"observe": views[0] if len(views) == 1 else ViewsObserver(views), "render_size": dets[0].source_size,
            "plain": True, "camera": cams[0], "views": tuple(cams[1:])}


def load_exploration(path: str | Path) -> dict[str, np.ndarray]:
    p = Path(path)
    if not p.is_file():
        raise InputError("exploration data not found", file=p, field="--data",
                         expected="an .npz written by robot-irl dynamics collect")
    data = dict(np.load(p, allow_pickle=False))
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise InputError(f"missing arrays {missing} (has {sorted(data)})", file=p, field="--data",
                         expected=f"arrays {list(REQUIRED)}")
    return data


def robot_description(data: dict[str, np.ndarray]) -> dict:
    """``joints`` / ``frames`` / ``urdf`` of the robot the exploration data came from (None for data
    collected before they were stored; such a model trains, but ``robot-irl run`` refuses it)."""
    from robot_irl.models.frames import KeypointFrame

    if "joint_names" not in data:
        return {}
    if "observation" in data:       # keypoints seen by a learned detector: on no link
        return {"joints": [str(j) for j in data["joint_names"]], "urdf": str(data["urdf"]),
                "observation": json.loads(str(data["observation"]))}
    frames = [KeypointFrame(str(n), str(link), tuple(float(v) for v in off))
              for n, link, off in zip(data["names"], data["frame_links"], data["frame_offsets"])]
    return {"joints": [str(j) for j in data["joint_names"]], "frames": frames, "urdf": str(data["urdf"])}


def cmd_train(args: argparse.Namespace) -> int:
    from robot_irl.models.learned import DynamicsTrainConfig, train_dynamics
    from robot_irl.runs import RunDir

    data = load_exploration(args.data)
    cfg = DynamicsTrainConfig(hidden=args.hidden, layers=args.layers, ensemble=args.ensemble, epochs=args.epochs,
                              lr=args.lr, holdout=args.holdout, multistep=args.multistep, seed=args.seed,
                              structure=args.structure)
    model, err = train_dynamics(data["x"], data["q"], data["u"], lower=data["lower"], upper=data["upper"], cfg=cfg,
                                **robot_description(data))
    config = {"data": str(Path(args.data).resolve()), "train": vars(cfg),
              "keypoint_names": [str(n) for n in data.get("names", [])],
              "robot": str(data["robot"]) if "robot" in data else None,
              "episodes": int(data["x"].shape[0]), "rows": int(data["x"].shape[1])}
    run = RunDir.create(args.out, config, kind="dynamics_train")
    model.save(run.path / "model.pt")
    run.update_metrics(**err)
    if args.json:
        print(json.dumps({**err, "model": str(run.path / "model.pt")}))
    else:
        print(format_table(["figure", "value"], [[k.replace("_", " "), v] for k, v in err.items()]))
        print(f"model saved to {run.path / 'model.pt'}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("dynamics", help="collect exploration data in the sim and train learned keypoint dynamics",
                              description="Learned keypoint dynamics: `collect` in the sim, then `train`.")
    sub = p.add_subparsers(dest="dynamics_cmd", required=True)
    c = sub.add_parser("collect", help="exploration rows in the sim (perturbed-expert and random joint deltas)",
                       description="Execute perturbed-expert and random joint-delta plans in the sim; record "
                       "robot keypoints and joint states at every row.")
    c.add_argument("--env", default="robot_irl/Place-v0", help="sim env id")
    c.add_argument("--robot", default="iiwa", help="sim robot (iiwa|panda)")
    c.add_argument("--episodes", type=int, default=200)
    c.add_argument("--rows", type=int, default=10, help="plan rows incl. the start (the learner's horizon + 1)")
    c.add_argument("--extra", type=int, default=2, help="random rows appended to every episode")
    c.add_argument("--noise", type=float, default=0.05, help="std of the per-row joint-delta noise (rad)")
    c.add_argument("--random-frac", type=float, default=0.3, help="fraction of purely random plans")
    c.add_argument("--keypoint-names", help="comma separated (default: every keypoint on the robot)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--out", required=True, help="output .npz")
    c.add_argument("--detector", metavar="DIR", action="append",
                   help="keypoints a learned detector (robot-irl keypoints train) sees in the scene camera's frames, "
                   "rendered without markers at its frame size, instead of the sim's; repeat it, with one --camera "
                   "each, for keypoints seen from several sides")
    c.add_argument("--depth", type=float, help="with --detector: depth (m) of the plane facing the camera its pixels "
                   "are put on (default: where the optical axis meets the ground)")
    c.add_argument("--camera", default="front", help="with --detector: the sim camera it sees through (default front; "
                   "the one its demos were recorded with); with several, a comma list in --detector order (front,top)")
    c.add_argument("--quiet", action="store_true", help="no progress bar")
    add_ray_option(c)
    c.set_defaults(func=cmd_collect)
    t = sub.add_parser("train", help="train the MLP ensemble; held-out one-step and multi-step errors",
                       description="Fit learned keypoint dynamics on collected data; write a run folder.")
    t.add_argument("--data", required=True, help=".npz from robot-irl dynamics collect")
    t.add_argument("--out", required=True, help="run folder to write (model.pt, metrics.json)")
    t.add_argument("--hidden", type=int, default=128)
    t.add_argument("--layers", type=int, default=2)
    t.add_argument("--ensemble", type=int, default=3)
    t.add_argument("--epochs", type=int, default=200)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--structure", choices=("fk", "fk_joint", "delta"), default="fk",
                   help="fk: keypoints = g(joints), joints += action (default; what MBIRL needs); "
                        "fk_joint: fk, and joints += action + a learned residual of how the arm tracked; "
                        "delta: (keypoints, joints, action) -> change of both")
    t.add_argument("--holdout", type=float, default=0.2, help="fraction of episodes held out")
    t.add_argument("--multistep", type=int, default=10, help="open-loop steps of the multi-step error")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--json", action="store_true", help="print the held-out figures as one JSON object")
    t.set_defaults(func=cmd_train)
