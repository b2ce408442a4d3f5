"""Scene cameras: PyBullet view/projection matrices and the matching OpenCV camera model."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sim.bullet import p

from robot_irl.core.camera import CameraModel, look_at
from robot_irl.errors import InputError, UnknownNameError


@dataclass(frozen=True)
class SceneCamera:
    """A pinhole camera at ``eye`` looking at ``target``; ``fov_y`` is the vertical field of view
    in degrees, ``size`` (width, height) in pixels."""

    eye: tuple[float, float, float] = (0.55, -0.8, 0.5)
    target: tuple[float, float, float] = (0.55, 0.0, 0.12)
    up: tuple[float, float, float] = (0.0, 0.0, 1.0)
    fov_y: float = 60.0
    size: tuple[int, int] = (320, 240)
    near: float = 0.05
    far: float = 5.0
    name: str = "front"

    def __post_init__(self) -> None:
        if not (0.0 < self.fov_y < 170.0):
            raise InputError(f"fov_y is {self.fov_y}", field="camera.fov_y", expected="0 < degrees < 170")
        if len(self.size) != 2 or min(self.size) <= 0:
            raise InputError(f"size is {self.size}", field="camera.size", expected="(width, height) > 0")

    def with_size(self, size: tuple[int, int]) -> "SceneCamera":
        return SceneCamera(self.eye, self.target, self.up, self.fov_y, tuple(size), self.near, self.far, self.name)

    @property
    def view_matrix(self) -> list[float]:
        return p.computeViewMatrix(self.eye, self.target, self.up)

    @property
    def projection_matrix(self) -> list[float]:
        w, h = self.size
        return p.computeProjectionMatrixFOV(self.fov_y, w / h, self.near, self.far)

    def model(self) -> CameraModel:
        """The OpenCV camera model of this render camera.

        TinyRenderer's pixel grid, measured against rendered pixels (tests/test_sim_camera.py):
        f = H / (2 tan(fov/2)), cx = W/2, cy = H/2 - 1 (not the textbook (W-1)/2, (H-1)/2).
        """
        w, h = self.size
        f = h / (2.0 * np.tan(np.deg2rad(self.fov_y) / 2.0))
        K = np.array([[f, 0.0, w / 2.0], [0.0, f, h / 2.0 - 1.0], [0.0, 0.0, 1.0]])
        return CameraModel(K=K, size=(w, h), T_base_cam=look_at(self.eye, self.target, self.up), name=self.name)


CAMERAS: dict[str, SceneCamera] = {
    "front": SceneCamera(),
    "close": SceneCamera(eye=(0.55, -0.55, 0.35), target=(0.55, 0.0, 0.1), name="close"),
    "top": SceneCamera(eye=(0.55, -0.05, 1.3), target=(0.55, 0.0, 0.0), up=(1.0, 0.0, 0.0), name="top"),
}


def get_camera(name: str, size: tuple[int, int] | None = None) -> SceneCamera:
    if name not in CAMERAS:
        raise UnknownNameError("camera", name, CAMERAS)
    cam = CAMERAS[name]
    return cam.with_size(size) if size is not None else cam
