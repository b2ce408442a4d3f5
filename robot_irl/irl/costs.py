"""Learnable keypoint costs, all relative to the goal keypoints so that they carry to new goals.

Every cost is a per-row, per-coordinate weighted squared distance to the goal::

    c(x_{1..H}, g) = sum_t sum_d W[t, d] * (x[t, d] - g[d])**2        (d over K*3 coordinates)

and differs only in how ``W [H, D]`` is built from its parameters ``theta [P, D]`` — always linearly,
``W = basis(H) @ theta``. That shared form lets the inner optimiser take the cost's gradient in
closed form and lets a trained cost be re-evaluated at another horizon (the basis is defined over
normalised time). Row 0 is the given start and carries no cost.

- ``default``: W = 1 (plain Euclidean distance to the goal, nothing learned);
- ``weighted``: one weight per coordinate, constant over time;
- ``timedep``: one weight per row and coordinate (linearly interpolated to another horizon);
- ``rbf``: ``J`` Gaussian kernels over normalised time, one weight per kernel and coordinate.

``nonneg=True`` keeps every weight >= 0 (projection after each outer step).

``norm`` says how the per-entry terms are combined. ``"sum"`` (ours) sums them. ``"mean"`` is the
released MBIRL code's normalisation, needed to reproduce its figures (its init and learning rates
assume it): weighted = mean over the T = H+1 rows (start included) of the coordinate sum,
timedep = mean over all rows and coordinates, rbf = mean over coordinates of the row sum. Each is a
constant factor on ``W``, so every consumer of ``weights()`` (both inner methods, latents) sees it.
RBF ``centres``: ``"spread"`` = J centres evenly over rows 0..H; ``"integer"`` = the same truncated
to whole rows, as the released code does (0, 2, 4, 6, 9 for H = 9).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch

from robot_irl.errors import UnknownNameError

COST_TYPES = ("default", "weighted", "timedep", "rbf")
COST_NORMS = ("sum", "mean")
RBF_CENTRES = ("spread", "integer")


class Cost(torch.nn.Module, ABC):
    kind = "base"

    def __init__(self, dim: int, horizon: int, *, nonneg: bool = False, init: float = 0.1, norm: str = "sum",
                 dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        if norm not in COST_NORMS:
            raise UnknownNameError("cost normalisation", norm, COST_NORMS)
        self.dim, self.horizon, self.nonneg, self.norm = dim, horizon, nonneg, norm
        self.theta = torch.nn.Parameter(torch.full((self.n_basis(), dim), float(init), dtype=dtype))

    @abstractmethod
    def n_basis(self) -> int:
        """P, the number of basis functions over time (rows of ``theta``)."""

    @abstractmethod
    def basis(self, horizon: int) -> torch.Tensor:
        """``[horizon, P]``: maps parameters to per-row weights for rows 1..horizon."""

    def mean_divisor(self, horizon: int) -> float:
        """What ``norm="mean"`` divides the summed cost by (see the module docstring)."""
        return float(horizon + 1)

    def weights(self, horizon: int | None = None) -> torch.Tensor:
        H = horizon or self.horizon
        W = self.basis(H).to(self.theta.dtype) @ self.theta
        return W / self.mean_divisor(H) if self.norm == "mean" else W

    def forward(self, x: torch.Tensor, goal: torch.Tensor, horizon: int | None = None) -> torch.Tensor:
        """Cost per demo: ``x [B, H, D]`` rows 1..H, ``goal [B, D]`` (same units)."""
        W = self.weights(horizon or x.shape[1])
        return (W * (x - goal[:, None]).square()).sum((1, 2))

    @torch.no_grad()
    def project_(self) -> None:
        if self.nonneg:
            self.theta.clamp_(min=0.0)

    def to_config(self) -> dict[str, Any]:
        return {"type": self.kind, "dim": self.dim, "horizon": self.horizon, "nonneg": self.nonneg, "norm": self.norm}


def _rows(horizon: int, dtype=torch.float64) -> torch.Tensor:
    """Normalised time of rows 1..horizon in (0, 1]."""
    return torch.arange(1, horizon + 1, dtype=dtype) / horizon


class WeightedCost(Cost):
    """One weight per keypoint coordinate, the same at every row."""

    kind = "weighted"

    def n_basis(self) -> int:
        return 1

    def basis(self, horizon: int) -> torch.Tensor:
        return torch.ones(horizon, 1, dtype=torch.float64)


class DefaultCost(WeightedCost):
    """The plain Euclidean baseline: every weight fixed at 1, nothing learned."""

    kind = "default"

    def __init__(self, dim: int, horizon: int, **kw: Any) -> None:
        kw["init"] = 1.0
        super().__init__(dim, horizon, **kw)
        self.theta.requires_grad_(False)


class TimeDepCost(Cost):
    kind = "timedep"

    def n_basis(self) -> int:
        return self.horizon

    def mean_divisor(self, horizon: int) -> float:
        return float((horizon + 1) * self.dim)

    def basis(self, horizon: int) -> torch.Tensor:
        if horizon == self.horizon:
            return torch.eye(horizon, dtype=torch.float64)
        # linear interpolation over normalised time onto the trained rows
        src, dst = _rows(self.horizon), _rows(horizon)
        pos = torch.clamp((dst - src[0]) / (src[-1] - src[0]) * (self.horizon - 1), 0, self.horizon - 1) \
            if self.horizon > 1 else torch.zeros(horizon)
        lo = pos.floor().long().clamp(max=max(self.horizon - 2, 0))
        w = pos - lo
        B = torch.zeros(horizon, self.horizon, dtype=torch.float64)
        B[torch.arange(horizon), lo] = 1 - w
        if self.horizon > 1:
            B[torch.arange(horizon), lo + 1] += w
        return B


class RBFCost(Cost):
    kind = "rbf"

    def __init__(self, dim: int, horizon: int, *, kernels: int = 5, width: float = 2.0, centres: str = "spread",
                 **kw: Any) -> None:
        if centres not in RBF_CENTRES:
            raise UnknownNameError("RBF centres", centres, RBF_CENTRES)
        self.kernels, self.width, self.centres = kernels, width, centres
        super().__init__(dim, horizon, **kw)

    def n_basis(self) -> int:
        return self.kernels

    def mean_divisor(self, horizon: int) -> float:
        return float(self.dim)

    def basis(self, horizon: int) -> torch.Tensor:
        # kernel centres over rows 0..H of the trained horizon, width in trained rows (as the
        # paper: exp(-(t - c)^2 / width)); another horizon is mapped onto the trained rows
        c = torch.linspace(0.0, float(self.horizon), self.kernels, dtype=torch.float64)
        if self.centres == "integer":
            c = c.floor()
        t = _rows(horizon) * self.horizon
        return torch.exp(-(t[:, None] - c[None]).square() / self.width)

    def to_config(self) -> dict[str, Any]:
        return {**super().to_config(), "kernels": self.kernels, "width": self.width, "centres": self.centres}


_COSTS: dict[str, type[Cost]] = {"default": DefaultCost, "weighted": WeightedCost, "timedep": TimeDepCost,
                                 "rbf": RBFCost}


def make_cost(kind: str, dim: int, horizon: int, **kw: Any) -> Cost:
    if kind not in _COSTS:
        raise UnknownNameError("cost type", kind, COST_TYPES)
    if kind != "rbf":
        for k in ("kernels", "width", "centres"):
            kw.pop(k, None)
    return _COSTS[kind](dim, horizon, **kw)


def cost_from_config(cfg: dict[str, Any], dtype: torch.dtype = torch.float64) -> Cost:
    extra = {k: cfg[k] for k in ("kernels", "width", "centres") if k in cfg}
    return make_cost(cfg["type"], int(cfg["dim"]), int(cfg["horizon"]), nonneg=bool(cfg.get("nonneg", False)),
                     norm=cfg.get("norm", "sum"), dtype=dtype, **extra)
