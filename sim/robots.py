"""Robots: Kuka iiwa and Franka Panda (with its gripper), each a small class over :class:`Bullet`.

A robot knows its URDF, its arm joints and limits, its end-effector link, where its keypoints sit,
and how to hold an object. Both hold a grasped object through a fixed constraint, so grasps are
exact and repeatable (the Panda also closes its fingers for the look of it).
"""
from __future__ import annotations

import os

import numpy as np
import pybullet_data

from robot_irl.core.spec import ROBOT_BODY, Blob, KeypointDef, Marker
from robot_irl.errors import UnknownNameError
from sim.bullet import Bullet

# End effector pointing straight down, as every scripted expert holds it.
DOWN = np.array([1.0, 0.0, 0.0, 0.0])  # quaternion xyzw: 180° about x


class Robot:
    """Base class: a fixed-base arm loaded from ``urdf`` with ``n_dof`` position-controlled joints."""

    name: str
    urdf: str
    ee_link_name: str
    rest_pose: np.ndarray
    n_dof = 7
    forces: float = 300.0
    max_delta: float = 0.05                # rad per policy step, the action bound
    push_reach: float = 0.0                # how far ahead of the EE frame a push makes contact (m)
    grasp_offset = np.array([0.0, 0.0, 0.06])   # object centre below the EE frame (EE frame z points down)
    ee_down_orientation = DOWN

    def __init__(self, bullet: Bullet) -> None:
        self.bullet = bullet
        self.body = bullet.load_urdf(self.urdf_path)
        info = bullet.joint_info(self.body)
        self.links = {child: idx for idx, _, _, child, *_ in info}
        self.links["base"] = -1
        movable = [idx for idx, _, jtype, *_ in info if jtype != 4]
        self.joints = movable[: self.n_dof]
        # PyBullet's IK works over every movable joint (fingers included): pad the arm's arrays.
        self._extra = [(info[j][4], info[j][5]) for j in movable[self.n_dof:]]
        self.joint_names = [info[j][1] for j in self.joints]
        self.joint_limits = np.array([[info[j][4], info[j][5]] for j in self.joints])
        self.ee_link = self.link_index(self.ee_link_name)
        self._grasp: int | None = None
        self.bullet.reset_joints(self.body, self.joints, self.rest_pose)

    @property
    def urdf_path(self) -> str:
        return os.path.join(pybullet_data.getDataPath(), self.urdf)

    def link_index(self, name: str) -> int:
        if name not in self.links:
            raise UnknownNameError(f"link of {self.name}", name, self.links)
        return self.links[name]

    # --- state ---
    def reset(self, q: np.ndarray) -> None:
        self.release()
        self.bullet.reset_joints(self.body, self.joints, q)
        self.set_targets(q)

    def set_targets(self, q: np.ndarray) -> None:
        self.bullet.set_joint_targets(self.body, self.joints, q, [self.forces] * self.n_dof)

    def joint_state(self) -> tuple[np.ndarray, np.ndarray]:
        return self.bullet.joint_states(self.body, self.joints)

    def ee_pose(self) -> tuple[np.ndarray, np.ndarray]:
        return self.bullet.link_poses(self.body, [self.ee_link])[0]

    def ik(self, position, orientation=None) -> np.ndarray:
        orn = self.ee_down_orientation if orientation is None else orientation
        lo, hi = self.joint_limits[:, 0], self.joint_limits[:, 1]
        ex_lo = [l for l, _ in self._extra]
        ex_hi = [u for _, u in self._extra]
        q = self.bullet.inverse_kinematics(self.body, self.ee_link, position, orn, [*lo, *ex_lo], [*hi, *ex_hi],
                                           [*self.rest_pose, *ex_hi], self.n_dof)
        return np.clip(q, lo, hi)

    # --- gripper ---
    @property
    def holding(self) -> bool:
        return self._grasp is not None

    def grasp(self, obj: int) -> None:
        """Hold ``obj`` rigidly at ``grasp_offset`` below the end effector."""
        if self._grasp is None:
            for link in self.links.values():
                self.bullet.no_collision(self.body, obj, link)
            # Keep the object's world orientation as it was (upright), whatever the EE's orientation.
            x, y, z, w = self.ee_down_orientation
            self._grasp = self.bullet.fixed_constraint(self.body, self.ee_link, obj, self.grasp_offset, (-x, -y, -z, w))
            self._close_fingers(True)

    def release(self) -> None:
        if self._grasp is not None:
            self.bullet.remove_constraint(self._grasp)
            self._grasp = None
            self._close_fingers(False)

    def held_point(self, link: str) -> np.ndarray:
        """Where a grasped object's centre sits in ``link``'s URDF frame (m): the tool centre point a
        run needs to tilt the tool and still put the object where it should go. The grasp constraint
        holds it ``grasp_offset`` from the end-effector link's inertial frame (PyBullet's frame for a
        constraint), which is not that link's URDF frame where the URDF offsets it."""
        from scipy.spatial.transform import Rotation

        (c, cq), = self.bullet.link_inertial_poses(self.body, [self.ee_link])
        world = np.asarray(c) + Rotation.from_quat(cq).apply(self.grasp_offset)
        (o, oq), = self.bullet.link_poses(self.body, [self.link_index(link)])
        return Rotation.from_quat(oq).inv().apply(world - np.asarray(o))

    def _close_fingers(self, close: bool) -> None:
        """Robots with fingers move them; the iiwa has none."""

    # --- keypoints ---
    def keypoints(self) -> list[KeypointDef]:
        """An ArUco marker on the wrist facing the scene camera, and a blob on the flange."""
        return [
            KeypointDef("ee", ROBOT_BODY, self.ee_link_name, tuple(self.marker_offset), Marker(id=0, size=0.04),
                        normal=tuple(self.marker_normal), up=tuple(self.marker_up)),
            KeypointDef("ee_blob", ROBOT_BODY, self.ee_link_name, tuple(self.blob_offset), Blob("magenta", 0.012)),
        ]


class Iiwa(Robot):
    name = "iiwa"
    urdf = "kuka_iiwa/model.urdf"
    ee_link_name = "lbr_iiwa_link_7"
    rest_pose = np.array([0.0, 0.4, 0.0, -1.4, 0.0, 1.3, 0.0])
    grasp_offset = np.array([0.0, 0.0, 0.1])
    # Link-7 frame with the flange pointing down: z down, y toward world -y (the camera side).
    marker_offset = np.array([0.0, 0.07, -0.005])
    marker_normal = np.array([0.0, 1.0, 0.0])
    marker_up = np.array([0.0, 0.0, -1.0])
    blob_offset = np.array([0.055, 0.05, 0.0])


class Panda(Robot):
    name = "panda"
    urdf = "franka_panda/panda.urdf"
    ee_link_name = "panda_grasptarget"
    rest_pose = np.array([0.0, -0.3, 0.0, -2.2, 0.0, 2.0, 0.785])
    forces = 87.0
    push_reach = 0.02
    grasp_offset = np.array([0.0, 0.0, 0.0])
    # Fingers open along world x so the hand's narrow face (link -x) looks at the camera (world -y).
    ee_down_orientation = np.array([0.70710678, 0.70710678, 0.0, 0.0])
    marker_offset = np.array([-0.045, 0.0, -0.065])
    marker_normal = np.array([-1.0, 0.0, 0.0])
    marker_up = np.array([0.0, 0.0, -1.0])
    blob_offset = np.array([-0.035, 0.065, -0.065])

    def __init__(self, bullet: Bullet) -> None:
        super().__init__(bullet)
        self.fingers = [self.link_index("panda_leftfinger"), self.link_index("panda_rightfinger")]

    def _close_fingers(self, close: bool) -> None:
        width = 0.02 if close else 0.04
        self.bullet.set_joint_targets(self.body, self.fingers, [width, width], [20.0, 20.0])

    def reset(self, q: np.ndarray) -> None:
        super().reset(q)
        self.bullet.reset_joints(self.body, self.fingers, [0.04, 0.04])
        self._close_fingers(False)


ROBOTS: dict[str, type[Robot]] = {"iiwa": Iiwa, "panda": Panda}


def make_robot(name: str, bullet: Bullet) -> Robot:
    if name not in ROBOTS:
        raise UnknownNameError("robot", name, ROBOTS)
    return ROBOTS[name](bullet)
