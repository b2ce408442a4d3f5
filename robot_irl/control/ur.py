"""Universal Robots backend through ur-rtde (``pip install robot-irl[ur]``).

A streaming thread calls ``servoJ`` at 500 Hz (the RTDE control rate), interpolating linearly
from the previous target to the newest one over one policy period. ur-rtde's own watchdog
(``setWatchdog``) stops the arm if this thread ever stops kicking it. The SDK is reached through
``sdk`` (a pair of factories), so tests can put fakes at exactly this boundary."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robot_irl.control.backend import ArmBackend
from robot_irl.control.errors import ArmConnectionError, ArmStateError
from robot_irl.control.limits import model_limits
from robot_irl.control.types import Capabilities, Observation
from robot_irl.control.ur_kinematics import ur_flange_position
from robot_irl.errors import InputError

log = logging.getLogger("robot_irl.control.ur")

UR_JOINTS = ("shoulder_pan", "shoulder_lift", "elbow", "wrist_1", "wrist_2", "wrist_3")
UR_MODELS = ("ur3e", "ur5e", "ur10e", "ur16e", "ur3", "ur5", "ur10")
UR_HOME = np.array([0.0, -np.pi / 2, np.pi / 2, -np.pi / 2, -np.pi / 2, 0.0])


def _rtde_factories() -> tuple[Callable[[str, float], Any], Callable[[str, float], Any]]:
    try:
        import rtde_control
        import rtde_receive
    except ImportError as e:
        raise ArmConnectionError("the ur backend needs ur-rtde: pip install 'robot-irl[ur]'") from e
    return rtde_control.RTDEControlInterface, rtde_receive.RTDEReceiveInterface


def _rtde_dashboard(host: str) -> Any:
    """ur-rtde's DashboardClient, connected (it is what tells the robot's model)."""
    import dashboard_client

    client = dashboard_client.DashboardClient(host)
    client.connect()
    return client


def reported_model(dashboard: Any) -> str:
    """The model the controller reports: ``getRobotModel()`` ('UR5') plus the e-Series suffix when
    PolyScope is 5.x or later ('URSoftware 5.11.1.108318 (Nov 26 2021)')."""
    name = str(dashboard.getRobotModel()).strip().lower()
    version = str(dashboard.polyscopeVersion())
    digits = version.split("URSoftware")[-1].strip().split(".")[0]
    if not digits.isdigit():
        raise ArmConnectionError(f"cannot read the PolyScope version from {version!r}")
    return name + ("e" if int(digits) >= 5 and not name.endswith("e") else "")


@dataclass
class URConfig:
    """``host``: the controller's address; ``model``: the arm (``ur5e`` …, checked against what the
    controller reports); ``frequency``: servoJ rate (Hz); ``lookahead_time`` (s, 0.03–0.2: longer is
    smoother and lags more) and ``gain`` (100–2000: higher is stiffer): servoJ's smoothing, safe
    defaults 0.1 s / 300; ``watchdog_hz``: the controller stops the arm if the stream is slower than
    this; ``elbow_clear``: keep the elbow within ±180° (out of the arm's own links); ``sdk``:
    (control, receive[, dashboard]) factories — control/receive take (host, frequency), dashboard
    takes host; ur-rtde's by default. Without a dashboard the configured model is trusted."""

    host: str = "127.0.0.1"
    model: str = "ur5e"
    frequency: float = 500.0
    lookahead_time: float = 0.1
    gain: float = 300.0
    watchdog_hz: float = 10.0
    elbow_clear: bool = True
    sdk: tuple[Callable[..., Any], ...] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        checks = [("model", self.model in UR_MODELS, f"one of {', '.join(UR_MODELS)}"),
                  ("lookahead_time", 0.03 <= self.lookahead_time <= 0.2, "0.03 to 0.2 s (servoJ's range)"),
                  ("gain", 100 <= self.gain <= 2000, "100 to 2000 (servoJ's range)"),
                  ("frequency", 0 < self.frequency <= 500, "0 to 500 Hz (RTDE's rate)"),
                  ("watchdog_hz", self.watchdog_hz > 0, "a positive rate (Hz)")]
        for name, ok, expected in checks:
            if not ok:
                raise InputError(f"{name}={getattr(self, name)!r}", field=f"ur.{name}", expected=expected)


class URBackend(ArmBackend):
    default_home = UR_HOME

    def __init__(self, config: URConfig | None = None) -> None:
        self.config = config or URConfig()
        self.ctrl = self.recv = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._running = threading.Event()
        self._error: BaseException | None = None

    def connect(self) -> Capabilities:
        sdk = self.config.sdk or (*_rtde_factories(), _rtde_dashboard)
        make_ctrl, make_recv = sdk[0], sdk[1]
        self._check_model(sdk[2] if len(sdk) > 2 else None)
        try:
            self.recv = make_recv(self.config.host, self.config.frequency)
            self.ctrl = make_ctrl(self.config.host, self.config.frequency)
        except RuntimeError as e:
            raise ArmConnectionError(f"ur at {self.config.host}: connect failed: {e}") from e
        q = self._q()
        self._seg = (q.copy(), q.copy(), time.monotonic(), 1.0 / self.config.frequency)
        self._last_cmd: float | None = None
        lim = model_limits(self.config.model)
        return Capabilities(robot=self.config.model, joint_names=UR_JOINTS,
                            limits=lim.soft_position(keep_out_of_self=self.config.elbow_clear),
                            max_velocity=lim.velocity.copy(), native_rate_hz=self.config.frequency,
                            control_modes=("joint_position", "teach"))

    def _check_model(self, make_dashboard: Callable[[str], Any] | None) -> None:
        """Refuse to drive an arm of another model than configured (its limits would be wrong)."""
        if make_dashboard is None:
            log.info("ur at %s: no dashboard; trusting the configured model %s", self.config.host, self.config.model)
            return
        try:
            dash = make_dashboard(self.config.host)
            reported = reported_model(dash)
        except (RuntimeError, OSError, ImportError) as e:
            log.warning("ur at %s: the dashboard did not tell the model (%s); trusting the configured %s",
                        self.config.host, e, self.config.model)
            return
        if reported != self.config.model:
            raise InputError(f"the controller at {self.config.host} reports a {reported}", field="ur.model",
                             expected=f"--arm-opt model={reported} (configured: {self.config.model})")

    def disconnect(self) -> None:
        self._end_stream()
        for sdk in (self.ctrl, self.recv):
            if sdk is not None:
                try:
                    sdk.disconnect()
                except RuntimeError as e:
                    log.warning("ur disconnect: %s", e)
        self.ctrl = self.recv = None

    def _q(self) -> np.ndarray:
        if self.recv is None:
            raise ArmStateError("ur arm is not connected")
        if not self.recv.isConnected():
            raise ArmConnectionError(f"ur at {self.config.host}: RTDE receive connection lost")
        return np.asarray(self.recv.getActualQ(), float)

    def read(self) -> Observation:
        self._raise_stream_error()
        q = self._q()
        return Observation(t=time.monotonic(), q=q, dq=np.asarray(self.recv.getActualQd(), float),
                           ee_pos=np.asarray(self.recv.getActualTCPPose()[:3], float))

    def command(self, q: np.ndarray) -> None:
        self._raise_stream_error()
        now = time.monotonic()
        with self._lock:
            period = 0.1 if self._last_cmd is None else now - self._last_cmd
            self._seg = (self._interp(now), np.asarray(q, float).copy(), now, float(np.clip(period, 2e-3, 0.25)))
            self._last_cmd = now
        if self._thread is None:
            self._start_stream()

    def hold(self) -> np.ndarray:
        q = self._q()
        with self._lock:
            self._seg = (q, q, time.monotonic(), 1.0 / self.config.frequency)
            self._last_cmd = None
        return q.copy()

    def stop(self) -> None:
        self._end_stream()

    def set_teach_mode(self, on: bool) -> None:
        if on:
            self._end_stream()
            self.ctrl.teachMode()
        else:
            self.ctrl.endTeachMode()
            self.hold()

    def forward_kinematics(self, q: np.ndarray) -> np.ndarray:
        """Flange position by the model's DH parameters (no controller round trip per tick)."""
        return ur_flange_position(self.config.model, q)

    # --- the 500 Hz stream ---
    def _interp(self, t: float) -> np.ndarray:
        a, b, t0, d = self._seg
        return a + min(1.0, max(0.0, (t - t0) / d)) * (b - a)

    def _start_stream(self) -> None:
        self.ctrl.setWatchdog(self.config.watchdog_hz)
        self._running.set()
        self._thread = threading.Thread(target=self._stream, name="ur-servoj", daemon=True)
        self._thread.start()

    def _end_stream(self) -> None:
        if self._thread is not None:
            self._running.clear()
            self._thread.join(timeout=1.0)
            self._thread = None
            self.ctrl.servoStop()

    def _stream(self) -> None:
        dt = 1.0 / self.config.frequency
        try:
            while self._running.is_set():
                t_start = self.ctrl.initPeriod()
                with self._lock:
                    q = self._interp(time.monotonic())
                self.ctrl.servoJ(q.tolist(), 0.0, 0.0, dt, self.config.lookahead_time, self.config.gain)
                self.ctrl.kickWatchdog()
                self.ctrl.waitPeriod(t_start)
        except Exception as e:    # surfaces on the caller's next read/command
            self._error = e
            self._running.clear()

    def _raise_stream_error(self) -> None:
        if self._error is not None:
            e, self._error = self._error, None
            self._thread = None
            raise ArmConnectionError(f"ur at {self.config.host}: servoJ stream failed: {e}") from e
