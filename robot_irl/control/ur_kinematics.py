"""Forward kinematics of the UR arms from Universal Robots' published DH parameters, so the
safety filter's workspace box can be checked on every tick without a round trip to the controller
(ur-rtde's ``getForwardKinematics``). Positions are the tool flange in UR's ``base`` frame, as the
controller reports ``getActualTCPPose`` with a zero TCP offset; a robot's own factory calibration
moves them by millimetres, far below a workspace box's margins."""
from __future__ import annotations

import numpy as np

from robot_irl.errors import UnknownNameError

# (d1, a2, a3, d4, d5, d6) in metres: Universal Robots, "DH parameters for calculations of kinematics
# and dynamics" (the same table ur_description's default_kinematics.yaml is made from).
UR_DH = {
    "ur3e": (0.15185, -0.24355, -0.2132, 0.13105, 0.08535, 0.0921),
    "ur5e": (0.1625, -0.425, -0.3922, 0.1333, 0.0997, 0.0996),
    "ur10e": (0.1807, -0.6127, -0.57155, 0.17415, 0.11985, 0.11655),
    "ur16e": (0.1807, -0.4784, -0.36, 0.17415, 0.11985, 0.11655),
    "ur3": (0.1519, -0.24365, -0.21325, 0.11235, 0.08535, 0.0819),
    "ur5": (0.089159, -0.425, -0.39225, 0.10915, 0.09465, 0.0823),
    "ur10": (0.1273, -0.612, -0.5723, 0.163941, 0.1157, 0.0922),
}
_ALPHA = np.array([np.pi / 2, 0.0, 0.0, np.pi / 2, -np.pi / 2, 0.0])


def ur_flange_position(model: str, q: np.ndarray) -> np.ndarray:
    """Flange position ``[3]`` (m, UR base frame) of ``model`` at joint angles ``q [6]`` (rad)."""
    if model not in UR_DH:
        raise UnknownNameError("UR model", model, UR_DH)
    d1, a2, a3, d4, d5, d6 = UR_DH[model]
    d = np.array([d1, 0.0, 0.0, d4, d5, d6])
    a = np.array([0.0, a2, a3, 0.0, 0.0, 0.0])
    T = np.eye(4)
    for i, th in enumerate(np.asarray(q, float)):
        ct, st, ca, sa = np.cos(th), np.sin(th), np.cos(_ALPHA[i]), np.sin(_ALPHA[i])
        T = T @ np.array([[ct, -st * ca, st * sa, a[i] * ct],
                          [st, ct * ca, -ct * sa, a[i] * st],
                          [0.0, sa, ca, d[i]],
                          [0.0, 0.0, 0.0, 1.0]])
    return T[:3, 3].copy()
