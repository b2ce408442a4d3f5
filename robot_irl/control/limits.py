"""Joint limits per arm model, from the makers' datasheets, with the source named beside each table.

A backend reports which model it is talking to (franky / ur-rtde) or takes it from the arm's
configuration; :func:`model_limits` then gives the hard limits the :class:`SafetyFilter` keeps
``limit_margin`` inside. A model name the backend did not expect is refused, never guessed.

Acceleration and jerk are given where the controller enforces them on its input (libfranka
rejects a 1 kHz stream that breaks them); UR's servoJ and the KUKA Sunrise controller smooth
their own input, so their tables carry position and velocity only.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_irl.errors import UnknownNameError


@dataclass(frozen=True)
class ModelLimits:
    """Hard limits of one arm model (rad, rad/s, rad/s², rad/s³), per joint, and where they come from."""

    model: str
    position: np.ndarray                  # [n, 2]
    velocity: np.ndarray                  # [n]
    source: str
    acceleration: np.ndarray | None = None
    jerk: np.ndarray | None = None
    #: joints whose range is narrowed by default to keep the arm out of itself: {joint: (lo, hi)}
    self_collision: tuple[tuple[int, float, float], ...] = ()

    @property
    def n_dof(self) -> int:
        return len(self.velocity)

    def soft_position(self, keep_out_of_self: bool = True) -> np.ndarray:
        """The position limits the filter uses: the hard ones, narrowed where the model's own links
        would collide (the UR elbow) unless ``keep_out_of_self`` is off."""
        pos = self.position.copy()
        if keep_out_of_self:
            for j, lo, hi in self.self_collision:
                pos[j] = (max(pos[j, 0], lo), min(pos[j, 1], hi))
        return pos


def _deg(*v: float) -> np.ndarray:
    return np.deg2rad(np.array(v, dtype=float))


_FRANKA_SRC = "Franka Robotics, 'Robot and interface specifications' (libfranka docs, control_parameters)"
_UR_E_SRC = "Universal Robots e-Series datasheets (joint ranges and speeds); elbow self-collision ±180° as ur_description"
_UR_CB3_SRC = "Universal Robots CB3 datasheets (joint ranges and speeds); elbow self-collision ±180° as ur_description"
_KUKA_SRC = "KUKA LBR iiwa 7 R800 / 14 R820 specification (Spez LBR iiwa, axis data)"

_UR_RANGE = np.array([[-2 * np.pi, 2 * np.pi]] * 6)
_UR_ELBOW = ((2, -np.pi, np.pi),)
_IIWA_RANGE = np.stack([-_deg(170, 120, 170, 120, 170, 120, 175), _deg(170, 120, 170, 120, 170, 120, 175)], 1)

MODELS: dict[str, ModelLimits] = {m.model: m for m in (
    ModelLimits("panda",
                np.array([[-2.8973, 2.8973], [-1.7628, 1.7628], [-2.8973, 2.8973], [-3.0718, -0.0698],
                          [-2.8973, 2.8973], [-0.0175, 3.7525], [-2.8973, 2.8973]]),
                np.array([2.1750, 2.1750, 2.1750, 2.1750, 2.6100, 2.6100, 2.6100]), _FRANKA_SRC,
                acceleration=np.array([15.0, 7.5, 10.0, 12.5, 15.0, 20.0, 20.0]),
                jerk=np.array([7500.0, 3750.0, 5000.0, 6250.0, 7500.0, 10000.0, 10000.0])),
    ModelLimits("fr3",
                np.array([[-2.7437, 2.7437], [-1.7837, 1.7837], [-2.9007, 2.9007], [-3.0421, -0.1518],
                          [-2.8065, 2.8065], [0.5445, 4.5169], [-3.0159, 3.0159]]),
                np.array([2.62, 2.62, 2.62, 2.62, 5.26, 4.18, 5.26]), _FRANKA_SRC,
                acceleration=np.full(7, 10.0), jerk=np.full(7, 5000.0)),
    ModelLimits("ur3e", _UR_RANGE, _deg(180, 180, 180, 360, 360, 360), _UR_E_SRC, self_collision=_UR_ELBOW),
    ModelLimits("ur5e", _UR_RANGE, _deg(180, 180, 180, 180, 180, 180), _UR_E_SRC, self_collision=_UR_ELBOW),
    ModelLimits("ur10e", _UR_RANGE, _deg(120, 120, 180, 180, 180, 180), _UR_E_SRC, self_collision=_UR_ELBOW),
    ModelLimits("ur16e", _UR_RANGE, _deg(120, 120, 180, 180, 180, 180), _UR_E_SRC, self_collision=_UR_ELBOW),
    ModelLimits("ur3", _UR_RANGE, _deg(180, 180, 180, 360, 360, 360), _UR_CB3_SRC, self_collision=_UR_ELBOW),
    ModelLimits("ur5", _UR_RANGE, _deg(180, 180, 180, 180, 180, 180), _UR_CB3_SRC, self_collision=_UR_ELBOW),
    ModelLimits("ur10", _UR_RANGE, _deg(120, 120, 180, 180, 180, 180), _UR_CB3_SRC, self_collision=_UR_ELBOW),
    ModelLimits("iiwa7", _IIWA_RANGE, _deg(98, 98, 100, 130, 140, 180, 180), _KUKA_SRC),
    ModelLimits("iiwa14", _IIWA_RANGE, _deg(85, 85, 100, 75, 130, 135, 135), _KUKA_SRC),
)}


def model_limits(model: str) -> ModelLimits:
    """The datasheet limits of ``model`` (a key of :data:`MODELS`); unknown names list the known ones."""
    try:
        return MODELS[model]
    except KeyError:
        raise UnknownNameError("arm model", model, sorted(MODELS)) from None
