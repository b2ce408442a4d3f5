"""Camera intrinsics from a ChArUco board video: K, distortion and the RMS reprojection error.

A ChArUco board mixes chessboard corners (precise saddle points) with ArUco markers (each corner
knows its id, so partial and tilted views count). Views are taken every ``step`` frames; those
with too few corners are skipped; ``cv2.calibrateCamera`` on the matched object/image points.

A board held in a hand and filmed with a phone gives blurred frames whose corners are found but
misplaced (a rolling shutter skews a board moved fast): the worst view is dropped while its own
RMS reprojection error exceeds ``max(3 x`` the median view's, 0.25 px``)``, the camera calibrated
again after each (a skewed view pulls K, so the others' errors change). What the views cover is reported:
``coverage`` (fraction of a 6x4 grid over the image holding a detected corner; corners of the
image seen by no view leave the distortion there a guess) and the board's largest tilt to the
camera (views facing the camera squarely do not fix the focal length well).
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


COVERAGE_GRID = (6, 4)      # cells across x down over the image, for ``coverage``
VIEW_OUTLIER = 3.0          # a view whose RMS is over this many times the median view's ...
VIEW_OUTLIER_MIN_PX = 0.25  # ... and over this is dropped
MIN_VIEWS = 5


@dataclass
class Calibration:
    camera: CameraModel
    rms: float            # RMS reprojection error, pixels
    views: int            # frames used
    frames: int           # frames read
    views_rejected: int = 0       # views dropped as outliers (blurred, misplaced corners)
    coverage: float = 0.0         # fraction of the COVERAGE_GRID cells holding a detected corner
    max_tilt_deg: float = 0.0     # largest angle between the board's normal and the viewing axis

    def to_dict(self) -> dict[str, Any]:
        return {**self.camera.to_dict(), "rms_px": self.rms, "views": self.views, "frames": self.frames,
                "views_rejected": self.views_rejected, "coverage": self.coverage,
                "max_tilt_deg": self.max_tilt_deg, "T_base_cam_known": False}

    def advice(self) -> list[str]:
        """What to film again, if anything (empty when the views look sufficient)."""
        out = []
        if self.coverage < 0.5:
            out.append(f"the board covered {self.coverage:.0%} of the image: move it into the corners and edges")
        if self.max_tilt_deg < 20:
            out.append(f"the board was tilted at most {self.max_tilt_deg:.0f} degrees: tilt it 30-45 degrees "
                       "in several directions")
        return out


def _coverage(img_pts: list[np.ndarray], size: tuple[int, int]) -> float:
    gx, gy = COVERAGE_GRID
    cells = set()
    for p in img_pts:
        q = p.reshape(-1, 2)
        cx = np.clip((q[:, 0] / size[0] * gx).astype(int), 0, gx - 1)
        cy = np.clip((q[:, 1] / size[1] * gy).astype(int), 0, gy - 1)
        cells.update(zip(cx.tolist(), cy.tolist()))
    return len(cells) / (gx * gy)


def _view_rms(obj: np.ndarray, img: np.ndarray, rvec: np.ndarray, tvec: np.ndarray, K: np.ndarray,
              dist: np.ndarray) -> float:
    proj = cv2.projectPoints(obj.reshape(-1, 3), rvec, tvec, K, dist)[0].reshape(-1, 2)
    return float(np.sqrt(np.mean(np.sum((proj - img.reshape(-1, 2)) ** 2, axis=1))))


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
    rms, K, dist, rvecs, tvecs = cv2.calibrateCamera(obj_pts, img_pts, size, None, None, flags=flags)
    rejected = 0
    while len(obj_pts) > MIN_VIEWS:   # the worst view out while it is an outlier, then calibrate again
        per_view = [_view_rms(o, p, r, t, K, dist) for o, p, r, t in zip(obj_pts, img_pts, rvecs, tvecs)]
        worst = int(np.argmax(per_view))
        if per_view[worst] <= max(VIEW_OUTLIER * float(np.median(per_view)), VIEW_OUTLIER_MIN_PX):
            break
        del obj_pts[worst], img_pts[worst]
        rejected += 1
        rms, K, dist, rvecs, tvecs = cv2.calibrateCamera(obj_pts, img_pts, size, None, None, flags=flags)
    tilt = max(float(np.degrees(np.arccos(abs(cv2.Rodrigues(r)[0][2, 2])))) for r in rvecs)
    return Calibration(CameraModel(K=K, size=size, dist=dist.ravel(), name=name), float(rms), len(obj_pts), n,
                       views_rejected=rejected, coverage=_coverage(img_pts, size), max_tilt_deg=tilt)
