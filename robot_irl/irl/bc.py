"""Behaviour cloning at full strength: an MLP policy that predicts action chunks (after LeRobot's
ACT/diffusion policies' ``n_action_steps``), trained to convergence with early stopping.

Targets are the actions that track each demo through the dynamics (``baselines._track``, the same
as the linear BC). Input per row t: the goal-relative keypoints (cost units) and the normalised row
index t/H; output: the next ``chunk`` actions, zero-padded (and masked out of the loss) past the
last row. Inputs and outputs are standardised with training statistics. Training: AdamW on the
masked MSE, full batch (a few demos give a few dozen samples), validation on held-out *demos*
(every ``val_every``-th demo; with one demo, every 3rd row), stopped when the validation loss has
not improved for ``patience`` epochs, best weights kept. ``refit=True`` then trains a fresh
network on all demos for the best epoch count; on Place (dev seed 0, 10 goals) it did not help
(1 demo: 10 % success either way; 3 demos: 20 % either way, path 8.4 vs 4.5 cm), so it is off.
Rollout: query the policy, execute its chunk open-loop through the dynamics, query again from
where that left the keypoints.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from robot_irl.models.base import KeypointDynamics


@dataclass
class BCMLPConfig:
    hidden: int = 128
    layers: int = 2
    chunk: int = 3             # actions predicted and executed per query
    lr: float = 3e-3
    weight_decay: float = 1e-4
    max_epochs: int = 3000
    patience: int = 200        # epochs without a better validation loss before stopping
    val_every: int = 4         # every n-th demo (from the 2nd) is validation; 1 demo: every 3rd row
    refit: bool = False        # retrain on all demos for the early-stopped epoch count
    seed: int = 0


class BCMLPPolicy(torch.nn.Module):
    """u[t..t+chunk) = MLP([x_t - g (standardised); t / H])."""

    kind = "bc_mlp"

    def __init__(self, dim: int, horizon: int, n_joints: int, cfg: BCMLPConfig | None = None,
                 dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.cfg = cfg or BCMLPConfig()
        self.dim, self.horizon, self.n_joints = dim, horizon, n_joints
        sizes = [dim + 1] + [self.cfg.hidden] * self.cfg.layers + [self.cfg.chunk * n_joints]
        mods: list[torch.nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            mods.append(torch.nn.Linear(a, b, dtype=dtype))
            if i < len(sizes) - 2:
                mods.append(torch.nn.GELU())
        self.net = torch.nn.Sequential(*mods)
        for name, n in (("in_mean", dim + 1), ("in_std", dim + 1), ("out_mean", self.cfg.chunk * n_joints),
                        ("out_std", self.cfg.chunk * n_joints)):
            self.register_buffer(name, (torch.zeros if "mean" in name else torch.ones)(n, dtype=dtype))

    def inputs(self, rel: torch.Tensor, t: int) -> torch.Tensor:
        tt = torch.full((rel.shape[0], 1), t / self.horizon, dtype=rel.dtype)
        return torch.cat([rel, tt], -1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Raw inputs ``[N, dim+1]`` -> actions ``[N, chunk, n]``."""
        y = self.net((z - self.in_mean) / self.in_std) * self.out_std + self.out_mean
        return y.reshape(len(z), self.cfg.chunk, self.n_joints)

    def plan(self, dyn: KeypointDynamics, q0: torch.Tensor, x0: torch.Tensor | None, goal: torch.Tensor,
             horizon: int, scale: float):
        """Roll the policy out through ``dyn`` for ``horizon`` rows; ``goal [B, D]`` in cost units."""
        with torch.no_grad():
            x = dyn.start_keypoints(q0, x0)
            q, us, t = q0, [], 0
            while t < horizon:
                chunk = self(self.inputs(scale * x.reshape(len(x), -1) - goal, t))[:, :horizon - t]
                r = dyn.rollout(q, chunk, x)
                q, x = r.q[:, -1], r.x[:, -1]
                us.append(chunk)
                t += chunk.shape[1]
            u = torch.cat(us, 1)
            return u, dyn.rollout(q0, u, x0)

    def to_config(self) -> dict[str, Any]:
        return {"type": self.kind, "dim": self.dim, "horizon": self.horizon, "n_joints": self.n_joints,
                "bc_mlp": asdict(self.cfg)}


def _samples(rel: torch.Tensor, u: torch.Tensor, chunk: int, policy: BCMLPPolicy):
    """Per (demo, row): input, chunk target (zero-padded) and its mask. ``rel [B, H, D]``, ``u [B, H, n]``."""
    B, H, n = u.shape
    pad = torch.cat([u, torch.zeros(B, chunk, n, dtype=u.dtype)], 1)
    valid = torch.cat([torch.ones(B, H, dtype=torch.bool), torch.zeros(B, chunk, dtype=torch.bool)], 1)
    Z = torch.stack([policy.inputs(rel[:, t], t) for t in range(H)], 1)          # [B, H, D+1]
    Y = torch.stack([pad[:, t:t + chunk] for t in range(H)], 1)                   # [B, H, c, n]
    M = torch.stack([valid[:, t:t + chunk] for t in range(H)], 1)                 # [B, H, c]
    return Z, Y, M


def train_bc_mlp(rel: torch.Tensor, u: torch.Tensor, cfg: BCMLPConfig | None = None) -> tuple[BCMLPPolicy, dict]:
    """Fit a :class:`BCMLPPolicy` on tracked demo actions; returns it and training figures."""
    cfg = cfg or BCMLPConfig()
    B, H, n = u.shape
    torch.manual_seed(cfg.seed)
    pol = BCMLPPolicy(rel.shape[-1], H, n, cfg, dtype=u.dtype)
    Z, Y, M = _samples(rel, u, cfg.chunk, pol)
    if B > 1:
        val = torch.zeros(B, H, dtype=torch.bool)
        val[1::cfg.val_every] = True
    else:
        val = torch.zeros(B, H, dtype=torch.bool)
        val[:, 1::3] = True
    Z, Y, M = Z.reshape(B * H, -1), Y.reshape(B * H, cfg.chunk, n), M.reshape(B * H, cfg.chunk)
    val = val.reshape(-1)
    tr = ~val
    with torch.no_grad():
        pol.in_mean.copy_(Z[tr].mean(0))
        pol.in_std.copy_(Z[tr].std(0).clamp(min=1e-6) if tr.sum() > 1 else torch.ones_like(pol.in_std))
        Yt = Y[tr][M[tr]]                                                         # [N, n]
        pol.out_mean.copy_(Yt.mean(0).repeat(cfg.chunk))
        pol.out_std.copy_((Yt.std(0).clamp(min=1e-6) if len(Yt) > 1 else torch.ones(n, dtype=u.dtype)).repeat(cfg.chunk))
    scale = pol.out_std.reshape(cfg.chunk, n)
    fresh = {k: v.clone() for k, v in pol.state_dict().items()}

    def loss(sel: torch.Tensor) -> torch.Tensor:
        err = ((pol(Z[sel]) - Y[sel]) / scale).square().mean(-1)
        return (err * M[sel]).sum() / M[sel].sum().clamp(min=1)

    opt = torch.optim.AdamW(pol.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    best = (float("inf"), {k: v.clone() for k, v in pol.state_dict().items()}, 0)
    epoch = 0
    for epoch in range(cfg.max_epochs):
        opt.zero_grad()
        loss(tr).backward()
        opt.step()
        with torch.no_grad():
            v = loss(val).item()
        if v < best[0] - 1e-9:
            best = (v, {k: t.clone() for k, t in pol.state_dict().items()}, epoch)
        elif epoch - best[2] >= cfg.patience:
            break
    pol.load_state_dict(best[1])
    with torch.no_grad():
        train_loss = loss(tr).item()
    figures = {"bc_epochs": epoch + 1, "bc_best_epoch": best[2], "bc_val_loss": best[0], "bc_train_loss": train_loss,
               "bc_val_samples": int(val.sum()), "bc_train_samples": int(tr.sum())}
    if cfg.refit:
        pol.load_state_dict(fresh)
        everything = torch.ones_like(val)
        opt = torch.optim.AdamW(pol.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        for _ in range(best[2] + 1):
            opt.zero_grad()
            loss(everything).backward()
            opt.step()
    return pol, figures


def bc_mlp_from_config(cfg: dict[str, Any], dtype: torch.dtype) -> BCMLPPolicy:
    return BCMLPPolicy(cfg["dim"], cfg["horizon"], cfg["n_joints"], BCMLPConfig(**cfg.get("bc_mlp", {})), dtype=dtype)
