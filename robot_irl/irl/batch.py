"""Demos as one batch of tensors for a dynamics model: the learner, evaluation of a trained run
and the baselines all plan from and score against this same batch."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from robot_irl.errors import InputError
from robot_irl.irl.config import LearnerConfig
from robot_irl.irl.demos import DemoSet
from robot_irl.models.base import KeypointDynamics
from robot_irl.models.kinematic import KinematicDynamics


@dataclass
class Batch:
    """Demos as tensors: ``q0 [B, n]``, ``x0 [B, K, 3]`` and ``demo_m [B, T, K, 3]`` (metres),
    ``goal_m [B, K, 3]``; ``target [B, T, D]`` and ``goal [B, D]`` in cost units; ``mask [B, T, D]``."""

    q0: torch.Tensor
    x0: torch.Tensor
    demo_m: torch.Tensor
    goal_m: torch.Tensor
    target: torch.Tensor
    goal: torch.Tensor
    mask: torch.Tensor

    @property
    def horizon(self) -> int:
        return self.target.shape[1] - 1


def prepare(demos: DemoSet, dynamics: KeypointDynamics, rows: int | None, cfg: LearnerConfig) -> Batch:
    """Check, resample and batch demos for a dynamics model (see DemoSet for the rules)."""
    if len(demos) == 0:
        raise InputError("no demos selected", file=demos.source or None, field="demos", expected="at least one demo")
    if demos.n_keypoints != dynamics.n_keypoints:
        raise InputError(f"demos have {demos.n_keypoints} keypoints, the dynamics model {dynamics.n_keypoints}",
                         file=demos.source or None, field="keypoints",
                         expected="the same keypoint spec for demos and the model")
    demos.check_missing(cfg.max_missing_fraction)
    T = rows or demos.keypoints.shape[1]
    if T < 2:
        raise InputError(f"{T} rows", field="rows", expected="at least 2 (start + one step)")
    kp = demos.resample(T)
    goal = demos.goal_keypoints()
    dt = dynamics.dtype
    demo_m = torch.as_tensor(kp, dtype=dt)
    x0_obs = demo_m[:, 0]
    if demos.q0 is not None:
        q0 = torch.as_tensor(demos.q0, dtype=dt)
        if q0.shape[1] != dynamics.n_joints:
            raise InputError(f"q0 has {q0.shape[1]} joints, the model {dynamics.n_joints}", file=demos.source or None,
                             field="q0", expected=f"{dynamics.n_joints} joint values per demo")
    elif isinstance(dynamics, KinematicDynamics):
        q0 = dynamics.inverse_kinematics(x0_obs)
    else:
        raise InputError("demos carry no start joint state", file=demos.source or None, field="q0",
                         expected="q0 in the demos for a learned dynamics model")
    s = cfg.length_scale
    B = len(demos)
    target = s * demo_m.reshape(B, T, -1)
    return Batch(q0, x0_obs, demo_m, torch.as_tensor(goal, dtype=dt), target,
                 s * torch.as_tensor(goal, dtype=dt).reshape(B, -1), ~torch.isnan(target))
