"""The inner loop: gradient-based optimisation of the action sequence under a cost, unrolled.

Actions start at zero and take ``steps`` updates; every update is a differentiable tensor expression
of the previous one, so the outer loop backpropagates through all of them (``create_graph``).

Two update rules:

- ``gn`` (default): a Gauss–Newton-preconditioned gradient step in the metric of the joint
  trajectory. For every row t, the cost gradient with respect to that row's joint state,
  ``J_t^T * 2 W_t (x_t - g)``, is preconditioned by ``(J_t^T J_t + lambda I)^-1`` — the Gauss–Newton
  matrix of the *unweighted* keypoint distance, independent of the learned weights — and the joint
  trajectory moves by ``-step_size`` times it (the action deltas follow as its first differences).
  To first order each keypoint coordinate then closes the fraction ``2 * step_size * W[t, d]`` of its
  gap to the goal per step, independently per row: the weights become interpretable progress rates,
  the inner problem is well conditioned whatever the robot, and the outer problem decouples across
  rows, so Adam converges in a few hundred iterations.
- ``gd``: plain gradient descent on the actions with a fixed learning rate, as in the paper's
  released code (kept for comparison).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable

import torch

from robot_irl.errors import UnknownNameError
from robot_irl.models.base import KeypointDynamics, Rollout

INNER_METHODS = ("gn", "gd")


@dataclass
class InnerConfig:
    method: str = "gn"
    steps: int = 10
    step_size: float = 0.5   # gn: fraction of the Gauss-Newton step per unit weight; gd: learning rate
    damping: float = 1e-3    # gn: Levenberg damping, relative to the mean diagonal of J^T J
    max_step: float | None = None  # gn: trust region, rad per joint per update (soft: m*tanh(dq/m)).
    # Needed for learned dynamics: their Jacobians are poorly conditioned off the data, and an
    # unbounded Gauss-Newton step there leaves the data and diverges (seen: actions of 1e7 rad).

    def __post_init__(self) -> None:
        if self.method not in INNER_METHODS:
            raise UnknownNameError("inner method", self.method, INNER_METHODS)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_AT_LIMIT = 1e-6  # rad: a joint this close to its limit counts as on it


def _gn_step(J: torch.Tensor, r_w: torch.Tensor, eye: torch.Tensor, cfg: InnerConfig) -> torch.Tensor:
    """Damped Gauss-Newton joint step per row: ``-step (J^T J + lambda I)^-1 J^T r_w`` (trust region
    applied), ``J [B, H, D, n]``, ``r_w [B, H, D, 1]`` the weighted residual gradient."""
    JT = J.transpose(-1, -2)
    G = JT @ J
    lam = cfg.damping * G.diagonal(dim1=-2, dim2=-1).mean(-1).clamp(min=1e-12)
    dq = -cfg.step_size * torch.linalg.solve(G + lam[..., None, None] * eye, JT @ r_w).squeeze(-1)
    if cfg.max_step is not None:
        dq = cfg.max_step * torch.tanh(dq / cfg.max_step)
    return dq


#: extra residual rows for the ``gn`` step: ``f(x [B, H, D_model], J [B, H, D_model, n])`` (the
#: model's keypoints in cost units) -> ``(residual [B, H, E], Jacobian [B, H, E, n], weights [H, E])``
ExtraRows = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


def optimise_actions(dynamics: KeypointDynamics, W: torch.Tensor, q0: torch.Tensor, goal: torch.Tensor,
                     horizon: int, cfg: InnerConfig, *, scale: float = 1.0, x0: torch.Tensor | None = None,
                     create_graph: bool = False, extra: ExtraRows | None = None) -> tuple[torch.Tensor, Rollout]:
    """Optimise ``u [B, horizon, n]`` from zero under the weighted cost ``W [horizon, D]``.

    ``goal [B, D]`` and the cost are in units of ``scale`` x metres. Returns the actions and the
    rollout they produce. With ``create_graph`` the result stays differentiable in ``W``.
    ``extra`` (``gn`` only): more weighted residuals (to be driven to zero) from the model's
    keypoints, whose first ``D / 3`` are the cost's (``irl/facing.py``: a link's roll).
    """
    B, n = q0.shape[0], dynamics.n_joints
    u = torch.zeros(B, horizon, n, dtype=dynamics.dtype)
    if extra is not None and cfg.method != "gn":
        raise UnknownNameError("inner method with extra residuals", cfg.method, ("gn",))
    D = W.shape[-1]
    if cfg.method == "gn":
        eye = torch.eye(n, dtype=dynamics.dtype)
        for _ in range(cfg.steps):
            r = dynamics.rollout(q0, u, x0, jacobian=True)
            x = scale * r.x[:, 1:].reshape(B, horizon, -1)
            J = scale * r.jac  # [B, H, D, n]
            r_w = (2 * W * (x[..., :D] - goal[:, None]))[..., None]
            if extra is not None:
                e, Je, We = extra(x, J)
                J = torch.cat([J[..., :D, :], Je], -2)
                r_w = torch.cat([r_w, (2 * We * e)[..., None]], -2)
            qv = q0[:, None] + torch.cumsum(u, 1)  # the joint path the actions ask for [B, H, n]
            dq = _gn_step(J, r_w, eye, cfg)
            # Active set: a joint at a limit that the step pushes further out cannot move (the
            # rollout clips it), so drop its Jacobian column and let the other joints do the work.
            # Without this the step keeps assigning motion to a clipped joint and the plan's last
            # rows stop short of the goal wherever the expert works near a limit.
            blocked = ((qv >= dynamics.upper - _AT_LIMIT) & (dq > 0)) | ((qv <= dynamics.lower + _AT_LIMIT) & (dq < 0))
            if bool(blocked.any()):
                dq = _gn_step(J * (~blocked)[..., None, :].to(J.dtype), r_w, eye, cfg)
            q_new = torch.minimum(torch.maximum(qv + dq, dynamics.lower), dynamics.upper)
            u = torch.diff(q_new, dim=1, prepend=q0[:, None])
    else:
        with torch.enable_grad():
            if not u.requires_grad:
                u.requires_grad_(True)
            for _ in range(cfg.steps):
                r = dynamics.rollout(q0, u, x0)
                x = scale * r.x[:, 1:].reshape(B, horizon, -1)
                c = (W * (x - goal[:, None]).square()).sum()
                (g,) = torch.autograd.grad(c, u, create_graph=create_graph)
                u = u - cfg.step_size * g
        if not create_graph:
            u = u.detach()
    return u, dynamics.rollout(q0, u, x0)
