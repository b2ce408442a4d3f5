"""``extract_video``: one video (file or frames) → a :class:`KeypointTrack` for a keypoint spec.

Per frame: the spec's detectors run (ArUco for marker keypoints, HSV blobs for blob keypoints),
marker corners are refined by edge-line fits, optical flow bridges misses, and where a camera is
given every keypoint on a rigid body with a seen marker gets a 3D position in the robot base frame
(and a pixel, if it was not seen itself); blob keypoints without a marker on their body use the
horizontal plane they move in (``plane_heights``). Nothing is dropped: unseen is NaN + missing.
"""
from __future__ import annotations

import functools
import itertools
import warnings
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from robot_irl.core.camera import CameraModel
from robot_irl.core.spec import AUTO_DICTIONARY, WORLD_BODY, Blob, KeypointDef, KeypointSpec, Marker
from robot_irl.errors import InputError, UnknownNameError
from robot_irl.keypoints import dictionary as auto_dictionary
from robot_irl.keypoints.detectors import (ArucoDetector, BlobDetector, Detection, Detector,
                                           MarkerTemplate, align_template, aruco_dictionary, quad_centre,
                                           refine_edges, refine_template)
from robot_irl.keypoints.calibrate import BoardSpec
from robot_irl.keypoints.flow import FlowBridge
from robot_irl.keypoints.geometry import (SquarePoseSolver, marker_T_link, marker_corners_link, ray_plane,
                                          rigid_pose, transform, undistort_points)
from robot_irl.keypoints.track import DETECTED, SRC_ARUCO, SRC_POSE, TRACKED, KeypointTrack
from robot_irl.keypoints.video import FrameSource, PreviewWriter

MODES = ("auto", "aruco", "blob", "flow")
CORNER_FITS = ("template", "edges", "none")


class NoDetectionsError(InputError):
    """Not one keypoint was found in any frame: wrong spec, wrong video, or a detector mismatch."""


@dataclass
class ExtractConfig:
    """Knobs of :func:`extract_video` (stored with the keypoints as their provenance).

    ``corner_fit``: how marker corners are refined after OpenCV's ``refine`` step: ``template``
    aligns the whole printed pattern (most precise), ``edges`` fits the four border lines
    (cheaper, as precise on anti-aliased images), ``none`` keeps OpenCV's corners.
    ``detector``: ``auto`` = each keypoint's own detector from the spec + flow bridging;
    ``aruco`` / ``blob`` = only that detector, no flow; ``flow`` = detectors every
    ``redetect_every`` frames (or when a track is lost) and Lucas–Kanade in between (fast).
    ``redetect_scale``: in ``auto``, a marker the detector missed but flow still carries is
    searched again in a window around its last corners, upscaled by this factor (1: never).
    ``roi_search``: search markers seen in the previous frame in windows around them first
    (full frame when one is not found there); same detections, a fraction of the cost.
    ``want_3d``: None = 3D when a camera is given; True = 3D required (error without a camera).
    ``plane_heights``: keypoint name → z (base frame, m) of the horizontal plane its centre moves
    in, for blob keypoints with no marker on their body (see :func:`table_heights`).
    ``world_board``: a ChArUco board lying still in view gives the world frame (camera without a
    robot pose; see :mod:`robot_irl.keypoints.worldboard`); 3D comes out in the board's frame.
    """

    detector: str = "auto"
    refine: str = "none"
    corner_fit: str = "template"
    flow_max_gap: int = 15
    fb_max: float = 0.7
    redetect_every: int = 10
    redetect_scale: float = 2.0   # a marker missed where flow carries it is searched again there, upscaled (1: off)
    bridge_min_cc: float = 0.8    # a bridged marker's pattern must still correlate this well where flow put it
    roi_search: bool = True
    want_3d: bool | None = None
    plane_heights: dict[str, float] = field(default_factory=dict)
    world_board: BoardSpec | None = None

    def __post_init__(self) -> None:
        if self.detector not in MODES:
            raise UnknownNameError("detector", self.detector, MODES)
        if self.corner_fit not in CORNER_FITS:
            raise UnknownNameError("corner fit", self.corner_fit, CORNER_FITS)
        for name, low in (("flow_max_gap", 0), ("redetect_every", 1)):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < low:
                raise InputError(f"{name} = {getattr(self, name)!r}", field=name, expected=f"an integer >= {low}")
        for name, low in (("fb_max", 0.0), ("redetect_scale", 1.0)):
            if not getattr(self, name) >= low:
                raise InputError(f"{name} = {getattr(self, name)!r}", field=name, expected=f"a number >= {low}")


def table_heights(spec: KeypointSpec, table_z: float = 0.0) -> dict[str, float]:
    """Plane heights for blob keypoints on objects (not the robot) resting on a table at
    ``table_z``: a sphere's centre is one radius above the table top."""
    return {k.name: table_z + k.feature.radius for k in spec
            if isinstance(k.feature, Blob) and k.body != "robot"}


def build_detectors(spec: KeypointSpec, mode: str, refine: str = "subpix", roi: bool = True) -> list[Detector]:
    """The detectors a mode needs for a spec, each covering its keypoints."""
    markers = [k for k in spec if isinstance(k.feature, Marker)]
    blobs = [k for k in spec if isinstance(k.feature, Blob)]
    dets: list[Detector] = []
    if mode in ("auto", "aruco", "flow") and markers:
        dets.append(ArucoDetector(markers, refine=refine, roi=roi))
    if mode in ("auto", "blob", "flow") and blobs:
        dets.append(BlobDetector(blobs))
    if not dets:
        want = {"aruco": "marker", "blob": "blob"}.get(mode, "marker or blob")
        raise InputError(f"no keypoint of the spec has a {want} feature for detector '{mode}'",
                         field="detector", expected=f"a spec with {want} keypoints, or another --detector")
    return dets


class _Lifter:
    """Per-frame 3D: rigid-body poses from markers, then plane intersection for the rest."""

    def __init__(self, spec: KeypointSpec, camera: CameraModel, plane_heights: dict[str, float],
                 world_board: BoardSpec | None = None) -> None:
        for k in spec:
            if isinstance(k.feature, Marker) and k.feature.size is None:
                raise InputError(f"3D asked for, but the size of keypoint '{k.name}''s marker is not given",
                                 field=f"{k.name}.feature.size",
                                 expected="the side of the marker's black square in metres, or pixels only (--no-3d)")
        self.spec, self.camera = spec, camera
        self.primary = set(spec.marker_groups())
        # a still marker on body "world" seen by a camera with no robot pose: 3D in its frame
        refs = [(k.body, k.link) for k in spec if k.body == WORLD_BODY and isinstance(k.feature, Marker)]
        self.world_key = refs[0] if refs and np.allclose(camera.T_base_cam, np.eye(4)) else None
        self.world_missing = self.world_rejected = 0
        self.board = None
        if world_board is not None:
            if not np.allclose(camera.T_base_cam, np.eye(4)):
                raise InputError("a world board given for a camera that has a robot pose", field="world_board",
                                 expected="a board only for a camera without T_base_cam (3D is then in the board's "
                                          "frame), or no board")
            if refs:
                raise InputError(f"two world frames: a board and the marker(s) on body '{WORLD_BODY}'",
                                 field="world_board", expected="one of them")
            if plane_heights:
                raise InputError(f"table heights {sorted(plane_heights)} given with a world board (heights are "
                                 "in the robot's base frame, which a board's camera does not have)",
                                 field="table_z", expected="a world board or table heights (--table-z), not both")
            from robot_irl.keypoints.worldboard import BoardWorld
            self.board = BoardWorld(world_board, camera)
        self.solver = SquarePoseSolver()
        self.groups: dict[tuple[str, str], list[int]] = {}
        for i, k in enumerate(spec):
            self.groups.setdefault((k.body, k.link), []).append(i)
        # link ← marker inverted once here, not per frame
        self.link_marker = {k.name: np.linalg.inv(marker_T_link(k)) for k in spec if isinstance(k.feature, Marker)}
        self.undistort = camera is not None and bool(np.any(camera.dist))
        self.corners_link = {k.name: marker_corners_link(k) for k in spec if isinstance(k.feature, Marker)}
        unknown = set(plane_heights) - set(spec.names)
        if unknown:
            raise UnknownNameError("keypoint", sorted(unknown)[0], spec.names)
        self.planes = plane_heights

    def lift(self, obs: dict[str, tuple[int, Detection]], gray: np.ndarray | None = None
             ) -> dict[str, tuple[np.ndarray, int, float]]:
        """3D base-frame positions (with the status and confidence they inherit) for this frame
        (``gray``: the frame, for a world board)."""
        cam = self.camera
        out: dict[str, tuple[np.ndarray, int, float]] = {}
        world: tuple[np.ndarray, float] | None = None
        for key, idx in self.groups.items():
            seen = [(self.spec.keypoints[i], obs[self.spec.keypoints[i].name]) for i in idx
                    if self.spec.keypoints[i].name in self.primary and self.spec.keypoints[i].name in obs
                    and obs[self.spec.keypoints[i].name][1].corners is not None]
            if not seen:
                continue
            best = None
            obj, img = [], []
            for k, (status, d) in seen:
                c = undistort_points(d.corners, cam.K, cam.dist) if self.undistort else d.corners
                pose = self.solver.solve(k.name, c, k.feature.size, cam.K)
                T_cam_link = pose.T_cam_obj @ self.link_marker[k.name]
                side = float(np.abs(c[[1, 2, 3, 0]] - c).sum())
                if best is None or side > best[1]:
                    best = (T_cam_link, side, pose.reproj_px, k, c)
                obj.append(self.corners_link[k.name])
                img.append(c)
            if len(seen) == 1:
                T_cam_link, reproj = best[0], best[2]
            else:
                fit = rigid_pose(np.concatenate(obj), np.concatenate(img), cam.K, best[0])
                T_cam_link, reproj = fit.T_cam_obj, fit.reproj_px
            points = self._points_seen(idx, obs)
            if points is not None:
                T_cam_link = self._with_points(T_cam_link, reproj, best, np.concatenate(obj), np.concatenate(img),
                                               *points)
            if key == self.world_key and all(s == DETECTED for _, (s, _) in seen):
                world = (T_cam_link, reproj)
            status = TRACKED if any(s == TRACKED for _, (s, _) in seen) else DETECTED
            conf = min(d.confidence for _, (_, d) in seen)
            T_base_link = cam.T_base_cam @ T_cam_link
            for i in idx:
                k = self.spec.keypoints[i]
                corner = k.feature.corner if isinstance(k.feature, Marker) else None
                at = np.asarray(k.offset) if corner is None else self.corners_link[k.name][corner]
                xyz = transform(T_base_link, at)
                if k.name in obs:  # seen itself: keep the pose's depth, take its own (sharper) ray
                    uv = obs[k.name][1].uv
                    o, d = cam.ray(undistort_points(uv, cam.K, cam.dist) if self.undistort else uv)
                    xyz = o + d * float((xyz - o) @ d)
                out[k.name] = (xyz, status, conf)
        if self.world_key is not None:
            return self._to_world(out, world)
        if self.board is not None:
            pose = self.board.pose(gray)
            return {} if pose is None else {n: (transform(np.linalg.inv(pose.T_cam_board), xyz), s, c)
                                            for n, (xyz, s, c) in out.items()}
        for name, z in self.planes.items():
            if name in out or name not in obs:
                continue
            status, d = obs[name]
            uv = undistort_points(d.uv, cam.K, cam.dist) if self.undistort else d.uv
            out[name] = (ray_plane(cam, uv, np.array([0.0, 0.0, z]), np.array([0.0, 0.0, 1.0])), status, d.confidence)
        return out

    POINT_PULL_PX = 1.0   # a seen point may raise the corners' RMS error by this much, else it is ignored

    def _points_seen(self, idx: list[int], obs: dict[str, tuple[int, Detection]]
                     ) -> tuple[np.ndarray, np.ndarray] | None:
        """The body's non-marker keypoints its detector saw in this frame (not carried by flow):
        their link-frame offsets and (undistorted) pixels, or None."""
        off, uv = [], []
        for i in idx:
            k = self.spec.keypoints[i]
            if isinstance(k.feature, Marker) or k.name not in obs:
                continue
            status, d = obs[k.name]
            if status != DETECTED or not np.all(np.isfinite(d.uv)):
                continue
            off.append(np.asarray(k.offset, np.float64))
            uv.append(undistort_points(d.uv, self.camera.K, self.camera.dist) if self.undistort else d.uv)
        return (np.stack(off), np.stack(uv).reshape(-1, 2)) if off else None

    def _with_points(self, T_cam_link: np.ndarray, reproj: float, best: tuple, obj: np.ndarray, img: np.ndarray,
                     off: np.ndarray, uv: np.ndarray) -> np.ndarray:
        """The link's pose refined with its seen blobs' pixels beside the marker corners.

        Why: a marker seen nearly face-on fixes its own position well but its tilt poorly (IPPE's two
        mirror poses fit the corners almost equally), and a point 5 cm off the marker on the same
        link then lands 1-3 cm off along the camera ray. A blob's pixel is a point off the marker's
        plane the tilt must also explain: the pose is refined (Levenberg-Marquardt) from the corners'
        pose and from each IPPE candidate of the largest marker, with the blob pixels as extra
        points, and the best fit kept. A blob that
        pulls the corners' RMS error up by more than ``POINT_PULL_PX`` (a wrong detection) is ignored.
        """
        cam = self.camera
        _, _, _, k, c = best
        inits = [T_cam_link] + [p.T_cam_obj @ self.link_marker[k.name]
                                for p in self.solver.candidates(c, k.feature.size, cam.K)]
        P, Q = np.concatenate([obj, off]), np.concatenate([img, uv])
        fit = min((rigid_pose(P, Q, cam.K, T0) for T0 in inits), key=lambda f: f.reproj_px)
        pc = transform(fit.T_cam_obj, obj)
        corner_err = float(np.sqrt(np.mean(np.sum((pc[:, :2] / pc[:, 2:] @ cam.K[:2, :2].T + cam.K[:2, 2] - img) ** 2,
                                                  axis=1))))
        if corner_err > reproj + self.POINT_PULL_PX:
            return T_cam_link
        self.solver.remember(k.name, (fit.T_cam_obj @ np.linalg.inv(self.link_marker[k.name]))[:3, :3])
        return fit.T_cam_obj

    MAX_WORLD_REPROJ_PX = 1.5

    def _to_world(self, out: dict[str, tuple[np.ndarray, int, float]], world: tuple[np.ndarray, float] | None
                  ) -> dict[str, tuple[np.ndarray, int, float]]:
        """Camera-frame positions into the reference marker's world frame (T_world_cam of this
        frame, by solvePnP on the reference's corners). A frame where the reference was not
        detected, or its corners fit a square worse than MAX_WORLD_REPROJ_PX (blur, a partial
        view), gets no 3D rather than 3D in another frame."""
        if world is None:
            self.world_missing += 1
            return {}
        if world[1] > self.MAX_WORLD_REPROJ_PX:
            self.world_rejected += 1
            return {}
        T_world_cam = np.linalg.inv(world[0])
        return {n: (transform(T_world_cam, xyz), s, c) for n, (xyz, s, c) in out.items()}


def _verify_bridges(gray: np.ndarray, carried: dict[str, Detection], templates: dict[str, MarkerTemplate],
                    bridge: FlowBridge, min_cc: float) -> dict[str, Detection]:
    """Flow's forward-backward check passes when flow follows the wrong thing consistently (a
    hand's blur streak, the background): on the real phone clip bridges lagged the tag by 6-14 px.
    So where flow carried a marker its printed pattern is aligned to the image (ECC, moves up to
    a third of its side): a correlation below ``min_cc`` ends the bridge, else the aligned
    corners replace flow's and flow carries on from them."""
    out: dict[str, Detection] = {}
    for name, d in carried.items():
        if d.corners is None or name not in templates:
            out[name] = d
            continue
        side = float(np.linalg.norm(np.roll(d.corners, -1, axis=0) - d.corners, axis=1).mean())
        cc, c = align_template(gray, d.corners, templates[name], max(2.0, side / 3))
        if cc < min_cc:
            bridge.drop(name)
            continue
        bridge.move(name, c)
        out[name] = Detection(quad_centre(c), d.confidence, d.source, corners=c)
    return out


def _marker_points(obs: dict[str, tuple[int, Detection]], groups: dict[str, list[KeypointDef]]
                   ) -> dict[str, tuple[int, Detection]]:
    """Every keypoint on a seen marker gets its own point: the centre or one of the corners
    (detectors and flow work on the marker, keyed by its first keypoint)."""
    out = dict(obs)
    for primary, members in groups.items():
        if primary not in obs or obs[primary][1].corners is None:
            continue
        status, d = obs[primary]
        for k in members:
            c = k.feature.corner
            if c is not None or k.name != primary:
                uv = d.uv if c is None else d.corners[c]
                out[k.name] = (status, Detection(np.array(uv, np.float64), d.confidence, d.source, corners=d.corners))
    return out


def _check_timestamps(ts: np.ndarray, source: str) -> np.ndarray:
    ts = np.asarray(ts, np.float64).ravel()
    if not np.isfinite(ts).all() or (len(ts) > 1 and not (np.diff(ts) >= 0).all()):
        raise InputError("timestamps are not finite and non-decreasing", file=source, field="timestamps",
                         expected="one time (s) per frame, never going back (a repeated frame may repeat one)")
    return ts


def extract_video(video: str | Path | Iterable[np.ndarray], timestamps: np.ndarray | None, spec: KeypointSpec,
                  camera: CameraModel | None = None, detector: str = "auto", preview: str | Path | None = None, *,
                  config: ExtractConfig | None = None, rgb: bool = False, progress: bool = True) -> KeypointTrack:
    """Keypoints of ``spec`` in every frame of ``video`` (a path, or BGR frames; ``rgb=True`` for
    RGB frames). ``timestamps`` one per frame (None: each frame's own time in the file). ``camera``
    (intrinsics, distortion, ``T_base_cam``) enables 3D. ``preview``: write an overlay MP4.

    Raises :class:`InputError` for an unreadable or empty video, timestamps that do not match
    the frames, 3D asked without a camera, and :class:`NoDetectionsError` when nothing at all
    is found. A keypoint missing in every frame is reported (``meta["missing_all"]`` and a
    warning), never filled.
    """
    from tqdm import tqdm

    cfg = config or ExtractConfig(detector=detector)
    if config is not None and detector != "auto" and detector != cfg.detector:
        cfg = ExtractConfig(**{**asdict(cfg), "detector": detector})
    if len(spec) == 0:
        raise InputError("the keypoint spec is empty", field="spec", expected="at least one keypoint")
    want_3d = cfg.want_3d if cfg.want_3d is not None else camera is not None
    if want_3d and camera is None:
        raise InputError("3D positions need a calibrated camera", field="camera",
                         expected="intrinsics K, dist (robot-irl calibrate) and T_base_cam, or want_3d=False")
    if cfg.world_board is not None and not want_3d:
        raise InputError("a world board needs 3D and intrinsics", field="world_board",
                         expected="a camera model (extract --calib F or --fov DEG), not --no-3d")
    src = FrameSource(video, rgb=rgb)
    frames = src.frames()
    dictionary_scan: dict = {}
    if any(isinstance(k.feature, Marker) and k.feature.dictionary == AUTO_DICTIONARY for k in spec):
        head = list(itertools.islice(frames, auto_dictionary.SCAN_FRAMES))
        spec, dictionary_scan = auto_dictionary.resolve(spec, [f.gray for f in head], src.name)
        warnings.warn(f"{src.name}: dictionary auto: " + ", ".join(f"{n} -> {d}" for n, d in
                      dictionary_scan["chosen"].items()) + "; ids seen: " + "; ".join(
                      f"{d} {sorted(ids)}" for d, ids in dictionary_scan["seen"].items()), stacklevel=2)
        frames = itertools.chain(head, frames)
    groups = spec.marker_groups()
    secondary = {k.name for g in groups.values() for k in g[1:]}
    det_spec = KeypointSpec(tuple(k for k in spec if k.name not in secondary))
    if timestamps is None:
        if src.name == "<frames>":
            raise InputError("no timestamps given for frames that carry none", file=src.name,
                             field="timestamps", expected="one time (s) per frame")
    else:
        timestamps = _check_timestamps(timestamps, src.name)
    detectors = build_detectors(det_spec, cfg.detector, cfg.refine, cfg.roi_search)
    cells = {k.name: aruco_dictionary(k.feature.dictionary).markerSize + 2 for k in det_spec
             if isinstance(k.feature, Marker)}
    templates = {k.name: MarkerTemplate(k.feature) for k in det_spec if isinstance(k.feature, Marker)}
    use_flow = cfg.detector in ("auto", "flow")
    bridge = FlowBridge(max_gap=cfg.flow_max_gap + (cfg.redetect_every if cfg.detector == "flow" else 0),
                        fb_max=cfg.fb_max) if use_flow else None
    covered = tuple(n for d in detectors for n in d.keypoints)
    lifter = _Lifter(spec, camera, cfg.plane_heights, cfg.world_board) if want_3d else None
    names = spec.names
    index = {n: i for i, n in enumerate(names)}
    n_alloc = len(timestamps) if timestamps is not None else (src.n_frames or 256)
    track = KeypointTrack.empty(names, np.zeros(n_alloc))
    writer: PreviewWriter | None = None
    t = 0
    bar = tqdm(total=len(timestamps) if timestamps is not None else src.n_frames, unit="frame",
               desc=f"extract {Path(src.name).name}", disable=not progress, leave=False)
    try:
        for frame in frames:
            if timestamps is not None and t >= len(timestamps):
                raise InputError(f"more frames than the {len(timestamps)} timestamps", file=src.name,
                                 field="timestamps", expected="one timestamp per frame")
            if t >= len(track):
                track = _grow(track)
            dets: dict[str, Detection] = {}
            for det in detectors:
                if cfg.detector == "flow" and t % cfg.redetect_every and all(bridge.live(n) for n in det.keypoints):
                    continue
                dets.update(det.detect(frame))
            if bridge is not None and cfg.redetect_scale > 1 and cfg.detector == "auto":
                for det in detectors:
                    if isinstance(det, ArucoDetector):
                        for name in det.keypoints:
                            if name not in dets and bridge.live(name):
                                c = det.redetect(frame.gray, name, bridge.points(name), cfg.redetect_scale)
                                if c is not None:
                                    side = float(np.linalg.norm(np.roll(c, -1, axis=0) - c, axis=1).mean())
                                    dets[name] = Detection(quad_centre(c), float(1.0 - np.exp(-side / 10.0)),
                                                           SRC_ARUCO, corners=c)
            if cfg.corner_fit != "none":
                for name, d in dets.items():
                    if d.corners is not None:
                        d.corners = refine_template(frame.gray, d.corners, templates[name]) \
                            if cfg.corner_fit == "template" else refine_edges(frame.gray, d.corners, cells[name])
                        d.uv = quad_centre(d.corners)
            obs: dict[str, tuple[int, Detection]] = {n: (DETECTED, d) for n, d in dets.items()}
            if bridge is not None:
                carried = bridge.step(frame.gray, dets, covered)
                if cfg.bridge_min_cc > 0:
                    carried = _verify_bridges(frame.gray, carried, templates, bridge, cfg.bridge_min_cc)
                obs.update({n: (TRACKED, d) for n, d in carried.items()})
            obs = _marker_points(obs, groups)
            for name, (status, d) in obs.items():
                k = index[name]
                track.uv[t, k], track.confidence[t, k] = d.uv, d.confidence
                track.status[t, k], track.source[t, k] = status, d.source
            if lifter is not None:
                for name, (xyz, status, conf) in lifter.lift(obs, frame.gray).items():
                    k = index[name]
                    track.xyz[t, k] = xyz
                    if name not in obs:  # seen only through its rigid body: pixel from the pose
                        track.uv[t, k] = _project(camera, xyz)
                        track.confidence[t, k], track.status[t, k], track.source[t, k] = 0.9 * conf, status, SRC_POSE
            if preview is not None:
                if writer is None:
                    h, w = frame.bgr.shape[:2]
                    writer = PreviewWriter(preview, src.fps or _rate(timestamps), (w, h))
                ts = timestamps[t] if timestamps is not None else src.times[t]
                writer.write(frame.bgr, obs, [n for n in names if n not in obs], float(ts))
            t += 1
            bar.update(1)
    except cv2.error as e:
        raise InputError(f"cannot decode frame {t} ({e.msg if hasattr(e, 'msg') else e})", file=src.name,
                         field="video", expected="a readable video") from None
    finally:
        bar.close()
        if writer is not None:
            writer.close()
    if t == 0:
        raise InputError("the video has no frames", file=src.name, field="video", expected="at least one frame")
    if timestamps is not None and t != len(timestamps):
        raise InputError(f"{t} frames but {len(timestamps)} timestamps", file=src.name, field="timestamps",
                         expected="one timestamp per frame")
    track = _trim(track, t)
    # a file's own presentation times when none were given (variable frame rate stays as it was)
    track.timestamps = timestamps.copy() if timestamps is not None else _check_timestamps(src.times, src.name)
    if not (track.status > 0).any():
        looked = ", ".join(f"{k.name}: {_describe(k)}" for k in spec)
        raise NoDetectionsError(f"no keypoint found in any of {t} frames with detector '{cfg.detector}' "
                                f"(looked for {looked})", file=src.name, field="detector",
                                expected="a video showing the spec's markers/blobs, or a matching --detector/spec")
    missing_all = track.missing_everywhere()
    if missing_all:
        warnings.warn(f"{src.name}: keypoints never seen: {', '.join(missing_all)} (left missing, not filled)",
                      stacklevel=2)
    track.meta = {"video": src.name, "frames": t, "config": asdict(cfg), "versions": versions(),
                  "camera": camera.to_dict() if camera is not None else None, "spec": spec.to_dict(),
                  "missing_all": missing_all, "counts": track.counts(), "dictionary_scan": dictionary_scan,
                  "flow_rejected": bridge.rejected if bridge is not None else 0,
                  "blob_rejected": {k: v for d in detectors if isinstance(d, BlobDetector) for k, v in d.rejected.items()},
                  "uv_convention": "image pixels as detected (distorted), OpenCV integer pixel centres",
                  "xyz_frame": "robot base, metres"}
    if lifter is not None and lifter.world_key is not None:
        track.meta.update(xyz_frame=f"world: the frame of the reference marker on body '{WORLD_BODY}', metres",
                          world_frames_missing=lifter.world_missing, world_frames_rejected=lifter.world_rejected)
    if lifter is not None and lifter.board is not None:
        track.meta.update(xyz_frame="world: the ChArUco board's frame (origin its top-left outer corner, x along "
                                    "its columns, y along its rows, z into the board), metres",
                          world_frames_missing=lifter.board.missing, world_frames_rejected=lifter.board.rejected)
    return track


@functools.lru_cache(maxsize=1)
def _versions() -> tuple[tuple[str, str], ...]:
    from robot_irl.version import __version__
    return (("opencv", cv2.__version__), ("numpy", np.__version__),
            ("robot_irl", __version__), ("keypoints_extract", "1"))


def versions() -> dict[str, str]:
    """Library versions stored with every extraction (looked up once per process)."""
    return dict(_versions())


def _describe(k: KeypointDef) -> str:
    f = k.feature
    if isinstance(f, Marker):
        return f"marker {f.dictionary}#{f.id}"
    if isinstance(f, Blob):
        return f"{f.color} blob"
    return "no feature"


def _project(camera: CameraModel, xyz: np.ndarray) -> np.ndarray:
    pc = camera.to_camera(xyz)
    if pc[2] <= 0:
        return np.full(2, np.nan)
    return cv2.projectPoints(pc.reshape(1, 1, 3), np.zeros(3), np.zeros(3), camera.K, camera.dist)[0].reshape(2)


def _rate(timestamps: np.ndarray | None) -> float:
    if timestamps is None or len(timestamps) < 2:
        return 30.0
    return float(1.0 / np.median(np.diff(timestamps)))


def _grow(track: KeypointTrack) -> KeypointTrack:
    bigger = KeypointTrack.empty(track.names, np.zeros(2 * len(track)))
    n = len(track)
    for a in ("uv", "confidence", "status", "source", "xyz"):
        getattr(bigger, a)[:n] = getattr(track, a)
    return bigger


def _trim(track: KeypointTrack, n: int) -> KeypointTrack:
    return KeypointTrack(track.names, track.timestamps[:n], track.uv[:n], track.confidence[:n], track.status[:n],
                         track.source[:n], track.xyz[:n])
