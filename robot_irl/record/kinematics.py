"""Forward kinematics for recordings of arms that ``sim.robots`` models (iiwa, panda).

A kinesthetic recording measures joint angles only; the end-effector pose and the 3D keypoints on
the robot follow from them. A kinematic twin of the robot in its own PyBullet DIRECT client gives
both with the same URDF, link frames and keypoint offsets the simulator uses, so an arm episode's
``keypoints_3d`` means the same points as a sim episode's (robot base frame, metres).
"""
from __future__ import annotations

import numpy as np

from robot_irl.core.spec import ROBOT_BODY, KeypointSpec


def quat_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrix of a unit quaternion (x, y, z, w)."""
    x, y, z, w = np.asarray(q, dtype=np.float64)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


class RobotKinematics:
    """FK of robot ``name``; :meth:`available` says whether robot-irl has a model of it."""

    def __init__(self, name: str) -> None:
        from sim.bullet import Bullet
        from sim.robots import make_robot
        self._bullet = Bullet()
        self.robot = make_robot(name, self._bullet)

    @staticmethod
    def available(name: str | None) -> bool:
        from sim.robots import ROBOTS
        return name in ROBOTS

    def default_spec(self) -> KeypointSpec:
        """The robot's own keypoints (wrist marker, flange blob), as in the simulator."""
        return KeypointSpec(tuple(self.robot.keypoints()))

    def _set(self, q: np.ndarray) -> None:
        self._bullet.reset_joints(self.robot.body, self.robot.joints, q)

    def ee_pose(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """End-effector position [3] (m) and orientation [4] (xyzw) in the base frame."""
        self._set(q)
        pos, quat = self.robot.ee_pose()
        return np.asarray(pos, float), np.asarray(quat, float)

    def keypoints(self, q: np.ndarray, spec: KeypointSpec) -> np.ndarray:
        """[K, 3] positions of the spec's keypoints on the robot; NaN for keypoints on other bodies
        (objects the arm recording cannot see) and for links this robot does not have."""
        self._set(q)
        out = np.full((len(spec), 3), np.nan)
        for i, kp in enumerate(spec):
            if kp.body != ROBOT_BODY or kp.link not in self.robot.links:
                continue
            if kp.link == "base":          # the fixed base sits at the origin of the base frame
                out[i] = np.asarray(kp.offset, float)
                continue
            pos, orn = self._bullet.link_poses(self.robot.body, [self.robot.links[kp.link]])[0]
            out[i] = np.asarray(pos) + quat_matrix(orn) @ np.asarray(kp.offset, float)
        return out

    def close(self) -> None:
        self._bullet.close()
