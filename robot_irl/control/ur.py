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
from robot_irl.control.types import Capabilities, Observation

log = logging.getLogger("robot_irl.control.ur")

UR_JOINTS = ("shoulder_pan", "shoulder_lift", "elbow", "wrist_1", "wrist_2", "wrist_3")
UR_LIMITS = np.array([[-2 * np.pi, 2 * np.pi]] * 6)
UR_MAX_VELOCITY = np.array([np.pi] * 6)       # UR5e/UR10e: 180 °/s on every joint
UR_HOME = np.array([0.0, -np.pi / 2, np.pi / 2, -np.pi / 2, -np.pi / 2, 0.0])


def _rtde_factories() -> tuple[Callable[[str, float], Any], Callable[[str, float], Any]]:
    try:
        import rtde_control
        import rtde_receive
    except ImportError as e:
        raise ArmConnectionError("the ur backend needs ur-rtde: pip install 'robot-irl[ur]'") from e
    return rtde_control.RTDEControlInterface, rtde_receive.RTDEReceiveInterface


@dataclass
class URConfig:
    """``host``: the controller's address; ``frequency``: servoJ rate (Hz); ``lookahead_time``
    (s, 0.03–0.2) and ``gain`` (100–2000): servoJ's smoothing; ``watchdog_hz``: the controller
    stops the arm if the stream is slower than this; ``sdk``: (control, receive) factories taking
    (host, frequency), ur-rtde's by default."""

    host: str = "127.0.0.1"
    frequency: float = 500.0
    lookahead_time: float = 0.1
    gain: float = 300.0
    watchdog_hz: float = 10.0
    sdk: tuple[Callable[[str, float], Any], Callable[[str, float], Any]] | None = field(default=None, repr=False)


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
        make_ctrl, make_recv = self.config.sdk or _rtde_factories()
        try:
            self.recv = make_recv(self.config.host, self.config.frequency)
            self.ctrl = make_ctrl(self.config.host, self.config.frequency)
        except RuntimeError as e:
            raise ArmConnectionError(f"ur at {self.config.host}: connect failed: {e}") from e
        q = self._q()
        self._seg = (q.copy(), q.copy(), time.monotonic(), 1.0 / self.config.frequency)
        self._last_cmd: float | None = None
        return Capabilities(robot="ur", joint_names=UR_JOINTS, limits=UR_LIMITS.copy(),
                            max_velocity=UR_MAX_VELOCITY.copy(), native_rate_hz=self.config.frequency,
                            control_modes=("joint_position", "teach"))

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

    def hold(self) -> None:
        q = self._q()
        with self._lock:
            self._seg = (q, q, time.monotonic(), 1.0 / self.config.frequency)
            self._last_cmd = None

    def stop(self) -> None:
        self._end_stream()

    def set_teach_mode(self, on: bool) -> None:
        if on:
            self._end_stream()
            self.ctrl.teachMode()
        else:
            self.ctrl.endTeachMode()
            self.hold()

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
