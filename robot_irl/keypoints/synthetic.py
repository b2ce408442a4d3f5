"""Synthetic views with exact ground truth: ArUco markers, shaded spheres and ChArUco boards.

They let the detectors, the calibration and the geometry be checked where no simulator or camera
is at hand (unit tests, a quick self-check). Planar textures are warped through the exact pinhole
homography and rendered ``ss``× supersampled, then area-averaged, so edges are anti-aliased like
a real lens would blur them.
"""
from __future__ import annotations

import cv2
import numpy as np

from robot_irl.core.camera import CameraModel
from robot_irl.core.spec import Blob, Marker
from robot_irl.keypoints.detectors import aruco_dictionary
from robot_irl.keypoints.geometry import make_T, marker_square, transform


def background(size: tuple[int, int], seed: int = 0, level: int = 150) -> np.ndarray:
    """A mildly textured grey table top (gives optical flow something to hold on to)."""
    rng = np.random.default_rng(seed)
    w, h = size
    noise = cv2.GaussianBlur(rng.normal(0, 25, (h // 8 + 1, w // 8 + 1)).astype(np.float32), (0, 0), 1.0)
    img = level + cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)
    return cv2.cvtColor(np.clip(img, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)


def _project_cam(K: np.ndarray, T_cam_obj: np.ndarray, pts: np.ndarray) -> np.ndarray:
    pc = transform(T_cam_obj, pts)
    return (pc[:, :2] / pc[:, 2:3]) * [K[0, 0], K[1, 1]] + [K[0, 2], K[1, 2]]


def warp_texture(image: np.ndarray, texture: np.ndarray, quad_px: np.ndarray, ss: int = 4) -> None:
    """Paint ``texture`` (grey or BGR) into ``image`` in place so that its outer pixel edges land
    on ``quad_px`` (TL, TR, BR, BL; OpenCV pixel-centre coordinates of ``image``)."""
    h_img, w_img = image.shape[:2]
    x0, y0 = np.floor(quad_px.min(0)).astype(int) - 2
    x1, y1 = np.ceil(quad_px.max(0)).astype(int) + 3
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w_img), min(y1, h_img)
    if x1 <= x0 or y1 <= y0:
        return
    if texture.ndim == 2:
        texture = cv2.cvtColor(texture, cv2.COLOR_GRAY2BGR)
    th, tw = texture.shape[:2]
    src = np.float32([[-0.5, -0.5], [tw - 0.5, -0.5], [tw - 0.5, th - 0.5], [-0.5, th - 0.5]])
    dst = ((quad_px - [x0, y0]) * ss + (ss - 1) / 2.0).astype(np.float32)
    H = cv2.getPerspectiveTransform(src, dst)
    big = (int((x1 - x0) * ss), int((y1 - y0) * ss))
    col = cv2.warpPerspective(texture, H, big, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    alpha = cv2.warpPerspective(np.full((th, tw), 255, np.uint8), H, big, flags=cv2.INTER_LINEAR)
    col = cv2.resize(col, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA).astype(np.float32)
    a = cv2.resize(alpha, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA).astype(np.float32)[..., None] / 255
    roi = image[y0:y1, x0:x1].astype(np.float32)
    image[y0:y1, x0:x1] = np.clip(roi * (1 - a) + col * a, 0, 255).astype(np.uint8)


def marker_texture(marker: Marker, cell_px: int = 24, quiet_cells: int = 1) -> tuple[np.ndarray, float]:
    """Marker image with a white quiet zone; returns it and its side over the black square's side."""
    d = aruco_dictionary(marker.dictionary)
    cells = d.markerSize + 2
    img = cv2.aruco.generateImageMarker(d, marker.id, cells * cell_px, borderBits=1)
    pad = quiet_cells * cell_px
    return cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=255), (cells + 2 * quiet_cells) / cells


def draw_marker(image: np.ndarray, K: np.ndarray, T_cam_marker: np.ndarray, marker: Marker, ss: int = 4) -> np.ndarray:
    """Render a marker (frame as in ``geometry``: z out of the face) and return its true corners ``[4, 2]``."""
    tex, scale = marker_texture(marker)
    quad = _project_cam(K, T_cam_marker, marker_square(marker.size * scale))
    warp_texture(image, tex, quad, ss)
    return _project_cam(K, T_cam_marker, marker_square(marker.size))


def draw_sphere(image: np.ndarray, K: np.ndarray, p_cam: np.ndarray, blob: Blob, ss: int = 4,
                occlude: float = 0.0) -> np.ndarray:
    """Render a shaded sphere (disc of the projected radius, Lambert-like shading, small
    highlight) and return its true projected centre. ``occlude`` hides that fraction of its
    width from the right, as a passing object would."""
    p = np.asarray(p_cam, np.float64)
    uv = p[:2] / p[2] * [K[0, 0], K[1, 1]] + [K[0, 2], K[1, 2]]
    r = K[0, 0] * blob.radius / np.sqrt(max(p @ p - blob.radius ** 2, 1e-12))  # on-axis apparent radius
    h_img, w_img = image.shape[:2]
    x0, y0 = np.floor(uv - r).astype(int) - 2
    x1, y1 = np.ceil(uv + r).astype(int) + 3
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w_img), min(y1, h_img)
    if x1 <= x0 or y1 <= y0:
        return uv
    ys, xs = np.mgrid[0:(y1 - y0) * ss, 0:(x1 - x0) * ss].astype(np.float64)
    u = (xs - (ss - 1) / 2.0) / ss + x0 - uv[0]
    v = (ys - (ss - 1) / 2.0) / ss + y0 - uv[1]
    rho2 = (u ** 2 + v ** 2) / r ** 2
    inside = rho2 <= 1.0
    if occlude > 0:
        inside &= u <= r * (1 - 2 * occlude)
    nz = np.sqrt(np.clip(1 - rho2, 0, 1))
    shade = 0.55 + 0.45 * np.clip(0.5 * nz - 0.35 * u / r - 0.35 * v / r + 0.35, 0, 1)
    spec = np.exp(-((u / r + 0.35) ** 2 + (v / r + 0.35) ** 2) / 0.01)
    rgb = np.asarray(blob.rgb)
    col = np.clip(rgb[::-1][None, None] * shade[..., None] * 255 + spec[..., None] * 120, 0, 255)
    a = inside.astype(np.float64)
    col_s = cv2.resize(col * a[..., None], (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
    a_s = cv2.resize(a, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)[..., None]
    roi = image[y0:y1, x0:x1].astype(np.float64)
    image[y0:y1, x0:x1] = np.clip(roi * (1 - a_s) + col_s, 0, 255).astype(np.uint8)
    return uv


def camera_640x480(fov_y_deg: float = 60.0, T_base_cam: np.ndarray | None = None) -> CameraModel:
    """The acceptance camera: 640×480, 60° vertical field of view, square pixels."""
    f = 480 / (2 * np.tan(np.deg2rad(fov_y_deg) / 2))
    K = np.array([[f, 0, 319.5], [0, f, 239.5], [0, 0, 1.0]])
    return CameraModel(K=K, size=(640, 480), T_base_cam=np.eye(4) if T_base_cam is None else T_base_cam)


def facing_pose(distance: float, tilt_deg: tuple[float, float] = (0.0, 0.0), offset_px: tuple[float, float] = (0.0, 0.0),
                K: np.ndarray | None = None, roll_deg: float = 0.0) -> np.ndarray:
    """T_cam_marker for a marker ``distance`` metres ahead facing the camera, tilted about its x/y
    axes and shifted so its centre lands ``offset_px`` from the principal point."""
    f = K[0, 0] if K is not None else 415.69
    R_face = np.diag([1.0, -1.0, -1.0])  # marker z towards the camera, marker y up in the image
    rx, ry, rz = np.deg2rad([tilt_deg[0], tilt_deg[1], roll_deg])
    R = R_face @ cv2.Rodrigues(np.array([rx, ry, rz]))[0]
    t = np.array([offset_px[0] / f * distance, offset_px[1] / f * distance, distance])
    return make_T(R, t)


def charuco_view(board: cv2.aruco.CharucoBoard, K: np.ndarray, T_cam_board: np.ndarray, size: tuple[int, int],
                 px_per_square: int = 60, seed: int = 0) -> np.ndarray:
    """A ChArUco board (board frame as OpenCV's: origin top-left, x right, y down) seen by K."""
    sx, sy = board.getChessboardSize()
    L = board.getSquareLength()
    tex = board.generateImage((sx * px_per_square, sy * px_per_square), marginSize=0, borderBits=1)
    corners = np.array([[0, 0, 0], [sx * L, 0, 0], [sx * L, sy * L, 0], [0, sy * L, 0]], np.float64)
    img = background(size, seed, level=90)
    warp_texture(img, tex, _project_cam(K, T_cam_board, corners), ss=2)
    return img
