"""The one thin layer over PyBullet: a client, bodies, stepping and camera images.

Everything above (robots, tasks, envs) talks to PyBullet through this class, so the physics
client id never leaks and tests can swap settings in one place.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pybullet_data


def _import_pybullet_quietly():
    """``import pybullet`` without its "pybullet build time: ..." line, which its C code prints on
    import (to stderr or stdout, by build) and which would otherwise open every command's output.
    Every module of the project imports pybullet through here (``from sim.bullet import p``); an
    import error still raises, with its traceback shown once the descriptors are back."""
    if "pybullet" in sys.modules:
        return sys.modules["pybullet"]
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    try:
        with open(os.devnull, "wb") as null:
            for fd in saved:
                os.dup2(null.fileno(), fd)
            import pybullet
            _flush_c_stdio()   # the line sits in C's stdio buffer when stdout is a pipe
    finally:
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)
    return pybullet


def _flush_c_stdio() -> None:
    import ctypes

    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):   # no C library to reach (not Linux/macOS): nothing buffered to drop
        pass


p = _import_pybullet_quietly()


class Bullet:
    """A headless PyBullet world stepped at ``timestep`` seconds."""

    def __init__(self, timestep: float = 1.0 / 240.0) -> None:
        self.client = p.connect(p.DIRECT)
        self.timestep = timestep
        p.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=self.client)
        p.setGravity(0, 0, -9.81, physicsClientId=self.client)
        p.setTimeStep(timestep, physicsClientId=self.client)
        self._textures: dict[str, int] = {}

    # --- lifecycle ---
    def close(self) -> None:
        if self.client >= 0 and p.isConnected(self.client):
            p.disconnect(self.client)
        self.client = -1

    def step(self, n: int = 1) -> None:
        for _ in range(n):
            p.stepSimulation(physicsClientId=self.client)

    # --- bodies ---
    def load_urdf(self, path: str, position=(0, 0, 0), orientation=(0, 0, 0, 1), fixed: bool = True) -> int:
        return p.loadURDF(path, position, orientation, useFixedBase=fixed,
                          flags=p.URDF_USE_SELF_COLLISION_EXCLUDE_PARENT, physicsClientId=self.client)

    def create_box(self, half_extents, position, rgba, mass: float = 0.0, collide: bool = True) -> int:
        vis = p.createVisualShape(p.GEOM_BOX, halfExtents=half_extents, rgbaColor=rgba, physicsClientId=self.client)
        col = p.createCollisionShape(p.GEOM_BOX, halfExtents=half_extents, physicsClientId=self.client) if collide else -1
        return p.createMultiBody(mass, col, vis, position, physicsClientId=self.client)

    def create_cylinder(self, radius: float, height: float, position, rgba, mass: float = 0.0) -> int:
        vis = p.createVisualShape(p.GEOM_CYLINDER, radius=radius, length=height, rgbaColor=rgba, physicsClientId=self.client)
        col = p.createCollisionShape(p.GEOM_CYLINDER, radius=radius, height=height, physicsClientId=self.client)
        return p.createMultiBody(mass, col, vis, position, physicsClientId=self.client)

    def create_visual_sphere(self, radius: float, rgba) -> int:
        """A sphere that is seen but has no collision or mass (a blob keypoint)."""
        vis = p.createVisualShape(p.GEOM_SPHERE, radius=radius, rgbaColor=rgba, physicsClientId=self.client)
        return p.createMultiBody(0.0, -1, vis, (0, 0, -5), physicsClientId=self.client)

    def create_textured_quad(self, half_size: float, texture_png: Path) -> int:
        """A square of side ``2*half_size`` in its local x-y plane, facing +z, showing a texture
        with the image's top row along +y (so an ArUco marker's frame is the body frame)."""
        h = half_size
        verts = [[-h, -h, 0], [h, -h, 0], [h, h, 0], [-h, h, 0]]
        uvs = [[0, 0], [1, 0], [1, 1], [0, 1]]   # TinyRenderer reads v = 0 as the bottom row
        vis = p.createVisualShape(p.GEOM_MESH, vertices=verts, indices=[0, 1, 2, 0, 2, 3], uvs=uvs,
                                  normals=[[0, 0, 1]] * 4, physicsClientId=self.client)
        body = p.createMultiBody(0.0, -1, vis, (0, 0, -5), physicsClientId=self.client)
        key = str(texture_png)
        if key not in self._textures:
            self._textures[key] = p.loadTexture(key, physicsClientId=self.client)
        p.changeVisualShape(body, -1, textureUniqueId=self._textures[key], rgbaColor=[1, 1, 1, 1],
                            physicsClientId=self.client)
        return body

    def remove(self, body: int) -> None:
        p.removeBody(body, physicsClientId=self.client)

    def set_pose(self, body: int, position, orientation) -> None:
        p.resetBasePositionAndOrientation(body, position, orientation, physicsClientId=self.client)

    def pose(self, body: int) -> tuple[np.ndarray, np.ndarray]:
        pos, orn = p.getBasePositionAndOrientation(body, physicsClientId=self.client)
        return np.asarray(pos), np.asarray(orn)

    def set_color(self, body: int, rgba) -> None:
        p.changeVisualShape(body, -1, rgbaColor=rgba, physicsClientId=self.client)

    def no_collision(self, body_a: int, body_b: int, link_a: int = -1) -> None:
        p.setCollisionFilterPair(body_a, body_b, link_a, -1, 0, physicsClientId=self.client)

    def fixed_constraint(self, parent: int, parent_link: int, child: int, parent_frame_pos, parent_frame_orn) -> int:
        cid = p.createConstraint(parent, parent_link, child, -1, p.JOINT_FIXED, (0, 0, 0),
                                 parent_frame_pos, (0, 0, 0), parent_frame_orn, physicsClientId=self.client)
        p.changeConstraint(cid, maxForce=2000, physicsClientId=self.client)
        return cid

    def remove_constraint(self, cid: int) -> None:
        p.removeConstraint(cid, physicsClientId=self.client)

    # --- camera ---
    def camera_image(self, view: list[float], proj: list[float], width: int, height: int,
                     segmentation: bool) -> tuple[np.ndarray, np.ndarray | None]:
        flags = 0 if segmentation else p.ER_NO_SEGMENTATION_MASK
        _, _, rgba, _, seg = p.getCameraImage(width, height, view, proj, renderer=p.ER_TINY_RENDERER,
                                              flags=flags, shadow=0, physicsClientId=self.client)
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)[:, :, :3]
        mask = np.asarray(seg, dtype=np.int32).reshape(height, width) if segmentation else None
        return np.ascontiguousarray(rgb), mask

    # --- articulated bodies ---
    def joint_info(self, body: int) -> list[tuple[int, str, int, str, float, float, float, float]]:
        """(index, joint name, type, child link name, lower, upper, max force, max velocity) per joint."""
        out = []
        for j in range(p.getNumJoints(body, physicsClientId=self.client)):
            i = p.getJointInfo(body, j, physicsClientId=self.client)
            out.append((j, i[1].decode(), i[2], i[12].decode(), i[8], i[9], i[10], i[11]))
        return out

    def reset_joints(self, body: int, joints: list[int], q) -> None:
        for j, v in zip(joints, q):
            p.resetJointState(body, j, float(v), 0.0, physicsClientId=self.client)

    def set_joint_targets(self, body: int, joints: list[int], q, forces) -> None:
        p.setJointMotorControlArray(body, joints, p.POSITION_CONTROL, targetPositions=list(q), forces=list(forces),
                                    physicsClientId=self.client)

    def joint_states(self, body: int, joints: list[int]) -> tuple[np.ndarray, np.ndarray]:
        states = p.getJointStates(body, joints, physicsClientId=self.client)
        return np.array([s[0] for s in states]), np.array([s[1] for s in states])

    def link_poses(self, body: int, links: list[int]) -> list[tuple[np.ndarray, np.ndarray]]:
        """World pose (position, quaternion xyzw) of each link's URDF frame."""
        states = p.getLinkStates(body, links, computeForwardKinematics=True, physicsClientId=self.client)
        return [(np.asarray(s[4]), np.asarray(s[5])) for s in states]

    def link_inertial_poses(self, body: int, links: list[int]) -> list[tuple[np.ndarray, np.ndarray]]:
        """World pose of each link's centre-of-mass (inertial) frame: the frame a constraint's
        ``parent_frame_pos/orn`` on that link are given in (PyBullet), which sits off the URDF
        frame where the URDF says so (the iiwa's link 7: 2 cm along its z)."""
        states = p.getLinkStates(body, links, computeForwardKinematics=True, physicsClientId=self.client)
        return [(np.asarray(s[0]), np.asarray(s[1])) for s in states]

    def inverse_kinematics(self, body: int, link: int, position, orientation, lower, upper, rest,
                           n_dof: int, iterations: int = 100) -> np.ndarray:
        ranges = [u - l for l, u in zip(lower, upper)]
        q = p.calculateInverseKinematics(body, link, position, orientation, lowerLimits=list(lower),
                                         upperLimits=list(upper), jointRanges=ranges, restPoses=list(rest),
                                         maxNumIterations=iterations, residualThreshold=1e-5,
                                         physicsClientId=self.client)
        return np.asarray(q[:n_dof])
