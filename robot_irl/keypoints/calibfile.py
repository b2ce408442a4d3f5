"""Intrinsics from a calibration file someone else made: OpenCV FileStorage (YAML, XML or JSON).

Published calibrations rarely say at which resolution they were made, and a phone video is often
recorded at another one. K scales with the image (a calibration made at 1280x720 fits a 640x360
video with K halved); D does not. So the size comes from the file (``image_width`` /
``image_height`` or ``image_size``/``size``), else from the caller (``--calib-size``), else the
principal point must fit the video (within 15 % of its centre) and the calibration is taken as
made at the video's size. Otherwise the error says which size to give. Only scaling is done: a
different aspect ratio (a crop) is refused.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from robot_irl.core.camera import CameraModel
from robot_irl.errors import InputError

K_KEYS = ("K", "camera_matrix", "cameraMatrix", "intrinsics")
D_KEYS = ("D", "dist_coeffs", "distCoeffs", "distortion_coefficients", "dist")
CENTRE_TOLERANCE = 0.15


def _matrix(fs: cv2.FileStorage, keys: tuple[str, ...]) -> tuple[str, np.ndarray] | None:
    for k in keys:
        node = fs.getNode(k)
        if not node.empty():
            m = node.mat()
            if m is None and node.isSeq():
                m = np.array([node.at(i).real() for i in range(node.size())])
            if m is not None:
                return k, np.asarray(m, np.float64)
    return None


def _size(fs: cv2.FileStorage) -> tuple[int, int] | None:
    w, h = fs.getNode("image_width"), fs.getNode("image_height")
    if not w.empty() and not h.empty():
        return int(w.real()), int(h.real())
    for k in ("image_size", "size", "imageSize"):
        node = fs.getNode(k)
        if not node.empty():
            m = node.mat() if node.isMap() else np.array([node.at(i).real() for i in range(node.size())])
            if m is not None and np.asarray(m).size == 2:
                return int(np.ravel(m)[0]), int(np.ravel(m)[1])
    return None


def load_intrinsics(path: str | Path, video_size: tuple[int, int], calib_size: tuple[int, int] | None = None,
                    name: str = "cam0") -> tuple[CameraModel, dict]:
    """A camera model for a ``video_size`` (w, h) video from the calibration in ``path``, and a
    record of what was done (``calibration_size``, ``scale``, ``size_from``). The model's frame is
    the camera's own (``T_base_cam`` identity: 3D comes out in the camera frame)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("calibration file not found", file=path, field="calibration",
                         expected="an OpenCV FileStorage YAML/XML/JSON with K and D")
    try:
        fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    except (cv2.error, SystemError) as e:   # OpenCV's Python binding reports some parse errors as SystemError
        raise InputError(f"cannot parse calibration ({str(e).strip().splitlines()[-1][:200]})", file=path,
                         field="calibration", expected="OpenCV FileStorage YAML (%YAML:1.0), XML or JSON") from None
    try:
        if not fs.isOpened():
            raise InputError("cannot open calibration", file=path, field="calibration",
                             expected="OpenCV FileStorage YAML (%YAML:1.0), XML or JSON")
        k = _matrix(fs, K_KEYS)
        if k is None:
            raise InputError("no camera matrix", file=path, field="K", expected="one of: " + ", ".join(K_KEYS))
        d = _matrix(fs, D_KEYS)
        file_size = _size(fs)
    finally:
        fs.release()
    K = k[1]
    if K.shape != (3, 3) or not np.isfinite(K).all() or not (K[0, 0] > 0 and K[1, 1] > 0):
        raise InputError(f"camera matrix {K.tolist()}", file=path, field=k[0],
                         expected="3x3, finite, positive focal lengths")
    dist = np.zeros(5) if d is None else d[1].ravel()
    if dist.size not in (4, 5, 8, 12, 14) or not np.isfinite(dist).all():
        raise InputError(f"{dist.size} distortion coefficients", file=path, field=d[0] if d else "D",
                         expected="4, 5, 8, 12 or 14 finite numbers")
    W, H = video_size
    if calib_size is not None:
        size, source = tuple(calib_size), "given"
    elif file_size is not None:
        size, source = file_size, "file"
    else:
        cx, cy = K[0, 2], K[1, 2]
        if abs(cx - (W - 1) / 2) > CENTRE_TOLERANCE * W or abs(cy - (H - 1) / 2) > CENTRE_TOLERANCE * H:
            guess = (int(round((cx + 0.5) * 2)), int(round((cy + 0.5) * 2)))
            raise InputError(f"the calibration does not say its image size, and its principal point ({cx:.0f}, "
                             f"{cy:.0f}) does not fit the {W}x{H} video", file=path, field="image size",
                             expected=f"the size it was made at (--calib-size WxH; its principal point suggests "
                                      f"about {guess[0]}x{guess[1]}, e.g. 1280x720 or 1920x1080 if the same aspect)")
        size, source = (W, H), "principal point fits the video"
    sx, sy = W / size[0], H / size[1]
    if abs(sx / sy - 1) > 0.01:
        raise InputError(f"calibration size {size[0]}x{size[1]} has another aspect ratio than the {W}x{H} video",
                         file=path, field="image size", expected=f"a size with the video's aspect ratio ({W}:{H}); "
                                                                  "cropped videos are not supported")
    Ks = K.copy()
    Ks[0, 0], Ks[0, 1], Ks[1, 1] = K[0, 0] * sx, K[0, 1] * sx, K[1, 1] * sy
    Ks[0, 2], Ks[1, 2] = (K[0, 2] + 0.5) * sx - 0.5, (K[1, 2] + 0.5) * sy - 0.5   # pixel centres
    model = CameraModel(K=Ks, size=(W, H), dist=dist, name=name)
    return model, {"file": str(path), "calibration_size": list(size), "size_from": source,
                   "scale": [sx, sy], "frame": "camera"}


FOV_RANGE = (20.0, 160.0)


def approximate_intrinsics(video_size: tuple[int, int], fov_deg: float, name: str = "cam0") -> tuple[CameraModel, dict]:
    """Rough intrinsics when no calibration exists, only on request (``extract --fov DEG``): square
    pixels, the principal point at the image centre, no distortion, and the focal length from the
    horizontal field of view (a phone's main camera: about 65-75 degrees). Depth is then only as
    good as the guessed field of view (a 5 % error in focal length is 5 % of depth), so the record
    (``approximate: true``) goes into the output's metadata."""
    lo, hi = FOV_RANGE
    if not (isinstance(fov_deg, (int, float)) and np.isfinite(fov_deg) and lo <= fov_deg <= hi):
        raise InputError(f"field of view {fov_deg!r}", field="--fov",
                         expected=f"the horizontal field of view in degrees, {lo:.0f} to {hi:.0f} "
                                  "(a phone's main camera: about 65-75)")
    W, H = video_size
    f = (W / 2) / np.tan(np.radians(fov_deg) / 2)
    K = np.array([[f, 0, (W - 1) / 2], [0, f, (H - 1) / 2], [0, 0, 1]])
    return CameraModel(K=K, size=(W, H), dist=np.zeros(5), name=name), {
        "approximate": True, "fov_deg": float(fov_deg), "focal_px": float(f), "frame": "camera",
        "note": "intrinsics from a guessed field of view, not a calibration: depth scales with its error"}
