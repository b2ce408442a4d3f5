"""Two calibrated cameras → one keypoint track: triangulation where both see a point.

One camera gives 3D for a keypoint only through geometry it knows: a marker's pose (its body's
keypoints), or a horizontal plane the point moves in. A blob on a body without a marker, off any
known plane, needs a second view. Each camera is extracted on its own (:func:`extract_video`),
then, per frame of the first camera (the second camera's frame nearest in time, within half a
frame period):

- keypoints with no marker on their (body, link), seen by both cameras (detected or tracked,
  not pixels projected from a pose): the two rays are triangulated (DLT on undistorted pixels);
- every other keypoint keeps the 3D of the camera that is more confident about it;
- a keypoint only the second camera saw gets its 3D from there and a pixel in the first camera
  projected from it (source ``pose``), so the track's pixels stay the first camera's.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from robot_irl.core.camera import CameraModel
from robot_irl.core.spec import KeypointSpec, Marker
from robot_irl.errors import InputError
from robot_irl.keypoints.geometry import triangulate, undistort_points
from robot_irl.keypoints.pipeline import ExtractConfig, _project, extract_video
from robot_irl.keypoints.track import MISSING, SRC_POSE, KeypointTrack

Video = str | Path | Iterable[np.ndarray]


def markerless(spec: KeypointSpec) -> list[int]:
    """Indices of keypoints whose (body, link) carries no marker: one view gives them no depth."""
    with_marker = {(k.body, k.link) for k in spec if isinstance(k.feature, Marker)}
    return [i for i, k in enumerate(spec) if (k.body, k.link) not in with_marker]


def match_frames(ts_a: np.ndarray, ts_b: np.ndarray) -> np.ndarray:
    """For each time of ``ts_a`` the index of the nearest time in ``ts_b`` (-1 when none lies
    within half of ``ts_b``'s median frame period: the cameras were not running together)."""
    ts_a, ts_b = np.asarray(ts_a, np.float64), np.asarray(ts_b, np.float64)
    j = np.clip(np.searchsorted(ts_b, ts_a), 1, max(len(ts_b) - 1, 1))
    j = np.where(np.abs(ts_b[j - 1] - ts_a) <= np.abs(ts_b[np.minimum(j, len(ts_b) - 1)] - ts_a), j - 1, j)
    j = np.minimum(j, len(ts_b) - 1)
    tol = 0.5 * float(np.median(np.diff(ts_b))) if len(ts_b) > 1 else np.inf
    return np.where(np.abs(ts_b[j] - ts_a) <= tol + 1e-9, j, -1)


def fuse_tracks(a: KeypointTrack, cam_a: CameraModel, b: KeypointTrack, cam_b: CameraModel,
                spec: KeypointSpec) -> KeypointTrack:
    """One track on ``a``'s frames and pixels with 3D from both cameras (see the module doc)."""
    if a.names != b.names:
        raise InputError(f"tracks have different keypoints ({a.names} vs {b.names})", field="spec",
                         expected="both cameras extracted with the same keypoint spec")
    out = a.copy()
    jb = match_frames(a.timestamps, b.timestamps)
    ok = jb >= 0
    if not ok.any():
        raise InputError("the two cameras' timestamps do not overlap", field="timestamps",
                         expected="two videos recorded at the same time, on one clock")
    jj = np.where(ok, jb, 0)
    seen_a = (a.status > MISSING) & (a.source != SRC_POSE)
    seen_b = (b.status[jj] > MISSING) & (b.source[jj] != SRC_POSE) & ok[:, None]
    tri = np.zeros_like(seen_a)
    for k in markerless(spec):
        both = seen_a[:, k] & seen_b[:, k]
        if both.any():
            ua = undistort_points(a.uv[both, k], cam_a.K, cam_a.dist)
            ub = undistort_points(b.uv[jj[both], k], cam_b.K, cam_b.dist)
            out.xyz[both, k] = triangulate(cam_a, ua, cam_b, ub)
            out.confidence[both, k] = np.minimum(a.confidence[both, k], b.confidence[jj[both], k])
            out.status[both, k] = np.maximum(a.status[both, k], b.status[jj[both], k])  # tracked if either was
            tri[both, k] = True
    xyz_b = np.where(ok[:, None, None], b.xyz[jj], np.nan)
    conf_b = np.where(ok[:, None], b.confidence[jj], 0.0)
    take_b = ~tri & np.isfinite(xyz_b).all(-1) & (~np.isfinite(a.xyz).all(-1) | (conf_b > a.confidence))
    out.xyz[take_b] = xyz_b[take_b]
    only_b = take_b & (a.status == MISSING)
    for t, k in zip(*np.nonzero(only_b)):
        out.uv[t, k] = _project(cam_a, out.xyz[t, k])
        out.status[t, k], out.source[t, k] = b.status[jj[t], k], SRC_POSE
        out.confidence[t, k] = 0.9 * conf_b[t, k]
    out.meta = {**a.meta, "cameras": [a.meta.get("camera"), b.meta.get("camera")],
                "second_camera": {"video": b.meta.get("video"), "counts": b.counts()},
                "triangulated": {n: int(tri[:, k].sum()) for k, n in enumerate(a.names)},
                "from_second_camera": {n: int(take_b[:, k].sum()) for k, n in enumerate(a.names)},
                "counts": out.counts(), "missing_all": out.missing_everywhere()}
    return out


def extract_two_cameras(video_a: Video, timestamps_a: np.ndarray | None, camera_a: CameraModel,
                        video_b: Video, timestamps_b: np.ndarray | None, camera_b: CameraModel,
                        spec: KeypointSpec, *, config: ExtractConfig | None = None, rgb: bool = False,
                        preview: str | Path | None = None, progress: bool = True) -> KeypointTrack:
    """:func:`extract_video` on each camera, then :func:`fuse_tracks`. Both cameras need
    intrinsics and ``T_base_cam`` in one base frame; ``preview`` overlays the first camera."""
    for name, cam in (("camera_a", camera_a), ("camera_b", camera_b)):
        if cam is None:
            raise InputError("two-camera extraction needs both cameras calibrated", field=name,
                             expected="a CameraModel with K, dist and T_base_cam")
    a = extract_video(video_a, timestamps_a, spec, camera_a, preview=preview, config=config, rgb=rgb,
                      progress=progress)
    b = extract_video(video_b, timestamps_b, spec, camera_b, config=config, rgb=rgb, progress=progress)
    return fuse_tracks(a, camera_a, b, camera_b, spec)
