"""How large a keypoint spec's markers appear in a recording, and whether that is enough to find them.

Why: a recording made too small (``record --size 160x120``) is only found out at extraction,
after the recording time is spent; a marker's apparent side (focal length x marker size / depth)
says beforehand whether ArUco can decode it.
"""
from __future__ import annotations

import numpy as np

from robot_irl.core.camera import CameraModel
from robot_irl.core.spec import KeypointSpec, Marker

# Smallest apparent marker side (px) extraction finds. Measured on `record --source sim` (Place-v0,
# iiwa, default camera, 25 frames) then `extract`: the 3 cm object marker (6.7 px at 280x210) was
# found in 20 of 25 frames; at 5.8 px (240x180) and below it was never found.
MIN_MARKER_SIDE_PX = 6.5


def marker_sides_px(spec: KeypointSpec, camera: CameraModel, xyz: np.ndarray) -> dict[str, float]:
    """Median apparent side (px) of every marker keypoint over the frames of ``xyz [T, K, 3]``
    (base frame, metres; NaN rows ignored)."""
    T_cam_base = np.linalg.inv(camera.T_base_cam)
    out: dict[str, float] = {}
    for k, kp in enumerate(spec):
        if not isinstance(kp.feature, Marker):
            continue
        p = xyz[:, k][np.isfinite(xyz[:, k]).all(axis=1)]
        depth = (p @ T_cam_base[:3, :3].T + T_cam_base[:3, 3])[:, 2]
        depth = depth[depth > 0]
        if depth.size:
            out[kp.name] = float(np.median(camera.K[0, 0] * kp.feature.size / depth))
    return out


def too_small(spec: KeypointSpec, camera: CameraModel, xyz: np.ndarray) -> dict[str, float]:
    """The markers that appear smaller than :data:`MIN_MARKER_SIDE_PX` (name -> side in px)."""
    return {n: s for n, s in marker_sides_px(spec, camera, xyz).items() if s < MIN_MARKER_SIDE_PX}
