"""2D → 3D in the robot base frame: marker poses, camera-to-base, ray–plane and two-view points.

All functions take *undistorted* pixels (see :func:`undistort_points`): distortion is removed once,
before any geometry, so everything here is a pinhole problem.

Marker frame (matches ArUco's corner order and ``SOLVEPNP_IPPE_SQUARE``): origin at the marker
centre, z along the keypoint's ``normal`` (out of the printed face), y along ``up`` (towards the
marker image's top edge), x = y × z. Corners come top-left, top-right, bottom-right, bottom-left.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from robot_irl.core.camera import CameraModel
from robot_irl.core.frames import transform  # noqa: F401  (re-exported: keypoints' users import it from here)
from robot_irl.core.spec import KeypointDef, Marker
from robot_irl.errors import InputError


def make_T(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, np.ravel(t)
    return T


def marker_square(size: float) -> np.ndarray:
    """Corners of a square marker in its own frame, ArUco order ``[4, 3]``."""
    h = size / 2.0
    return np.array([[-h, h, 0.0], [h, h, 0.0], [h, -h, 0.0], [-h, -h, 0.0]])


def marker_T_link(kdef: KeypointDef) -> np.ndarray:
    """Pose of a keypoint's marker frame in its link frame (``p_link = T · p_marker``)."""
    z = np.asarray(kdef.normal, np.float64)
    z = z / np.linalg.norm(z)
    up = np.asarray(kdef.up, np.float64)
    y = up - z * (up @ z)
    if np.linalg.norm(y) < 1e-9:
        raise InputError(f"keypoint '{kdef.name}': 'up' is parallel to 'normal'", field=f"{kdef.name}.up",
                         expected="an up vector not along the marker normal")
    y /= np.linalg.norm(y)
    return make_T(np.stack([np.cross(y, z), y, z], axis=1), kdef.offset)


def marker_corners_link(kdef: KeypointDef) -> np.ndarray:
    """The four corners of a keypoint's marker in its link frame ``[4, 3]``."""
    if not isinstance(kdef.feature, Marker):
        raise InputError(f"keypoint '{kdef.name}' has no marker", field=f"{kdef.name}.feature", expected="a marker")
    return transform(marker_T_link(kdef), marker_square(kdef.feature.size))


def undistort_points(uv: np.ndarray, K: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Image pixels → ideal pinhole pixels (same K). NaNs pass through; no-op without distortion."""
    uv = np.asarray(uv, np.float64)
    if dist is None or not np.any(dist):
        return uv.copy()
    flat = uv.reshape(-1, 2)
    out = np.full_like(flat, np.nan)
    ok = np.isfinite(flat).all(axis=1)
    if ok.any():
        out[ok] = cv2.undistortImagePoints(flat[ok].reshape(-1, 1, 2), K, dist).reshape(-1, 2)
    return out.reshape(uv.shape)


def rotation_angle(Ra: np.ndarray, Rb: np.ndarray) -> float:
    """Angle (rad) of the rotation between two rotation matrices."""
    c = (np.trace(Ra.T @ Rb) - 1.0) / 2.0
    return float(np.arccos(np.clip(c, -1.0, 1.0)))


@dataclass
class Pose:
    T_cam_obj: np.ndarray   # 4×4
    reproj_px: float        # RMS reprojection error
    ambiguous: bool         # IPPE's two solutions both fit; picked by continuity


class SquarePoseSolver:
    """Per-marker pose with ``SOLVEPNP_IPPE_SQUARE``; resolves the planar two-fold flip.

    A small or face-on marker fits two poses (mirror-tilted) almost equally well. When the second
    solution's RMS error is within ``ambiguity_ratio`` × the first or ``slack_px`` above it (corner
    noise makes either one win at random), the one closer in rotation to the previous frame's pose
    for the same key wins, so the normal does not flicker between frames.
    """

    def __init__(self, ambiguity_ratio: float = 3.0, slack_px: float = 0.5) -> None:
        self.ambiguity_ratio, self.slack_px = ambiguity_ratio, slack_px
        self._prev: dict[object, np.ndarray] = {}

    def reset(self, key: object | None = None) -> None:
        if key is None:
            self._prev.clear()
        else:
            self._prev.pop(key, None)

    def candidates(self, corners: np.ndarray, size: float, K: np.ndarray) -> list[Pose]:
        """Every pose IPPE fits to the corners, best first; ``ambiguous`` on each when the second
        fits about as well as the first (then only other evidence can choose)."""
        obj = marker_square(size)
        n, rvecs, tvecs, errs = cv2.solvePnPGeneric(obj, np.asarray(corners, np.float64).reshape(4, 1, 2), K, None,
                                                   flags=cv2.SOLVEPNP_IPPE_SQUARE)
        errs = np.asarray(errs, np.float64).ravel()
        order = np.argsort(errs)
        ambiguous = n > 1 and errs[order[1]] <= max(self.ambiguity_ratio * errs[order[0]],
                                                    errs[order[0]] + self.slack_px)
        return [Pose(make_T(cv2.Rodrigues(rvecs[i])[0], tvecs[i]), float(errs[i]), bool(ambiguous)) for i in order]

    def solve(self, key: object, corners: np.ndarray, size: float, K: np.ndarray) -> Pose:
        poses = self.candidates(corners, size, K)
        best = poses[0]
        prev = self._prev.get(key)
        if best.ambiguous and prev is not None:
            best = min(poses, key=lambda p: rotation_angle(prev, p.T_cam_obj[:3, :3]))
        self.remember(key, best.T_cam_obj[:3, :3])
        return best

    def remember(self, key: object, R: np.ndarray) -> None:
        """The rotation this frame settled on for ``key`` (continuity for the next frame's flip)."""
        self._prev[key] = R


def rigid_pose(obj_pts: np.ndarray, img_pts: np.ndarray, K: np.ndarray, T_init: np.ndarray) -> Pose:
    """Pose of a rigid body from all its markers' corners at once, refined from ``T_init``
    (the best single-marker pose): more corners spread wider → a better-conditioned depth."""
    obj = np.asarray(obj_pts, np.float64).reshape(-1, 1, 3)
    img = np.asarray(img_pts, np.float64).reshape(-1, 1, 2)
    rvec = cv2.Rodrigues(T_init[:3, :3])[0]
    tvec = T_init[:3, 3].reshape(3, 1).copy()
    rvec, tvec = cv2.solvePnPRefineLM(obj, img, K, None, rvec, tvec)
    proj = cv2.projectPoints(obj, rvec, tvec, K, None)[0].reshape(-1, 2)
    err = float(np.sqrt(np.mean(np.sum((proj - img.reshape(-1, 2)) ** 2, axis=1))))
    return Pose(make_T(cv2.Rodrigues(rvec)[0], tvec), err, False)


def camera_to_base(points_base: list[np.ndarray], pixels: list[np.ndarray], K: np.ndarray,
                   dist: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """``T_base_cam`` from a marker on the end effector seen over many arm poses.

    ``points_base[i]`` are the marker corners of pose i in the base frame (forward kinematics ·
    corners in the flange frame), ``pixels[i]`` where they were seen. All poses together are one
    3D–2D problem: one solvePnP over every corner (no hand–eye solver needed; OpenCV 5.0.0.93 has
    none). Returns the transform and the RMS reprojection error in pixels.
    """
    P = np.concatenate([np.asarray(p, np.float64).reshape(-1, 3) for p in points_base])
    uv = np.concatenate([np.asarray(u, np.float64).reshape(-1, 2) for u in pixels])
    if len(P) != len(uv):
        raise InputError(f"{len(P)} 3D corners but {len(uv)} pixels", field="pixels", expected="one pixel per corner")
    ok = np.isfinite(uv).all(1) & np.isfinite(P).all(1)
    if ok.sum() < 6:
        raise InputError(f"only {int(ok.sum())} usable corners", field="pixels",
                         expected="a marker seen in several arm poses (≥ 6 corners, ~20 poses recommended)")
    P, uv = P[ok], undistort_points(uv[ok], K, dist)
    good, rvec, tvec = cv2.solvePnP(P.reshape(-1, 1, 3), uv.reshape(-1, 1, 2), K, None, flags=cv2.SOLVEPNP_SQPNP)
    if not good:
        raise InputError("solvePnP found no camera pose", field="pixels", expected="non-degenerate arm poses")
    rvec, tvec = cv2.solvePnPRefineLM(P.reshape(-1, 1, 3), uv.reshape(-1, 1, 2), K, None, rvec, tvec)
    proj = cv2.projectPoints(P.reshape(-1, 1, 3), rvec, tvec, K, None)[0].reshape(-1, 2)
    rms = float(np.sqrt(np.mean(np.sum((proj - uv) ** 2, axis=1))))
    return np.linalg.inv(make_T(cv2.Rodrigues(rvec)[0], tvec)), rms


def ray_plane(camera: CameraModel, uv: np.ndarray, point: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """Intersect rays through undistorted pixels ``[..., 2]`` with a plane (base frame).
    Rays parallel to the plane or hitting it behind the camera give NaN."""
    o, d = camera.ray(uv)
    n = np.asarray(normal, np.float64)
    n = n / np.linalg.norm(n)
    denom = d @ n
    with np.errstate(divide="ignore", invalid="ignore"):
        s = ((np.asarray(point, np.float64) - o) @ n) / denom
    s = np.where((np.abs(denom) > 1e-9) & (s > 0), s, np.nan)
    return o + d * s[..., None]


def triangulate(cam_a: CameraModel, uv_a: np.ndarray, cam_b: CameraModel, uv_b: np.ndarray) -> np.ndarray:
    """Points seen by two calibrated cameras (undistorted pixels ``[N, 2]`` each) → base frame ``[N, 3]``.
    Rows NaN in either view stay NaN."""
    uv_a, uv_b = np.asarray(uv_a, np.float64).reshape(-1, 2), np.asarray(uv_b, np.float64).reshape(-1, 2)
    out = np.full((len(uv_a), 3), np.nan)
    ok = np.isfinite(uv_a).all(1) & np.isfinite(uv_b).all(1)
    if ok.any():
        Pa = cam_a.K @ cam_a.T_cam_base[:3]
        Pb = cam_b.K @ cam_b.T_cam_base[:3]
        X = cv2.triangulatePoints(Pa, Pb, uv_a[ok].T.copy(), uv_b[ok].T.copy())
        out[ok] = (X[:3] / X[3]).T
    return out
