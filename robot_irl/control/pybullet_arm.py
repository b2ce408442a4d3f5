"""In-process PyBullet backend on the ``sim`` robots (iiwa, panda).

Physics follows the injected clock lazily: every call first steps the world at the native rate
until simulated time catches up with ``clock.now()``. With a real clock the arm moves in real time
without a thread; with a fake clock a test decides exactly how much time passes.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from robot_irl.control.backend import ArmBackend
from robot_irl.control.clock import Clock, MonotonicClock
from robot_irl.control.errors import ArmStateError
from robot_irl.control.types import Capabilities, Observation
from robot_irl.errors import UnknownNameError
from sim.bullet import Bullet
from sim.camera import SceneCamera
from sim.robots import ROBOTS, Robot, make_robot

log = logging.getLogger("robot_irl.control.pybullet")

# The first target after a hold has no previous one to measure the policy period from.
FIRST_SEGMENT_S = 0.1


@dataclass
class PyBulletConfig:
    """``robot``: a ``sim.robots`` name; ``native_rate_hz``: physics and interpolation rate;
    ``max_catch_up_s``: longest stretch simulated in one call (beyond it simulated time skips, so a
    paused process does not stall on thousands of steps); ``start``: initial joints (rest pose)."""

    robot: str = "iiwa"
    native_rate_hz: float = 240.0
    max_catch_up_s: float = 0.5
    start: tuple[float, ...] | None = None


class PyBulletBackend(ArmBackend):
    def __init__(self, config: PyBulletConfig | None = None, clock: Clock | None = None) -> None:
        self.config = config or PyBulletConfig()
        if self.config.robot not in ROBOTS:
            raise UnknownNameError("robot", self.config.robot, ROBOTS)
        self.clock = clock or MonotonicClock()
        self.default_home = ROBOTS[self.config.robot].rest_pose.copy()
        self._bullet: Bullet | None = None
        self._twin: tuple[Bullet, Robot] | None = None
        self.robot: Robot | None = None

    # --- lifecycle ---
    def connect(self) -> Capabilities:
        self._bullet, self.robot, q0 = self._open_world()
        dt = self._bullet.timestep
        self._sim_t = self.clock.now()
        self._seg_from = q0.copy()        # interpolation segment: from, to, start time, duration
        self._seg_to = q0.copy()
        self._seg_t0 = self._sim_t
        self._seg_len = dt
        self._last_cmd_t: float | None = None
        self._teach = False
        info = self._bullet.joint_info(self.robot.body)
        vmax = np.array([info[j][7] for j in self.robot.joints])
        return Capabilities(robot=self.config.robot, joint_names=tuple(self.robot.joint_names),
                            limits=self.robot.joint_limits.copy(), max_velocity=vmax,
                            native_rate_hz=self.config.native_rate_hz,
                            control_modes=("joint_position", "teach"))

    def _open_world(self) -> tuple[Bullet, Robot, np.ndarray]:
        """A world of its own with the bare robot at the start pose: (physics, robot, joints).
        A subclass that drives a robot inside an existing scene returns that scene's instead."""
        bullet = Bullet(timestep=1.0 / self.config.native_rate_hz)
        robot = make_robot(self.config.robot, bullet)
        q0 = self.default_home if self.config.start is None else np.asarray(self.config.start, float)
        robot.reset(q0)
        return bullet, robot, q0

    def disconnect(self) -> None:
        for b in (self._bullet, self._twin[0] if self._twin else None):
            if b is not None:
                b.close()
        self._bullet, self._twin, self.robot = None, None, None

    @property
    def world(self) -> Bullet:
        """The simulated world the arm stands in, to add a cell's table, markers and objects to."""
        if self._bullet is None:
            raise ArmStateError("pybullet arm is not connected")
        return self._bullet

    # --- the ArmBackend calls ---
    def read(self) -> Observation:
        robot = self._advance()
        q, dq = robot.joint_state()
        return Observation(t=self._sim_t, q=q, dq=dq, ee_pos=robot.ee_pose()[0])

    def command(self, q: np.ndarray) -> None:
        self._advance()
        if self._teach:
            raise ArmStateError("teach mode is on")
        now = self._sim_t
        period = FIRST_SEGMENT_S if self._last_cmd_t is None else now - self._last_cmd_t
        self._seg_from = self._interp(now)
        self._seg_to = np.asarray(q, float).copy()
        self._seg_t0 = now
        # Spread the move over one policy period (what the caller's rate implies), within bounds.
        self._seg_len = float(np.clip(period, 1.0 / self.config.native_rate_hz, 0.25))
        self._last_cmd_t = now

    def hold(self) -> np.ndarray:
        robot = self._advance()
        q, _ = robot.joint_state()
        self._seg_from = self._seg_to = q
        self._last_cmd_t = None
        robot.set_targets(q)
        return q.copy()

    def stop(self) -> np.ndarray:
        return self.hold()

    def set_teach_mode(self, on: bool) -> None:
        """In simulation freedrive is a pure damper: every step the motors hold wherever the joints
        are now, so the arm neither sags under gravity nor springs back when something moves it."""
        self._advance()
        self._teach = on
        self.hold()

    def render(self, camera: SceneCamera) -> np.ndarray:
        """The simulated arm seen by scene camera ``camera`` now (RGB uint8 [H, W, 3])."""
        self._advance()
        w, h = camera.size
        return self._bullet.camera_image(camera.view_matrix, camera.projection_matrix, w, h, segmentation=False)[0]

    def forward_kinematics(self, q: np.ndarray) -> np.ndarray:
        if self._twin is None:       # a kinematic twin, so FK never disturbs the simulated arm
            twin = Bullet(timestep=1.0 / self.config.native_rate_hz)
            self._twin = (twin, make_robot(self.config.robot, twin))
        twin, robot = self._twin
        twin.reset_joints(robot.body, robot.joints, q)
        return robot.ee_pose()[0]

    # --- physics ---
    def _interp(self, t: float) -> np.ndarray:
        a = min(1.0, max(0.0, (t - self._seg_t0) / self._seg_len))
        return self._seg_from + a * (self._seg_to - self._seg_from)

    def _advance(self) -> Robot:
        if self.robot is None or self._bullet is None:
            raise ArmStateError("pybullet arm is not connected")
        dt = self._bullet.timestep
        now = self.clock.now()
        n = int((now - self._sim_t) / dt)
        limit = int(self.config.max_catch_up_s / dt)
        if n > limit:
            log.debug("simulation %.2f s behind the clock: skipping ahead", (n - limit) * dt)
            self._sim_t += (n - limit) * dt
            n = limit
        robot = self.robot
        for _ in range(n):
            self._sim_t += dt
            robot.set_targets(robot.joint_state()[0] if self._teach else self._interp(self._sim_t))
            self._bullet.step()
        return robot
