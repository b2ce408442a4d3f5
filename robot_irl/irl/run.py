"""A trained run: dynamics + (cost and inner optimiser | BC policy), plannable and reopenable.

``TrainedRun.plan`` is the one way every stage turns a trained run into motion: from a start joint
state and goal keypoints it returns joint-delta actions and the keypoint trajectory the dynamics
predicts for them. ``load_run(path)`` rebuilds a run from its folder (config.json + weights).
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from robot_irl.core.io import atomic_write_bytes
from robot_irl.errors import InputError, UnknownNameError
from robot_irl.irl.config import LearnerConfig
from robot_irl.irl.batch import prepare
from robot_irl.irl.costs import Cost, cost_from_config
from robot_irl.irl.inner import optimise_actions
from robot_irl.irl.metrics import trajectory_metrics
from robot_irl.models.registry import dynamics_from_config
from robot_irl.models.base import KeypointDynamics
from robot_irl.runs import RunDir

METHODS = ("mbirl", "feature_matching", "bc", "bc_mlp")


class BCPolicy(torch.nn.Module):
    """Behaviour cloning: a ridge-regressed linear policy ``u_t = A [x_t - g; onehot(t); 1]``
    (goal-relative keypoints in cost units, the row index), fitted on actions that track the demos."""

    def __init__(self, dim: int, horizon: int, n_joints: int, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.dim, self.horizon, self.n_joints = dim, horizon, n_joints
        self.A = torch.nn.Parameter(torch.zeros(dim + horizon + 1, n_joints, dtype=dtype), requires_grad=False)

    def features(self, rel: torch.Tensor, t: int) -> torch.Tensor:
        onehot = torch.zeros(rel.shape[0], self.horizon + 1, dtype=rel.dtype)
        onehot[:, min(t, self.horizon - 1)] = 1.0
        onehot[:, -1] = 1.0
        return torch.cat([rel, onehot], -1)

    def to_config(self) -> dict[str, Any]:
        return {"type": "bc_linear", "dim": self.dim, "horizon": self.horizon, "n_joints": self.n_joints}


@dataclass
class TrainedRun:
    method: str
    dynamics: KeypointDynamics
    config: LearnerConfig
    cost: Cost | None = None
    policy: Any = None                # BCPolicy or irl.bc.BCMLPPolicy
    history: list[float] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    demo_info: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def horizon(self) -> int:
        return (self.cost.horizon if self.cost is not None else self.policy.horizon)  # type: ignore[union-attr]

    def plan_tensors(self, q0: torch.Tensor, goal: torch.Tensor, horizon: int | None = None,
                     x0: torch.Tensor | None = None, *, hold_facing: bool = False):
        """Batched planning on tensors: ``q0 [B, n]``, ``goal [B, K, 3]`` metres -> (u, Rollout).

        ``hold_facing``: a cost's plan also keeps the roll of every link that carries only two
        keypoints (``irl/facing.py``; kinematic dynamics only, otherwise ignored). What an arm
        runner asks for: learning and evaluation on demos plan without it."""
        H = horizon or self.horizon
        s = self.config.length_scale
        g = s * goal.reshape(goal.shape[0], -1)
        dyn = self.dynamics
        if self.cost is not None:
            with torch.no_grad():
                W = self.cost.weights(H)
            aug = self._facing() if hold_facing else None
            if aug is None:
                return optimise_actions(dyn, W, q0, g, H, self.config.inner, scale=s, x0=x0)
            from robot_irl.irl.facing import roll_rows

            model, pairs = aug
            model.lower, model.upper = dyn.lower, dyn.upper   # the runner may narrow the run's limits
            with torch.no_grad():
                start = model.keypoints(q0)
            u, _ = optimise_actions(model, W, q0, g, H, self.config.inner, scale=s,
                                    extra=roll_rows(start, pairs, dyn.n_keypoints, W, s))
            return u, dyn.rollout(q0, u, x0)
        pol = self.policy
        if hasattr(pol, "plan"):  # a policy that rolls itself out (irl.bc.BCMLPPolicy: action chunks)
            return pol.plan(dyn, q0, x0, g, H, s)
        with torch.no_grad():
            x = dyn.start_keypoints(q0, x0)
            q, us = q0, []
            for t in range(H):
                u = pol.features(s * x.reshape(x.shape[0], -1) - g, t) @ pol.A
                r = dyn.rollout(q, u[:, None], x)
                q, x = r.q[:, -1], r.x[:, -1]
                us.append(u)
            u = torch.stack(us, 1)
            return u, dyn.rollout(q0, u, x0)

    def _facing(self):
        """(The kinematic model with the virtual facing keypoints, their pairs), built once; None
        where there is nothing to hold (``irl/facing.py``)."""
        if not hasattr(self, "_facing_model"):
            from robot_irl.irl.facing import facing_dynamics

            self._facing_model = facing_dynamics(self.dynamics)
        return self._facing_model

    def plan(self, q0: Any, goal_keypoints: Any, horizon: int | None = None, x0: Any = None, *,
             hold_facing: bool = False):
        """Actions ``[H, n]`` and keypoints ``[H+1, K, 3]`` (metres) for one start/goal, or batched
        ``[B, ...]`` when ``q0`` is ``[B, n]``; ``hold_facing`` as in :meth:`plan_tensors`."""
        dyn = self.dynamics
        q = dyn.as_tensor(q0)
        single = q.ndim == 1
        q = q.reshape(-1, dyn.n_joints)
        g = dyn.as_tensor(goal_keypoints).reshape(q.shape[0], dyn.n_keypoints, 3)
        xs = None if x0 is None else dyn.as_tensor(x0).reshape(q.shape[0], dyn.n_keypoints, 3)
        u, r = self.plan_tensors(q, g, horizon, xs, hold_facing=hold_facing)
        u, x = u.detach().numpy(), r.x.detach().numpy()
        return (u[0], x[0]) if single else (u, x)

    def evaluate(self, demos) -> dict[str, Any]:
        """Plan every demo from its start to its goal and compare with it (see metrics.py)."""

        b = prepare(demos, self.dynamics, self.horizon + 1, self.config)
        with torch.no_grad():
            _, r = self.plan_tensors(b.q0, b.goal_m, self.horizon, b.x0)
        return trajectory_metrics(r.x.numpy(), b.demo_m.numpy())

    # --- persistence -----------------------------------------------------------------------
    def to_config(self) -> dict[str, Any]:
        return {"method": self.method, "dynamics": self.dynamics.to_config(), "learner": self.config.to_dict(),
                "cost": self.cost.to_config() if self.cost is not None else None,
                "policy": self.policy.to_config() if self.policy is not None else None,
                "demos": self.demo_info}

    def save(self, path: str | Path) -> RunDir:
        run = RunDir.create(path, self.to_config(), kind="irl_train")
        module = self.cost if self.cost is not None else self.policy
        buf = io.BytesIO()
        torch.save({"state": module.state_dict(), "history": self.history}, buf)  # type: ignore[union-attr]
        atomic_write_bytes(run.path / "weights.pt", buf.getvalue())
        if self.metrics:
            run.update_metrics(**self.metrics)
        self.path = run.path
        return run


def load_run(path: str | Path) -> TrainedRun:
    """Reopen a trained run folder (what ``robot-irl eval`` and the arm runner use).

    Raises :class:`robot_irl.runs.IncompleteRunError` (an InputError) for a folder whose training did
    not finish."""
    run = RunDir(path)
    run.require_finished()
    cfg = run.config()
    method = cfg.get("method")
    if method not in METHODS:
        raise UnknownNameError("run method", str(method), METHODS, file=run.path / "config.json")
    wfile = run.path / "weights.pt"
    if not wfile.is_file():
        raise InputError("missing weights.pt", file=wfile, expected="a run folder written by robot-irl train")
    learner = LearnerConfig.from_dict(cfg.get("learner", {}))
    dynamics = dynamics_from_config(cfg["dynamics"], base=run.path)
    blob = torch.load(wfile, weights_only=True)
    tr = TrainedRun(method, dynamics, learner, history=list(blob.get("history", [])), metrics=run.metrics(),
                    demo_info=cfg.get("demos", {}), path=run.path)
    if cfg.get("cost"):
        tr.cost = cost_from_config(cfg["cost"], dtype=dynamics.dtype)
        tr.cost.load_state_dict(blob["state"])
    else:
        p = cfg["policy"]
        if p.get("type") == "bc_mlp":
            from robot_irl.irl.bc import bc_mlp_from_config

            tr.policy = bc_mlp_from_config(p, dynamics.dtype)
        else:
            tr.policy = BCPolicy(p["dim"], p["horizon"], p["n_joints"], dtype=dynamics.dtype)
        tr.policy.load_state_dict(blob["state"])
    return tr


def plan(trained: TrainedRun, q0: Any, goal_keypoints: Any, horizon: int | None = None, x0: Any = None, *,
         hold_facing: bool = False):
    """Module-level form of :meth:`TrainedRun.plan` -> (actions, keypoint trajectory), numpy."""
    return trained.plan(q0, goal_keypoints, horizon, x0, hold_facing=hold_facing)
