"""Camera intrinsics from a ChArUco board video: K, distortion and the RMS reprojection error.

A ChArUco board mixes chessboard corners (precise saddle points) with ArUco markers (each corner
knows its id, so partial and tilted views count). Views are taken every ``step`` frames; those
with too few corners are skipped; ``cv2.calibrateCamera`` on the matched object/image points.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from robot_irl.core.camera import CameraModel
from robot_irl.errors import InputError
from robot_irl.keypoints.detectors import aruco_dictionary
from robot_irl.keypoints.video import FrameSource


@dataclass(frozen=True)
class BoardSpec:
    """A ChArUco board: squares across × down, square and marker side (m), dictionary."""

    squares_x: int = 7
    squares_y: int = 5
    square: float = 0.03
    marker: float = 0.022
    dictionary: str = "DICT_4X4_50"

    def board(self) -> cv2.aruco.CharucoBoard:
        if self.squares_x < 2 or self.squares_y < 2 or not (0 < self.marker < self.square):
            raise InputError(f"board {self}", field="board", expected="≥ 2×2 squares and 0 < marker < square (m)")
        return cv2.aruco.CharucoBoard((self.squares_x, self.squares_y), self.square, self.marker,
                                      aruco_dictionary(self.dictionary))


@dataclass
class Calibration:
    camera: CameraModel
    rms: float            # RMS reprojection error, pixels
    views: int            # frames used
    frames: int           # frames read

    def to_dict(self) -> dict[str, Any]:
        return {**self.camera.to_dict(), "rms_px": self.rms, "views": self.views, "frames": self.frames,
                "T_base_cam_known": False}


def calibrate_charuco(video: str | Path | Iterable[np.ndarray], board: BoardSpec = BoardSpec(), *, step: int = 1,
                      min_corners: int = 8, max_views: int = 60, fix_k3: bool = True, name: str = "cam0") -> Calibration:
    """Calibrate from every ``step``-th frame showing ≥ ``min_corners`` board corners, keeping
    at most ``max_views`` evenly spread views (calibration cost grows with views)."""
    cb = board.board()
    det = cv2.aruco.CharucoDetector(cb)
    src = FrameSource(video)
    obj_pts, img_pts = [], []
    size = None
    n = 0
    for i, bgr in enumerate(src):
        n += 1
        if i % step:
            continue
        gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) if bgr.ndim == 3 else bgr
        size = gray.shape[::-1]
        corners, ids, _, _ = det.detectBoard(gray)
        if ids is None or len(ids) < min_corners:
            continue
        o, p = cb.matchImagePoints(corners, ids)
        if o is None or len(o) < min_corners:
            continue
        obj_pts.append(o.astype(np.float32))
        img_pts.append(p.astype(np.float32))
    if n == 0:
        raise InputError("the video has no frames", file=src.name, field="video", expected="a ChArUco board video")
    if len(obj_pts) < 4:
        raise InputError(f"the board was found in only {len(obj_pts)} of {n} frames", file=src.name, field="video",
                         expected=f"≥ 4 views of a {board.squares_x}×{board.squares_y} ChArUco board "
                                  f"({board.dictionary}) at varied angles; check --board/--dict")
    if len(obj_pts) > max_views:
        keep = np.linspace(0, len(obj_pts) - 1, max_views).round().astype(int)
        obj_pts, img_pts = [obj_pts[i] for i in keep], [img_pts[i] for i in keep]
    flags = cv2.CALIB_FIX_K3 if fix_k3 else 0
    rms, K, dist, _, _ = cv2.calibrateCamera(obj_pts, img_pts, size, None, None, flags=flags)
    return Calibration(CameraModel(K=K, size=size, dist=dist.ravel(), name=name), float(rms), len(obj_pts), n)
