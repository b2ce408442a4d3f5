"""Where the learner's 3D for learned keypoints comes from: pixels placed on a plane facing the camera.

A learned keypoint is a heat-map centre in one image: it has pixels, no depth, and (unlike a marker)
no known height or size to recover one. The learner needs ``[T, K, 3]`` in metres, so each pixel is
put on its camera ray at one fixed depth ``depth`` (a plane perpendicular to the optical axis),
expressed in the robot base frame: ``p = o + depth * ray / (ray . axis)``.

Why this plane and not the table plane (``extract --table-z``): on a camera looking down at 25 deg
(the sim's ``front``), a point 30 cm above the table lifted onto the table plane lands ~1 m behind
it, and a pixel's error there is ~5x larger than at the object; a plane facing the camera maps
pixels to metres by one scale everywhere (linear in the normalised pixel coordinates: the image
itself, in metres at the workspace's depth), so the learner's metre-sized settings (2 cm goal
tolerance, the Gauss-Newton damping) keep their meaning, and nothing breaks near the horizon.
What it is not: the keypoints' true 3D. Two points on one ray get the same 3D; the dynamics
model learns which joints put a keypoint at which pixel, and that is all a goal image can ask for.

The default depth is where the optical axis meets the base's ground plane (z = 0): a property of the
calibrated camera, not of the scene's contents.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from robot_irl.core.camera import CameraModel
from robot_irl.errors import InputError


def axis_depth(camera: CameraModel, ground_z: float = 0.0) -> float:
    """Distance from the camera along its optical axis to the horizontal plane at ``ground_z``."""
    T = np.asarray(camera.T_base_cam, float)
    origin, axis = T[:3, 3], T[:3, 2]
    if axis[2] >= -1e-6 or origin[2] <= ground_z:
        raise InputError(f"the camera's optical axis {np.round(axis, 3).tolist()} from {np.round(origin, 3).tolist()} "
                         f"never meets the plane z = {ground_z}", field="camera.T_base_cam",
                         expected="a camera above the ground looking down at it, or an explicit depth")
    return float((ground_z - origin[2]) / axis[2])


@dataclass(frozen=True)
class ImageSpace:
    """Learned keypoints in metres: pixels of ``camera`` on the plane facing it at ``depth`` m."""

    camera: CameraModel
    depth: float

    def __post_init__(self) -> None:
        if not (np.isfinite(self.depth) and self.depth > 0):
            raise InputError(f"depth = {self.depth!r}", field="depth", expected="a positive distance in metres")

    @classmethod
    def facing(cls, camera: CameraModel, depth: float | None = None) -> "ImageSpace":
        """The space of ``camera`` at ``depth`` (default: :func:`axis_depth`)."""
        return cls(camera, float(axis_depth(camera) if depth is None else depth))

    def lift(self, uv: np.ndarray) -> np.ndarray:
        """Pixels ``[..., 2]`` (as the camera saw them) -> base-frame points ``[..., 3]`` (NaN stays NaN)."""
        from robot_irl.keypoints.geometry import ray_plane, undistort_points

        cam = self.camera
        T = np.asarray(cam.T_base_cam, float)
        ideal = undistort_points(np.asarray(uv, float), cam.K, cam.dist)
        return ray_plane(cam, ideal, T[:3, 3] + self.depth * T[:3, 2], T[:3, 2])

    def pixels(self, xyz: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`lift`: base-frame points on the plane -> pixels ``[..., 2]``."""
        return self.camera.project(np.asarray(xyz, float))

    def to_dict(self) -> dict[str, Any]:
        return {"camera": self.camera.to_dict(), "depth": self.depth}

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, file: str | None = None) -> "ImageSpace":
        if not isinstance(d, dict) or "camera" not in d or "depth" not in d:
            raise InputError("no image space", file=file, field="space",
                             expected='{"camera": {...}, "depth": metres}')
        return cls(CameraModel.from_dict(d["camera"], file=file), float(d["depth"]))
