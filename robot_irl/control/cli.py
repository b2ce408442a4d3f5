"""``robot-irl arm``: check an arm through the full safety stack, write its calibration template,
or serve a simulated arm over loopback. (``robot-irl run`` is registered once the MBIRL run
loader exists; see notes/control.md.)"""
from __future__ import annotations

import argparse
import json
import signal
import sys

import numpy as np

from robot_irl.control.calibration import ArmCalibration
from robot_irl.control.registry import BACKEND_NAMES, backend_config, backend_entry, make_arm
from robot_irl.control.safety import SafetyConfig
from robot_irl.errors import InputError


def _options(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise InputError(f"'{pair}'", field="--arm-opt", expected="KEY=VALUE")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _check(args: argparse.Namespace) -> int:
    cal = ArmCalibration.load(args.calibration) if args.calibration else None
    arm = make_arm(args.arm, backend_config(args.arm, _options(args.arm_opt)), calibration=cal,
                   safety=SafetyConfig(speed_scale=args.speed_scale))
    arm.estop.install_signal(signal.SIGUSR1)
    try:
        with arm:
            caps = arm.capabilities
            obs = arm.get_observation()
            print(json.dumps({"capabilities": caps.to_dict(), "q": obs.q.tolist(),
                              "ee_pos": None if obs.ee_pos is None else obs.ee_pos.tolist()}, indent=2))
            if args.write_calibration:
                ArmCalibration.from_capabilities(caps, arm.home_pose, id=args.arm_id).save(args.write_calibration)
                print(f"wrote {args.write_calibration}")
            if args.home:
                if backend_entry(args.arm).physical and not args.yes:
                    if input("move the physical arm to its home pose? [y/N] ").strip().lower() != "y":
                        return 1
                print("homing (press Ctrl-C or send SIGUSR1 to stop) ...")
                obs = arm.home()
                print(f"home reached, max error {np.max(np.abs(obs.q - arm.home_pose)):.4f} rad")
    finally:
        arm.estop.close()
    return 0


def _serve(args: argparse.Namespace) -> int:
    from robot_irl.control.server import main as serve_main
    return serve_main(["--robot", args.robot, "--port", str(args.port), "--hold-after", str(args.hold_after)])


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("arm", help="check an arm, write its calibration file, or serve a sim arm",
                              description=__doc__)
    sub = p.add_subparsers(dest="arm_command", metavar="ACTION", required=True)
    c = sub.add_parser("check", help="connect through the safety filter, print capabilities and state")
    c.add_argument("--arm", choices=BACKEND_NAMES, default="pybullet")
    c.add_argument("--arm-opt", action="append", default=[], metavar="KEY=VALUE",
                   help="backend config field, e.g. host=172.16.0.2 or robot=panda (repeatable)")
    c.add_argument("--calibration", help="per-arm calibration JSON (id, offsets, limits, home)")
    c.add_argument("--write-calibration", metavar="FILE", help="write a calibration template for this arm")
    c.add_argument("--arm-id", help="id stored in the written calibration")
    c.add_argument("--home", action="store_true", help="move to the home pose through the filter")
    c.add_argument("--speed-scale", type=float, default=0.1, help="safety speed scale (default 0.1)")
    c.add_argument("--yes", action="store_true", help="do not ask before moving a physical arm")
    c.set_defaults(func=_check)
    s = sub.add_parser("serve", help="serve a PyBullet arm over ZeroMQ on 127.0.0.1")
    s.add_argument("--robot", default="iiwa")
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--hold-after", type=float, default=0.2)
    s.set_defaults(func=_serve)
