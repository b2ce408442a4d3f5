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
