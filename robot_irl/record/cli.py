"""`robot-irl record --source sim|camera|arm`: record demonstrations into the demo library."""
from __future__ import annotations

import argparse
import select
import sys
import threading
from pathlib import Path

from robot_irl.core.cluster import add_ray_option
from robot_irl.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("record", help="record demonstrations (sim expert, camera or video file, arm in teach mode) "
                                      "into the library",
                       description="Record episodes into the demo library (format: demos/README.md). "
                                   "A killed recording is recovered by `robot-irl demos repair`.")
    p.add_argument("--source", choices=["sim", "camera", "arm"], required=True)
    p.add_argument("--library", metavar="PATH",
                   help="demo library folder (default: $ROBOT_IRL_LIBRARY, else ~/.local/share/robot-irl/library)")
    p.add_argument("--task", default="", help="task text (camera; sim episodes take the task's own text)")
    p.add_argument("--tags", default="", help="comma-separated tags")
    g = p.add_argument_group("sim")
    g.add_argument("--env", default="robot_irl/Place-v0",
                   help="env id (see `robot-irl sim list`), or 'person': person demos rendered with no robot")
    g.add_argument("--episodes", type=int, default=1, help="number of episodes")
    g.add_argument("--seed", type=int, default=0, help="seed of the first episode (then +1 each); --sim-hand: its waypoints")
    g.add_argument("--robot", default="iiwa", help="iiwa | panda (also the pybullet arm's robot)")
    g.add_argument("--variant", default="{}", help='JSON object, e.g. \'{"color": "blue"}\'')
    g.add_argument("--size", default="320x240", help="render size WxH")
    g.add_argument("--resume", action="store_true",
                   help="skip seeds already committed by an earlier (interrupted) run with the same settings")
    add_ray_option(g)
    g.add_argument("--plain", action="store_true",
                   help="render without markers and blobs (objects bare; tag 'plain'): for learned keypoints")
    g.add_argument("--view", action="append", default=[], metavar="CAMERA",
                   help="also record this sim camera (robot-irl sim list) beside the front one, as cam1, cam2 .. "
                        "(repeatable): keypoints seen from two sides")
    g.add_argument("--explore", action="store_true",
                   help="record exploration, not demos (kind 'explore', tag 'explore'): the arm moved through "
                        "dynamics collect's plans (noisy expert paths, random joint goals), for training a keypoint "
                        "detector on poses no demo reaches; demo queries leave them out (select with kind:explore)")
    c = p.add_argument_group("camera")
    c.add_argument("--device", help="camera index (0, 1, ...), video file, or stream URL")
    c.add_argument("--duration", type=float, help="stop after this many seconds")
    c.add_argument("--max-frames", type=int, help="stop after this many frames")
    c.add_argument("--show", action="store_true", help="show the frames; q or Esc stops")
    c.add_argument("--person", action="store_true",
                   help="a person demo: the object moved by hand, a reference marker (body 'world') in view, no robot "
                        "(tagged 'person'; --keypoint-spec required; with --source sim: --env person renders them)")
    c.add_argument("--camera-model", type=Path, help="JSON camera model (K, dist, size, T_base_cam)")
    c.add_argument("--camera-latency", type=float, default=0.0, metavar="MS",
                   help="live camera's capture-to-read delay in ms, used where the driver gives no frame "
                        "timestamps (camera and arm recording; measure it once, e.g. filming a clock)")
    a = p.add_argument_group("arm (kinesthetic: the arm is in teach mode, a person moves it)")
    a.add_argument("--arm", help="arm backend: pybullet | loopback | franka | ur (see notes/control.md)")
    a.add_argument("--arm-opt", action="append", default=[], metavar="KEY=VALUE",
                   help="backend option, e.g. host=172.16.0.2 (repeatable)")
    a.add_argument("--calibration", type=Path, help="per-arm calibration JSON (joint offsets, limits, home)")
    a.add_argument("--rate", type=float, default=50.0, help="joint-state rate in Hz (default 50)")
    a.add_argument("--max-rows", type=int, help="stop after this many joint samples")
    a.add_argument("--camera-device", help="camera beside the arm: index, video file or URL (mp4 video)")
    a.add_argument("--keypoint-spec", type=Path,
                   help="keypoint spec JSON (demos/README.md); arm default: the robot's own keypoints; "
                        "also stored by --source camera")
    a.add_argument("--sim-hand", action="store_true",
                   help="pybullet only: a simulated hand moves the arm through random waypoints (a demo with motion)")
    p.set_defaults(func=_record)


def _note_ignored(args, names: tuple[str, ...], where: str) -> None:
    """Options given that mean nothing here are named, not silently dropped."""
    for name in names:
        if getattr(args, name):
            print(f"note: --{name} does nothing for {where}; ignored", file=sys.stderr)


def _record_exploration(args, lib, tags: list[str], variant: dict, size: tuple[int, int]) -> int:
    """``record --source sim --explore``: one process, episode by episode (no --ray or --resume)."""
    from robot_irl.record.sim import record_exploration
    _note_ignored(args, ("ray", "resume"), "--explore")
    if variant:
        print("note: --variant does nothing for --explore (its plans alternate the goal regions); ignored",
              file=sys.stderr)
    record_exploration(lib, args.env, episodes=args.episodes, seed=args.seed, robot=args.robot, render_size=size,
                       tags=tags, plain=args.plain, views=tuple(args.view),
                       progress=lambda ep: print(f"{ep.id}  seed {ep.meta['seed']}  {ep.frame_count('cam0')} frames  "
                                                 "exploration", file=sys.stderr))
    print(f"{args.episodes} exploration episodes recorded (kind:explore)", file=sys.stderr)
    return 0


def _record(args) -> int:
    from robot_irl.library import Library
    tags = [t for t in args.tags.split(",") if t]
    lib = Library.open(args.library, create=True)
    if args.source == "sim" and args.env == "person":
        from robot_irl.record.person import record_person_sim
        _note_ignored(args, ("ray", "resume", "plain", "person", "explore", "view"), "--env person")
        for name, default in (("robot", "iiwa"), ("variant", "{}"), ("size", "320x240")):
            if getattr(args, name) != default:        # the person's cell has no robot, variants or size choice
                print(f"note: --{name} does nothing for --env person; ignored", file=sys.stderr)
        if args.episodes < 1:
            raise InputError(f"--episodes {args.episodes}", field="--episodes", expected=">= 1")
        for ep in record_person_sim(lib, episodes=args.episodes, seed=args.seed, tags=tags):
            print(f"{ep.id}  {ep.frame_count('cam0')} frames  person demo (no robot)")
        return 0
    if args.source == "sim":
        from robot_irl.record.sim_batch import SimPlan, record_sim_batch
        _note_ignored(args, ("person",), "--source sim without --env person")
        from sim import parse_render_options
        variant, (w, h) = parse_render_options(args.variant, args.size)
        if args.episodes < 1:
            raise InputError(f"--episodes {args.episodes}", field="--episodes", expected=">= 1")
        if args.explore:
            return _record_exploration(args, lib, tags, variant, (w, h))
        warned: list[bool] = []

        def committed(seed: int, ep) -> None:
            print(f"{ep.id}  seed {seed}  {ep.frame_count('cam0')} frames  success={ep.success}", file=sys.stderr)
            if not warned and not args.plain:
                warned.append(True)
                _warn_small_markers(ep, args.size)

        plan = SimPlan(env_id=args.env, robot=args.robot, variant=variant, render_size=(w, h), tags=tuple(tags),
                       plain=args.plain, views=tuple(args.view))
        report = record_sim_batch(lib, plan, range(args.seed, args.seed + args.episodes), ray=args.ray,
                                  resume=args.resume, progress=bool(args.ray), on_commit=committed)
        if args.episodes > 1 or report.failed:
            print(report.summary(), file=sys.stderr)
        return report.exit_code
    _note_ignored(args, ("ray", "resume", "plain", "explore", "view") + (("person",) if args.source == "arm" else ()),
                  f"--source {args.source}")
    if args.source == "arm":
        return _record_arm(args, lib, tags)
    from robot_irl.record.camera import record_camera
    if not args.device:
        raise InputError("missing --device", field="--device", expected="a camera index, video file or URL")
    from robot_irl.core.spec import KeypointSpec
    from robot_irl.library.schema import read_json
    spec = None
    if args.keypoint_spec:
        spec = KeypointSpec.from_dict(read_json(args.keypoint_spec, "keypoint spec"), file=str(args.keypoint_spec))
    extra = None
    if args.person:
        from robot_irl.record.person import PERSON_EXTRA, PERSON_TAG, check_person_spec
        check_person_spec(spec, str(args.keypoint_spec) if args.keypoint_spec else "--keypoint-spec")
        tags, extra = sorted({*tags, PERSON_TAG}), dict(PERSON_EXTRA)
    ep = record_camera(lib, args.device, task=args.task, duration=args.duration, max_frames=args.max_frames,
                       show=args.show, model=_camera_model(args), tags=tags, latency_s=args.camera_latency / 1000,
                       keypoint_spec=spec, extra=extra)
    print(f"{ep.id}  {ep.frame_count('cam0')} frames  stopped by {ep.meta['extra']['stopped_by']}")
    return 0


def _warn_small_markers(ep, size: str) -> None:
    """Say at once (after the first episode) when the markers are too small in the video for
    `robot-irl extract` to find them."""
    from robot_irl.keypoints.visibility import MIN_MARKER_SIDE_PX, too_small

    spec, camera = ep.keypoint_spec, ep.camera_model("cam0")
    if spec is None or camera is None:
        return
    small = too_small(spec, camera, ep.arrays("state")["keypoints_3d"])
    if small:
        sides = ", ".join(f"{n} {v:.1f} px" for n, v in small.items())
        print(f"warning: at --size {size} the markers are too small for `robot-irl extract` to find "
              f"({sides}; it needs about {MIN_MARKER_SIDE_PX:g} px): marker keypoints will be missing. "
              f"Record at --size 320x240 or larger.", file=sys.stderr)


def _camera_model(args):
    from robot_irl.core.camera import CameraModel
    from robot_irl.library.schema import read_json
    if not args.camera_model:
        return None
    return CameraModel.from_dict(read_json(args.camera_model, "camera model"), file=str(args.camera_model))


def _enter_stops(stop: threading.Event) -> None:
    """Set ``stop`` when Enter is pressed (stdin a terminal or a pipe); EOF leaves it alone."""
    def loop() -> None:
        while not stop.is_set():
            if select.select([sys.stdin], [], [], 0.1)[0]:
                if sys.stdin.readline() == "":
                    return
                stop.set()
    threading.Thread(target=loop, name="record-stop-key", daemon=True).start()


def _record_arm(args, lib, tags: list[str]) -> int:
    from robot_irl.control import ArmCalibration, backend_config, make_arm
    from robot_irl.control.registry import parse_arm_options
    from robot_irl.core.spec import KeypointSpec
    from robot_irl.library.schema import read_json
    from robot_irl.record.arm import record_arm
    from robot_irl.record.hand import SimulatedHand
    if not args.arm:
        raise InputError("missing --arm", field="--arm", expected="pybullet | loopback | franka | ur")
    if args.max_rows is not None and args.max_rows < 1:
        raise InputError(f"--max-rows {args.max_rows}", field="--max-rows", expected=">= 1")
    opts = parse_arm_options(args.arm_opt)
    if args.arm == "pybullet":
        opts.setdefault("robot", args.robot)
    spec = None
    if args.keypoint_spec:
        spec = KeypointSpec.from_dict(read_json(args.keypoint_spec, "keypoint spec"), file=str(args.keypoint_spec))
    cal = ArmCalibration.load(args.calibration) if args.calibration else None
    stop = threading.Event()
    if not args.sim_hand:
        _enter_stops(stop)
    arm = make_arm(args.arm, backend_config(args.arm, opts), calibration=cal)
    with arm:
        hand = SimulatedHand.wander(arm, seed=args.seed) if args.sim_hand else None
        duration = args.duration
        if hand is not None and duration is None and args.max_rows is None:
            duration = hand.segment_s * len(hand.waypoints) + 0.5

        def started() -> None:
            if hand is not None:
                hand.start()
            else:
                print("teach mode on: move the arm; press Enter (or Ctrl-C) to stop", file=sys.stderr)
        try:
            ep = record_arm(lib, arm, task=args.task, rate_hz=args.rate, duration=duration, max_rows=args.max_rows,
                            stop=stop, arm_name=args.arm, camera_device=args.camera_device,
                            camera_model=_camera_model(args), keypoint_spec=spec, tags=tags, on_start=started,
                            camera_latency_s=args.camera_latency / 1000)
        finally:
            stop.set()
            if hand is not None:
                hand.stop()
    a = ep.arrays("state")
    cams = f"  {ep.frame_count('cam0')} frames" if ep.cameras else ""
    print(f"{ep.id}  {len(a['timestamp'])} rows at {args.rate:g} Hz{cams}  stopped by {ep.meta['extra']['stopped_by']}")
    return 0
