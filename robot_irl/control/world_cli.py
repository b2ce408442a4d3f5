"""`robot-irl world show|set|touch`: the cell's reference marker in the robot base frame, stored in
the arm's calibration file (key ``world``; robot_irl.control.registration). Person demos are in
that marker's frame; a run puts them into the base frame with it."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from robot_irl.cliargs import format_table
from robot_irl.errors import InputError

HELP = "register the reference marker's world frame to the robot base (stored in the arm calibration)"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("world", help=HELP, description=HELP + ". Person demos are recorded in the reference "
                       "marker's frame; this says where that frame is for the robot.")
    ws = p.add_subparsers(dest="world_cmd", required=True)
    for name, text in (("show", "print the stored registration"),
                       ("set", "type it in: the marker's pose in the base frame"),
                       ("touch", "touch the marker's four corners with the flange, arm in teach mode")):
        q = ws.add_parser(name, help=text, description=text)
        q.add_argument("--calibration", type=Path, required=True,
                       help="the arm's calibration JSON (written by `robot-irl arm check --calibration F`)")
        q.add_argument("--json", action="store_true", help="print JSON")
        if name == "set":
            q.add_argument("--pose", required=True, help="X,Y,Z,YAW_DEG (marker frame z up) or X,Y,Z,QX,QY,QZ,QW (m)")
        if name == "touch":
            q.add_argument("--spec", type=Path, required=True,
                           help="the person demos' keypoint spec (its marker on body 'world' gives the corners)")
            q.add_argument("--arm", required=True, help="arm backend (see `robot-irl arm check`)")
            q.add_argument("--arm-opt", action="append", default=[], metavar="KEY=VALUE")
    p.set_defaults(func=_world)


def _load(path: Path):
    from robot_irl.control.calibration import ArmCalibration

    if not path.is_file():
        raise InputError("calibration file not found", file=path, field="--calibration",
                         expected="an arm calibration (write one with `robot-irl arm check --arm NAME --calibration F`)")
    return ArmCalibration.load(path)


def _print(reg, as_json: bool) -> None:
    if as_json:
        print(json.dumps(reg.to_dict()))
        return
    T = reg.T_base_world
    print(format_table(["method", "x m", "y m", "z m", "rms mm", "points"],
                       [[reg.method, T[0, 3], T[1, 3], T[2, 3], None if reg.rms_m is None else reg.rms_m * 1000,
                         reg.points]]))


def _world(args) -> int:
    from robot_irl.control import registration as R

    cal = _load(args.calibration)
    if args.world_cmd == "show":
        if cal.world is None:
            raise InputError("no world-to-base registration stored", file=args.calibration, field="world",
                             expected="`robot-irl world touch` or `robot-irl world set --pose X,Y,Z,YAW_DEG`")
        _print(cal.world, args.json)
        return 0
    if args.world_cmd == "set":
        reg = R.typed(args.pose)
    else:
        reg = _touch(args, cal)
    cal.with_world(reg).save(args.calibration)
    _print(reg, args.json)
    return 0


def _touch(args, cal):
    import numpy as np

    from robot_irl.control import backend_config, make_arm
    from robot_irl.control.registration import touch
    from robot_irl.control.registry import parse_arm_options
    from robot_irl.core.spec import WORLD_BODY, KeypointSpec, Marker
    from robot_irl.keypoints.geometry import marker_corners_link
    from robot_irl.library.schema import read_json

    spec = KeypointSpec.from_dict(read_json(args.spec, "keypoint spec"), file=str(args.spec))
    refs = [k for k in spec if k.body == WORLD_BODY and isinstance(k.feature, Marker)]
    if not refs:
        raise InputError("the spec has no reference marker", file=args.spec, field="keypoints",
                         expected=f"a marker keypoint on body '{WORLD_BODY}' with its size")
    corners = marker_corners_link(refs[0])
    arm = make_arm(args.arm, backend_config(args.arm, parse_arm_options(args.arm_opt)), calibration=cal)
    touched = []
    with arm:
        arm.teach(True)
        try:
            for i, name in enumerate(("top-left", "top-right", "bottom-right", "bottom-left")):
                print(f"put the flange centre on the marker's {name} corner, then press Enter", file=sys.stderr)
                if sys.stdin.readline() == "":
                    raise InputError("stdin closed before every corner was touched", field="touch",
                                     expected="Enter after each of the four corners")
                touched.append(arm.get_observation().ee_pos)
        finally:
            arm.teach(False)
    return touch(corners, np.array(touched))
