"""The data that crosses the :class:`~robot_irl.control.arm.Arm` interface."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Capabilities:
    """What an arm can do: joint names, position limits ``[n, 2]`` (rad), velocity limits ``[n]``
    (rad/s), the rate its own controller runs at, and the control modes the backend offers."""

    robot: str
    joint_names: tuple[str, ...]
    limits: np.ndarray
    max_velocity: np.ndarray
    native_rate_hz: float
    control_modes: tuple[str, ...] = ("joint_position",)

    @property
    def n_dof(self) -> int:
        return len(self.joint_names)

    def to_dict(self) -> dict[str, Any]:
        return {"robot": self.robot, "joint_names": list(self.joint_names), "limits": self.limits.tolist(),
                "max_velocity": self.max_velocity.tolist(), "native_rate_hz": self.native_rate_hz,
                "control_modes": list(self.control_modes)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Capabilities":
        return cls(robot=d["robot"], joint_names=tuple(d["joint_names"]), limits=np.asarray(d["limits"], float),
                   max_velocity=np.asarray(d["max_velocity"], float), native_rate_hz=float(d["native_rate_hz"]),
                   control_modes=tuple(d["control_modes"]))


@dataclass(frozen=True)
class Observation:
    """Measured joint state at clock time ``t`` (when it was measured, not when it was read), and
    the end-effector position in the base frame when the backend knows it."""

    t: float
    q: np.ndarray
    dq: np.ndarray
    ee_pos: np.ndarray | None = None


@dataclass(frozen=True)
class Clamp:
    """One safety intervention: which rule (``joint_limit``, ``delta``, ``velocity``, ``workspace``),
    on which joints, and the largest change it made to the requested target (rad)."""

    kind: str
    joints: tuple[int, ...]
    amount: float


@dataclass(frozen=True)
class Command:
    """What :meth:`Arm.send_action` did with one requested target.

    ``sent`` is the target the backend actually received (the hold target when refused);
    ``refused`` names the rule that refused the request (``nonfinite``, ``shape``,
    ``stale_observation``, ``bad_observation``), else None; ``clamps`` lists every change made."""

    t: float
    requested: np.ndarray
    sent: np.ndarray
    clamps: tuple[Clamp, ...] = field(default_factory=tuple)
    refused: str | None = None

    @property
    def clamped(self) -> bool:
        return bool(self.clamps)
