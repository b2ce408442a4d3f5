"""PyBullet scenes and gymnasium environments for robot-irl.

Importing ``sim`` registers ``robot_irl/Reach-v0``, ``robot_irl/Place-v0`` and ``robot_irl/Push-v0``.
"""
from __future__ import annotations

import json

import gymnasium as gym

from robot_irl.errors import InputError, UnknownNameError

ENV_IDS = {"robot_irl/Reach-v0": "reach", "robot_irl/Place-v0": "place", "robot_irl/Push-v0": "push"}

for _env_id, _task in ENV_IDS.items():
    if _env_id not in gym.registry:
        gym.register(id=_env_id, entry_point="sim.env:ArmEnv", kwargs={"task": _task}, disable_env_checker=True)


def make(env_id: str, **kwargs) -> gym.Env:
    """``gymnasium.make`` with an error that lists the valid ids."""
    if env_id not in ENV_IDS:
        raise UnknownNameError("env id", env_id, ENV_IDS)
    return gym.make(env_id, **kwargs)


def parse_render_options(variant: str, size: str) -> tuple[dict, tuple[int, int]]:
    """``--variant`` (a JSON object) and ``--size`` (WxH) from the command line."""
    try:
        parsed = json.loads(variant)
        w, h = (int(v) for v in size.lower().split("x"))
    except (json.JSONDecodeError, ValueError) as e:
        raise InputError(f"cannot parse ({e})", field="--variant/--size",
                         expected="a JSON object and WxH like 320x240") from None
    if not isinstance(parsed, dict):
        raise InputError(f"--variant is {parsed!r}", field="--variant", expected="a JSON object")
    return parsed, (w, h)
