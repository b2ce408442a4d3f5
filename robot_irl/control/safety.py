"""The safety filter: one backend-independent gate that every target passes before any arm.

Every target is bounded twice: by the *stream* (within one step cap of the last target sent, so
commands stay continuous) and by the *arm* (within a per-joint lead of the measured position, so a
blocked arm's target cannot wind up away from it and jump when the arm is freed; LeRobot clamps
every goal to the present position in the same spirit). When the two windows do not overlap, or the
commanded and measured positions stay apart for longer than ``stall_after``, the arm is stalled
(collision, clamp, held object): the filter says so and :class:`~robot_irl.control.arm.Arm` holds
and raises :class:`~robot_irl.control.errors.ArmStallError`.

The rules are pure functions of (target, reference, observation, time); :class:`SafetyFilter`
only remembers the last target it let through and when, and since when the arm lags it. It
performs no I/O and reads time from an injected clock, so every rule is testable on a fake clock
and identical for a simulated and a physical arm.
"""
from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from robot_irl.control.clock import Clock
from robot_irl.control.types import Clamp, Observation
from robot_irl.errors import InputError

log = logging.getLogger("robot_irl.control.safety")

FK = Callable[[np.ndarray], np.ndarray]


@dataclass
class SafetyConfig:
    """Limits of the filter. ``speed_scale`` (0, 1] scales both step caps (0.1 for a first run).

    - ``limit_margin``: rad kept clear of each joint limit.
    - ``max_delta``: rad per target, per joint, whatever the rate.
    - ``max_velocity``: rad/s per joint (also capped by the arm's own velocity limits).
    - ``workspace_lo/hi``: end-effector box in the base frame (m); None disables it.
    - ``stale_after``: an observation older than this (s) refuses the target (the arm holds).
    - ``watchdog_timeout``: T (s): no fresh target within T → ``watchdog_action`` (hold or stop).
    - ``nominal_period``: the step time assumed for the first target after a reset (s).
    - ``lead_s``: a target may lead the *measured* position of each joint by at most that joint's
      velocity limit × ``speed_scale`` × ``lead_s`` (a few control periods; 0.3 s = 3 at 10 Hz).
    - ``stall_after`` / ``stall_threshold``: a commanded-minus-measured gap above the threshold (rad;
      default 0.8 × each joint's lead) for longer than ``stall_after`` s, during which the joint
      moved less than a quarter of the threshold, is a stall. (A slow arm that lags but moves,
      like a Franka under franky's dynamics factor, is not stalled: the lead bound paces it.)
    """

    limit_margin: float = 0.05
    max_delta: float = 0.05
    max_velocity: float = 1.0
    speed_scale: float = 1.0
    workspace_lo: tuple[float, float, float] | None = None
    workspace_hi: tuple[float, float, float] | None = None
    stale_after: float = 0.2
    watchdog_timeout: float = 0.2
    watchdog_action: str = "hold"
    nominal_period: float = 0.1
    lead_s: float = 0.3
    stall_after: float = 0.5
    stall_threshold: float | None = None

    def __post_init__(self) -> None:
        checks = [
            ("speed_scale", 0 < self.speed_scale <= 1, "a number in (0, 1]"),
            ("limit_margin", self.limit_margin >= 0, "a non-negative number (rad)"),
            ("max_delta", self.max_delta > 0, "a positive number (rad per step)"),
            ("max_velocity", self.max_velocity > 0, "a positive number (rad/s)"),
            ("stale_after", self.stale_after > 0, "a positive number (s)"),
            ("watchdog_timeout", self.watchdog_timeout > 0, "a positive number (s)"),
            ("watchdog_action", self.watchdog_action in ("hold", "stop"), "'hold' or 'stop'"),
            ("nominal_period", self.nominal_period > 0, "a positive number (s)"),
            ("lead_s", self.lead_s > 0, "a positive number (s)"),
            ("stall_after", self.stall_after > 0, "a positive number (s)"),
            ("stall_threshold", self.stall_threshold is None or self.stall_threshold > 0,
             "a positive number (rad) or None"),
            ("workspace_lo/hi", (self.workspace_lo is None) == (self.workspace_hi is None),
             "both set or both None"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise InputError("invalid safety setting", field=name, expected=expected)
        if self.workspace_lo is not None and not np.all(np.less(self.workspace_lo, self.workspace_hi)):
            raise InputError("empty workspace box", field="workspace_lo/hi", expected="lo < hi on every axis")

    @property
    def has_workspace(self) -> bool:
        return self.workspace_lo is not None


@dataclass(frozen=True)
class Decision:
    """The filter's verdict on one target: the target to send, what was changed, or why refused.
    ``refused == "stall"``: the arm does not follow; ``stalled`` names the joints and ``sent`` is the
    measured position to hold."""

    sent: np.ndarray
    clamps: tuple[Clamp, ...]
    refused: str | None
    stalled: tuple[int, ...] = ()
    gap: float = 0.0
    detail: str = ""


def _box_violation(points: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    """How far (m, summed over points) the points ``[3]`` or ``[P, 3]`` lie outside the box."""
    p = np.asarray(points, float).reshape(-1, 3)
    return float(np.sum(np.linalg.norm(np.maximum(lo - p, 0.0) + np.maximum(p - hi, 0.0), axis=-1)))


_PATH_SAMPLES = (0.25, 0.5, 0.75, 1.0)   # where along a step the box is checked (joint space is not straight in x)


def _keep_in_box(reference: np.ndarray, step: np.ndarray, fk: FK, box: tuple[np.ndarray, np.ndarray]) -> float:
    """The largest fraction of ``step`` from ``reference`` whose whole path (sampled, then
    bisected) keeps every FK point as far inside ``box`` as it was at the reference."""
    lo, hi = box
    allowed = _box_violation(fk(reference), lo, hi) + 1e-9
    ok = 0.0
    for f in _PATH_SAMPLES:
        if _box_violation(fk(reference + f * step), lo, hi) > allowed:
            a, b = ok, f
            for _ in range(10):
                mid = 0.5 * (a + b)
                if _box_violation(fk(reference + mid * step), lo, hi) <= allowed:
                    a = mid
                else:
                    b = mid
            return a
        ok = f
    return 1.0


def clamp_target(target: np.ndarray, reference: np.ndarray, limits: np.ndarray, step_cap: np.ndarray,
                 max_delta: float, fk: FK | None = None, box: tuple[np.ndarray, np.ndarray] | None = None,
                 measured: np.ndarray | None = None, lead: np.ndarray | None = None
                 ) -> tuple[np.ndarray, list[Clamp]]:
    """Clamp a finite ``target`` into ``limits``, then into the window within ``step_cap`` of
    ``reference`` (the last target sent) and within ``lead`` of ``measured`` (the arm), then keep
    the FK points in ``box`` along the path from the reference by shortening the step.

    ``max_delta`` decides whether a step clamp is reported as ``delta`` or ``velocity``; a clamp by
    the arm's position is ``lead``. The caller checks that the window is not empty. Clamping to the
    limits first and capping the step after keeps each command continuous; a reference outside the
    limits (an arm started there) is walked back in, never jumped."""
    clamps: list[Clamp] = []
    out = np.clip(target, limits[:, 0], limits[:, 1])
    changed = np.flatnonzero(out != target)
    if changed.size:
        clamps.append(Clamp("joint_limit", tuple(int(i) for i in changed), float(np.max(np.abs(out - target)))))
    step = out - reference
    capped = np.clip(step, -step_cap, step_cap)
    changed = np.flatnonzero(capped != step)
    if changed.size:
        kind = "delta" if np.any(step_cap[changed] >= max_delta - 1e-12) else "velocity"
        clamps.append(Clamp(kind, tuple(int(i) for i in changed), float(np.max(np.abs(capped - step)))))
    out = np.where(capped == step, out, reference + capped)     # untouched joints pass bit-exact
    if measured is not None and lead is not None:
        near = np.clip(out, measured - lead, measured + lead)
        changed = np.flatnonzero(near != out)
        if changed.size:
            clamps.append(Clamp("lead", tuple(int(i) for i in changed), float(np.max(np.abs(near - out)))))
            out = np.where(near == out, out, near)
    if fk is not None and box is not None:
        frac = _keep_in_box(reference, out - reference, fk, box)
        if frac < 1.0:
            new = reference + frac * (out - reference)
            clamps.append(Clamp("workspace", tuple(range(len(out))), float(np.max(np.abs(new - out)))))
            out = new
    return out, clamps


class SafetyFilter:
    """Joint limits with margins, workspace box (every FK point), delta and velocity caps, the lead
    over the measured position, stall detection, NaN/inf refusal, stale observation rejection and
    the watchdog's deadline, for one arm.

    ``limits`` are the arm's hard limits ``[n, 2]``; targets are kept ``limit_margin`` inside.
    ``max_velocity`` may be per joint (the arm's own limits); the config's cap applies on top.
    ``fk(q)`` gives the points the box must contain (``[3]`` or ``[P, 3]``)."""

    def __init__(self, config: SafetyConfig, limits: np.ndarray, clock: Clock, fk: FK | None = None,
                 max_velocity: np.ndarray | None = None) -> None:
        self.config = config
        self.clock = clock
        self.fk = fk
        limits = np.asarray(limits, dtype=float)
        inner = limits + np.array([config.limit_margin, -config.limit_margin])
        if np.any(inner[:, 0] > inner[:, 1]):
            raise InputError("joint range narrower than twice the margin", field="limit_margin",
                             expected=f"below {float(np.min(np.diff(limits, axis=1))) / 2:.3f} rad")
        self.limits = inner
        vmax = np.full(len(limits), config.max_velocity)
        self.max_velocity = vmax if max_velocity is None else np.minimum(vmax, np.asarray(max_velocity, float))
        self.box = (None if config.workspace_lo is None else
                    (np.asarray(config.workspace_lo, float), np.asarray(config.workspace_hi, float)))
        self.lead = self.max_velocity * config.speed_scale * config.lead_s
        self.stall_threshold = (0.8 * self.lead if config.stall_threshold is None
                                else np.full(len(limits), float(config.stall_threshold)))
        self.reference: np.ndarray | None = None
        self.last_target_t: float | None = None
        self.lagging_since: float | None = None
        self.lag_anchor: np.ndarray | None = None   # measured q when the lag (or the last progress) began
        self.counts: Counter[str] = Counter()

    @property
    def n_dof(self) -> int:
        return len(self.limits)

    def reset(self, q: np.ndarray) -> None:
        """Start over from ``q``: the target the arm now holds (after a hold, stop or watchdog trip:
        what the backend held at, so the next step is capped from it), or the measured position
        (after connect, teach mode or an e-stop, when no target stream was running)."""
        self.reference = np.asarray(q, dtype=float).copy()
        self.last_target_t = None
        self.lagging_since = None
        self.lag_anchor = None

    def watchdog_expired(self) -> bool:
        """True when a target stream started and no fresh target arrived within T."""
        return (self.last_target_t is not None
                and self.clock.now() - self.last_target_t > self.config.watchdog_timeout)

    def filter(self, target, obs: Observation) -> Decision:
        """Judge one requested absolute target against the latest observation."""
        if self.reference is None:
            raise RuntimeError("SafetyFilter.reset(q) must be called before the first target")
        now = self.clock.now()
        hold = self.reference.copy()
        t = np.asarray(target, dtype=float) if np.ndim(target) == 1 else None
        if t is None or t.shape != (self.n_dof,):
            return self._refuse("shape", hold, f"target shape {np.shape(target)}, expected ({self.n_dof},)")
        if not np.all(np.isfinite(t)):
            return self._refuse("nonfinite", hold, f"target has NaN/inf at joints {np.flatnonzero(~np.isfinite(t)).tolist()}")
        if obs.q.shape != (self.n_dof,) or not np.all(np.isfinite(obs.q)):
            return self._refuse("bad_observation", hold, "observation has NaN/inf or the wrong shape")
        age = now - obs.t
        if age > self.config.stale_after:
            return self._refuse("stale_observation", hold, f"observation is {age * 1e3:.0f} ms old")
        dt = self.config.nominal_period if self.last_target_t is None else now - self.last_target_t
        dt = min(max(dt, 0.0), self.config.watchdog_timeout)
        s = self.config.speed_scale
        step_cap = np.minimum(self.config.max_delta * s, self.max_velocity * s * dt)
        stall = self._stall(obs.q, step_cap, now)
        if stall is not None:
            return stall
        sent, clamps = clamp_target(t, self.reference, self.limits, step_cap, self.config.max_delta * s,
                                    self.fk, self.box, measured=obs.q, lead=self.lead)
        for c in clamps:
            self.counts[c.kind] += 1
            log.info("clamp %s on joints %s by %.4f rad", c.kind, list(c.joints), c.amount)
        self.reference = sent.copy()
        self.last_target_t = now
        return Decision(sent, tuple(clamps), None)

    def _stall(self, q: np.ndarray, step_cap: np.ndarray, now: float) -> Decision | None:
        """A stall verdict (hold at the measured ``q``) when the stream's window around the last
        target and the arm's window around ``q`` are disjoint, or the gap between them stayed above
        the threshold for longer than ``stall_after``; else None (and the lag clock is updated)."""
        gap = np.abs(self.reference - q)
        apart = np.flatnonzero(gap > step_cap + self.lead + 1e-12)
        lagging = np.flatnonzero(gap > self.stall_threshold)
        if lagging.size == 0:
            self.lagging_since = self.lag_anchor = None
        elif (self.lagging_since is None
              or np.any(np.abs(q - self.lag_anchor)[lagging] > 0.25 * self.stall_threshold[lagging])):
            self.lagging_since, self.lag_anchor = now, np.asarray(q, float).copy()   # lagging, but moving
        too_long = self.lagging_since is not None and now - self.lagging_since > self.config.stall_after
        if apart.size == 0 and not too_long:
            return None
        joints = tuple(int(i) for i in (apart if apart.size else lagging))
        worst = float(np.max(gap[list(joints)]))
        detail = (f"joints {list(joints)} are {worst:.3f} rad from their target "
                  + ("beyond the lead bound" if apart.size else
                     f"for {now - self.lagging_since:.2f} s (> stall_after {self.config.stall_after} s)"))
        self.counts["stall"] += 1
        log.error("stall: %s; holding at the measured position", detail)
        held = np.asarray(q, float).copy()
        self.reset(held)
        return Decision(held, (), "stall", stalled=joints, gap=worst, detail=detail)

    def _refuse(self, reason: str, hold: np.ndarray, detail: str) -> Decision:
        self.counts[reason] += 1
        log.warning("refused target (%s): %s; holding", reason, detail)
        return Decision(hold, (), reason, detail=detail)
