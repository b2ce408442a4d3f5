"""Per-physical-arm calibration file: which arm, its joint offsets, limits, velocity limits and
home pose. JSON, one file per arm, so two arms of the same model keep their own numbers::

    {"id": "lab-fr3-1", "robot": "fr3", "joint_names": [...],
     "joint_offsets": [...], "limits": [[lo, hi], ...], "max_velocity": [...], "home": [...],
     "workspace": {"lo": [x, y, z], "hi": [x, y, z]},
     "world": {"T_base_world": 4x4, "method": "touch|hand-eye|typed", "rms_m": ..., "points": n}}

Offsets map the backend's raw encoder readings to the model's angles: ``q = q_raw + offset``.
``workspace`` (optional) is the box (base frame, m) every watched point must stay in; a physical
arm refuses to move without one (``robot-irl arm check --teach-workspace`` records it).
``world`` (optional) is the cell's reference marker in the base frame (robot_irl.control.registration;
``robot-irl world``): what puts person demos, recorded in that marker's frame, into the robot's.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from robot_irl.control.registration import WorldRegistration
from robot_irl.control.types import Capabilities
from robot_irl.core.io import atomic_write_json
from robot_irl.errors import InputError


@dataclass(frozen=True)
class ArmCalibration:
    id: str
    robot: str
    joint_names: tuple[str, ...]
    joint_offsets: np.ndarray
    limits: np.ndarray
    max_velocity: np.ndarray
    home: np.ndarray
    workspace: tuple[np.ndarray, np.ndarray] | None = None
    world: WorldRegistration | None = None

    @classmethod
    def from_capabilities(cls, caps: Capabilities, home: np.ndarray, id: str | None = None) -> "ArmCalibration":
        """The uncalibrated default: zero offsets and the backend's own limits (simulated arms)."""
        return cls(id=id or caps.robot, robot=caps.robot, joint_names=caps.joint_names,
                   joint_offsets=np.zeros(caps.n_dof), limits=caps.limits.copy(),
                   max_velocity=caps.max_velocity.copy(), home=np.asarray(home, float).copy())

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "robot": self.robot, "joint_names": list(self.joint_names),
                "joint_offsets": self.joint_offsets.tolist(), "limits": self.limits.tolist(),
                "max_velocity": self.max_velocity.tolist(), "home": self.home.tolist(),
                **({} if self.workspace is None else
                   {"workspace": {"lo": self.workspace[0].tolist(), "hi": self.workspace[1].tolist()}}),
                **({} if self.world is None else {"world": self.world.to_dict()})}

    def with_workspace(self, lo, hi) -> "ArmCalibration":
        """This calibration with the workspace box ``lo``..``hi`` (checked like a loaded one)."""
        return replace(self, workspace=parse_workspace({"lo": list(lo), "hi": list(hi)}))

    def with_world(self, world: WorldRegistration) -> "ArmCalibration":
        """This calibration with the cell's world-to-base registration."""
        return replace(self, world=world)

    def save(self, path: str | Path) -> None:
        atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> "ArmCalibration":
        path = Path(path)
        if not path.is_file():
            raise InputError("calibration file not found", file=path, expected="a JSON file written by ArmCalibration.save")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise InputError(f"invalid JSON ({e.msg} at line {e.lineno})", file=path) from None
        return cls.from_dict(data, file=path)

    @classmethod
    def from_dict(cls, data: Any, file: str | Path | None = None) -> "ArmCalibration":
        if not isinstance(data, dict):
            raise InputError("top level is not an object", file=file, expected="a JSON object")

        def need(key: str, expected: str) -> Any:
            if key not in data:
                raise InputError("missing field", file=file, field=key, expected=expected)
            return data[key]

        def vector(key: str, n: int, shape_text: str) -> np.ndarray:
            raw = need(key, shape_text)
            try:
                arr = np.asarray(raw, dtype=float)
            except (TypeError, ValueError):
                raise InputError("not numbers", file=file, field=key, expected=shape_text) from None
            want = (n, 2) if key == "limits" else (n,)
            if arr.shape != want or not np.all(np.isfinite(arr)):
                raise InputError(f"shape {list(arr.shape)} or non-finite values", file=file, field=key,
                                 expected=shape_text)
            return arr

        for key in ("id", "robot"):
            if not isinstance(need(key, "a string"), str) or not data[key]:
                raise InputError("not a non-empty string", file=file, field=key, expected="a string")
        names = need("joint_names", "a list of joint names")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise InputError("not a list of strings", file=file, field="joint_names", expected="a list of joint names")
        n = len(names)
        limits = vector("limits", n, f"{n} pairs [lower, upper] in rad")
        if np.any(limits[:, 0] >= limits[:, 1]):
            bad = np.flatnonzero(limits[:, 0] >= limits[:, 1]).tolist()
            raise InputError(f"lower >= upper at joints {bad}", file=file, field="limits", expected="lower < upper")
        vmax = vector("max_velocity", n, f"{n} positive numbers (rad/s)")
        if np.any(vmax <= 0):
            raise InputError("non-positive velocity limit", file=file, field="max_velocity", expected="positive rad/s")
        home = vector("home", n, f"{n} joint angles (rad)")
        if np.any(home < limits[:, 0]) or np.any(home > limits[:, 1]):
            bad = np.flatnonzero((home < limits[:, 0]) | (home > limits[:, 1])).tolist()
            raise InputError(f"home outside the limits at joints {bad}", file=file, field="home",
                             expected="each joint within its limits")
        offsets = vector("joint_offsets", n, f"{n} offsets (rad)")
        workspace = parse_workspace(data["workspace"], file=file) if data.get("workspace") is not None else None
        world = WorldRegistration.from_dict(data["world"], file=file) if data.get("world") is not None else None
        return cls(id=data["id"], robot=data["robot"], joint_names=tuple(names), joint_offsets=offsets,
                   limits=limits, max_velocity=vmax, home=home, workspace=workspace, world=world)

    def check_matches(self, caps: Capabilities, file: str | Path | None = None) -> None:
        """A calibration for another arm must not drive this one."""
        if tuple(self.joint_names) != tuple(caps.joint_names):
            raise InputError("joint names differ from the connected arm's", file=file, field="joint_names",
                             expected=str(list(caps.joint_names)))
        if caps.robot != self.robot:
            raise InputError(f"calibration is for '{self.robot}'", file=file, field="robot", expected=f"'{caps.robot}'")


def parse_workspace(raw: Any, file: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``{"lo": [x, y, z], "hi": [x, y, z]}`` (m, base frame) -> (lo, hi), lo < hi on every axis."""
    expected = '{"lo": [x, y, z], "hi": [x, y, z]} in metres with lo < hi'
    if not isinstance(raw, dict) or set(raw) != {"lo", "hi"}:
        raise InputError("not an object with exactly 'lo' and 'hi'", file=file, field="workspace", expected=expected)
    try:
        lo, hi = (np.asarray(raw[k], dtype=float) for k in ("lo", "hi"))
    except (TypeError, ValueError):
        raise InputError("not numbers", file=file, field="workspace", expected=expected) from None
    if lo.shape != (3,) or hi.shape != (3,) or not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise InputError("lo/hi are not three finite numbers each", file=file, field="workspace", expected=expected)
    if np.any(lo >= hi):
        raise InputError(f"empty box on axes {np.flatnonzero(lo >= hi).tolist()}", file=file, field="workspace",
                         expected=expected)
    if np.any(np.abs(np.concatenate([lo, hi])) > 5.0):
        raise InputError("a corner more than 5 m from the base (centimetres or millimetres given as metres?)",
                         file=file, field="workspace", expected=expected)
    return lo, hi


def load_registered(path: str | None, why: str, arm: str = "NAME") -> ArmCalibration:
    """The arm calibration at ``path`` with its world-to-base registration, which every use of person
    demos needs (their keypoints are in the reference marker's frame); a missing file, flag or
    registration is an error naming the command that provides it. ``why`` says what needs it."""
    if path is None:
        raise InputError(f"{why}: the arm's calibration with its world-to-base registration is needed",
                         field="--calibration", expected=f"--calibration ARM.json (`robot-irl arm check --arm {arm} "
                         "--write-calibration ARM.json`, then `robot-irl world touch|set --calibration ARM.json`)")
    if not Path(path).is_file():
        raise InputError("calibration file not found", file=path, field="--calibration",
                         expected=f"an arm calibration (`robot-irl arm check --arm {arm} --write-calibration ARM.json`)")
    cal = ArmCalibration.load(path)
    if cal.world is None:
        raise InputError("no world-to-base registration stored: person demos are seen in the reference marker's "
                         "frame and the robot needs that frame in its base frame", file=path, field="world",
                         expected=f"`robot-irl world touch --calibration {path} --spec SPEC.json --arm {arm}` or "
                                  f"`robot-irl world set --calibration {path} --pose X,Y,Z,YAW_DEG`")
    return cal
