"""An object held rigidly in the hand: its keypoints as keypoint frames on the end-effector link.

Why: a person's demo shows only the object. Once the robot has grasped it, the object's keypoints
move with the flange, so the robot's kinematic model with each object keypoint attached to the
end-effector link (offset = the grasp transform applied to the keypoint's place on the object) is
the dynamics of the object; the bilevel learner, its costs and baselines then apply unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from robot_irl.errors import InputError
from robot_irl.models.frames import KeypointFrame


@dataclass(frozen=True)
class TopDownGrasp:
    """A grasp from above: the end effector's z axis points down, its origin ``depth`` metres above
    the object's centre, the object upright (object z = -EE z) and its x along the EE's x."""

    depth: float

    @property
    def T_ee_obj(self) -> np.ndarray:
        T = np.diag([1.0, -1.0, -1.0, 1.0])     # 180 degrees about x: object up = EE -z
        T[2, 3] = self.depth
        return T

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "top_down", "depth": self.depth, "T_ee_obj": self.T_ee_obj.tolist()}


def held_frames(ee_link: str, grasp: TopDownGrasp, points: dict[str, tuple[float, float, float]]) -> list[KeypointFrame]:
    """Keypoint frames on ``ee_link`` for object keypoints at ``points`` (name -> offset in the
    object's frame, metres)."""
    if not points:
        raise InputError("no object keypoints to attach", field="keypoints", expected="at least one object keypoint")
    T = grasp.T_ee_obj
    return [KeypointFrame(n, ee_link, tuple(float(v) for v in T[:3, :3] @ np.asarray(off, float) + T[:3, 3]))
            for n, off in points.items()]


def held_dynamics(robot: str, grasp: TopDownGrasp, spec: Any, limit_margin: float = 0.06):
    """The sim robot ``robot``'s kinematic model with the object keypoints of ``spec`` (object-frame
    offsets) on its flange by ``grasp``: the object's dynamics once it is held.

    ``limit_margin`` (rad): plans keep this far inside the URDF limits. Why: a top-down carry works
    near the iiwa's wrist limits, and a plan that asks past the safety filter's margin (0.05 rad)
    is clamped by the filter row after row, bending the executed path away from the planned one
    (seen on dev seed 0: 44-121 clamps a carry)."""
    from robot_irl.models.kinematic import KinematicDynamics
    from sim.bullet import Bullet
    from sim.robots import ROBOTS, make_robot

    if robot not in ROBOTS:
        raise InputError(f"robot '{robot}' has no kinematic model here", field="robot",
                         expected=f"one of the sim robots {sorted(ROBOTS)}")
    b = Bullet()
    try:
        r = make_robot(robot, b)
        urdf, ee, joints = r.urdf_path, r.ee_link_name, list(r.joint_names)
    finally:
        b.close()
    frames = held_frames(ee, grasp, {k.name: tuple(k.offset) for k in spec})
    dyn = KinematicDynamics(urdf, frames, joints=joints)
    dyn.lower, dyn.upper = dyn.lower + limit_margin, dyn.upper - limit_margin
    return dyn


def grasp_for(robot: str) -> TopDownGrasp:
    """The top-down grasp of sim robot ``robot``: the object's centre its ``grasp_offset`` below the flange."""
    from sim.robots import ROBOTS

    if robot not in ROBOTS:
        raise InputError(f"robot '{robot}' has no grasp here", field="robot", expected=f"one of {sorted(ROBOTS)}")
    return TopDownGrasp(float(ROBOTS[robot].grasp_offset[2]))


def start_joints(dyn: Any, x0: np.ndarray, robot: str) -> np.ndarray:
    """Joints ``[N, n]`` holding each demo's object at its carry start ``x0 [N, K, 3]``, by IK from
    the robot's rest pose (the learner's q0 for person demos, which have no joint log)."""
    import torch
    from sim.robots import ROBOTS

    with torch.no_grad():
        q_init = dyn.as_tensor(ROBOTS[robot].rest_pose)[None].expand(len(x0), -1)
        return dyn.inverse_kinematics(dyn.as_tensor(x0), q_init, iters=200).numpy()
