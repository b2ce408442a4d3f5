"""A world frame from a ChArUco board lying still in the scene (no robot, a moving camera).

Each frame the board's corners are detected (``cv2.aruco.CharucoDetector``; partly covered
boards count: every corner knows its id), and the camera pose in the board's frame comes from
``solvePnP`` on them (IPPE for the plane, then Levenberg-Marquardt). A frame with fewer than
``min_corners`` corners, or whose corners fit the pose worse than ``max_reproj_px`` (blur, a
corner misread), gets no world pose: its keypoints get no 3D rather than 3D in another frame.
The frame is OpenCV's board frame: origin at the board's top-left outer corner, x along its
columns, y along its rows, z into the board.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from robot_irl.core.camera import CameraModel
from robot_irl.errors import InputError
from robot_irl.keypoints.calibrate import BoardSpec
from robot_irl.keypoints.geometry import make_T


@dataclass(frozen=True)
class BoardPose:
    """The camera's pose relative to the board in one frame."""

    T_cam_board: np.ndarray
    reproj_px: float
    corners: int


def parse_board(text: str) -> BoardSpec:
    """``COLSxROWS:SQUARE:MARKER[:DICT]`` (metres), e.g. ``7x5:0.03:0.022:DICT_4X4_50``."""
    parts = text.split(":")
    try:
        cols, rows = (int(v) for v in parts[0].lower().split("x"))
        square, marker = float(parts[1]), float(parts[2])
        dictionary = parts[3] if len(parts) > 3 else "DICT_4X4_50"
        if len(parts) > 4:
            raise ValueError
    except (ValueError, IndexError):
        raise InputError(f"--world-board {text!r}", field="--world-board",
                         expected="COLSxROWS:SQUARE:MARKER[:DICT] in metres, e.g. 7x5:0.03:0.022:DICT_4X4_50") from None
    spec = BoardSpec(cols, rows, square, marker, dictionary)
    spec.board()   # validates sizes and the dictionary
    return spec


class BoardWorld:
    """Per-frame ``T_cam_board`` from a ChArUco board seen by ``camera``."""

    def __init__(self, board: BoardSpec, camera: CameraModel, *, min_corners: int = 6,
                 max_reproj_px: float = 1.5) -> None:
        self.board = board.board()
        self.detector = cv2.aruco.CharucoDetector(self.board)
        self.camera, self.min_corners, self.max_reproj_px = camera, min_corners, max_reproj_px
        self.missing = self.rejected = 0

    def pose(self, gray: np.ndarray) -> BoardPose | None:
        """The board's pose in this frame, or None (counted in ``missing`` / ``rejected``)."""
        corners, ids, _, _ = self.detector.detectBoard(gray)
        if ids is None or len(ids) < self.min_corners:
            self.missing += 1
            return None
        obj, img = self.board.matchImagePoints(corners, ids)
        obj, img = obj.reshape(-1, 3).astype(np.float64), img.reshape(-1, 2).astype(np.float64)
        K, dist = self.camera.K, np.asarray(self.camera.dist, np.float64)
        ok, rvec, tvec = cv2.solvePnP(obj, img, K, dist, flags=cv2.SOLVEPNP_IPPE)
        if not ok:
            self.rejected += 1
            return None
        rvec, tvec = cv2.solvePnPRefineLM(obj, img, K, dist, rvec, tvec)
        proj = cv2.projectPoints(obj, rvec, tvec, K, dist)[0].reshape(-1, 2)
        reproj = float(np.sqrt(np.mean(np.sum((proj - img) ** 2, axis=1))))
        if reproj > self.max_reproj_px:
            self.rejected += 1
            return None
        return BoardPose(make_T(cv2.Rodrigues(rvec)[0], tvec.ravel()), reproj, len(obj))
