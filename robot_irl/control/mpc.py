"""Run a trained MBIRL cost (``robot_irl.irl``) on an arm, receding horizon, through the safety filter.

The learned cost is optimised from the *measured* joints to the goal keypoints
(``robot_irl.irl.plan``); a :class:`PlanTracker` turns the plan into absolute per-tick targets
(integrated from the joints it was planned from, interpolated within the step cap), replans every
``replan_every`` rows, and servoes on the plan's end; each tick sends its target through the arm
(and so its :class:`SafetyFilter`). Anchoring the targets at the plan's start, rather than adding
each delta to the latest measurement, keeps tracking lag from shortening the executed path.

Why the default is to execute a whole plan before re-planning: a time-dependent cost learned
from demos that move one axis first (the L-shaped reach) puts almost no weight on the other axis
in its first rows, so executing only the first action of every plan would never close that axis.
Executing the plan, then re-planning from where the arm really is, removes the residual."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from robot_irl.control.arm import Arm
from robot_irl.control.runner import RunRecord, run_mpc, save_run_episode
from robot_irl.core.spec import ROBOT_BODY, KeypointDef, KeypointSpec
from robot_irl.errors import InputError


@dataclass
class LearnedRunRecord(RunRecord):
    """A :class:`RunRecord` plus the goal, every plan's keypoint path and the final keypoint error."""

    goal_keypoints: np.ndarray | None = None
    keypoints: np.ndarray | None = None          # [T, K, 3] model FK of the measured joints, per row
    planned_paths: list[np.ndarray] = field(default_factory=list)
    final_keypoints: np.ndarray | None = None
    final_err_m: float = float("nan")
    planned_final_err_m: float = float("nan")   # the first plan's predicted error (what --dry-run shows)
    succeeded: bool = False                     # final error within the success tolerance, no stall
    outcome: str = ""                           # reached | settled | time limit | stall
    tick_limit: int = 0
    replans: int = 0                            # fresh plans after the first settled short of the goal
    approach_from_m: float | None = None        # error when the final approach took over (None: it did not)

    def summary(self) -> dict[str, float]:
        return {**super().summary(), "final_err_cm": self.final_err_m * 100.0, "plans": len(self.planned_paths),
                "planned_final_err_cm": self.planned_final_err_m * 100.0, "succeeded": self.succeeded,
                "outcome": self.outcome, "tick_limit": self.tick_limit, "replans": self.replans,
                "approach_from_cm": None if self.approach_from_m is None else self.approach_from_m * 100.0}


def check_runnable(trained: Any) -> None:
    """Refuse a run whose dynamics cannot drive an arm: it must name its joints and keypoint frames
    (every kinematic model does; learned ones since they store them) and give keypoints from joints."""
    dyn = trained.dynamics
    missing = [name for name in ("joints", "frames") if getattr(dyn, name, None) is None
               and not (name == "frames" and image_keypoints(trained))]
    if missing:
        raise InputError(f"the run's {dyn.kind} dynamics model does not name its {' and '.join(missing)} "
                         "(a model file written before they were stored)", file=getattr(dyn, "path", None),
                         field="dynamics", expected="a model from `robot-irl dynamics collect` + "
                         "`robot-irl dynamics train` (they store joint names and keypoint frames), then retrain the cost")
    if not hasattr(dyn, "keypoints") or getattr(dyn, "fk", True) is False:
        raise InputError(f"the run's {dyn.kind} dynamics cannot tell keypoints from joint angles", field="dynamics",
                         expected="a kinematic model or a learned model with --structure fk")


def image_keypoints(trained: Any) -> bool:
    """Whether the run's keypoints are a learned detector's, seen in images (``observation`` on the
    dynamics) rather than points on the robot's links."""
    return getattr(trained.dynamics, "observation", None) is not None


def joint_index(trained: Any, arm_joints: tuple[str, ...] | list[str]) -> np.ndarray:
    """Index into the arm's joints of each joint the learned model actuates (model order)."""
    check_runnable(trained)
    model = list(trained.dynamics.joints)
    missing = [j for j in model if j not in arm_joints]
    if missing:
        raise InputError(f"the run's model actuates joints {missing} that the arm does not have",
                         field="run dynamics joints", expected=f"a subset of the arm's joints {list(arm_joints)}")
    return np.array([list(arm_joints).index(j) for j in model])


def keypoints_at(trained: Any, q_model: np.ndarray) -> np.ndarray:
    """Keypoints ``[K, 3]`` (m, base frame) the run's model predicts for model joints ``q_model``
    (``[..., n]`` gives ``[..., K, 3]``)."""
    dyn = trained.dynamics
    q = np.asarray(q_model, float)
    with torch.no_grad():
        x = dyn.keypoints(dyn.as_tensor(q).reshape(-1, q.shape[-1])).numpy()
    return x.reshape(*q.shape[:-1], *x.shape[-2:])


def run_keypoint_spec(trained: Any) -> KeypointSpec:
    """The run's keypoints as a spec (robot body, link + offset), so a run episode names them.
    Learned image keypoints sit on no known link: the spec names them on a body ``scene``, link
    ``image``."""
    if image_keypoints(trained):
        return KeypointSpec(tuple(KeypointDef(n, "scene", "image") for n in trained.dynamics.observation["names"]))
    return KeypointSpec(tuple(KeypointDef(f.name, ROBOT_BODY, f.link, tuple(float(v) for v in f.offset))
                              for f in trained.dynamics.frames))


def check_goal(trained: Any, goal_keypoints: Any) -> np.ndarray:
    g = np.asarray(goal_keypoints, dtype=float)
    K = trained.dynamics.n_keypoints
    if g.shape != (K, 3) or not np.all(np.isfinite(g)):
        raise InputError(f"goal keypoints have shape {g.shape}" + ("" if np.all(np.isfinite(g)) else " with NaN/inf"),
                         field="goal", expected=f"finite [{K}, 3] metres in the robot base frame")
    return g


def solve_reach(trained: Any, goal_keypoints: np.ndarray, q_model: np.ndarray, *, margin: float = 0.0,
                iters: int = 60, damping: float = 1e-4, hold: Any = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Model joints that put the keypoints as close to ``goal_keypoints [K, 3]`` as the run's model
    allows within its joint limits shrunk by ``margin`` rad (damped least squares from ``q_model``;
    any model that gives keypoints and their Jacobian from joints): ``(q [n], keypoints [K, 3],
    error m, max over keypoints)``. The model's kinematics only: a learned transition residual
    (how the arm tracked a step) is no part of where a joint state puts the keypoints.
    ``hold``: a :class:`robot_irl.control.tool.ToolHold` whose residuals (the tool as the demos ended
    it) are solved for beside the keypoints'."""
    dyn = trained.dynamics
    g = dyn.as_tensor(goal_keypoints)[None]
    q = dyn.as_tensor(q_model).reshape(1, -1)
    lo, hi = dyn.lower + margin, dyn.upper - margin
    q = torch.minimum(torch.maximum(q, lo), hi)
    eye = torch.eye(dyn.n_joints, dtype=dyn.dtype)
    with torch.no_grad():
        for _ in range(iters):
            x, J = dyn.keypoints(q, jacobian=True)
            r = (g - x).reshape(1, -1, 1)
            A, b = J.transpose(-1, -2) @ J, J.transpose(-1, -2) @ r
            if hold is not None:
                rh, Jh = (t.to(dyn.dtype) for t in hold.residual(q[0].numpy()))
                A, b = A + Jh.T @ Jh, b + (Jh.T @ rh)[:, None]
            dq = torch.linalg.solve(A + damping * eye, b).squeeze(-1)
            q = torch.minimum(torch.maximum(q + dq.clamp(-0.3, 0.3), lo), hi)
        x = dyn.keypoints(q)[0].numpy()
    return q[0].numpy(), x, float(np.max(np.linalg.norm(x - np.asarray(goal_keypoints, float), axis=-1)))


def reach_error(trained: Any, goal_keypoints: np.ndarray, q_model: np.ndarray) -> float:
    """The model's keypoints at ``q_model`` against the goal: root mean square over keypoints (m)."""
    d = keypoints_at(trained, q_model) - goal_keypoints
    return float(np.sqrt(np.mean(np.sum(d ** 2, axis=-1))))


def reach_objective(trained: Any, goal_keypoints: np.ndarray, q_model: np.ndarray, hold: Any = None) -> float:
    """What :func:`solve_reach` minimises at ``q_model`` (m²): the keypoints' squared errors, and
    the tool's with ``hold``."""
    d = keypoints_at(trained, q_model) - goal_keypoints
    total = float(np.sum(d ** 2))
    if hold is not None:
        total += float(torch.sum(hold.residual(q_model)[0] ** 2))
    return total


def nearest_reachable(trained: Any, goal_keypoints: np.ndarray, q_model: np.ndarray) -> tuple[np.ndarray, float]:
    """The keypoints ``[K, 3]`` closest to ``goal_keypoints`` that the run's model can put the arm in
    within its joint limits, and how far they are from the goal (m, max over keypoints).
    Why before a run: a goal out of reach (or given in centimetres) must be refused before the arm
    moves, not discovered as a 45 cm miss afterwards."""
    _, x, err = solve_reach(trained, goal_keypoints, q_model)
    return x, err


_STILL = 1e-4  # rad: a plan row that moves no joint further than this is no motion


class PlanTracker:
    """Per-tick absolute joint targets that carry out a plan and then close the loop on its end.

    Shared by :func:`run_learned` (an :class:`Arm`, through its filter) and the transfer eval (the
    gym env), so both execute a learned cost the same way:

    - Plan from the measured joints (``plan_fn(q_model) -> deltas [H, n_model]``); the plan's joint
      path is interpolated into ``m = ceil(max |row| / max_step)`` ticks per row (the same ``m`` for
      every row, so rows keep equal durations and no target asks for more than the step cap).
      After ``replan_every`` rows, plan again from the measured joints (receding horizon).
    - When the whole plan has been sent, *servo* on its final joint state ``q*`` with integral
      action: ``target = q* + b``, ``b += gain * (q* - q)`` once within ``band`` rad of it.
      Why: a position-controlled joint under load (gravity, a held object) settles short of its
      target (measured on Place-v0: 0.01-0.03 rad, 1-2 cm at the keypoints), so an open-loop
      plan, or a replan whose targets are anchored at the sagging measured joints, never gets
      there; the integral term learns that offset. The band keeps it from winding up while the
      arm is still travelling.
    - ``finish(q_end [n_arm]) -> q [n_arm] | None``: where a plan that runs to its end should end
      instead (None: where it does). The plan's ticks are bent toward it, the shift ramping in from
      nothing at the plan's start, so the arm arrives there without first stopping at the plan's
      own end.
    """

    def __init__(self, plan_fn: Any, n_arm: int, idx: np.ndarray, *, horizon: int, replan_every: int,
                 max_step: float, gain: float = 0.5, band: float = 0.05, finish: Any = None) -> None:
        self.plan_fn, self.n_arm, self.idx = plan_fn, n_arm, np.asarray(idx)
        self.finish = finish
        self.horizon, self.replan_every = int(horizon), int(replan_every)
        if self.horizon < 1 or not 1 <= self.replan_every <= self.horizon:
            raise InputError(f"horizon={self.horizon}, replan_every={self.replan_every}", field="replan_every",
                             expected="1 <= replan_every <= horizon")
        if not max_step > 0:
            raise InputError(f"max_step={max_step}", field="max_step", expected="a positive step cap (rad per tick)")
        self.max_step, self.gain, self.band = float(max_step), float(gain), float(band)
        self.paths: list[np.ndarray] = []
        self._ticks: np.ndarray | None = None   # [S, n_arm] targets of the current plan (no bias)
        self._k = 0
        self._rows_left = 0                      # plan rows still to come after this segment
        self._per_row = 1                        # ticks per plan row of the latest plan
        self._final: np.ndarray | None = None    # q* of the latest plan
        self._replan = False                     # plan again from the measured joints on the next tick
        self.bias = np.zeros(n_arm)

    @property
    def servoing(self) -> bool:
        return self._ticks is not None and self._k >= len(self._ticks) and self._rows_left == 0

    def request_replan(self) -> None:
        """Plan afresh from the measured joints on the next tick (the integral term starts over)."""
        self._replan = True

    def approach(self, q: np.ndarray, q_final: np.ndarray) -> None:
        """Leave the plan: go from measured joints ``q`` to ``q_final [n_arm]`` on a straight joint
        path within the step cap, then servo on it as on a plan's end (the integral term starts over)."""
        q, q_final = np.asarray(q, dtype=float), np.asarray(q_final, dtype=float)
        m = max(1, int(np.ceil(np.abs(q_final - q).max(initial=0.0) / self.max_step - 1e-9)))
        self._ticks = q + (np.arange(1, m + 1) / m)[:, None] * (q_final - q)
        self._k, self._rows_left, self._final, self._replan = 0, 0, q_final, False
        self.bias = np.zeros(self.n_arm)

    def start(self, q: np.ndarray) -> int:
        """Plan from the measured joints ``q`` now (instead of on the first tick) and return how
        many ticks the whole plan takes to send: what a run's time limit is made from."""
        self._plan(np.asarray(q, dtype=float))
        return len(self._ticks) + self._rows_left * self._per_row

    def _plan(self, q: np.ndarray) -> None:
        u, x = self.plan_fn(q[self.idx])
        steps = np.zeros((len(u), self.n_arm))
        steps[:, self.idx] = u
        rows = q + np.vstack([np.zeros(self.n_arm), np.cumsum(steps, axis=0)])
        m = max(1, int(np.ceil(np.abs(steps).max(initial=0.0) / self.max_step - 1e-9)))
        # rows after the plan has arrived (no motion left) are not waited out: servo at once
        moving = np.flatnonzero(np.abs(steps).max(axis=1) > _STILL)
        n_rows = int(moving[-1]) + 1 if len(moving) else 1
        use = min(self.replan_every, n_rows)
        f = np.arange(1, use * m + 1) / m
        i = np.minimum(np.floor(f).astype(int), use - 1)
        self._ticks = rows[i] + (f - i)[:, None] * (rows[i + 1] - rows[i])
        self._k = 0
        self._rows_left = n_rows - use
        self._per_row = m
        self._final = rows[-1]
        end = self.finish(rows[-1]) if self.finish is not None and self._rows_left == 0 else None
        if end is not None:
            n = len(self._ticks)
            self._ticks = self._ticks + (np.arange(1, n + 1) / n)[:, None] * (np.asarray(end, float) - rows[-1])
            self._final = np.asarray(end, float).copy()
        self.paths.append(x)

    def __call__(self, q: np.ndarray) -> np.ndarray:
        """The next absolute joint target ``[n_arm]`` from the measured joints ``q``."""
        q = np.asarray(q, dtype=float)
        if self._ticks is None or self._replan or (self._k >= len(self._ticks) and self._rows_left > 0):
            if self._replan:
                self._replan, self.bias = False, np.zeros(self.n_arm)
            self._plan(q)
        if self._k < len(self._ticks):
            self._k += 1
            return self._ticks[self._k - 1] + self.bias
        err = self._final - q
        if np.abs(err).max() < self.band:
            # bounded: a joint held at a limit (or by the filter's margin) must not wind it up
            self.bias = np.clip(self.bias + self.gain * err, -self.band, self.band)
        return self._final + self.bias


class LearnedPlanner:
    """The ``plan(q, goal, horizon)`` callable :func:`run_mpc` expects, backed by a trained run
    through a :class:`PlanTracker` (returns one row: the next target minus the measured joints)."""

    def __init__(self, trained: Any, arm_joints, *, horizon: int | None, replan_every: int | None,
                 max_step: float, refresh: Any = None, hold_facing: bool = True, land: bool = False,
                 hold: Any = None) -> None:
        from robot_irl.irl import plan

        self.trained = trained
        self.refresh = refresh
        self.hold = hold
        self.idx = joint_index(trained, arm_joints)
        self.horizon = int(horizon or trained.horizon)
        self.goal: np.ndarray | None = None
        self.tracker = PlanTracker(lambda qm: plan(self.trained, qm, self.goal, self.horizon, hold_facing=hold_facing),
                                   len(arm_joints),
                                   self.idx, horizon=self.horizon, replan_every=int(replan_every or self.horizon),
                                   max_step=max_step, finish=self._land if land else None)

    def _land(self, q_end: np.ndarray) -> np.ndarray | None:
        """Where a plan that ends at ``q_end [n_arm]`` should end instead: the joints near it that put
        the model's keypoints on the goal (with the tool as ``hold`` keeps it), when the plan ends
        within ``APPROACH_M`` of the goal and they do better by :func:`reach_objective`."""
        q_model = np.asarray(q_end, float)[self.idx]
        if reach_error(self.trained, self.goal, q_model) > APPROACH_M:
            return None
        q_goal = solve_reach(self.trained, self.goal, q_model, hold=self.hold)[0]
        if reach_objective(self.trained, self.goal, q_goal, self.hold) >= \
                reach_objective(self.trained, self.goal, q_model, self.hold) - PROGRESS_M ** 2:
            return None
        q = np.array(q_end, dtype=float)
        q[self.idx] = self._tilted(q_goal)
        return q

    def _tilted(self, q_goal: np.ndarray) -> np.ndarray:
        """``q_goal``, or where the goal asks a joint past the planning range with the tool held
        (the reach ends one within ``AT_LIMIT_RAD`` of its bound) and the hold knows its held point:
        the tool tilted so the held point lands where the reach on the arm's whole range puts it
        (:meth:`robot_irl.control.tool.ToolHold.tilt_to`). Why: a vertical tool one joint short sets
        the object down centimetres off (Place-v0, learned keypoints, dev seeds 0-2: 2 of the 11 goals
        whose expert pose lies past the filter's range placed before, 9 after; notes/keypoints.md)."""
        hold, dyn = self.hold, self.trained.dynamics
        if hold is None or hold.held_point is None or hold.axes is None:
            return q_goal
        lower, upper = dyn.lower.numpy().copy(), dyn.upper.numpy().copy()
        if not np.any((q_goal - lower < AT_LIMIT_RAD) | (upper - q_goal < AT_LIMIT_RAD)):
            return q_goal
        planning = dyn.lower, dyn.upper
        dyn.lower, dyn.upper = hold.model.lower.to(dyn.dtype), hold.model.upper.to(dyn.dtype)   # the arm's own range
        try:
            q_free = solve_reach(self.trained, self.goal, q_goal, hold=hold)[0]
        finally:
            dyn.lower, dyn.upper = planning
        return hold.tilt_to(q_goal, hold.held_at(q_free), lower, upper)

    @property
    def paths(self) -> list[np.ndarray]:
        return self.tracker.paths

    def __call__(self, q: np.ndarray, goal: np.ndarray, horizon: int) -> np.ndarray:
        self.goal = goal
        n_plans = len(self.tracker.paths)
        target = self.tracker(q)
        if self.refresh is not None and len(self.tracker.paths) > n_plans:
            # A plan can take longer than the filter's stale_after: measure again so the
            # filter judges the target against a fresh state (the targets are absolute).
            self.refresh()
        return (target - q)[None]


@contextmanager
def planning_within_filter(trained: Any, arm: Arm):
    """Plan (and solve for goals) within the joint range the arm's safety filter lets through — the
    run's model limits intersected with the filter's (the arm's limits less ``limit_margin``) — for
    the duration. Why: a plan that ends with a joint inside the filter's margin is clamped there,
    and the arm settles centimetres short of where the plan said it would be (measured on Place-v0:
    joint 4 held at the margin, 2.45 cm off)."""
    dyn = trained.dynamics
    idx = joint_index(trained, arm.capabilities.joint_names)
    inner = dyn.as_tensor(arm.safety_filter.limits[idx])
    lower, upper = dyn.lower, dyn.upper
    dyn.lower, dyn.upper = torch.maximum(lower, inner[:, 0]), torch.minimum(upper, inner[:, 1])
    try:
        yield
    finally:
        dyn.lower, dyn.upper = lower, upper


def plan_once(trained: Any, q_arm: np.ndarray, arm_joints, goal_keypoints: Any,
              horizon: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One plan from arm joints ``q_arm`` (for ``--dry-run``), as :func:`run_learned` plans it (facing
    held): (joint deltas [H, n_model], keypoints [H+1, K, 3])."""
    from robot_irl.irl import plan

    idx = joint_index(trained, arm_joints)
    return plan(trained, np.asarray(q_arm, float)[idx], check_goal(trained, goal_keypoints), horizon, hold_facing=True)


def tick_cap(arm: Arm, rate_hz: float) -> float:
    """Largest per-tick joint step the arm's filter lets through at ``rate_hz`` (rad)."""
    f = arm.safety_filter
    s = f.config.speed_scale
    return float(min(f.config.max_delta * s, np.min(f.max_velocity) * s / rate_hz))


#: how long the arm must have made no progress toward the goal, after the plan is done, to count as settled
SETTLE_S = 1.0
#: progress (m) that resets the settle clock
PROGRESS_M = 5e-4
#: fresh plans from where the arm settled short of the goal, while each gets it closer
MAX_REPLANS = 4
#: a run whose plans settle this close to the goal (m) closes the rest on the model's kinematics
APPROACH_M = 0.05
#: a reach that ends a joint this close to its bound (rad) is one the bound stopped
AT_LIMIT_RAD = 1e-3


def run_learned(arm: Arm, trained: Any, goal_keypoints: Any, *, horizon: int | None = None,
                replan_every: int | None = None, steps: int | None = None, rate_hz: float = 10.0,
                tolerance_m: float = 0.002, success_m: float = 0.02, settle_s: float = 0.3,
                camera: Any = None, hold_facing: bool = True, land: bool = False,
                hold_tool: Any = None) -> LearnedRunRecord:
    """Drive a connected ``arm`` with trained run ``trained`` to ``goal_keypoints [K, 3]`` and say how
    it ended (``rec.outcome``):

    - ``reached``: every keypoint within ``tolerance_m`` (the arm is then held where it is);
    - ``settled``: the plan is done and the arm made no progress for ``SETTLE_S`` s, and it is as close
      as the run's model gets within the filter's joint range (then no plan is tried again), or a fresh plan
      from where it stopped (receding horizon, up to ``MAX_REPLANS``) no longer gets it closer —
      a plan from a start unlike the demos' can end short of the goal, and the next one, from
      nearer, ends nearer — and, when the plans have settled within ``APPROACH_M`` of the goal, a
      final approach on the run's model (the joints that put its keypoints on the goal) no longer
      gets it closer either (``rec.approach_from_m``: the error it took over at);
    - ``time limit``: ``steps`` ticks passed (default: twice the plan's own length in ticks, plus 3 s
      to servo — from the plan, not a fixed count, so a long plan is not cut off);
    - ``stall``: the arm stopped following its targets (it holds; see the safety filter).

    Then it lets the arm settle ``settle_s`` and measures the final keypoint error (max over
    keypoints, the run's model FK of the measured joints); ``rec.succeeded`` is that error within
    ``success_m``. ``rec.planned_final_err_m`` is the first plan's own predicted error (the same
    figure ``--dry-run`` prints). ``camera``: a ``sim.camera.SceneCamera`` the arm renders once per
    tick (a simulated arm only), recorded in ``rec.frames``. Every plan stays within the joint range
    the filter lets through (:func:`planning_within_filter`). ``hold_facing`` (default): a link that
    carries only two keypoints keeps its roll about them as it started (``robot_irl/irl/facing.py``:
    the cost cannot see that roll, and plans that drifted in it turned the wrist marker away from
    the camera).

    ``land``: bend each plan that runs to its end onto the joints that put the model's keypoints on
    the goal (:func:`solve_reach` from the plan's end, within ``APPROACH_M``), so the arm arrives
    there in one motion. Why: the final approach above starts only once the arm has settled, and a
    gripper that lets go when the arm comes to rest (the demos' Place) has let go by then.
    ``hold_tool``: a :class:`robot_irl.control.tool.ToolHold` (the tool as the demos ended it) that
    every reach of the run keeps beside the keypoints — what lands a run on learned image keypoints,
    which see the tool's turn and height poorly (dev seeds: 52.5 -> 82.5 % success; notes/keypoints.md)."""
    with planning_within_filter(trained, arm):
        return _run_learned(arm, trained, goal_keypoints, horizon=horizon, replan_every=replan_every, steps=steps,
                            rate_hz=rate_hz, tolerance_m=tolerance_m, success_m=success_m, settle_s=settle_s,
                            camera=camera, hold_facing=hold_facing, land=land, hold_tool=hold_tool)


def _run_learned(arm: Arm, trained: Any, goal_keypoints: Any, *, horizon: int | None, replan_every: int | None,
                 steps: int | None, rate_hz: float, tolerance_m: float, success_m: float, settle_s: float,
                 camera: Any, hold_facing: bool, land: bool, hold_tool: Any) -> LearnedRunRecord:
    goal = check_goal(trained, goal_keypoints)
    planner = LearnedPlanner(trained, arm.capabilities.joint_names, horizon=horizon, replan_every=replan_every,
                             max_step=tick_cap(arm, rate_hz), refresh=arm.get_observation, hold_facing=hold_facing,
                             land=land, hold=hold_tool)
    idx = planner.idx
    # The workspace box (when the arm has one) holds every keypoint of the run, not only the flange;
    # learned image keypoints are not where the points are (they lie on a plane facing the camera).
    if not image_keypoints(trained):
        arm.watch_points(lambda q: keypoints_at(trained, np.asarray(q)[idx]))

    def err(q: np.ndarray) -> float:
        return float(np.max(np.linalg.norm(keypoints_at(trained, q[idx]) - goal, axis=-1)))

    planner.goal = goal
    plan_ticks = planner.tracker.start(arm.get_observation().q)
    limit = int(steps or 2 * plan_ticks + 3 * rate_hz)
    state = {"outcome": "time limit", "best": np.inf, "since": arm.clock.now(), "replans": 0,
             "at_plan": np.inf, "approach_m": None, "reach_m": None}

    def done(o) -> bool:
        e, now = err(o.q), arm.clock.now()
        if e < tolerance_m:
            state["outcome"] = "reached"
            return True
        if e < state["best"] - PROGRESS_M or not planner.tracker.servoing:
            state["since"] = now
        state["best"] = min(state["best"], e)
        if now - state["since"] < SETTLE_S:
            return False
        if state["reach_m"] is None:
            # As close as the model gets within the filter's joint range: no plan gets closer, so a
            # fresh one (each costs a plan's length and a settle) is needless. Seen on Place (dev
            # seed 0): goals whose expert pose had joint 4 past the filter's margin ended 0.94 cm off
            # after two replans and 17 s, where the expert took 4.5 s.
            state["reach_m"] = solve_reach(trained, goal, o.q[idx], hold=hold_tool)[2]
        if e <= state["reach_m"] + 2 * PROGRESS_M:
            state["outcome"] = "settled"
            return True
        if state["replans"] < MAX_REPLANS and e < state["at_plan"] - PROGRESS_M and state["approach_m"] is None:
            planner.tracker.request_replan()      # settled short: plan again from here
            state.update(replans=state["replans"] + 1, at_plan=e, since=now)
            return False
        if state["approach_m"] is None and e <= APPROACH_M:
            # The learned cost has shaped the motion, but from a start unlike the demos' its optimum can
            # sit a centimetre or two off the goal (a direction the cost weighs little); close it on
            # the run's model: the joints that put its keypoints on the goal, within the filter's margin.
            q_goal, _, e_goal = solve_reach(trained, goal, o.q[idx], hold=hold_tool)   # within the filter's range
            if e_goal < e - PROGRESS_M:
                q_arm = np.array(o.q, dtype=float)
                q_arm[idx] = q_goal
                planner.tracker.approach(o.q, q_arm)
                state.update(approach_m=e, since=now)
                return False
        state["outcome"] = "settled"
        return True

    base = run_mpc(arm, planner, goal, horizon=planner.horizon, rate_hz=rate_hz, max_steps=limit, done=done,
                   camera=None if camera is None else (lambda: arm.render(camera)))
    if base.reached and base.stopped is None and state["outcome"] == "reached":
        # Within tolerance while still moving: the last target sent can lie past the goal (or, from a
        # fresh plan's first row, beside it), so stop where the arm is rather than finish that segment.
        arm.hold()
    if settle_s > 0 and base.stopped is None:
        arm.clock.sleep(settle_s)
    q = arm.get_observation().q
    rec = LearnedRunRecord(**{f: getattr(base, f) for f in RunRecord.__dataclass_fields__})
    rec.reached = state["outcome"] == "reached" and base.stopped is None
    rec.goal_keypoints, rec.planned_paths = goal, planner.paths
    rec.keypoints = keypoints_at(trained, np.asarray(rec.q)[:, idx]) if len(rec) else np.zeros((0, len(goal), 3))
    rec.final_keypoints = keypoints_at(trained, q[idx])
    rec.final_err_m = float(np.max(np.linalg.norm(rec.final_keypoints - goal, axis=-1)))
    rec.planned_final_err_m = float(np.max(np.linalg.norm(planner.paths[0][-1] - goal, axis=-1)))
    rec.succeeded = rec.final_err_m <= success_m and base.stopped is None
    rec.outcome = "stall" if base.stopped else state["outcome"]
    rec.tick_limit = limit
    rec.replans, rec.approach_from_m = state["replans"], state["approach_m"]
    return rec


def save_learned_run(library, rec: LearnedRunRecord, trained: Any, *, robot: str, task: str, arm_name: str,
                     extra: dict[str, Any] | None = None, camera: Any = None, camera_name: str = "cam0"):
    """Save a learned run as a library episode with the demos' keypoint columns (``keypoints_3d``,
    ``goal_3d``, and with a camera ``keypoints_2d_<cam>`` / ``keypoints_visible_<cam>``), so
    ``robot-irl demos replay`` draws the run's keypoints and a run compares column by column with
    its demos. ``camera``: the ``SceneCamera`` the frames in ``rec.frames`` came from, stored as
    ``camera_name`` (``cam0``, as sim demos name theirs)."""
    from robot_irl.library import Column

    T, K = len(rec), trained.dynamics.n_keypoints
    names = tuple(run_keypoint_spec(trained).names)
    cols = {"keypoints_3d": (Column((K, 3), "float64", "m", names), rec.keypoints),
            "goal_3d": (Column((K, 3), "float64", "m", names), np.repeat(rec.goal_keypoints[None], T, 0))}
    cam = None
    if camera is not None:
        model = camera.model()
        uv = model.project(rec.keypoints)
        w, h = model.size
        visible = np.isfinite(uv).all(-1) & (uv[..., 0] >= 0) & (uv[..., 0] < w) & (uv[..., 1] >= 0) & (uv[..., 1] < h)
        cols[f"keypoints_2d_{camera_name}"] = (Column((K, 2), "float64", "px", names), uv)
        cols[f"keypoints_visible_{camera_name}"] = (Column((K,), "bool", None, names), visible)
        cam = (camera_name, model)
    return save_run_episode(library, rec, robot=robot, task=task, arm_name=arm_name, extra=extra, columns=cols,
                            camera=cam, keypoint_spec=run_keypoint_spec(trained))
