"""Franka (FR3 / Panda) backend through franky-control (``pip install robot-irl[franka]``).

Each target becomes an asynchronous joint waypoint motion that preempts the previous one, so
franky's 1 kHz trajectory generator interpolates between policy steps within the robot's
velocity, acceleration and jerk limits (scaled by ``dynamics_factor``). franky and the robot
itself do not keep targets off the joint limits the way our filter does (franky-sim does not
refuse them at all), so the :class:`SafetyFilter` in front is what keeps the limits.

Tested against franky-sim (libfranka's protocol on 127.0.0.1, a simulated FR3)."""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robot_irl.control.backend import ArmBackend
from robot_irl.control.errors import ArmConnectionError, ArmError, ArmStateError, ArmTimeoutError
from robot_irl.control.limits import model_limits
from robot_irl.control.types import Capabilities, Observation
from robot_irl.errors import InputError

FR3_LIMITS = model_limits("fr3").position      # franky-sim simulates an FR3
FR3_HOME = np.array([0.0, -np.pi / 4, 0.0, -3 * np.pi / 4, 0.0, np.pi / 2, np.pi / 4])
FRANKA_MODELS = ("fr3", "panda")
#: libfranka dropped the Panda (Franka Emika Robot) after 0.9.x; later versions talk to FR3 only
LAST_PANDA_LIBFRANKA = (0, 9)


@dataclass
class FrankaConfig:
    """``host``: the robot's FCI address (franky-sim: 127.0.0.1); ``model``: ``fr3`` or ``panda``
    (checked against the libfranka in use and the robot's own URDF); ``dynamics_factor``: franky's
    relative velocity/acceleration/jerk scale in (0, 1] — franky's Ruckig generator turns each
    10 Hz target into a 1 kHz trajectory within the model's velocity, acceleration and jerk limits
    times this factor, so the stream libfranka receives has no discontinuity."""

    host: str = "127.0.0.1"
    model: str = "fr3"
    dynamics_factor: float = 0.2

    def __post_init__(self) -> None:
        if self.model not in FRANKA_MODELS:
            raise InputError(f"model={self.model!r}", field="franka.model", expected=" or ".join(FRANKA_MODELS))
        if not 0 < self.dynamics_factor <= 1:
            raise InputError(f"dynamics_factor={self.dynamics_factor}", field="franka.dynamics_factor",
                             expected="a number in (0, 1]")


def libfranka_version() -> tuple[int, ...] | None:
    """The version of the libfranka bundled with the installed franky wheel (from the shared
    library's file name, e.g. ``libfranka-b351eea7.so.0.21.2``), None when it cannot be told."""
    try:
        import franky
    except ImportError:
        return None
    site = Path(franky.__file__).resolve().parents[1]
    for lib in sorted(site.glob("franky*.libs/libfranka*.so.*")) + sorted(Path(franky.__file__).parent.glob("libfranka*.so.*")):
        m = re.search(r"\.so\.(\d+(?:\.\d+)+)$", lib.name)
        if m:
            return tuple(int(v) for v in m.group(1).split("."))
    return None


def check_libfranka_supports(model: str, version: tuple[int, ...] | None) -> None:
    """Refuse a Panda through a libfranka that talks to FR3 only, naming the version."""
    if model == "panda" and version is not None and version[:2] > LAST_PANDA_LIBFRANKA:
        v = ".".join(map(str, version))
        raise ArmConnectionError(f"libfranka {v} (bundled with the installed franky-control) talks to FR3 only; "
                                 "a Panda needs franky built against libfranka 0.9.x or older")


def urdf_model(urdf: str) -> str | None:
    """Which Franka arm a robot's URDF describes (``fr3`` / ``panda``), None when neither."""
    found = [m for m in FRANKA_MODELS if re.search(rf"\b{m}_(joint|link)", urdf)]
    return found[0] if len(found) == 1 else None


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
        model = self.config.model
        check_libfranka_supports(model, libfranka_version())
        self.robot = self._call("connect", fr.Robot, self.config.host, realtime_config=fr.RealtimeConfig.Ignore)
        self.robot.relative_dynamics_factor = self.config.dynamics_factor
        reported = self._reported_model()
        if reported is not None and reported != model:
            self.robot = None
            raise InputError(f"the robot at {self.config.host} reports a {reported}", field="franka.model",
                             expected=f"--arm-opt model={reported} (configured: {model})")
        lim = model_limits(model)
        return Capabilities(robot=model, joint_names=tuple(f"{model}_joint{i}" for i in range(1, 8)),
                            limits=lim.position.copy(), max_velocity=lim.velocity.copy(),
                            native_rate_hz=1000.0, control_modes=("joint_position", "teach"))

    def _reported_model(self) -> str | None:
        """The arm the robot describes in its own URDF (libfranka >= 0.15 reads it from the robot)."""
        try:
            return urdf_model(str(self.robot.model_urdf))
        except (AttributeError, RuntimeError):
            return None

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

    def hold(self) -> np.ndarray:
        q = self.read().q
        self.command(q)
        return q

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
            lim = model_limits(self.config.model).position
            self._teach_motion = fr.SimpleTorqueMotion(np.zeros(7), signal_timeout=None,
                                                       lower_joint_limits=lim[:, 0], upper_joint_limits=lim[:, 1])
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
