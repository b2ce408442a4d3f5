"""The PyBullet arm inside a simulated task scene, as an :class:`ArmBackend`, with the gripper the
demos recorded.

``robot-irl run --arm pybullet`` drives a bare robot in a world of its own. To measure a learned
cost on the task it was learned from (the object in the hand, the table under it, the keypoint
features a camera sees), :class:`SceneArmBackend` drives the robot of an already reset
``sim.env.ArmEnv`` instead, through the same :class:`Arm`, safety filter and
:func:`robot_irl.control.mpc.run_learned` as any arm; ``render`` draws the scene (marker plates and
blobs included) so the run's video can go through keypoint extraction like a demo's, and it
logs the simulator's true keypoints at every rendered frame beside it.

The gripper is not task code: :func:`gripper_from_demos` reads the demos' recorded ``gripper``
column: the value they moved with and the value they ended with. The backend holds the first and
switches to the second once the arm it drives has moved and then come to rest.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from robot_irl.control.clock import Clock
from robot_irl.control.pybullet_arm import PyBulletBackend, PyBulletConfig
from robot_irl.errors import InputError
from sim.bullet import Bullet
from sim.camera import SceneCamera
from sim.robots import Robot


@dataclass(frozen=True)
class GripperPlan:
    """Gripper values (> 0 hold, < 0 let go, as the sim envs take them) while the arm moves and
    once it has come to rest; where they have the same sign the gripper never changes."""

    moving: float = 1.0
    at_rest: float = 1.0

    @property
    def releases(self) -> bool:
        return self.moving > 0 > self.at_rest


def gripper_from_demos(episodes: Iterable[Any]) -> GripperPlan:
    """The gripper value the demos started their motion with and the one they ended with (medians
    over the demos' first and last recorded values of their ``gripper`` column). Where they differ
    the demos switched once, at the end, with the arm at rest (Place: let go at the drop point), so
    the backend switches when its arm has come to rest."""
    first, last = [], []
    for ep in episodes:
        state = ep.arrays("state") if "state" in ep.streams else {}
        if "gripper" not in state:
            raise InputError(f"episode {ep.id} records no gripper", field="gripper",
                             expected="demos with a 'gripper' column in their state stream")
        g = np.asarray(state["gripper"], float)
        g = g[np.isfinite(g)]
        if not len(g):
            raise InputError(f"episode {ep.id}: its gripper column has no value", field="gripper",
                             expected="demos whose gripper column has values (> 0 hold, < 0 let go)")
        first.append(g[0])
        last.append(g[-1])
    return GripperPlan(moving=float(np.median(first)), at_rest=float(np.median(last)))


class SceneArmBackend(PyBulletBackend):
    """The robot of a reset ``ArmEnv`` (``env.unwrapped``) driven as an arm; the env owns the world
    (connect does not reset it, disconnect does not close it). ``gripper``: what the demos did
    with the gripper (:func:`gripper_from_demos`); rest = the flange within ``rest_m`` of where it is
    now over the last ``rest_s`` s, once the arm has moved ``moved_rad`` from where it started."""

    def __init__(self, env: Any, gripper: GripperPlan | None = None, clock: Clock | None = None, *,
                 rest_m: float = 0.002, rest_s: float = 0.3, moved_rad: float = 0.05) -> None:
        self.env = env.unwrapped
        dt = float(self.env.bullet.timestep)
        super().__init__(PyBulletConfig(robot=self.env.robot.name, native_rate_hz=1.0 / dt), clock)
        self.gripper = gripper or GripperPlan()
        self.rest_m, self.rest_s, self.moved_rad = float(rest_m), float(rest_s), float(moved_rad)
        self.truth: list[np.ndarray] = []          # true keypoints [K, 3] at every rendered frame
        self.released_at: float | None = None       # sim time the gripper switched to its at-rest value

    def _open_world(self) -> tuple[Bullet, Robot, np.ndarray]:
        robot = self.env.robot
        q0 = robot.joint_state()[0]
        self._start, self._moved = q0.copy(), False
        self._ee: list[tuple[float, np.ndarray]] = []   # (sim time, flange position) over the last rest_s
        self.truth, self.released_at = [], None
        self._apply_gripper(self.gripper.moving)
        return self.env.bullet, robot, q0

    def disconnect(self) -> None:
        if self._twin is not None:
            self._twin[0].close()
        self._bullet, self._twin, self.robot = None, None, None

    def render(self, camera: SceneCamera) -> np.ndarray:
        """The scene (features on their links) seen by ``camera``; logs the true keypoints."""
        self._advance()
        self.env.scene.sync_features()
        self.truth.append(self.env.scene.keypoints_3d())
        w, h = camera.size
        return self._bullet.camera_image(camera.view_matrix, camera.projection_matrix, w, h, segmentation=False)[0]

    def _apply_gripper(self, value: float) -> None:
        if value < 0 and self.env.robot.holding:
            self.env.robot.release()

    def _advance(self) -> Robot:
        robot = super()._advance()
        if self.released_at is None and self.gripper.releases:
            q = robot.joint_state()[0]
            self._moved = self._moved or float(np.abs(q - self._start).max()) > self.moved_rad
            if not self._moved:
                self._ee = []
                return robot
            # At rest: the flange within rest_m of where it is now over the last rest_s. Not joint
            # speeds: with the held object pressed on the table the joints twitch (0.006-0.03 rad/s,
            # dev seed 0) while the flange stays put, and a run blocked 1.2-1.7 cm over its drop
            # point waited 1.2 s for a quiet 0.3 s before it let go, where the demos let go at once.
            ee = robot.ee_pose()[0]
            self._ee.append((self._sim_t, ee))
            while len(self._ee) > 1 and self._ee[1][0] <= self._sim_t - self.rest_s + 1e-9:
                self._ee.pop(0)                 # keep the last sample at or before the window's start
            if self._sim_t - self._ee[0][0] >= self.rest_s - 1e-9 and \
                    max(float(np.linalg.norm(p - ee)) for _, p in self._ee) < self.rest_m:
                self._apply_gripper(self.gripper.at_rest)
                self.released_at = self._sim_t
        return robot
