"""Baselines in the same harness (same demos, dynamics, planner and metrics as the learner).

- ``default`` cost: ``fit_cost(..., "default")`` (plain Euclidean distance to the goal).
- Feature matching (Abbeel & Ng 2004, projection method): features are the per-row, per-coordinate
  squared distances to the goal, so a reward ``w . phi`` is a time-dependent weighted cost. Each
  iteration sets the cost weights to ``mu_bar - mu_E`` (scaled to unit max and clipped at 0, so the
  inner step stays a stable pull towards the goal), plans every demo with the same inner optimiser,
  and projects the feature expectations; the weights whose plans came closest to the expert's
  features are kept.
- Behaviour cloning: actions that track each demo are recovered through the dynamics (the same
  Gauss–Newton steps with the demo rows as targets), then a ridge-regressed linear policy maps
  goal-relative keypoints and the row index to the next action; it is rolled out through the model.
  ``fit_bc_mlp``: the same targets, an MLP predicting action chunks with early stopping (irl/bc.py).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from robot_irl.irl.bc import BCMLPConfig, train_bc_mlp
from robot_irl.irl.config import LearnerConfig
from robot_irl.irl.costs import make_cost
from robot_irl.irl.demos import DemoSet
from robot_irl.irl.inner import InnerConfig, optimise_actions
from robot_irl.irl.batch import prepare
from robot_irl.irl.learner import summarise, torch_threads
from robot_irl.irl.run import BCPolicy, TrainedRun
from robot_irl.models.base import KeypointDynamics


def _features(x: torch.Tensor, goal: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over demos of squared distance to the goal per row (1..H) and coordinate; ``x [B, T, D]``."""
    f = torch.where(mask[:, 1:], (x[:, 1:] - goal[:, None]).square(), torch.zeros_like(x[:, 1:]))
    return f.sum(0) / mask[:, 1:].sum(0).clamp(min=1)


def fit_feature_matching(demos: DemoSet, dynamics: KeypointDynamics, config: LearnerConfig | None = None, *,
                         eval_demos: DemoSet | None = None, run_dir: str | Path | None = None,
                         demo_info: dict[str, Any] | None = None) -> TrainedRun:
    cfg = config or LearnerConfig()
    with torch_threads(cfg.num_threads):
        b = prepare(demos, dynamics, cfg.rows, cfg)
        H, D, s = b.horizon, b.target.shape[-1], cfg.length_scale
        cost = make_cost("timedep", D, H, dtype=dynamics.dtype)
        mu_E = _features(b.target, b.goal, b.mask)

        def features_of(W: torch.Tensor) -> torch.Tensor:
            _, r = optimise_actions(dynamics, W, b.q0, b.goal, H, cfg.inner, scale=s, x0=b.x0)
            return _features(s * r.x.reshape(b.target.shape), b.goal, torch.ones_like(b.mask))

        with torch.no_grad():
            W = torch.ones(H, D, dtype=dynamics.dtype)
            mu = features_of(W)
            mu_bar = mu
            best = (torch.linalg.norm(mu - mu_E).item(), W)
            for _ in range(cfg.fm_iters):
                w = mu_bar - mu_E
                if w.abs().max() < 1e-12:
                    break
                W = (w / w.abs().max()).clamp(min=0.0)
                mu = features_of(W)
                dist = torch.linalg.norm(mu - mu_E).item()
                if dist < best[0]:
                    best = (dist, W)
                d = mu - mu_bar
                mu_bar = mu_bar + (d * (mu_E - mu_bar)).sum() / d.square().sum().clamp(min=1e-12) * d
            cost.theta.copy_(best[1])
        info = {"source": demos.source, "names": demos.names, **(demo_info or {})}
        tr = TrainedRun("feature_matching", dynamics, cfg, cost=cost, demo_info=info)
        tr.metrics = {**summarise(tr, demos, eval_demos), "feature_distance": best[0]}
        if run_dir is not None:
            tr.save(run_dir)
        return tr


def fit_bc(demos: DemoSet, dynamics: KeypointDynamics, config: LearnerConfig | None = None, *,
           eval_demos: DemoSet | None = None, run_dir: str | Path | None = None,
           demo_info: dict[str, Any] | None = None) -> TrainedRun:
    cfg = config or LearnerConfig()
    with torch_threads(cfg.num_threads), torch.no_grad():
        b = prepare(demos, dynamics, cfg.rows, cfg)
        H, D, s = b.horizon, b.target.shape[-1], cfg.length_scale
        # actions that track the demo rows (full Gauss-Newton steps, unit weights on observed entries)
        track = InnerConfig(method="gn", steps=max(cfg.inner.steps, 10), step_size=0.5, damping=cfg.inner.damping)
        W = b.mask[:, 1:].to(dynamics.dtype)
        u, r = _track(dynamics, W, b, track, s)
        pol = BCPolicy(D, H, dynamics.n_joints, dtype=dynamics.dtype)
        rel = s * r.x[:, :-1].reshape(len(u), H, D) - b.goal[:, None]
        F = torch.stack([pol.features(rel[:, t], t) for t in range(H)], 1).reshape(-1, D + H + 1)
        Y = u.reshape(-1, dynamics.n_joints)
        A = F.T @ F + cfg.bc_ridge * len(F) * torch.eye(F.shape[1], dtype=F.dtype)
        pol.A.copy_(torch.linalg.solve(A, F.T @ Y))
        info = {"source": demos.source, "names": demos.names, **(demo_info or {})}
        tr = TrainedRun("bc", dynamics, cfg, policy=pol, demo_info=info)
        tr.metrics = summarise(tr, demos, eval_demos)
        if run_dir is not None:
            tr.save(run_dir)
        return tr


def fit_bc_mlp(demos: DemoSet, dynamics: KeypointDynamics, config: LearnerConfig | None = None, *,
               bc: BCMLPConfig | None = None, eval_demos: DemoSet | None = None, run_dir: str | Path | None = None,
               demo_info: dict[str, Any] | None = None) -> TrainedRun:
    """Behaviour cloning with an MLP action-chunk policy (irl/bc.py) on the linear BC's targets."""
    cfg = config or LearnerConfig()
    with torch_threads(cfg.num_threads):
        with torch.no_grad():
            b = prepare(demos, dynamics, cfg.rows, cfg)
            H, D, s = b.horizon, b.target.shape[-1], cfg.length_scale
            track = InnerConfig(method="gn", steps=max(cfg.inner.steps, 10), step_size=0.5, damping=cfg.inner.damping)
            u, r = _track(dynamics, b.mask[:, 1:].to(dynamics.dtype), b, track, s)
            rel = s * r.x[:, :-1].reshape(len(u), H, D) - b.goal[:, None]
        pol, figures = train_bc_mlp(rel, u, bc or BCMLPConfig(seed=cfg.seed))
        info = {"source": demos.source, "names": demos.names, **(demo_info or {})}
        tr = TrainedRun("bc_mlp", dynamics, cfg, policy=pol, demo_info=info)
        tr.metrics = {**summarise(tr, demos, eval_demos), **figures}
        if run_dir is not None:
            tr.save(run_dir)
        return tr


def _track(dynamics: KeypointDynamics, W: torch.Tensor, b, cfg: InnerConfig, s: float):
    """Gauss–Newton tracking of per-row targets (each row pulled to its own demo row)."""
    B, H = b.q0.shape[0], b.horizon
    target = torch.nan_to_num(b.target[:, 1:])
    u = torch.zeros(B, H, dynamics.n_joints, dtype=dynamics.dtype)
    eye = torch.eye(dynamics.n_joints, dtype=dynamics.dtype)
    for _ in range(cfg.steps):
        r = dynamics.rollout(b.q0, u, b.x0, jacobian=True)
        x = s * r.x[:, 1:].reshape(B, H, -1)
        J = s * r.jac
        JT = J.transpose(-1, -2)
        G = JT @ (W[..., None] * J)
        lam = cfg.damping * (JT @ J).diagonal(dim1=-2, dim2=-1).mean(-1).clamp(min=1e-12)
        dq = -torch.linalg.solve(G + lam[..., None, None] * eye, JT @ (W * (x - target))[..., None]).squeeze(-1)
        u = u + torch.diff(dq, dim=1, prepend=torch.zeros_like(dq[:, :1]))
    return u, dynamics.rollout(b.q0, u, b.x0)
