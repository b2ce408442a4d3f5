"""The safety filter: one backend-independent gate that every target passes before any arm.

The rules are pure functions of (target, reference, observation, time); :class:`SafetyFilter`
only remembers the last target it let through and when, which the step caps and the watchdog
need. It performs no I/O and reads time from an injected clock, so every rule is testable on a
fake clock and identical for a simulated and a physical arm.
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
            ("workspace_lo/hi", (self.workspace_lo is None) == (self.workspace_hi is None),
             "both set or both None"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise InputError("invalid safety setting", field=name, expected=expected)
        if self.workspace_lo is not None and not np.all(np.less(self.workspace_lo, self.workspace_hi)):
            raise InputError("empty workspace box", field="workspace_lo/hi", expected="lo < hi on every axis")


@dataclass(frozen=True)
class Decision:
    """The filter's verdict on one target: the target to send, what was changed, or why refused."""

    sent: np.ndarray
    clamps: tuple[Clamp, ...]
    refused: str | None


def _box_violation(p: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    return float(np.linalg.norm(np.maximum(lo - p, 0.0) + np.maximum(p - hi, 0.0)))


def clamp_target(target: np.ndarray, reference: np.ndarray, limits: np.ndarray, step_cap: np.ndarray,
                 max_delta: float, fk: FK | None = None, box: tuple[np.ndarray, np.ndarray] | None = None
                 ) -> tuple[np.ndarray, list[Clamp]]:
    """Clamp a finite ``target`` into ``limits``, then to within ``step_cap`` of ``reference``
    (``max_delta`` decides whether a step clamp is reported as ``delta`` or ``velocity``), then keep
    the end effector in ``box`` by shortening the step along the straight line from the reference.

    Clamping to the limits first and capping the step after keeps each command continuous; a
    reference outside the limits (an arm started there) is walked back in, never jumped."""
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
    if fk is not None and box is not None:
        lo, hi = box
        allowed = _box_violation(np.asarray(fk(reference)), lo, hi)
        if _box_violation(np.asarray(fk(out)), lo, hi) > allowed + 1e-9:
            a, b = 0.0, 1.0            # largest fraction of the step that stays (as far as) inside
            for _ in range(12):
                mid = 0.5 * (a + b)
                if _box_violation(np.asarray(fk(reference + mid * capped)), lo, hi) <= allowed + 1e-9:
                    a = mid
                else:
                    b = mid
            new = reference + a * capped
            clamps.append(Clamp("workspace", tuple(range(len(out))), float(np.max(np.abs(new - out)))))
            out = new
    return out, clamps


class SafetyFilter:
    """Joint limits with margins, workspace box, delta and velocity caps, NaN/inf refusal, stale
    observation rejection and the watchdog's deadline, for one arm.

    ``limits`` are the arm's hard limits ``[n, 2]``; targets are kept ``limit_margin`` inside.
    ``max_velocity`` may be per joint (the arm's own limits); the config's cap applies on top."""

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
        self.reference: np.ndarray | None = None
        self.last_target_t: float | None = None
        self.counts: Counter[str] = Counter()

    @property
    def n_dof(self) -> int:
        return len(self.limits)

    def reset(self, q: np.ndarray) -> None:
        """Start over from the measured ``q`` (after connect, hold, stop, watchdog or teach mode)."""
        self.reference = np.asarray(q, dtype=float).copy()
        self.last_target_t = None

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
        sent, clamps = clamp_target(t, self.reference, self.limits, step_cap, self.config.max_delta * s,
                                    self.fk, self.box)
        for c in clamps:
            self.counts[c.kind] += 1
            log.info("clamp %s on joints %s by %.4f rad", c.kind, list(c.joints), c.amount)
        self.reference = sent.copy()
        self.last_target_t = now
        return Decision(sent, tuple(clamps), None)

    def _refuse(self, reason: str, hold: np.ndarray, detail: str) -> Decision:
        self.counts[reason] += 1
        log.warning("refused target (%s): %s; holding", reason, detail)
        return Decision(hold, (), reason)
