"""Rebuild a keypoint dynamics model from the config it saved (`to_config()`)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from robot_irl.errors import UnknownNameError
from robot_irl.models.base import KeypointDynamics
from robot_irl.models.kinematic import KinematicDynamics
from robot_irl.models.learned import LearnedDynamics

DYNAMICS_TYPES = ("kinematic", "learned")


def dynamics_from_config(cfg: dict[str, Any], *, base: str | Path | None = None,
                         dtype: torch.dtype = torch.float64) -> KeypointDynamics:
    """Rebuild a model from its ``to_config()``; ``base`` resolves a learned model's relative weights path."""
    kind = cfg.get("type")
    if kind == "kinematic":
        return KinematicDynamics.from_config(cfg, dtype=dtype)
    if kind == "learned":
        return LearnedDynamics.load(Path(base or ".") / cfg["path"] if not Path(cfg["path"]).is_absolute()
                                    else cfg["path"])
    raise UnknownNameError("dynamics type", str(kind), DYNAMICS_TYPES)
