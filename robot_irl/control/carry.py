"""A person shows, the robot does: find the object, grasp it from above, carry it under the cost
learned from person demos (robot_irl.irl.object_demos), and let go where the demos did.

Every motion goes through the arm's safety filter: the approach, descent and lift are joint-space
moves within the filter's step cap; the carry is :func:`robot_irl.control.mpc.run_learned` (the
run loop of ``robot-irl run``) on the held-object dynamics. The learned run's keypoints are the
object's, attached to the flange by the grasp transform, so the run's goal is the object's goal.

Frames: the camera sees the object and the reference marker; extraction gives the object in the
marker's world frame; the arm calibration's registration (``robot-irl world``) moves it into the
base frame, where grasping, planning and judging happen.

A gripper is what the :class:`Arm` interface lacks: :class:`SimGripper` holds the object in the
PyBullet world by a fixed constraint (as the sim tasks do); a physical gripper would implement
the same two calls.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from robot_irl.control.arm import Arm
from robot_irl.control.mpc import LearnedRunRecord, joint_index, keypoints_at, run_learned, tick_cap
from robot_irl.control.registration import WorldRegistration
from robot_irl.core.camera import CameraModel
from robot_irl.core.spec import KeypointSpec
from robot_irl.errors import InputError


class Gripper(Protocol):
    def grasp(self) -> None: ...

    def release(self) -> None: ...


class SimGripper:
    """Grasp = the sim robot holds ``body`` rigidly exactly where it is relative to the flange now
    (a fixed constraint; the object neither jumps nor turns); release = the constraint goes."""

    def __init__(self, backend: Any, body: int) -> None:
        self.backend, self.body = backend, body
        self._cid: int | None = None

    def grasp(self) -> None:
        from scipy.spatial.transform import Rotation

        world, robot = self.backend.world, self.backend.robot
        for link in robot.links.values():
            world.no_collision(robot.body, self.body, link)
        # relative to the flange link's inertial frame, the frame PyBullet reads a constraint's parent
        # pose in (its URDF frame is 2 cm away on the iiwa: the object dropped 2 cm in the grasp, and
        # the held-object model, which puts it at the grasp's depth, ended its carries pressing it
        # into the table 1.6 cm short of the goal, dev seed 1)
        (pe, qe), (po, qo) = world.link_inertial_poses(robot.body, [robot.ee_link])[0], world.pose(self.body)
        Re = Rotation.from_quat(qe)
        rel_pos = Re.inv().apply(po - pe)
        rel_orn = (Re.inv() * Rotation.from_quat(qo)).as_quat()
        self._cid = world.fixed_constraint(robot.body, robot.ee_link, self.body, rel_pos, rel_orn)

    def release(self) -> None:
        if self._cid is not None:
            self.backend.world.remove_constraint(self._cid)
            self._cid = None


PERSON_KEY = "person"   # a person run's block in its config's demo info (written by robot_irl.record.person_pipeline)


@dataclass
class PersonRun:
    """What a run trained on person demos carries beyond the cost: how to find the object (the
    demos' spec: reference marker + object), how it was grasped and lifted, where the demos set it
    down (rest height), which keypoint success is judged on, and IK seeds (the demos' carry starts).
    Stored in the run's ``config.json`` so ``robot-irl run`` can carry the object without the library."""

    robot: str
    grasp_depth: float
    lift_m: float
    rest_height_m: float
    names: list[str]
    cell_spec: KeypointSpec
    ik_seeds: np.ndarray
    judge: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"robot": self.robot, "grasp": {"kind": "top_down", "depth": self.grasp_depth}, "lift_m": self.lift_m,
                "rest_height_m": self.rest_height_m, "keypoints": list(self.names), "judge": self.judge,
                "cell_spec": self.cell_spec.to_dict(), "ik_seeds": np.asarray(self.ik_seeds).tolist()}

    @classmethod
    def from_run(cls, trained: Any) -> "PersonRun":
        """The person block of a trained run; refused (naming how to make one) when the run was not
        trained on person demos or predates the block."""
        info = (getattr(trained, "demo_info", None) or {}).get(PERSON_KEY)
        where = getattr(trained, "path", None)
        if not isinstance(info, dict):
            raise InputError("the run was not trained on person demos", file=where, field="demos.person",
                             expected="a run from `robot-irl train --demos tag:person --calibration ARM.json`")
        need = ("robot", "grasp", "lift_m", "rest_height_m", "keypoints", "cell_spec", "ik_seeds")
        missing = [k for k in need if k not in info]
        if missing:
            raise InputError(f"the run's person block lacks {missing} (trained before runs stored it)", file=where,
                             field="demos.person", expected="retrain with `robot-irl train --demos tag:person "
                                                            "--calibration ARM.json`")
        return cls(str(info["robot"]), float(info["grasp"]["depth"]), float(info["lift_m"]),
                   float(info["rest_height_m"]), list(info["keypoints"]),
                   KeypointSpec.from_dict(info["cell_spec"], file=str(where) if where else None),
                   np.asarray(info["ik_seeds"], float), int(info.get("judge", 0)))


@dataclass
class CarryConfig:
    rate_hz: float = 10.0
    approach_m: float = 0.08     # above the grasp pose before descending onto the object
    clearance_m: float = 0.003   # the carry's goal above the resting height (a held object must not press into the table)
    retreat_m: float = 0.06      # straight up after letting go (the hand leaves)
    settle_s: float = 0.6
    success_m: float = 0.02
    ik_tolerance_m: float = 0.003


@dataclass
class CarryRecord:
    found: np.ndarray                         # [K, 3] object keypoints seen before the grasp (base frame)
    goal: np.ndarray                          # [K, 3] where the object should rest
    run: LearnedRunRecord | None = None       # the learned carry
    final: np.ndarray | None = None           # [K, 3] object keypoints seen after letting go
    err_m: float = float("nan")               # the judged object keypoint to its goal, from the video
    succeeded: bool = False
    ticks: int = 0
    log: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"err_cm": self.err_m * 100.0, "succeeded": self.succeeded, "ticks": self.ticks,
                "carry_outcome": self.run.outcome if self.run is not None else None,
                "clamped_steps": self.run.summary()["clamped_steps"] if self.run is not None else None}


def observe_object(frames: list[np.ndarray], timestamps: np.ndarray, spec: KeypointSpec, intrinsics: CameraModel,
                   registration: WorldRegistration | None, names: list[str]) -> np.ndarray:
    """The object's keypoints ``names`` (base frame, [K, 3]) from a short still clip: the same
    extraction as the demos (world frame from the reference marker), then the registration."""
    from robot_irl.keypoints import extract_video

    if registration is None:
        raise InputError("the arm calibration has no world-to-base registration", field="calibration.world",
                         expected="`robot-irl world touch --calibration ARM.json` or `robot-irl world set "
                                  "--calibration ARM.json --pose X,Y,Z,YAW_DEG`")
    cam = CameraModel(K=intrinsics.K, size=intrinsics.size, dist=intrinsics.dist, name=intrinsics.name)
    track = extract_video(iter(frames), np.asarray(timestamps, float), spec, cam, rgb=True, progress=False)
    if not str(track.meta.get("xyz_frame", "")).startswith("world"):
        raise InputError("the camera spec has no reference marker on body 'world'", field="keypoint_spec",
                         expected="the same spec as the person demos (reference marker + object)")
    idx = [track.names.index(n) for n in names]
    x = np.nanmedian(track.xyz[:, idx], axis=0) if np.isfinite(track.xyz[:, idx]).any() else np.full((len(idx), 3), np.nan)
    if not np.all(np.isfinite(x)):
        missing = [n for n, ok in zip(names, np.isfinite(x).all(-1)) if not ok]
        seen_world = track.meta.get("world_frames_missing", 0) < len(track)
        what = "the object" if seen_world else "the reference marker"
        raise InputError(f"{what} is not in view (keypoints {missing} have no world-frame 3D in {len(track)} frames)",
                         field="camera", expected="the object and the reference marker in the camera's view")
    return registration.to_base(x)


def ik_joints(trained: Any, x: np.ndarray, q_init: np.ndarray, tol: float, *, seeds: Any = None, rounds: int = 6,
              iters: int = 40) -> np.ndarray:
    """Model joints that put the run's (held-object) keypoints at ``x [K, 3]``; refused if out of
    reach. Damped least squares in rounds of ``iters`` from ``q_init``, then from each of ``seeds``
    (other start joints, e.g. the demos' carry starts) until within ``tol``. Why several starts: from
    the home pose DLS can stop at a joint limit 4 cm short of a pose the arm reaches (dev seed 0)."""
    dyn = trained.dynamics
    target = dyn.as_tensor(x)[None]
    best = np.inf
    for start in [q_init, *([] if seeds is None else list(seeds))]:
        q = dyn.as_tensor(start)[None]
        with torch.no_grad():
            for _ in range(rounds):
                q = dyn.inverse_kinematics(target, q, iters=iters)
                err = float((dyn.keypoints(q)[0] - target[0]).norm(dim=-1).max())
                if err <= tol:
                    return q[0].numpy()
        best = min(best, err)
    raise InputError(f"the grasp pose is out of reach ({best * 100:.1f} cm short)", field="object position",
                     expected="an object within the arm's reach from above")


def move_joints(arm: Arm, idx: np.ndarray, q_model: np.ndarray, rate_hz: float, *, tol: float = 2e-3,
                settle_s: float = 2.0) -> int:
    """Straight joint-space move of the model joints to ``q_model`` through the filter, within its
    step cap, then hold the target until the joints are within ``tol`` (or ``settle_s``). Ticks sent."""
    cap = 0.9 * tick_cap(arm, rate_hz)
    q = arm.get_observation().q
    target = q.copy()
    target[idx] = q_model
    n = max(1, int(np.ceil(np.abs(target - q).max() / cap)))
    dt = 1.0 / rate_hz
    for k in range(1, n + 1):
        arm.get_observation()
        arm.send_action(q + (target - q) * k / n)
        arm.clock.sleep(dt)
    ticks = n
    for _ in range(int(settle_s * rate_hz)):
        if np.abs(arm.get_observation().q - target).max() < tol:
            break
        arm.send_action(target)
        arm.clock.sleep(dt)
        ticks += 1
    return ticks


def goal_keypoints(found: np.ndarray, goal_centre: np.ndarray) -> np.ndarray:
    """The object's keypoints at rest on ``goal_centre``: the carry does not turn the object, so
    each keypoint keeps its offset from the centre (keypoint 0) as found."""
    return np.asarray(goal_centre, float) + (found - found[0])


def carry(arm: Arm, trained: Any, gripper: Gripper, observe: Callable[[], np.ndarray], goal_centre: np.ndarray, *,
          lift_m: float, config: CarryConfig | None = None, judge: int = 0, ik_seeds: Any = None) -> CarryRecord:
    """Find, grasp, lift by ``lift_m`` (the demos' lift), carry under ``trained`` to ``goal_centre``
    (object centre at rest, base frame), release, retreat, and look again (see module docstring).
    ``judge``: the keypoint success is judged on. Why not always the centre: the centre comes from
    the marker's estimated orientation, and a small marker seen face-on in one still view can take
    IPPE's mirror solution (seen: centre 2.6 cm off, marker point exact); the marker's own point
    is seen directly. ``ik_seeds``: more start joints for the grasp's IK (the demos' carry starts)."""
    cfg = config or CarryConfig()
    idx = joint_index(trained, arm.capabilities.joint_names)
    found = observe()
    goal = goal_keypoints(found, goal_centre)
    rec = CarryRecord(found=found, goal=goal)
    q_now = arm.get_observation().q[idx]
    up = np.array([0.0, 0.0, 1.0])
    q_above = ik_joints(trained, found + cfg.approach_m * up, q_now, cfg.ik_tolerance_m, seeds=ik_seeds)
    q_grasp = ik_joints(trained, found, q_above, cfg.ik_tolerance_m, seeds=ik_seeds)
    q_lift = ik_joints(trained, found + lift_m * up, q_grasp, cfg.ik_tolerance_m, seeds=ik_seeds)
    rec.ticks += move_joints(arm, idx, q_above, cfg.rate_hz)
    rec.ticks += move_joints(arm, idx, q_grasp, cfg.rate_hz)
    gripper.grasp()
    # From here a fault (a stall, the e-stop, a refused target) raises with the object still held:
    # on purpose, since letting go mid-air drops it; a person frees the arm and the object.
    rec.ticks += move_joints(arm, idx, q_lift, cfg.rate_hz)
    rec.log.append("grasped and lifted")
    rec.run = run_learned(arm, trained, goal + cfg.clearance_m * up, rate_hz=cfg.rate_hz, settle_s=0.2)
    rec.ticks += len(rec.run)
    rec.log.append(f"carry: {rec.run.outcome}, model error {rec.run.final_err_m * 100:.2f} cm")
    gripper.release()
    q_end = arm.get_observation().q[idx]
    q_up = ik_joints(trained, keypoints_at(trained, q_end) + cfg.retreat_m * up, q_end, 0.01)
    rec.ticks += move_joints(arm, idx, q_up, cfg.rate_hz)
    arm.clock.sleep(cfg.settle_s)
    rec.final = observe()
    rec.err_m = float(np.linalg.norm(rec.final[judge] - goal[judge]))
    rec.succeeded = rec.err_m <= cfg.success_m
    return rec

