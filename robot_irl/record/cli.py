"""`robot-irl record --source sim|camera`: record demonstrations into the demo library."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from robot_irl.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("record", help="record demonstrations (sim expert, camera or video file) into the library",
                       description="Record episodes into the demo library (format: demos/README.md). "
                                   "A killed recording is recovered by `robot-irl demos repair`.")
    p.add_argument("--source", choices=["sim", "camera"], required=True)
    p.add_argument("--library", metavar="PATH",
                   help="demo library folder (default: $ROBOT_IRL_LIBRARY, else ~/.local/share/robot-irl/library)")
    p.add_argument("--task", default="", help="task text (camera; sim episodes take the task's own text)")
    p.add_argument("--tags", default="", help="comma-separated tags")
    g = p.add_argument_group("sim")
    g.add_argument("--env", default="robot_irl/Place-v0", help="env id (see `robot-irl sim list`)")
    g.add_argument("--episodes", type=int, default=1, help="number of episodes")
    g.add_argument("--seed", type=int, default=0, help="seed of the first episode (then +1 each)")
    g.add_argument("--robot", default="iiwa", help="iiwa | panda")
    g.add_argument("--variant", default="{}", help='JSON object, e.g. \'{"color": "blue"}\'')
    g.add_argument("--size", default="320x240", help="render size WxH")
    c = p.add_argument_group("camera")
    c.add_argument("--device", help="camera index (0, 1, ...), video file, or stream URL")
    c.add_argument("--duration", type=float, help="stop after this many seconds")
    c.add_argument("--max-frames", type=int, help="stop after this many frames")
    c.add_argument("--show", action="store_true", help="show the frames; q or Esc stops")
    c.add_argument("--camera-model", type=Path, help="JSON camera model (K, dist, size, T_base_cam)")
    p.set_defaults(func=_record)


def _record(args) -> int:
    from robot_irl.library import Library
    tags = [t for t in args.tags.split(",") if t]
    lib = Library.open(args.library, create=True)
    if args.source == "sim":
        from robot_irl.record.sim import record_sim
        try:
            variant = json.loads(args.variant)
            w, h = (int(v) for v in args.size.lower().split("x"))
        except (json.JSONDecodeError, ValueError) as e:
            raise InputError(f"cannot parse ({e})", field="--variant/--size",
                             expected="a JSON object and WxH like 320x240") from None
        if args.episodes < 1:
            raise InputError(f"--episodes {args.episodes}", field="--episodes", expected=">= 1")
        record_sim(lib, args.env, episodes=args.episodes, seed=args.seed, robot=args.robot, variant=variant,
                   render_size=(w, h), tags=tags,
                   progress=lambda ep: print(f"{ep.id}  {ep.frame_count('cam0')} frames  "
                                             f"success={ep.success}", file=sys.stderr))
        return 0
    from robot_irl.core.camera import CameraModel
    from robot_irl.library.schema import read_json
    from robot_irl.record.camera import record_camera
    if not args.device:
        raise InputError("missing --device", field="--device", expected="a camera index, video file or URL")
    model = None
    if args.camera_model:
        model = CameraModel.from_dict(read_json(args.camera_model, "camera model"), file=str(args.camera_model))
    ep = record_camera(lib, args.device, task=args.task, duration=args.duration, max_frames=args.max_frames,
                       show=args.show, model=model, tags=tags)
    print(f"{ep.id}  {ep.frame_count('cam0')} frames  stopped by {ep.meta['extra']['stopped_by']}")
    return 0
