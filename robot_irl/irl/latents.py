"""Per-state cost features of optimised trajectories, for the diagnostics' latent maps.

A learned cost is ``sum_t sum_d W[t, d] (x_td - g_d)^2``. What it "sees" in one state is, per
coordinate, the goal-relative offset ``x_td - g_d`` and the weighted pull ``W[t, d] (x_td - g_d)``
(half the cost gradient). Embedding those for many planned trajectories (the training demos' goals
and perturbed copies of them) shows whether the cost separates phases of the task (time) and
generalises smoothly over goals (perturbed goals should sit beside the goal they perturb).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from robot_irl.errors import InputError
from robot_irl.irl.demos import DemoSet
from robot_irl.irl.run import TrainedRun


def cost_latents(trained_run: TrainedRun, demos: DemoSet, n_goals: int = 8, *, goal_noise_m: float = 0.03,
                 seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Plan ``n_goals`` goals per demo (its own goal, then ``n_goals - 1`` copies shifted by one
    N(0, ``goal_noise_m``) draw per copy, shared by all keypoints) from the demo's start, and return
    one row per planned state after the start.

    Returns ``(X, labels)``:

    - ``X [N, 2*D]`` float64, ``N = len(demos) * n_goals * H`` (H = the run's horizon), ``D = K*3``:
      columns ``0..D-1`` the goal-relative keypoints ``x_t - g`` in cm, columns ``D..2D-1`` the
      weighted pull ``W[t, d] * (x_td - g_d)`` (cm x weight). All finite.
    - ``labels``: ``"demo"`` (str, the demo's name), ``"goal"`` (str, ``"<demo>/g<j>"``),
      ``"perturbed"`` (bool, False for the demo's own goal), ``"step"`` (float, row 1..H),
      ``"cost"`` (float, the state's cost term ``sum_d W[t, d] (x_td - g_d)^2``).

    Needs a run with a cost (MBIRL, default or feature matching); a BC run has none (InputError).
    """
    from robot_irl.irl.batch import prepare

    if trained_run.cost is None:
        raise InputError(f"a '{trained_run.method}' run has no cost to diagnose", file=trained_run.path,
                         field="method", expected="a run trained with a cost (weighted, timedep, rbf, ...)")
    if n_goals < 1:
        raise InputError(f"n_goals={n_goals}", field="n_goals", expected="at least 1")
    H = trained_run.horizon
    s = trained_run.config.length_scale
    b = prepare(demos, trained_run.dynamics, H + 1, trained_run.config)
    rng = np.random.default_rng(seed)
    B = len(demos)
    shift = rng.normal(0.0, goal_noise_m, size=(B, n_goals, 1, 3))
    shift[:, 0] = 0.0
    goal = b.goal_m[:, None] + torch.as_tensor(shift, dtype=b.goal_m.dtype)            # [B, G, K, 3]
    rep = lambda t: t[:, None].expand(B, n_goals, *t.shape[1:]).reshape(B * n_goals, *t.shape[1:])  # noqa: E731
    with torch.no_grad():
        _, r = trained_run.plan_tensors(rep(b.q0), goal.reshape(B * n_goals, *goal.shape[2:]), H, rep(b.x0))
        W = trained_run.cost.weights(H)                                                  # [H, D]
    rel = (s * (r.x[:, 1:] - goal.reshape(B * n_goals, 1, -1, 3))).reshape(B * n_goals, H, -1)
    pull = W * rel
    X = torch.cat([rel, pull], -1).reshape(-1, 2 * rel.shape[-1]).numpy()
    cost = (W * rel.square()).sum(-1).reshape(-1).numpy()
    names = np.array(demos.names, dtype=object)
    demo = np.repeat(names, n_goals * H).astype(str)
    gid = np.tile(np.repeat(np.arange(n_goals), H), B)
    labels: dict[str, Any] = {
        "demo": demo,
        "goal": np.array([f"{d}/g{j}" for d, j in zip(demo, gid)]),
        "perturbed": gid > 0,
        "step": np.tile(np.arange(1, H + 1, dtype=np.float64), B * n_goals),
        "cost": cost.astype(np.float64),
    }
    keep = np.isfinite(X).all(1)
    return X[keep], {k: v[keep] for k, v in labels.items()}
