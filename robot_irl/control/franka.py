"""Franka (FR3 / Panda) backend through franky-control (``pip install robot-irl[franka]``).

Each target becomes an asynchronous joint waypoint motion that preempts the previous one, so
franky's 1 kHz trajectory generator interpolates between policy steps within the robot's
velocity, acceleration and jerk limits (scaled by ``dynamics_factor``). franky and the robot
itself do not keep targets off the joint limits the way our filter does (franky-sim does not
refuse them at all), so the :class:`SafetyFilter` in front is what keeps the limits.

Tested against franky-sim (libfranka's protocol on 127.0.0.1, a simulated FR3)."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from robot_irl.control.backend import ArmBackend
from robot_irl.control.errors import ArmConnectionError, ArmError, ArmStateError, ArmTimeoutError
from robot_irl.control.types import Capabilities, Observation

# FR3 joint limits from Franka's datasheet (rad, rad/s); franky-sim simulates an FR3.
FR3_LIMITS = np.array([[-2.7437, 2.7437], [-1.7837, 1.7837], [-2.9007, 2.9007], [-3.0421, -0.1518],
                       [-2.8065, 2.8065], [0.5445, 4.5169], [-3.0159, 3.0159]])
FR3_MAX_VELOCITY = np.array([2.62, 2.62, 2.62, 2.62, 5.26, 4.18, 5.26])
FR3_HOME = np.array([0.0, -np.pi / 4, 0.0, -3 * np.pi / 4, 0.0, np.pi / 2, np.pi / 4])


@dataclass
class FrankaConfig:
    """``host``: the robot's FCI address (franky-sim: 127.0.0.1); ``dynamics_factor``: franky's
    relative velocity/acceleration/jerk scale in (0, 1]."""

    host: str = "127.0.0.1"
    dynamics_factor: float = 0.2


def _franky():
    try:
        import franky
    except ImportError as e:
        raise ArmConnectionError("the franka backend needs franky-control: pip install 'robot-irl[franka]'") from e
    return franky


class FrankaBackend(ArmBackend):
    default_home = FR3_HOME

    def __init__(self, config: FrankaConfig | None = None) -> None:
        self.config = config or FrankaConfig()
        self.robot = None
        self._teach_motion = None

    def _call(self, what: str, fn, *args, **kw):
        """Run one franky call, turning its exceptions into our typed errors."""
        fr = _franky()
        try:
            return fn(*args, **kw)
        except (fr.NetworkException, RuntimeError) as e:   # franky raises RuntimeError("Net Exception") too
            cls = ArmTimeoutError if "timeout" in str(e).lower() else ArmConnectionError
            raise cls(f"franka at {self.config.host}: {what} failed: {e}") from e
        except fr.Exception as e:
            raise ArmError(f"franka at {self.config.host}: {what} failed: {e}") from e

    def connect(self) -> Capabilities:
        fr = _franky()
        self.robot = self._call("connect", fr.Robot, self.config.host, realtime_config=fr.RealtimeConfig.Ignore)
        self.robot.relative_dynamics_factor = self.config.dynamics_factor
        return Capabilities(robot="fr3", joint_names=tuple(f"fr3_joint{i}" for i in range(1, 8)),
                            limits=FR3_LIMITS.copy(), max_velocity=FR3_MAX_VELOCITY.copy(),
                            native_rate_hz=1000.0, control_modes=("joint_position", "teach"))

    def disconnect(self) -> None:
        self.robot = None

    def _robot(self):
        if self.robot is None:
            raise ArmStateError("franka arm is not connected")
        return self.robot

    def read(self) -> Observation:
        state = self._call("read state", lambda: self._robot().state)
        return Observation(t=time.monotonic(), q=np.asarray(state.q, float), dq=np.asarray(state.dq, float),
                           ee_pos=np.asarray(state.O_T_EE.translation, float))

    def command(self, q: np.ndarray) -> None:
        fr = _franky()
        motion = fr.JointWaypointMotion([fr.JointWaypoint(np.asarray(q, float))])
        self._call("move", self._robot().move, motion, asynchronous=True)

    def hold(self) -> None:
        self.command(self.read().q)

    def stop(self) -> None:
        fr = _franky()
        self._call("stop", self._robot().move, fr.JointStopMotion())

    def set_teach_mode(self, on: bool) -> None:
        """Freedrive: the Franka compensates gravity itself, so a zero-torque motion (with franky's
        soft joint-limit repulsion) leaves the arm free to be guided by hand."""
        fr = _franky()
        robot = self._robot()
        if on:
            self.stop()
            self._teach_motion = fr.SimpleTorqueMotion(np.zeros(7), signal_timeout=None,
                                                       lower_joint_limits=FR3_LIMITS[:, 0],
                                                       upper_joint_limits=FR3_LIMITS[:, 1])
            self._call("teach on", robot.move, self._teach_motion, asynchronous=True)
        elif self._teach_motion is not None:
            self._call("teach off", robot.move, fr.TorqueStopMotion())
            self._teach_motion = None

    def forward_kinematics(self, q: np.ndarray) -> np.ndarray:
        fr = _franky()
        robot = self._robot()
        state = self._call("read state", lambda: robot.state)
        pose = self._call("forward kinematics", robot.model.pose, fr.Frame.EndEffector, np.asarray(q, float),
                          state.F_T_EE, state.EE_T_K)
        return np.asarray(pose.translation, float)
