"""``robot-irl arm``: check an arm through the full safety stack, write its calibration template,
or serve a simulated arm over loopback. ``robot-irl run``: drive an arm with a trained MBIRL run
(robot_irl.control.mpc) and record the run as a library episode."""
from __future__ import annotations

import argparse
import json
import re
import signal
import sys
from pathlib import Path
from typing import Any

import numpy as np

from robot_irl.cliargs import fmt3, format_table
from robot_irl.control.arm import NO_WORKSPACE
from robot_irl.control.calibration import ArmCalibration, parse_workspace
from robot_irl.control.clock import FakeClock
from robot_irl.control.registry import BACKEND_NAMES, backend_config, backend_entry, make_arm, parse_arm_options
from robot_irl.control.safety import SafetyConfig
from robot_irl.errors import InputError


def _workspace_arg(text: str | None) -> tuple[np.ndarray, np.ndarray] | None:
    """``x0,x1,y0,y1,z0,z1`` (m, base frame) -> (lo, hi), checked like a calibration file's box."""
    if text is None:
        return None
    v = _floats(text, 6, "--workspace", "six numbers x0,x1,y0,y1,z0,z1 in metres").tolist()
    return parse_workspace({"lo": v[0::2], "hi": v[1::2]}, file=None)


def _safety(args: argparse.Namespace, speed_scale: float) -> SafetyConfig:
    """The filter's settings from the command line (``--workspace`` overrides the calibration's box)."""
    box = _workspace_arg(args.workspace)
    return SafetyConfig(speed_scale=speed_scale, workspace_lo=None if box is None else tuple(box[0]),
                        workspace_hi=None if box is None else tuple(box[1]))


def teach_workspace(arm, ask=input, margin: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Teach the workspace box by hand: teach mode on, the person moves the end effector to each
    corner of the space the arm may use and presses Enter (an empty answer after two corners ends);
    the box is the corners' bounds grown by ``margin`` (m). Teach mode is off again on return."""
    arm.teach(True)
    corners: list[np.ndarray] = []
    try:
        while True:
            answer = ask(f"move the end effector to corner {len(corners) + 1} and press Enter"
                         + (" (or type 'done')" if len(corners) >= 2 else "") + ": ").strip().lower()
            if answer == "done" and len(corners) >= 2:
                break
            p = arm.get_observation().ee_pos
            if p is None:
                raise InputError("this arm does not report its end-effector position", field="--teach-workspace",
                                 expected="an arm with ee_pos (or give --workspace numbers)")
            corners.append(np.asarray(p, float).copy())
            print(f"corner {len(corners)}: {np.round(p, 3).tolist()}")
    finally:
        arm.teach(False)
    pts = np.array(corners)
    lo, hi = pts.min(0) - margin, pts.max(0) + margin
    flat = np.flatnonzero(hi - lo < 0.02)
    if flat.size:
        raise InputError(f"the taught corners span less than 2 cm on axes {flat.tolist()}", field="--teach-workspace",
                         expected="corners that span the space the arm may use on x, y and z")
    return parse_workspace({"lo": lo.tolist(), "hi": hi.tolist()})


def _check(args: argparse.Namespace) -> int:
    cal = ArmCalibration.load(args.calibration) if args.calibration else None
    box = _workspace_arg(args.workspace)
    writing = bool(args.write_calibration)
    if (args.teach_workspace or box is not None) and not writing:
        raise InputError("a workspace box is recorded into a calibration file", field="--write-calibration",
                         expected="--write-calibration FILE with --workspace or --teach-workspace")
    arm = make_arm(args.arm, backend_config(args.arm, parse_arm_options(args.arm_opt)), calibration=cal,
                   safety=_safety(args, args.speed_scale))
    arm.estop.install_signal(signal.SIGUSR1)
    try:
        with arm:
            caps = arm.capabilities
            obs = arm.get_observation()
            print(json.dumps({"capabilities": caps.to_dict(), "q": obs.q.tolist(),
                              "ee_pos": None if obs.ee_pos is None else obs.ee_pos.tolist(),
                              "workspace": None if not arm.safety.has_workspace else
                              {"lo": list(arm.safety.workspace_lo), "hi": list(arm.safety.workspace_hi)}}, indent=2))
            if args.teach_workspace:
                box = teach_workspace(arm, margin=args.workspace_margin)
            if writing:
                new = cal or ArmCalibration.from_capabilities(caps, arm.home_pose, id=args.arm_id)
                if box is not None:
                    new = new.with_workspace(*box)
                new.save(args.write_calibration)
                print(f"wrote {args.write_calibration}"
                      + ("" if box is None else f" (workspace lo {box[0].tolist()} hi {box[1].tolist()})"))
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


def _goal_arg(text: str) -> np.ndarray | Path:
    """``x,y,z`` (the end-effector keypoint) or a .npy/.json file of goal keypoints [K, 3]."""
    if text.endswith((".npy", ".json")):
        path = Path(text)
        if not path.is_file():
            raise InputError("goal file not found", file=path, field="--goal", expected="a .npy or .json file")
        return path
    try:
        xyz = np.array([float(v) for v in text.split(",")])
    except ValueError:
        xyz = np.array([])
    if xyz.shape != (3,) or not np.all(np.isfinite(xyz)):
        raise InputError(f"'{text}'", field="--goal",
                         expected="x,y,z of the end-effector keypoint (m) or a .npy/.json file of [K, 3] keypoints")
    return xyz


def _goal_image_arg(items: list[str]) -> dict[str | None, Path]:
    """``--goal-image``: ``FRAME.png`` (a run seen through one camera) or ``CAMERA=FRAME.png`` once
    per camera; every file must exist (read once the run is loaded)."""
    out: dict[str | None, Path] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name, path = (name, Path(text)) if sep and not Path(item).is_file() else (None, Path(item))
        if not path.is_file():
            raise InputError("goal image not found", file=path, field="--goal-image",
                             expected="an image file (PNG/JPEG) of the scene camera showing the goal")
        if name in out:
            raise InputError(f"two goal images for {'one camera' if name is None else repr(name)}", file=path,
                             field="--goal-image", expected="one image per camera (CAMERA=FRAME.png for each)")
        out[name] = path
    return out


def _goal_from_image(images: dict[str | None, Path], trained, run_path: Path) -> np.ndarray:
    """Goal keypoints ``[K, 3]``: the run's learned detector(s) on the image(s), lifted as its demos were.
    Refused for a run whose keypoints are not a learned detector's, an image of another size than the
    detector's frames, images that are not one per camera the run sees through, or a detector folder
    that no longer holds the detector the run was made with."""
    import cv2

    from robot_irl.control.mpc import image_keypoints
    from robot_irl.keypoints.learned.observe import observer_from_dict

    if not image_keypoints(trained):
        raise InputError("--goal-image with a run on marker/sim keypoints", file=run_path, field="--goal-image",
                         expected="a run trained on learned keypoints (`robot-irl train --keypoints learned "
                                  "--dynamics learned --model M`), or --goal keypoints")
    observer = observer_from_dict(trained.dynamics.observation, file=str(trained.dynamics.path))
    cams = observer.cameras
    if list(images) == [None] and len(cams) == 1:
        images = {cams[0]: images[None]}
    if set(images) != set(cams):
        raise InputError(f"goal images for {sorted(str(k) for k in images)}", file=run_path, field="--goal-image",
                         expected="one image per camera the run sees through: "
                                  + " ".join(f"--goal-image {c}=FRAME.png" for c in cams))
    frames = {}
    for cam, path in images.items():
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise InputError("cannot read the image", file=path, field="--goal-image", expected="a PNG or JPEG image")
        frames[cam] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)[None]
    return observer(frames, origin=", ".join(str(p) for p in images.values()))[0]


def _goal_keypoints(goal: np.ndarray | Path, trained, current: np.ndarray) -> np.ndarray:
    """Goal keypoints [K, 3]: from the file, or the current keypoints shifted so the end-effector
    keypoint (named ``ee``, else the first) lands on ``x,y,z``."""
    K = trained.dynamics.n_keypoints
    if isinstance(goal, Path):
        try:
            data = np.load(goal) if goal.suffix == ".npy" else json.loads(goal.read_text())
            if isinstance(data, dict):
                data = data.get("goal", data.get("keypoints"))
            g = np.asarray(data, dtype=float)
        except (ValueError, TypeError, OSError) as e:
            raise InputError(f"cannot read goal keypoints ({e})", file=goal, field="goal",
                             expected=f"[{K}, 3] numbers (m)") from e
        if g.shape != (K, 3):
            raise InputError(f"goal keypoints have shape {g.shape}", file=goal, field="goal",
                             expected=f"[{K}, 3] metres, one row per keypoint of the run")
        return g
    from robot_irl.control.mpc import image_keypoints

    if image_keypoints(trained):
        raise InputError(f"--goal {','.join(f'{v:g}' for v in goal)} with a run on learned keypoints", field="--goal",
                         expected="--goal-image FRAME.png (or a .npy/.json of the run's [K, 3] keypoints): learned "
                                  "keypoints have no end-effector point to move")
    names = [f.name for f in trained.dynamics.frames]
    ee = names.index("ee") if "ee" in names else 0
    return current + (goal - current[ee])


def _camera_arg(args: argparse.Namespace):
    """The scene camera ``--camera`` names (default ``front``, the preview's view) at ``--camera-size``."""
    from sim.camera import get_camera

    if args.camera_size is None:
        size = None
    else:
        try:
            size = tuple(int(v) for v in args.camera_size.lower().split("x"))
        except ValueError:
            size = ()
        if len(size) != 2 or min(size) <= 0:
            raise InputError(f"'{args.camera_size}'", field="--camera-size", expected="WIDTHxHEIGHT, e.g. 320x240")
    return get_camera(args.camera or "front", size)


def _preview(args: argparse.Namespace, trained, run_path: Path, q_arm: np.ndarray, joints, goal: np.ndarray,
             camera) -> dict:
    """Plan once from the arm's joints, play the plan on the sim twin into a GIF; figures as a dict."""
    from robot_irl.control.mpc import joint_index, plan_once
    from robot_irl.control.preview import write_plan_preview

    u, path = plan_once(trained, q_arm, joints, goal, args.horizon)
    q0 = np.asarray(q_arm, float)[joint_index(trained, joints)]
    q_path = np.vstack([q0, q0 + np.cumsum(u, axis=0)])
    out = Path(args.preview) if args.preview else run_path / "plots" / "dry_run.gif"
    write_plan_preview(trained, q_path, path, goal, out, camera)
    return {"run": str(run_path), "preview": str(out), "goal_keypoints": goal.tolist(),
            "planned_keypoints": path.tolist(),
            "planned_final_err_cm": float(np.max(np.linalg.norm(path[-1] - goal, axis=-1)) * 100),
            "planned_detour_cm": detour_cm(path)}


def detour_cm(path: np.ndarray) -> float:
    """How far (cm) the planned keypoints stray from the straight line between where each starts and
    where it ends: a person reading a dry run should be told of a 10 cm swing, not find it in a GIF."""
    a, b = path[0], path[-1]                                   # [K, 3]
    d = b - a
    t = np.clip(np.einsum("hkc,kc->hk", path - a, d) / np.maximum(np.einsum("kc,kc->k", d, d), 1e-12), 0, 1)
    return float(np.max(np.linalg.norm(path - (a + t[..., None] * d), axis=-1)) * 100)


def _run(args: argparse.Namespace) -> int:
    """Drive an arm with a trained MBIRL run toward goal keypoints (receding horizon, through the
    safety filter), record the run as a library episode (with video of the sim scene camera when
    ``--camera`` is set) and print its final keypoint error as JSON. ``--dry-run`` plans once from
    the arm's state, plays the plan on the arm's sim twin (the run's robot model) into a GIF,
    prints where it is and the planned path, and never moves the arm. A physical arm shows the
    same preview, then asks before its first move (unless ``--yes``)."""
    from robot_irl.control.person_run import is_person_run, run_person

    run_path = Path(args.run)
    if args.sim_time and backend_entry(args.arm).physical:
        raise InputError(f"--sim-time with --arm {args.arm}", field="--sim-time",
                         expected="a simulated arm (--arm pybullet): a physical arm moves in real time")
    if (run_path / "config.json").is_file() and is_person_run(run_path):
        if args.goal is None or args.goal_image is not None:
            raise InputError("--goal-image with a person run" if args.goal_image else "no --goal", field="--goal",
                             expected="--goal X,Y: where the object's centre should rest on the table")
        return run_person(args, run_path)
    if args.object is not None:
        raise InputError("--object with a run trained on robot demos", field="--object",
                         expected="a run trained on person demos (`robot-irl train --demos tag:person "
                                  "--calibration ARM.json`), or no --object")
    if (args.goal is None) == (args.goal_image is None):
        raise InputError("--goal and --goal-image both given" if args.goal else "no goal", field="--goal",
                         expected="one of --goal (keypoints) or --goal-image (a frame showing the goal; runs on "
                                  "learned keypoints)")
    goal_arg = _goal_arg(args.goal) if args.goal is not None else _goal_image_arg(args.goal_image)
    if not (run_path / "config.json").is_file():
        raise InputError("not a trained run folder", file=run_path / "config.json", field="--run",
                         expected="a folder written by `robot-irl train` (config.json, weights.pt)")
    from robot_irl.control.mpc import joint_index, keypoints_at, planning_within_filter, run_learned, save_learned_run
    from robot_irl.irl import load_run

    camera = _camera_arg(args)
    video = camera if args.camera and not args.dry_run else None     # record video only when asked
    if video is not None and args.arm != "pybullet":
        raise InputError(f"--camera with --arm {args.arm}", field="--camera",
                         expected="--arm pybullet (the simulated scene camera is rendered in process)")
    trained = load_run(run_path)
    image_goal = _goal_from_image(goal_arg, trained, run_path) if args.goal_image is not None else None
    opts = parse_arm_options(args.arm_opt)
    task, like = args.task, None
    library = None
    if args.like or not args.dry_run:
        from robot_irl.library import Library
        library = Library.open(args.library, create=not args.dry_run)
    if args.like:
        like = library.episode(args.like)
        task = args.task if args.task != "run" else like.task
        q_like = like.arrays("state").get("joint_pos")
        if args.arm == "pybullet" and q_like is not None and len(q_like) and "start" not in opts:
            opts["start"] = tuple(float(v) for v in q_like[0])
    physical = backend_entry(args.arm).physical
    speed = args.speed_scale if args.speed_scale is not None else (0.1 if physical else 1.0)
    cal = ArmCalibration.load(args.calibration) if args.calibration else None
    arm = make_arm(args.arm, backend_config(args.arm, opts), safety=_safety(args, speed), calibration=cal,
                   clock=FakeClock() if args.sim_time else None)
    if physical and not arm.safety.has_workspace and not args.dry_run:
        raise InputError(f"--arm {args.arm} has no workspace box", field="--workspace", expected=NO_WORKSPACE)
    arm.estop.install_signal(signal.SIGUSR1)
    try:
        with arm:
            q = arm.get_observation().q
            joints = arm.capabilities.joint_names
            goal = image_goal if image_goal is not None else \
                _goal_keypoints(goal_arg, trained, keypoints_at(trained, q[joint_index(trained, joints)]))
            with planning_within_filter(trained, arm):     # the joint range run_learned plans in
                _check_goal_reachable(trained, goal, q[joint_index(trained, joints)], args.tolerance, arm.safety)
                shown = (_preview(args, trained, run_path, q, joints, goal, camera)
                         if args.dry_run or physical else None)
            if shown is not None:
                if args.dry_run:
                    print(json.dumps(shown) if args.json else _dry_run_summary(shown))
                    if shown["planned_final_err_cm"] > args.tolerance * 100:
                        print(f"the plan ends {shown['planned_final_err_cm']:.3g} cm from the goal, beyond the "
                              f"tolerance of {args.tolerance * 100:.3g} cm: a real run would not reach it",
                              file=sys.stderr)
                        return 1
                    return 0
                print(f"planned path on the sim twin: {shown['preview']} "
                      f"(planned final error {shown['planned_final_err_cm']:.1f} cm)")
            if physical and not args.yes:
                if input("move the physical arm with the learned cost? [y/N] ").strip().lower() != "y":
                    print("not moved")
                    return 1
            robot = arm.capabilities.robot
            hold = _tool_hold(args, trained, arm)
            rec = run_learned(arm, trained, goal, horizon=args.horizon, replan_every=args.replan_every,
                              steps=args.steps, rate_hz=args.rate, camera=video, success_m=args.tolerance,
                              land=hold is not None, hold_tool=hold)
    finally:
        arm.estop.close()
    ep_id = None      # a run already at its goal when it started sent nothing: no episode to keep
    if len(rec):
        ep_id = save_learned_run(library, rec, trained, robot=robot, task=task, arm_name=args.arm, camera=video,
                                 extra={"run": str(run_path.resolve()), "goal_keypoints": goal.tolist(),
                                        "goal_image": {k or "cam0": str(v.resolve()) for k, v in goal_arg.items()}
                                        if args.goal_image else None,
                                        "like": like.id if like else None, "final_err_cm": rec.final_err_m * 100,
                                        "tool_hold": hold.to_dict() if hold is not None else None,
                                        "scene_camera": video.name if video else None}).id
    out = {"episode": ep_id, "final_err_cm": rec.final_err_m * 100, "final_keypoints": rec.final_keypoints.tolist(),
           "frames": len(rec.frames), "tool_hold": hold.to_dict() if hold is not None else None, **rec.summary()}
    print(json.dumps(out) if args.json else _run_summary(out, args.tolerance))
    if not rec.succeeded:
        print(f"goal not reached: {_why(rec, args.tolerance)}; episode {ep_id} kept", file=sys.stderr)
        return 1
    return 0


def _tool_hold(args: argparse.Namespace, trained: Any, arm: Any):
    """For a run on learned image keypoints: the tool as its demos ended it (``robot_irl/control/tool.py``),
    which the run then lands its plans with; None with ``--no-land``, for keypoints on the robot's
    links (they pin the tool themselves), or for a run trained before demo ends were stored. Its held
    point: ``--held-point``, else a simulated arm's own (its robot says where its grasp holds things)."""
    from robot_irl.control.mpc import image_keypoints
    from robot_irl.control.tool import ToolHold, tool_link

    ends = trained.demo_info.get("demo_end_joints")
    if args.no_land or not image_keypoints(trained) or not ends:
        if image_keypoints(trained) and not ends and not args.no_land:
            print("the run stores no demo end joints (trained before they were kept): plans are not landed; "
                  "retrain it to land them", file=sys.stderr)
        return None
    dyn = trained.dynamics
    link = tool_link(dyn.urdf, list(dyn.joints))
    if args.held_point:
        point = _floats(args.held_point, 3, "--held-point", "x,y,z of the tool centre point in the tool link's frame (m)")
    else:
        sim_robot = getattr(arm.backend, "robot", None)
        point = sim_robot.held_point(link) if hasattr(sim_robot, "held_point") else None
    hold = ToolHold.from_demos(dyn.urdf, list(dyn.joints), ends, link=link, held_point=point)
    if hold is None:
        print("the demos end the tool in different ways: plans are not landed", file=sys.stderr)
    else:
        held = [w for w, v in (("orientation", hold.axes), ("height", hold.height)) if v is not None]
        tilt = (f"; tilted where a joint limit forbids it, to put the held point {np.round(hold.held_point, 4).tolist()} "
                "where it goes" if hold.held_point is not None and hold.axes is not None else "")
        print(f"landing each plan on the goal with the tool's {' and '.join(held)} as the demos ended it "
              f"({hold.link}){tilt}", file=sys.stderr)
    return hold


def _floats(text: str, n: int, field: str, expected: str) -> np.ndarray:
    """``n`` comma-separated finite numbers, or a clear error naming ``field``."""
    try:
        v = np.array([float(t) for t in text.split(",")])
    except ValueError:
        v = np.array([])
    if v.shape != (n,) or not np.all(np.isfinite(v)):
        raise InputError(f"{text!r} is not {n} numbers", field=field, expected=expected)
    return v


def _why(rec, tolerance_m: float) -> str:
    """One line on why a run that did not reach its goal ended, and what to try."""
    err = f"{rec.final_err_m * 100:.3g} cm from the goal (tolerance {tolerance_m * 100:.3g} cm)"
    if rec.outcome == "stall":
        return rec.stopped
    if rec.outcome == "time limit":
        return (f"stopped at the time limit of {rec.tick_limit} ticks (twice the plan's length) {err}; "
                "raise it with --steps")
    if rec.planned_final_err_m > tolerance_m:
        return (f"the plan itself ends {rec.planned_final_err_m * 100:.3g} cm from the goal and the arm settled {err}: "
                "the learned cost does not lead there (a goal unlike the demos'?)")
    return f"the plan was done and the arm settled {err}"


def _run_summary(out: dict, tolerance_m: float) -> str:
    return format_table(["run", ""], [
        ["episode", out["episode"]], ["outcome", out["outcome"]],
        ["final error (cm)", out["final_err_cm"]], ["tolerance (cm)", tolerance_m * 100],
        ["planned final error (cm)", out["planned_final_err_cm"]],
        ["fresh plans after the first", out["replans"]],
        ["final approach from (cm)", "-" if out["approach_from_cm"] is None else fmt3(out["approach_from_cm"])],
        ["ticks", f"{out['steps']} of at most {out['tick_limit']}"],
        ["clamped / refused ticks", f"{out['clamped_steps']} / {out['refused_steps']}"],
        ["largest step sent (rad)", out["max_sent_step_rad"]]]) + "\n(--json for the full record)"


def _dry_run_summary(shown: dict) -> str:
    return format_table(["dry run", ""], [
        ["preview", shown["preview"]], ["planned final error (cm)", shown["planned_final_err_cm"]],
        ["planned rows", len(shown["planned_keypoints"]) - 1],
        ["largest detour from a straight line (cm)", shown["planned_detour_cm"]]]) + (
        "\nnote: the planned path swings far from the straight line; look at the preview before a real run"
        if shown["planned_detour_cm"] > DETOUR_NOTE_CM else "") + "\n(--json for the planned keypoints)"


#: a planned detour above this (cm) is pointed out in the dry run's summary
DETOUR_NOTE_CM = 5.0


def _check_goal_reachable(trained, goal: np.ndarray, q_model: np.ndarray, tolerance_m: float, safety) -> None:
    """Refuse, before the arm moves, a goal the run's robot cannot reach (naming the nearest point it
    can) or that lies outside the workspace box."""
    from robot_irl.control.mpc import image_keypoints, nearest_reachable, run_keypoint_spec

    names = run_keypoint_spec(trained).names
    if safety.has_workspace and not image_keypoints(trained):   # learned keypoints lie on a plane facing the camera
        lo, hi = np.asarray(safety.workspace_lo), np.asarray(safety.workspace_hi)
        out = [n for n, p in zip(names, goal) if np.any(p < lo) or np.any(p > hi)]
        if out:
            raise InputError(f"goal keypoints {out} lie outside the workspace box lo {lo.tolist()} hi {hi.tolist()}",
                             field="--goal", expected="a goal inside the workspace box (m, robot base frame)")
    x, err = nearest_reachable(trained, goal, q_model)
    if err > tolerance_m:
        ee = names.index("ee") if "ee" in names else 0
        far = float(np.linalg.norm(goal[ee]))
        hint = f" (the goal is {far:.3g} m from the base: centimetres given as metres?)" if far > 2.0 else ""
        raise InputError(f"goal out of reach: the arm's keypoints get no closer than {err * 100:.3g} cm; nearest "
                         f"reachable {names[ee]} point {np.round(x[ee], 3).tolist()}{hint}", field="--goal",
                         expected="a reachable goal in metres in the robot base frame")


_NUMBER = r"-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?"
_NEGATIVE_LIST = re.compile(rf"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?(,\s*{_NUMBER})*$")


def _numbers_may_be_negative(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Let ``--goal -0.6,0.1,0.15`` / ``--workspace -1,1,...`` through: argparse takes any value that
    starts with '-' and is not a plain number for an option. These parsers have no option that looks
    like a number, so a comma list of numbers is always a value."""
    parser._negative_number_matcher = _NEGATIVE_LIST
    return parser


def register(subparsers: argparse._SubParsersAction) -> None:
    from sim.camera import CAMERAS
    from sim.robots import ROBOTS

    p = subparsers.add_parser("arm", help="check an arm, write its calibration file, or serve a sim arm",
                              description=__doc__)
    sub = p.add_subparsers(dest="arm_command", metavar="ACTION", required=True)
    c = _numbers_may_be_negative(sub.add_parser("check", help="connect through the safety filter, print capabilities and state"))
    c.add_argument("--arm", choices=BACKEND_NAMES, default="pybullet")
    c.add_argument("--arm-opt", action="append", default=[], metavar="KEY=VALUE",
                   help="backend config field, e.g. host=172.16.0.2 or robot=panda (repeatable)")
    c.add_argument("--calibration", help="per-arm calibration JSON (id, offsets, limits, home)")
    c.add_argument("--write-calibration", metavar="FILE",
                   help="write this arm's calibration (with --workspace / --teach-workspace: and its workspace box)")
    c.add_argument("--workspace", metavar="X0,X1,Y0,Y1,Z0,Z1",
                   help="workspace box (m, base frame) every watched point must stay in; written with --write-calibration")
    c.add_argument("--teach-workspace", action="store_true",
                   help="teach the workspace box by moving the end effector to its corners in teach mode")
    c.add_argument("--workspace-margin", type=float, default=0.0, help="grow a taught box by this much (m)")
    c.add_argument("--arm-id", help="id stored in the written calibration")
    c.add_argument("--home", action="store_true", help="move to the home pose through the filter")
    c.add_argument("--speed-scale", type=float, default=0.1, help="safety speed scale (default 0.1)")
    c.add_argument("--yes", action="store_true", help="do not ask before moving a physical arm")
    c.set_defaults(func=_check)
    s = sub.add_parser("serve", help="serve a PyBullet arm over ZeroMQ on 127.0.0.1",
                       description="Serve a simulated PyBullet arm over ZeroMQ on 127.0.0.1, as a physical arm's "
                       "controller would be reached. It prints 'READY tcp://127.0.0.1:PORT'; connect to it with "
                       "`--arm loopback --arm-opt endpoint=tcp://127.0.0.1:PORT`.")
    s.add_argument("--robot", default="iiwa", choices=sorted(ROBOTS), help="simulated robot (default iiwa)")
    s.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (default 0: a free one, printed)")
    s.add_argument("--hold-after", type=float, default=0.2,
                   help="the server holds the arm when no target came for this long (s, default 0.2)")
    s.set_defaults(func=_serve)
    r = _numbers_may_be_negative(subparsers.add_parser("run", help="drive an arm with a trained MBIRL run, record it as an episode",
                                                       description=_run.__doc__))
    r.add_argument("--arm", choices=BACKEND_NAMES, default="pybullet")
    r.add_argument("--arm-opt", action="append", default=[], metavar="KEY=VALUE",
                   help="backend config field, e.g. host=172.16.0.2 or robot=panda (repeatable)")
    r.add_argument("--run", required=True, help="trained run folder (robot-irl train --out)")
    r.add_argument("--goal",
                   help="x,y,z of the end-effector keypoint (m, base frame) or a .npy/.json of [K, 3] keypoints; "
                   "a run trained on person demos: X,Y where the object's centre should rest on the table")
    r.add_argument("--no-land", action="store_true",
                   help="a run on learned image keypoints lands each plan on the goal with the tool as its demos "
                        "ended it (orientation, height: robot_irl/control/tool.py); this leaves the plans' ends "
                        "where the learned cost puts them")
    r.add_argument("--held-point", metavar="X,Y,Z",
                   help="a landed run: the tool centre point in the tool link's frame (m), where the gripper holds "
                        "an object. Where a goal asks a joint past the safety filter's range with the tool held, the "
                        "tool is then tilted to put that point where it goes. Default: the simulated robot's own; "
                        "none on a physical arm (the tool is never tilted)")
    r.add_argument("--goal-image", metavar="[CAMERA=]FRAME.png", action="append",
                   help="a run on learned keypoints: a frame of the scene camera showing the goal (its size the "
                   "detector's frames'); the goal is its learned keypoints. A run seen through several cameras "
                   "takes one per camera: --goal-image front=A.png --goal-image top=B.png. Experimental: see "
                   "notes/keypoints.md for how often goals are reached (one camera leaves depth along its rays free)")
    r.add_argument("--object", metavar="X,Y[,YAW_DEG]",
                   help="a run trained on person demos on --arm pybullet: where the simulated cell puts the object "
                   "(m, base frame); the arm finds it with the cell camera, grasps, carries and releases it")
    r.add_argument("--sim-time", action="store_true",
                   help="simulated arms: run on the simulation's own clock, as fast as it computes (no real-time waits)")
    r.add_argument("--like", metavar="EPISODE", help="library episode whose task and start pose (sim) to use")
    r.add_argument("--task", default="run", help="task label of the recorded episode (default: --like's, else 'run')")
    r.add_argument("--library", help="library folder (default $ROBOT_IRL_LIBRARY)")
    r.add_argument("--dry-run", action="store_true",
                   help="plan once, play it on the arm's sim twin into a GIF, print where and the path; do not move")
    r.add_argument("--preview", metavar="GIF", help="where the sim-twin preview goes (default RUN/plots/dry_run.gif)")
    r.add_argument("--camera", choices=tuple(CAMERAS),
                   help="record video of this sim scene camera at the control rate (pybullet arm); also the preview's view")
    r.add_argument("--camera-size", metavar="WxH", help="camera frame size (default: the camera's, 320x240)")
    r.add_argument("--horizon", type=int, help="planning horizon (default: the run's)")
    r.add_argument("--replan-every", type=int, help="ticks between re-plans (default: the horizon)")
    r.add_argument("--steps", type=int, help="most control ticks (default: twice the plan's length plus 3 s)")
    r.add_argument("--tolerance", type=float, default=0.02,
                   help="the run succeeds when every keypoint ends within this of the goal (m, default 0.02); "
                   "else it exits 1 and says why")
    r.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    r.add_argument("--rate", type=float, default=10.0, help="control rate in Hz (default 10)")
    r.add_argument("--speed-scale", type=float, help="safety speed scale (default 1 in sim, 0.1 on a real arm)")
    r.add_argument("--calibration", help="the arm's calibration JSON (offsets, limits, home, workspace box; for a "
                   "person run also the world-to-base registration of `robot-irl world`)")
    r.add_argument("--workspace", metavar="X0,X1,Y0,Y1,Z0,Z1",
                   help="workspace box (m, base frame) for the end effector and every keypoint of the run "
                   "(default: the calibration's; a physical arm refuses to move without one)")
    r.add_argument("--yes", action="store_true", help="do not ask before moving a physical arm")
    r.set_defaults(func=_run)
