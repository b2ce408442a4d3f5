"""PyBullet scenes and gymnasium environments for robot-irl.

Importing ``sim`` registers ``robot_irl/Reach-v0``, ``robot_irl/Place-v0`` and ``robot_irl/Push-v0``.
"""
from __future__ import annotations

import gymnasium as gym

from robot_irl.errors import UnknownNameError

ENV_IDS = {"robot_irl/Reach-v0": "reach", "robot_irl/Place-v0": "place", "robot_irl/Push-v0": "push"}

for _env_id, _task in ENV_IDS.items():
    if _env_id not in gym.registry:
        gym.register(id=_env_id, entry_point="sim.env:ArmEnv", kwargs={"task": _task}, disable_env_checker=True)


def make(env_id: str, **kwargs) -> gym.Env:
    """``gymnasium.make`` with an error that lists the valid ids."""
    if env_id not in ENV_IDS:
        raise UnknownNameError("env id", env_id, ENV_IDS)
    return gym.make(env_id, **kwargs)
