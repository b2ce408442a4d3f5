"""The one arm interface every policy, runner and recorder drives (after LeRobot's Robot and
polymetis): a backend behind a :class:`SafetyFilter`, a watchdog and an emergency stop.

The canonical action is an absolute joint-position target at the policy rate; the backend
interpolates at its own rate. ``send_action`` returns a :class:`Command` saying what was sent.
Use it as a context manager so ``disconnect`` always runs::

    with make_arm("pybullet") as arm:
        obs = arm.get_observation()
        cmd = arm.send_action(obs.q + 0.01)
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from robot_irl.control.backend import ArmBackend
from robot_irl.control.calibration import ArmCalibration
from robot_irl.control.clock import Clock, MonotonicClock, Rate
from robot_irl.control.errors import ArmStallError, ArmStateError, EmergencyStopError
from robot_irl.control.estop import EStop
from robot_irl.control.safety import SafetyConfig, SafetyFilter
from robot_irl.control.types import Capabilities, Command, Observation
from robot_irl.errors import InputError

log = logging.getLogger("robot_irl.control.arm")

NO_WORKSPACE = ("a physical arm moves only inside a workspace box: record one with `robot-irl arm check --arm ARM "
                "--calibration F --teach-workspace --write-calibration F` (or --workspace X0,X1,Y0,Y1,Z0,Z1 "
                "instead of teaching), then pass --calibration F (or --workspace) to the run")


class Arm:
    """A connected-on-demand, filtered arm.

    ``watchdog_thread``: poll the watchdog and e-stop from a background thread (default: when the
    clock is real); with a fake clock, tests call :meth:`poll` themselves after advancing it.
    ``physical``: a real arm, which refuses to move without a workspace box (from ``safety`` or
    the calibration file); it may connect without one, to be read or to have its box taught."""

    def __init__(self, backend: ArmBackend, safety: SafetyConfig | None = None,
                 calibration: ArmCalibration | None = None, clock: Clock | None = None,
                 estop: EStop | None = None, watchdog_thread: bool | None = None, physical: bool = False) -> None:
        self.backend = backend
        self.physical = physical
        self.safety = safety or SafetyConfig()
        self.calibration = calibration
        self.clock = clock or MonotonicClock()
        self.estop = estop or EStop()
        self._use_thread = getattr(self.clock, "real", False) if watchdog_thread is None else watchdog_thread
        self._lock = threading.RLock()
        self._filter: SafetyFilter | None = None
        self._caps: Capabilities | None = None
        self._offsets: np.ndarray | None = None
        self._last_obs: Observation | None = None
        self._teach = False
        self._stopped_by_estop = False
        self.watchdog_trips = 0
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        self._points: Callable[[np.ndarray], np.ndarray] | None = None
        box = calibration.workspace if calibration is not None and not self.safety.has_workspace else None
        if box is not None:
            self.safety = replace(self.safety, workspace_lo=tuple(box[0]), workspace_hi=tuple(box[1]))

    # --- lifecycle ---
    def connect(self) -> "Arm":
        """Open the backend, apply the calibration and start the filter from the measured joints."""
        with self._lock:
            if self._caps is not None:
                return self
            try:
                raw = self.backend.connect()
                cal = self.calibration or ArmCalibration.from_capabilities(raw, self.backend.default_home)
                cal.check_matches(raw)
                self._offsets = cal.joint_offsets.copy()
                lim = raw.limits + self._offsets[:, None]
                limits = np.stack([np.maximum(lim[:, 0], cal.limits[:, 0]), np.minimum(lim[:, 1], cal.limits[:, 1])], 1)
                vmax = np.minimum(raw.max_velocity, cal.max_velocity)
                self._caps = replace(raw, limits=limits, max_velocity=vmax)
                self._home = cal.home.copy()
                fk = None
                if self.safety.workspace_lo is not None:
                    if self.backend.forward_kinematics(self.backend.default_home) is None:
                        raise InputError("this backend has no forward kinematics", field="workspace_lo/hi",
                                         expected="no workspace box for this arm")
                    fk = self._box_points
                self._filter = SafetyFilter(self.safety, limits, self.clock, fk=fk, max_velocity=vmax)
                self._filter.reset(self._read().q)
            except BaseException:
                self.backend.disconnect()
                self._caps = None
                raise
        if self._use_thread:
            self._closing.clear()
            self._thread = threading.Thread(target=self._watch, name="arm-watchdog", daemon=True)
            self._thread.start()
        return self

    def disconnect(self) -> None:
        self._closing.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        self._thread = None
        with self._lock:
            try:
                if self._caps is not None:
                    self.backend.hold()
            except Exception as e:  # the link may be what failed; still release the backend
                log.warning("hold before disconnect failed: %s", e)
            finally:
                self._caps = None
                self.backend.disconnect()

    def __enter__(self) -> "Arm":
        return self.connect()

    def __exit__(self, *exc) -> None:
        self.disconnect()

    # --- state ---
    @property
    def capabilities(self) -> Capabilities:
        return self._require()[0]

    @property
    def home_pose(self) -> np.ndarray:
        self._require()
        return self._home.copy()

    @property
    def safety_filter(self) -> SafetyFilter:
        return self._require()[1]

    @property
    def teaching(self) -> bool:
        return self._teach

    def get_observation(self) -> Observation:
        """Read the arm (fresh, timestamped, calibrated); also runs the watchdog and e-stop check."""
        self.poll()
        with self._lock:
            self._require()
            return self._read()

    def render(self, camera) -> np.ndarray:
        """A frame of simulated scene camera ``camera`` (``sim.camera.SceneCamera``) showing the arm
        now; read-only, so it needs no filter. Raises :class:`ArmStateError` on an arm that has no
        simulated camera."""
        with self._lock:
            self._require()
            frame = self.backend.render(camera)
        if frame is None:
            raise ArmStateError(f"{type(self.backend).__name__} has no simulated camera to render")
        return frame

    # --- commands ---
    def send_action(self, target) -> Command:
        """Filter one absolute joint target and send it; returns what was requested and sent.
        Raises :class:`EmergencyStopError` while the e-stop is latched."""
        self.poll()
        with self._lock:
            _, filt = self._require()
            now = self.clock.now()
            requested = np.array(target, dtype=float, copy=True) if np.ndim(target) == 1 else np.full(filt.n_dof, np.nan)
            if self._teach:
                raise ArmStateError("teach mode is on: call teach(False) before sending targets")
            if self.physical and not self.safety.has_workspace:
                raise ArmStateError(NO_WORKSPACE)
            obs = self._last_obs if self._last_obs is not None else self._read()
            decision = filt.filter(target, obs)
            if decision.refused == "stall":
                self._settle(self.backend.hold())
                names = [self.capabilities.joint_names[j] for j in decision.stalled]
                raise ArmStallError(f"the arm does not follow its targets: {decision.detail} ({', '.join(names)}); "
                                    "holding. Free the arm (collision, clamp or held object?) before the next run",
                                    decision.stalled, decision.gap)
            self.backend.command(decision.sent - self._offsets)
            return Command(now, requested, decision.sent.copy(), decision.clamps, decision.refused)

    def hold(self) -> None:
        with self._lock:
            self._require()
            self._settle(self.backend.hold())

    def stop(self) -> None:
        with self._lock:
            self._require()
            self._settle(self.backend.stop())

    def watch_points(self, points: Callable[[np.ndarray], np.ndarray] | None) -> None:
        """Also keep ``points(q) -> [P, 3]`` (base frame, m; e.g. a run's keypoint frames by its own
        FK) inside the workspace box, beside the backend's end effector, until the next call (the
        next run's points replace them). The end effector and every other rule always apply."""
        with self._lock:
            self._points = points

    def teach(self, on: bool) -> None:
        """Freedrive on (targets are refused) or off (the arm holds where it was left)."""
        with self._lock:
            _, filt = self._require()
            self.backend.set_teach_mode(on)
            self._teach = on
            filt.reset(self._read().q)

    def home(self, timeout_s: float = 30.0, tolerance: float = 0.01, rate_hz: float = 50.0) -> Observation:
        """Stream targets toward the calibrated home pose through the filter (so the speed scale and
        caps apply) until every joint is within ``tolerance`` rad; raises on timeout."""
        caps = self.capabilities
        goal = np.clip(self.home_pose, caps.limits[:, 0] + self.safety.limit_margin,
                       caps.limits[:, 1] - self.safety.limit_margin)
        rate = Rate(rate_hz, self.clock)
        deadline = self.clock.now() + timeout_s
        while True:
            obs = self.get_observation()
            if np.max(np.abs(obs.q - goal)) <= tolerance:
                return obs
            if self.clock.now() > deadline:
                raise ArmStateError(f"home not reached within {timeout_s} s "
                                    f"(max joint error {np.max(np.abs(obs.q - goal)):.3f} rad)")
            self.send_action(goal)
            rate.wait()

    def trip_estop(self, reason: str = "requested") -> None:
        self.estop.trip(reason)
        self.poll()

    def reset_estop(self) -> None:
        """A person confirms it is safe: clear the latch; the arm stays stopped until targets come."""
        with self._lock:
            self.estop.reset()
            self._stopped_by_estop = False
            if self._filter is not None:
                self._filter.reset(self._read().q)

    def poll(self) -> None:
        """Act on the e-stop latch and the watchdog now. Raises while the e-stop is latched."""
        with self._lock:
            if self._caps is None:
                return
            if self.estop.tripped:
                if not self._stopped_by_estop:
                    log.error("EMERGENCY STOP (%s): stopping the arm", self.estop.reason)
                    self._stopped_by_estop = True
                    self.backend.stop()
                raise EmergencyStopError(f"emergency stop latched ({self.estop.reason}); call reset_estop()")
            filt = self._filter
            if filt is not None and filt.watchdog_expired():
                self.watchdog_trips += 1
                log.warning("watchdog: no fresh target for %.0f ms, %s", 1e3 * self.safety.watchdog_timeout,
                            self.safety.watchdog_action)
                self._settle((self.backend.hold if self.safety.watchdog_action == "hold" else self.backend.stop)())

    # --- internals ---
    def _watch(self) -> None:
        period = min(0.02, self.safety.watchdog_timeout / 4)
        while not self._closing.wait(period):
            try:
                self.poll()
            except EmergencyStopError:
                continue
            except Exception as e:  # the link died: the main thread will see it on its next call
                log.warning("watchdog poll failed: %s", e)

    def _read(self) -> Observation:
        obs = self.backend.read()
        q = obs.q + self._offsets
        self._last_obs = replace(obs, q=q)
        return self._last_obs

    def _settle(self, held_raw: np.ndarray | None) -> None:
        """After a hold/stop: the next step is capped from what the arm was told to hold (else
        from where it is measured)."""
        held = self._read().q if held_raw is None else np.asarray(held_raw, float) + self._offsets
        self._filter.reset(held)

    def _box_points(self, q: np.ndarray) -> np.ndarray:
        pts = [np.asarray(self.backend.forward_kinematics(q - self._offsets), float).reshape(-1, 3)]
        if self._points is not None:
            pts.append(np.asarray(self._points(q), float).reshape(-1, 3))
        return np.concatenate(pts, 0)

    def _require(self) -> tuple[Capabilities, SafetyFilter]:
        if self._caps is None or self._filter is None:
            raise ArmStateError("arm is not connected: call connect() or use it as a context manager")
        return self._caps, self._filter
