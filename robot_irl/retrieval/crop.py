"""Crop camera frames to the robot's workspace before they are shrunk for a small CLIP.

Why: a 160x120 sim frame squashed to 64 px leaves the object ~3 px wide; most of the frame is
sky, arm base and floor, which say nothing about the variant (object colour and shape, goal
patch, motion). The workspace (table top, objects, goal patch, the end effector above them) is a
box in the robot base frame; projecting its corners through the episode's camera model gives
the pixel rectangle to keep, so the crop follows any camera pose and intrinsics.
"""
from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from robot_irl.core.camera import CameraModel
from robot_irl.errors import InputError

if TYPE_CHECKING:
    from robot_irl.library import Episode

# x, y, z ranges in the robot base frame (metres): the table region the sim tasks use (objects
# start at |y| <= 0.065 m, the Reach distractor stands at y = 0.2), up to the height the end
# effector carries objects at. The near edge is kept at y = -0.1 rather than the table's -0.3:
# the default camera looks along +y, so the near strip widened the rectangle by 1.4x with
# nothing in it but table, and the objects lost that much resolution.
Box = tuple[tuple[float, float], tuple[float, float], tuple[float, float]]  # (x0, x1), (y0, y1), (z0, z1)
WORKSPACE_BOX: Box = ((0.3, 0.8), (-0.1, 0.25), (0.0, 0.35))
Rect = tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive), pixels


def workspace_rect(camera: CameraModel, box: Box = WORKSPACE_BOX,
                   margin: float = 0.04, min_visible: float = 0.5, min_side: int = 8) -> Rect | None:
    """The pixel rectangle holding the projected workspace box (plus `margin` of its size on
    each side), clipped to the image; None when the box is behind the camera, when less than
    `min_visible` of its projected area lies on the image (a camera that does not look at the
    workspace: keep the whole frame rather than a sliver of it), or when the rectangle is under
    `min_side` pixels. A far camera that sees the whole box small gets a small rectangle: that is
    where its pixels about the task are."""
    corners = np.array(list(itertools.product(*box)), dtype=np.float64)
    uv = camera.project(corners)
    if not np.isfinite(uv).all():
        return None
    w, h = camera.size
    (u0, v0), (u1, v1) = uv.min(0), uv.max(0)
    du, dv = (u1 - u0) * margin, (v1 - v0) * margin
    u0, v0, u1, v1 = u0 - du, v0 - dv, u1 + du, v1 + dv
    x0, y0 = max(0, int(np.floor(u0))), max(0, int(np.floor(v0)))
    x1, y1 = min(w, int(np.ceil(u1)) + 1), min(h, int(np.ceil(v1)) + 1)
    if x1 - x0 < min_side or y1 - y0 < min_side:
        return None
    if (x1 - x0) * (y1 - y0) < min_visible * (u1 - u0) * (v1 - v0):
        return None
    return x0, y0, x1, y1


def episode_rect(ep: "Episode", camera: str, box: Box | None = WORKSPACE_BOX) -> Rect | None:
    """The rectangle of `box` in one episode's camera; None (the whole frame) without a camera
    model or without a box."""
    model = ep.camera_model(camera)
    return None if model is None or box is None else workspace_rect(model, box)


def parse_box(values: Any, *, file: str | Path | None = None, field: str = "workspace_box") -> Box:
    """Six numbers x0 x1 y0 y1 z0 z1, flat or as three (lo, hi) pairs (metres, robot base frame),
    as a Box; an InputError naming the file and field when they are not three finite, increasing
    ranges."""
    expected = "six finite numbers x0 x1 y0 y1 z0 z1 (metres) with x0 < x1, y0 < y1, z0 < z1"
    try:
        v = np.asarray(values, dtype=float).ravel()
    except (TypeError, ValueError):
        raise InputError(f"{values!r}", file=file, field=field, expected=expected) from None
    if v.size != 6 or not np.isfinite(v).all() or not (v[0] < v[1] and v[2] < v[3] and v[4] < v[5]):
        raise InputError(f"{values!r}", file=file, field=field, expected=expected)
    x0, x1, y0, y1, z0, z1 = (float(x) for x in v)
    return (x0, x1), (y0, y1), (z0, z1)


def crop_frames(frames: Sequence[np.ndarray], rect: Rect | None) -> list[np.ndarray]:
    """Frames cut to `rect` (frames of another size than the rectangle fits are kept whole)."""
    if rect is None:
        return list(frames)
    x0, y0, x1, y1 = rect
    return [f[y0:y1, x0:x1] if f.shape[0] >= y1 and f.shape[1] >= x1 else f for f in frames]
