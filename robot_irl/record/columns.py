"""Columns every robot-state stream shares, whatever recorded it (sim expert or arm)."""
from __future__ import annotations

from robot_irl.library import Column


def robot_state_columns(joint_names: list[str]) -> dict[str, Column]:
    """Joint state, end-effector pose and the absolute target requested (with its delta)."""
    jn = tuple(joint_names)
    n = len(jn)
    return {
        "joint_pos": Column((n,), "float64", "rad", jn),
        "joint_vel": Column((n,), "float64", "rad/s", jn),
        "ee_pos": Column((3,), "float64", "m", ("x", "y", "z")),
        "ee_quat": Column((4,), "float64", None, ("x", "y", "z", "w")),
        "action_delta": Column((n,), "float64", "rad", jn),
        "target_requested": Column((n,), "float64", "rad", jn),
    }
