"""Run a trained MBIRL cost (``robot_irl.irl``) on an arm, receding horizon, through the safety filter.

Every ``replan_every`` ticks the learned cost is optimised from the *measured* joints to the goal
keypoints (``robot_irl.irl.plan``); the plan's joint deltas are integrated from the joints it was
planned from into absolute targets, and each tick sends the next target through the arm (and so
its :class:`SafetyFilter`). Anchoring the targets at the plan's start, rather than adding each
delta to the latest measurement, keeps tracking lag from shortening the executed path.

Why the default is to execute a whole plan before re-planning: a time-dependent cost learned
from demos that move one axis first (the L-shaped reach) puts almost no weight on the other axis
in its first rows, so executing only the first action of every plan would never close that axis.
Executing the plan, then re-planning from where the arm really is, removes the residual."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from robot_irl.control.arm import Arm
from robot_irl.control.runner import RunRecord, run_mpc
from robot_irl.errors import InputError


@dataclass
class LearnedRunRecord(RunRecord):
    """A :class:`RunRecord` plus the goal, every plan's keypoint path and the final keypoint error."""

    goal_keypoints: np.ndarray | None = None
    planned_paths: list[np.ndarray] = field(default_factory=list)
    final_keypoints: np.ndarray | None = None
    final_err_m: float = float("nan")

    def summary(self) -> dict[str, float]:
        return {**super().summary(), "final_err_cm": self.final_err_m * 100.0, "plans": len(self.planned_paths)}


def joint_index(trained: Any, arm_joints: tuple[str, ...] | list[str]) -> np.ndarray:
    """Index into the arm's joints of each joint the learned model actuates (model order)."""
    model = list(trained.dynamics.joints)
    missing = [j for j in model if j not in arm_joints]
    if missing:
        raise InputError(f"the run's model actuates joints {missing} that the arm does not have",
                         field="run dynamics joints", expected=f"a subset of the arm's joints {list(arm_joints)}")
    return np.array([list(arm_joints).index(j) for j in model])


def keypoints_at(trained: Any, q_model: np.ndarray) -> np.ndarray:
    """Keypoints ``[K, 3]`` (m, base frame) the run's model predicts for model joints ``q_model``."""
    dyn = trained.dynamics
    with torch.no_grad():
        return dyn.keypoints(dyn.as_tensor(q_model).reshape(1, -1))[0].numpy()


def check_goal(trained: Any, goal_keypoints: Any) -> np.ndarray:
    g = np.asarray(goal_keypoints, dtype=float)
    K = trained.dynamics.n_keypoints
    if g.shape != (K, 3) or not np.all(np.isfinite(g)):
        raise InputError(f"goal keypoints have shape {g.shape}" + ("" if np.all(np.isfinite(g)) else " with NaN/inf"),
                         field="goal", expected=f"finite [{K}, 3] metres in the robot base frame")
    return g


class LearnedPlanner:
    """The ``plan(q, goal, horizon)`` callable :func:`run_mpc` expects, backed by a trained run."""

    def __init__(self, trained: Any, arm_joints, *, horizon: int | None, replan_every: int | None,
                 refresh: Any = None) -> None:
        self.trained = trained
        self.refresh = refresh
        self.idx = joint_index(trained, arm_joints)
        self.horizon = int(horizon or trained.horizon)
        self.replan_every = int(replan_every or self.horizon)
        if self.horizon < 1 or not 1 <= self.replan_every <= self.horizon:
            raise InputError(f"horizon={self.horizon}, replan_every={self.replan_every}", field="replan_every",
                             expected="1 <= replan_every <= horizon")
        self.paths: list[np.ndarray] = []
        self._targets: np.ndarray | None = None   # [H, n_arm] absolute targets of the current plan
        self._k = 0

    def __call__(self, q: np.ndarray, goal: np.ndarray, horizon: int) -> np.ndarray:
        from robot_irl.irl import plan

        if self._targets is None or self._k >= self.replan_every:
            u, x = plan(self.trained, q[self.idx], goal, self.horizon)
            steps = np.zeros((len(u), len(q)))
            steps[:, self.idx] = u
            self._targets = q + np.cumsum(steps, axis=0)
            self.paths.append(x)
            self._k = 0
            if self.refresh is not None:
                # A plan can take longer than the filter's stale_after: measure again so the
                # filter judges the target against a fresh state (the targets are absolute).
                self.refresh()
        deltas = self._targets[self._k:] - q
        self._k += 1
        return deltas


def plan_once(trained: Any, q_arm: np.ndarray, arm_joints, goal_keypoints: Any,
              horizon: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One plan from arm joints ``q_arm`` (for ``--dry-run``): (joint deltas [H, n_model], keypoints [H+1, K, 3])."""
    from robot_irl.irl import plan

    idx = joint_index(trained, arm_joints)
    return plan(trained, np.asarray(q_arm, float)[idx], check_goal(trained, goal_keypoints), horizon)


def run_learned(arm: Arm, trained: Any, goal_keypoints: Any, *, horizon: int | None = None,
                replan_every: int | None = None, steps: int | None = None, rate_hz: float = 10.0,
                tolerance_m: float = 0.002, settle_s: float = 0.3) -> LearnedRunRecord:
    """Drive a connected ``arm`` with trained run ``trained`` until every keypoint is within
    ``tolerance_m`` of ``goal_keypoints [K, 3]`` or ``steps`` ticks (default 4 horizons) pass,
    then hold (when reached), let it settle ``settle_s`` and measure the final keypoint error (max
    over keypoints, model FK of the measured joints)."""
    goal = check_goal(trained, goal_keypoints)
    planner = LearnedPlanner(trained, arm.capabilities.joint_names, horizon=horizon, replan_every=replan_every,
                             refresh=arm.get_observation)
    idx = planner.idx

    def err(q: np.ndarray) -> float:
        return float(np.max(np.linalg.norm(keypoints_at(trained, q[idx]) - goal, axis=-1)))

    base = run_mpc(arm, planner, goal, horizon=planner.horizon, rate_hz=rate_hz,
                   max_steps=int(steps or 4 * planner.horizon), done=lambda o: err(o.q) < tolerance_m)
    if base.reached:
        # Within tolerance while still moving: the last target sent can lie past the goal (or, from a
        # fresh plan's first row, beside it), so stop where the arm is rather than finish that segment.
        arm.hold()
    if settle_s > 0:
        arm.clock.sleep(settle_s)
    q = arm.get_observation().q
    rec = LearnedRunRecord(**{f: getattr(base, f) for f in RunRecord.__dataclass_fields__})
    rec.goal_keypoints, rec.planned_paths = goal, planner.paths
    rec.final_keypoints = keypoints_at(trained, q[idx])
    rec.final_err_m = float(np.max(np.linalg.norm(rec.final_keypoints - goal, axis=-1)))
    return rec
