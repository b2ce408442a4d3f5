"""Pinhole camera model in OpenCV's conventions.

Camera axes: x right, y down, z forward. ``T_base_cam`` (4×4) maps camera coordinates to robot-base
coordinates: ``p_base = T_base_cam @ p_cam``. Pixels: integer pixel centres (OpenCV).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robot_irl.errors import InputError


@dataclass
class CameraModel:
    K: np.ndarray                      # 3×3 intrinsics
    size: tuple[int, int]              # (width, height) pixels
    T_base_cam: np.ndarray = field(default_factory=lambda: np.eye(4))
    dist: np.ndarray = field(default_factory=lambda: np.zeros(5))
    name: str = "cam0"

    def __post_init__(self) -> None:
        self.K = np.asarray(self.K, dtype=np.float64).reshape(3, 3)
        self.T_base_cam = np.asarray(self.T_base_cam, dtype=np.float64).reshape(4, 4)
        self.dist = np.asarray(self.dist, dtype=np.float64).ravel()
        self.size = (int(self.size[0]), int(self.size[1]))

    @property
    def T_cam_base(self) -> np.ndarray:
        return np.linalg.inv(self.T_base_cam)

    def to_camera(self, p_base: np.ndarray) -> np.ndarray:
        """Points ``[..., 3]`` in the base frame → camera frame."""
        p = np.asarray(p_base, dtype=np.float64)
        T = self.T_cam_base
        return p @ T[:3, :3].T + T[:3, 3]

    def project(self, p_base: np.ndarray) -> np.ndarray:
        """Project base-frame points ``[..., 3]`` to pixels ``[..., 2]`` (no distortion applied:
        sim cameras have none; real points are undistorted before geometry). Points behind the
        camera come back NaN."""
        pc = self.to_camera(p_base)
        z = pc[..., 2:3]
        with np.errstate(invalid="ignore", divide="ignore"):
            uv = (pc[..., :2] / z) * np.array([self.K[0, 0], self.K[1, 1]]) + np.array([self.K[0, 2], self.K[1, 2]])
        uv[(z[..., 0] <= 0)] = np.nan
        return uv

    def ray(self, uv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rays through (undistorted) pixels: origin ``[3]`` and unit directions ``[..., 3]``,
        both in the base frame."""
        uv = np.asarray(uv, dtype=np.float64)
        x = (uv[..., 0] - self.K[0, 2]) / self.K[0, 0]
        y = (uv[..., 1] - self.K[1, 2]) / self.K[1, 1]
        d = np.stack([x, y, np.ones_like(x)], axis=-1) @ self.T_base_cam[:3, :3].T
        d /= np.linalg.norm(d, axis=-1, keepdims=True)
        return self.T_base_cam[:3, 3].copy(), d

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "K": self.K.tolist(), "dist": self.dist.tolist(),
                "size": list(self.size), "T_base_cam": self.T_base_cam.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, file: str | None = None) -> "CameraModel":
        try:
            K = np.asarray(d["K"], dtype=np.float64)
            size = d["size"]
            T = np.asarray(d.get("T_base_cam", np.eye(4)), dtype=np.float64)
            dist = np.asarray(d.get("dist", np.zeros(5)), dtype=np.float64)
        except KeyError as e:
            raise InputError("missing camera field", file=file, field=f"camera.{e.args[0]}",
                             expected="K (3×3), size [w, h], T_base_cam (4×4), dist") from None
        except (TypeError, ValueError) as e:
            raise InputError(f"camera field is not numeric ({e})", file=file, field="camera",
                             expected="numbers") from None
        if K.shape != (3, 3):
            raise InputError(f"K has shape {K.shape}", file=file, field="camera.K", expected="3×3")
        if T.shape != (4, 4):
            raise InputError(f"T_base_cam has shape {T.shape}", file=file, field="camera.T_base_cam", expected="4×4")
        if not (isinstance(size, (list, tuple)) and len(size) == 2 and all(int(s) > 0 for s in size)):
            raise InputError(f"size is {size!r}", file=file, field="camera.size", expected="[width, height] > 0")
        return cls(K=K, size=(int(size[0]), int(size[1])), T_base_cam=T, dist=dist, name=str(d.get("name", "cam0")))


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray = np.array([0.0, 0.0, 1.0])) -> np.ndarray:
    """T_base_cam for a camera at ``eye`` looking at ``target`` (OpenCV axes)."""
    eye, target, up = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-9:
        raise InputError("camera up vector is parallel to its viewing direction", field="camera.up",
                         expected="an up vector not along (target - eye)")
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    T = np.eye(4)
    T[:3, 0], T[:3, 1], T[:3, 2], T[:3, 3] = x, y, z, eye
    return T


def intrinsics_from_fov(width: int, height: int, fov_y_deg: float) -> np.ndarray:
    """K for PyBullet's TinyRenderer with a vertical field of view ``fov_y_deg``.

    Measured against rendered pixels (tests/test_sim_projection.py): f = H / (2 tan(fov/2)),
    cx = W/2 - 0.5 + 0.5, cy = H/2 - 1 + ... are checked there; see ``sim.camera``.
    """
    f = height / (2.0 * np.tan(np.deg2rad(fov_y_deg) / 2.0))
    return np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])
