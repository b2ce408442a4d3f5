"""Learner configuration: everything (besides demos, dynamics and cost type) a run needs to rebuild."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from robot_irl.errors import InputError
from robot_irl.irl.inner import InnerConfig


@dataclass
class LearnerConfig:
    rows: int | None = None          # trajectory rows incl. the start (None: the demos' own length)
    inner: InnerConfig = field(default_factory=InnerConfig)
    outer_iters: int = 400
    lr: float = 0.05                 # Adam on the cost parameters
    lr_final_frac: float = 0.05      # cosine decay to lr * this
    init_weight: float = 0.1
    nonneg: bool = False
    rbf_kernels: int = 5
    rbf_width: float = 2.0
    length_scale: float = 100.0      # metres -> cost units (cm) inside cost and loss
    seed: int = 0
    checkpoint_every: int = 50
    log_every: int = 10
    max_missing_fraction: float = 0.5
    num_threads: int | None = 1      # torch threads while fitting (tiny tensors: 1 is fastest)
    fm_iters: int = 15               # feature-matching baseline iterations
    bc_ridge: float = 1e-3           # behaviour-cloning ridge penalty

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["inner"] = self.inner.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "LearnerConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InputError(f"unknown learner settings {unknown}", field="learner", expected=f"some of {sorted(known)}")
        d = dict(d)
        if isinstance(d.get("inner"), dict):
            d["inner"] = InnerConfig(**d["inner"])
        return cls(**d)
