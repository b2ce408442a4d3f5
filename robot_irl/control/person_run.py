"""``robot-irl run`` for a run trained on person demos: the arm finds the object with the camera,
grasps it from above, carries it under the run's cost to ``--goal`` (where the object's centre
should rest on the table, base frame), lets go and looks again (:mod:`robot_irl.control.carry`,
every motion through the safety filter). Built for the simulated cell on ``--arm pybullet``
(``--object`` says where the cube starts there); a physical cell needs its camera in the run loop,
which is not built, and is refused saying so.

Checked before the arm or torch is touched: the goal and object positions, the calibration and
its world-to-base registration (``robot-irl world``), the arm backend, options that do nothing here.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from robot_irl.cliargs import format_table
from robot_irl.errors import InputError

#: ``robot-irl run`` options of robot runs that a person run does not take (dest, flag)
_NOT_FOR_PERSON = (("dry_run", "--dry-run"), ("like", "--like"), ("preview", "--preview"), ("camera", "--camera"),
                   ("camera_size", "--camera-size"), ("horizon", "--horizon"), ("replan_every", "--replan-every"),
                   ("steps", "--steps"), ("workspace", "--workspace"))


def is_person_run(run_path: Path) -> bool:
    """Whether the run folder's config says it was trained on person demos (a JSON read, no torch)."""
    from robot_irl.control.carry import PERSON_KEY

    try:
        cfg = json.loads((run_path / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read the run's config ({e})", file=run_path / "config.json", field="--run",
                         expected="a folder written by `robot-irl train`") from e
    return isinstance(cfg, dict) and isinstance((cfg.get("demos") or {}).get(PERSON_KEY), dict)


def _numbers(text: str | None, flag: str, counts: tuple[int, ...], what: str) -> np.ndarray:
    try:
        v = np.array([float(s) for s in (text or "").split(",")])
    except ValueError:
        v = np.array([])
    if len(v) not in counts or not np.all(np.isfinite(v)):
        raise InputError(f"'{text}'", field=flag, expected=what)
    return v


def check_person_args(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, float, Any]:
    """(goal x,y; object x,y; object yaw (deg); the calibration) from the command line, or a clear refusal."""
    from robot_irl.control.calibration import load_registered
    from robot_irl.control.registry import backend_entry

    given = [flag for dest, flag in _NOT_FOR_PERSON if getattr(args, dest, None) not in (None, False)]
    if given:
        raise InputError(f"{', '.join(given)} with a run trained on person demos", field=given[0],
                         expected="a person run takes --goal X,Y (and --object X,Y[,YAW_DEG] on --arm pybullet); "
                                  "the others are for robot runs")
    if backend_entry(args.arm).physical or args.arm != "pybullet":
        raise InputError(f"--arm {args.arm}: carrying an object from person demos is built for the simulated cell "
                         "only (a physical cell needs its camera in the run loop)", field="--arm",
                         expected="--arm pybullet")
    goal = _numbers(args.goal, "--goal", (2,), "X,Y: where the object's centre should rest on the table "
                                               "(m, robot base frame)")
    obj = _numbers(args.object, "--object", (2, 3), "X,Y[,YAW_DEG]: where the simulated cell puts the object "
                                                    "(m, robot base frame)")
    cal = load_registered(args.calibration, "a person run", args.arm)
    return goal, obj[:2], float(obj[2]) if len(obj) == 3 else 0.0, cal


def run_person(args: argparse.Namespace, run_path: Path) -> int:
    """Carry the object under the person run at ``run_path`` (see module docstring); exit 0 when
    the camera sees it within ``--tolerance`` of the goal after release, else 1 saying why."""
    goal_xy, object_xy, yaw, cal = check_person_args(args)
    from robot_irl.control.carry import CarryConfig, PersonRun
    from robot_irl.control.clock import FakeClock
    from robot_irl.control.mpc import save_learned_run
    from robot_irl.control.registry import backend_config, make_arm, parse_arm_options
    from robot_irl.control.safety import SafetyConfig
    from robot_irl.control.sim_cell import carry_in_cell
    from robot_irl.irl import load_run
    from robot_irl.library import Library

    trained = load_run(run_path)
    person = PersonRun.from_run(trained)
    if cal.robot != person.robot:
        raise InputError(f"the calibration is for a '{cal.robot}', the run was trained for a '{person.robot}'",
                         file=args.calibration, field="robot", expected=f"the calibration of the {person.robot} arm")
    opts = parse_arm_options(args.arm_opt)
    if opts.setdefault("robot", person.robot) != person.robot:
        raise InputError(f"--arm-opt robot={opts['robot']}", field="--arm-opt",
                         expected=f"robot={person.robot} (the robot the run was trained for)")
    library = Library.open(args.library, create=True)
    arm = make_arm(args.arm, backend_config(args.arm, opts), safety=SafetyConfig(speed_scale=args.speed_scale or 1.0),
                   calibration=cal, clock=FakeClock() if args.sim_time else None)
    cfg = CarryConfig(rate_hz=args.rate, success_m=args.tolerance)
    with arm:
        rec = carry_in_cell(arm, trained, person, cal.world, object_xy, goal_xy, yaw_deg=yaw, config=cfg)
        robot = arm.capabilities.robot
    ep = save_learned_run(library, rec.run, trained, robot=robot, task="carry the object (person demos)",
                          arm_name=args.arm, extra={"run": str(run_path.resolve()), "person": True,
                                                    "object_found": rec.found.tolist(), "goal_keypoints": rec.goal.tolist(),
                                                    "object_final": rec.final.tolist(), **rec.summary()})
    out = {"episode": ep.id, **rec.summary(), "object_found": rec.found[0].tolist(),
           "object_final": rec.final[0].tolist(), "goal": rec.goal[0].tolist(), "log": rec.log}
    if args.json:
        print(json.dumps(out))
    else:
        print(format_table(["person run", ""], [
            ["episode", ep.id], ["object found at (m)", np.round(rec.found[0], 3).tolist()],
            ["goal (m)", np.round(rec.goal[0], 3).tolist()], ["object after release (m)", np.round(rec.final[0], 3).tolist()],
            ["error seen by the camera (cm)", out["err_cm"]], ["tolerance (cm)", args.tolerance * 100],
            ["carry", out["carry_outcome"]], ["ticks", out["ticks"]], ["clamped ticks (carry)", out["clamped_steps"]]]))
    if not rec.succeeded:
        print(f"the object rests {out['err_cm']:.3g} cm from the goal, beyond the tolerance of "
              f"{args.tolerance * 100:.3g} cm (carry: {out['carry_outcome']}); episode {ep.id} kept", file=sys.stderr)
        return 1
    return 0
