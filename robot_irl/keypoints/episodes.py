"""Keypoints of library episodes, stored back as the episode's derived data ``keypoints``.

Arrays written (``ep.read_derived("keypoints")``): ``timestamps [T]``, ``keypoints [T, K, 3]``
(base frame, m; NaN where no 3D), ``uv [T, K, 2]``, ``confidence [T, K]``, ``status [T, K]`` and
``source [T, K]`` (codes; names in meta), and after cleaning ``velocity [T, K, 3]`` plus the raw
extraction as ``raw_keypoints``, ``raw_uv``, ``raw_status``. Meta: keypoint names, code tables,
detector config, versions, camera, per-status counts and keypoints never seen.
"""
from __future__ import annotations

from pathlib import Path

from robot_irl.core.spec import KeypointSpec
from robot_irl.errors import InputError, UnknownNameError
from robot_irl.keypoints.filtering import clean as clean_track
from robot_irl.keypoints.multiview import extract_two_cameras
from robot_irl.keypoints.pipeline import ExtractConfig, extract_video
from robot_irl.keypoints.track import SOURCES, STATUS, KeypointTrack
from robot_irl.keypoints.video import write_track_preview
from robot_irl.library import Episode

DERIVED_NAME = "keypoints"
DERIVED_VERSION = 1


def _spec_of(ep: Episode, spec: KeypointSpec | None = None) -> KeypointSpec:
    """The spec given for this run, else the episode's own."""
    if spec is not None:
        return spec
    if ep.keypoint_spec is None:
        raise InputError("episode has no keypoint spec", file=ep.id, field="meta.keypoint_spec",
                         expected=f"a spec stored with it (robot-irl demos spec {ep.id} --set SPEC.json) "
                                  "or one given for this run")
    return ep.keypoint_spec


def extract_episode(ep: Episode, camera: str = "cam0", config: ExtractConfig | None = None, *,
                    preview: str | Path | None = None, progress: bool = True,
                    spec: KeypointSpec | None = None) -> KeypointTrack:
    """Run :func:`extract_video` on one episode's camera with its own spec (or ``spec``), camera
    model and timestamps."""
    if camera not in ep.cameras:
        raise UnknownNameError("camera", camera, ep.cameras)
    spec = _spec_of(ep, spec)
    return extract_video(ep.video_frames(camera), ep.timestamps(camera), spec, ep.camera_model(camera),
                         preview=preview, config=config, rgb=True, progress=progress)


def extract_episode_two_cameras(ep: Episode, camera: str, second: str, config: ExtractConfig | None = None, *,
                                preview: str | Path | None = None, progress: bool = True,
                                spec: KeypointSpec | None = None) -> KeypointTrack:
    """Both cameras of one episode extracted and fused (:func:`fuse_tracks`): triangulated 3D
    for keypoints without a marker on their body; the track's pixels are ``camera``'s."""
    for cam in (camera, second):
        if cam not in ep.cameras:
            raise UnknownNameError("camera", cam, ep.cameras)
    spec = _spec_of(ep, spec)
    models = {}
    for cam in (camera, second):
        models[cam] = ep.camera_model(cam)
        if models[cam] is None:
            raise InputError("camera has no model", file=ep.id, field=f"cameras.{cam}.model",
                             expected="intrinsics and T_base_cam (robot-irl calibrate, then --hand-eye)")
    return extract_two_cameras(ep.video_frames(camera), ep.timestamps(camera), models[camera],
                               ep.video_frames(second), ep.timestamps(second), models[second], spec,
                               config=config, rgb=True, preview=preview, progress=progress)


def store(ep: Episode, raw: KeypointTrack, cleaned: KeypointTrack | None, camera: str) -> Path:
    """Write a track (cleaned if given, with the raw one beside it) into the episode."""
    main = cleaned if cleaned is not None else raw
    arrays = {"timestamps": main.timestamps, "keypoints": main.xyz, "uv": main.uv, "confidence": main.confidence,
              "status": main.status, "source": main.source}
    if cleaned is not None:
        arrays.update({"velocity": cleaned.velocity, "raw_keypoints": raw.xyz, "raw_uv": raw.uv,
                       "raw_status": raw.status})
    meta = {**main.meta, "names": main.names, "status_codes": list(STATUS), "source_codes": list(SOURCES),
            "camera_name": camera, "cleaned": cleaned is not None}
    return ep.write_derived(DERIVED_NAME, arrays, meta=meta, version=DERIVED_VERSION)


def extract_tracks(ep: Episode, camera: str = "cam0", config: ExtractConfig | None = None, *,
                   clean: bool = True, max_gap: int = 10, preview: str | Path | None = None,
                   progress: bool = True, second_camera: str | None = None,
                   spec: KeypointSpec | None = None) -> tuple[KeypointTrack, KeypointTrack | None]:
    """Extract (one camera, or two fused when ``second_camera`` is given) and clean, writing
    nothing into the library: ``(raw, cleaned)`` (cleaned None without ``clean``). Ray workers
    run this and return the tracks; the driver stores them (:func:`store`).
    ``preview`` draws the track that will be stored (after cleaning, with each value's status)."""
    if second_camera is None:
        raw = extract_episode(ep, camera, config, progress=progress, spec=spec)
    else:
        raw = extract_episode_two_cameras(ep, camera, second_camera, config, progress=progress, spec=spec)
        raw.meta["second_camera_name"] = second_camera
    cleaned = clean_track(raw, max_gap=max_gap) if clean else None
    if preview is not None:
        write_track_preview(ep.video_frames(camera), cleaned if cleaned is not None else raw, preview, rgb=True)
    return raw, cleaned


def extract_and_store(ep: Episode, camera: str = "cam0", config: ExtractConfig | None = None, *,
                      clean: bool = True, max_gap: int = 10, preview: str | Path | None = None,
                      progress: bool = True, second_camera: str | None = None,
                      spec: KeypointSpec | None = None) -> KeypointTrack:
    """:func:`extract_tracks`, then :func:`store`; ``spec`` replaces the episode's own for this
    run (it is stored in the result's meta). Returns the stored track."""
    raw, cleaned = extract_tracks(ep, camera, config, clean=clean, max_gap=max_gap, preview=preview,
                                  progress=progress, second_camera=second_camera, spec=spec)
    store(ep, raw, cleaned, camera)
    return cleaned if cleaned is not None else raw
