"""The one interface every keypoint dynamics model implements.

State is the joint vector ``q`` plus the keypoints ``x`` it puts in the world; an action is a joint
delta ``u`` and ``q' = clip(q + u, limits)``. A rollout is batched over demos ``[B, ...]`` and
differentiable in the actions, and can also return, for every row after the start, the Jacobian of
that row's keypoints with respect to the action that produced it (``d x_t / d u_{t-1}``), which the
bilevel learner's Gauss–Newton-preconditioned inner step uses as its metric.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch


@dataclass
class Rollout:
    """``q [B, H+1, n]``, ``x [B, H+1, K, 3]`` (metres, row 0 = start); ``jac [B, H, K*3, n]`` is
    ``d x_t / d u_{t-1}`` for rows 1..H when requested, else None."""

    q: torch.Tensor
    x: torch.Tensor
    jac: torch.Tensor | None = None


class KeypointDynamics(ABC):
    """Differentiable, batched keypoint dynamics (see module docstring).

    What a runner needs to drive a real arm with a model, whatever its kind: ``joints`` (the arm's
    joint names the model actuates, in model order), ``frames`` (each keypoint's link and offset, so
    a run episode names its keypoints) and ``urdf`` (the robot's model file for a sim-twin preview,
    or None). A model that cannot tell them (an old learned-model file) has None there, and the
    runner refuses it with the command that remakes it."""

    kind: str
    n_joints: int
    n_keypoints: int
    dtype: torch.dtype
    lower: torch.Tensor  # [n] joint limits (may be +-inf)
    upper: torch.Tensor
    joints: list[str] | None
    frames: list[Any] | None      # KeypointFrame
    urdf: Path | None

    def step(self, q: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Next joint state: the action is a joint delta, clipped to the limits."""
        return torch.minimum(torch.maximum(q + u, self.lower), self.upper)

    @abstractmethod
    def rollout(self, q0: torch.Tensor, u: torch.Tensor, x0: torch.Tensor | None = None, *,
                jacobian: bool = False) -> Rollout:
        """Roll ``u [B, H, n]`` out from ``q0 [B, n]`` (``x0 [B, K, 3]`` the observed start keypoints;
        models that can compute them from ``q0`` may ignore it)."""

    @abstractmethod
    def start_keypoints(self, q0: torch.Tensor, x0: torch.Tensor | None = None) -> torch.Tensor:
        """Keypoints ``[B, K, 3]`` at the start state."""

    @abstractmethod
    def to_config(self) -> dict[str, Any]:
        """Everything needed to rebuild this model (weights, if any, are saved beside it)."""

    def as_tensor(self, a: Any) -> torch.Tensor:
        return torch.as_tensor(a, dtype=self.dtype)
