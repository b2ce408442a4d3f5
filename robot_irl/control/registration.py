"""World to robot: the reference marker's frame (the world frame of person demos) in the robot base
frame, measured once per cell and stored in the arm's calibration file (key ``world``).

Three ways to get it, each recorded with its method:

- ``touch``: with the arm in teach mode, a person puts the flange (or a tool tip at a known
  offset) on each corner of the reference marker's black square; the corners' known world
  positions (from the marker's size and where the spec puts it) and the touched base positions
  (FK of the logged joints) give the rigid transform (Kabsch), with its RMS residual.
- ``hand-eye``: a camera whose camera-to-base is known sees the marker (T_base_cam · T_cam_world).
- ``typed``: given as x, y, z and a yaw (the marker standing on a level table) or a full 4x4.

JSON: ``{"T_base_world": 4x4, "method": "touch|hand-eye|typed", "rms_m": float|null, "points": n}``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from robot_irl.errors import InputError
from robot_irl.core.frames import transform

METHODS = ("touch", "hand-eye", "typed")
#: a touch registration whose corners disagree with a rigid fit by more than this is refused (m)
MAX_TOUCH_RMS_M = 0.005


@dataclass(frozen=True)
class WorldRegistration:
    T_base_world: np.ndarray
    method: str
    rms_m: float | None = None
    points: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"T_base_world": np.asarray(self.T_base_world).tolist(), "method": self.method,
                "rms_m": self.rms_m, "points": self.points}

    @classmethod
    def from_dict(cls, raw: Any, file: Any = None) -> "WorldRegistration":
        expected = '{"T_base_world": 4x4 rigid transform, "method": "touch|hand-eye|typed"}'
        if not isinstance(raw, dict) or "T_base_world" not in raw:
            raise InputError("not an object with T_base_world", file=file, field="world", expected=expected)
        T = check_rigid(raw["T_base_world"], file=file, field="world.T_base_world")
        method = raw.get("method")
        if method not in METHODS:
            raise InputError(f"method is {method!r}", file=file, field="world.method", expected=f"one of {list(METHODS)}")
        rms = raw.get("rms_m")
        return cls(T, method, None if rms is None else float(rms), int(raw.get("points", 0)))

    def to_base(self, x_world: np.ndarray) -> np.ndarray:
        return transform(self.T_base_world, x_world)


def check_rigid(raw: Any, *, file: Any = None, field: str = "T_base_world") -> np.ndarray:
    try:
        T = np.asarray(raw, dtype=float)
    except (TypeError, ValueError):
        raise InputError("not numbers", file=file, field=field, expected="a 4x4 rigid transform") from None
    if T.shape != (4, 4) or not np.all(np.isfinite(T)):
        raise InputError(f"shape {list(T.shape)} or non-finite values", file=file, field=field,
                         expected="a finite 4x4 rigid transform")
    R = T[:3, :3]
    if not np.allclose(R @ R.T, np.eye(3), atol=1e-4) or np.linalg.det(R) < 0 or not np.allclose(T[3], [0, 0, 0, 1]):
        raise InputError("not a rigid transform (rotation not orthonormal or last row not 0 0 0 1)", file=file,
                         field=field, expected="a 4x4 rotation + translation")
    if np.linalg.norm(T[:3, 3]) > 5.0:
        raise InputError("the marker is more than 5 m from the base (centimetres given as metres?)", file=file,
                         field=field, expected="a translation in metres")
    return T


def typed(pose: str) -> WorldRegistration:
    """``"x,y,z,yaw_deg"`` (marker frame z up, yawed about the base z) or ``"x,y,z,qx,qy,qz,qw"``."""
    try:
        v = [float(s) for s in pose.replace(" ", ",").split(",") if s]
    except ValueError:
        v = []
    if len(v) not in (4, 7):
        raise InputError(f"'{pose}'", field="--pose", expected="x,y,z,yaw_deg or x,y,z,qx,qy,qz,qw (metres, degrees)")
    T = np.eye(4)
    T[:3, :3] = (Rotation.from_euler("z", v[3], degrees=True) if len(v) == 4 else Rotation.from_quat(v[3:])).as_matrix()
    T[:3, 3] = v[:3]
    return WorldRegistration(check_rigid(T, field="--pose"), "typed")


def fit_points(world: np.ndarray, base: np.ndarray) -> tuple[np.ndarray, float]:
    """Rigid ``T_base_world`` (Kabsch) mapping ``world [N, 3]`` onto ``base [N, 3]``, and the RMS residual (m)."""
    a, b = np.asarray(world, float), np.asarray(base, float)
    if a.shape != b.shape or a.ndim != 2 or a.shape[1] != 3 or len(a) < 3:
        raise InputError(f"{len(a)} world points and {len(b)} touched points", field="points",
                         expected="the same >= 3 points (the marker's corners) in both frames")
    ca, cb = a.mean(0), b.mean(0)
    U, _, Vt = np.linalg.svd((a - ca).T @ (b - cb))
    d = np.sign(np.linalg.det(Vt.T @ U.T))
    R = Vt.T @ np.diag([1.0, 1.0, d]) @ U.T
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, cb - R @ ca
    rms = float(np.sqrt(np.mean(np.sum((a @ R.T + T[:3, 3] - b) ** 2, axis=1))))
    return T, rms


def touch(world_corners: np.ndarray, touched_base: np.ndarray) -> WorldRegistration:
    """From touched corners (base frame, FK of the arm in teach mode); refused when they do not
    fit a rigid motion of the marker (a corner missed, or the wrong order)."""
    T, rms = fit_points(world_corners, touched_base)
    if rms > MAX_TOUCH_RMS_M:
        raise InputError(f"the touched corners fit the marker only to {rms * 1000:.1f} mm RMS", field="touch",
                         expected=f"<= {MAX_TOUCH_RMS_M * 1000:g} mm: touch the corners in ArUco order (top-left, "
                                  "top-right, bottom-right, bottom-left of the upright marker)")
    return WorldRegistration(T, "touch", rms, len(world_corners))


def hand_eye(T_base_cam: np.ndarray, T_cam_world: np.ndarray) -> WorldRegistration:
    """From a camera with known camera-to-base that sees the reference marker."""
    return WorldRegistration(check_rigid(np.asarray(T_base_cam, float) @ np.asarray(T_cam_world, float)), "hand-eye")
