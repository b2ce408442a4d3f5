"""An episode's ``meta.json``: its layout and the one validator every reader goes through.

Validation is cheap (JSON, ``stat`` of every file it lists) so it runs whenever an episode is
opened: a missing or truncated chunk, a count that does not add up or a field of the wrong type is
reported with the file and the dotted field, before any stage reads a wrong array.
"""
from __future__ import annotations

from pathlib import Path, PurePosixPath
from collections.abc import Mapping
from typing import Any

import numpy as np

from robot_irl.core.camera import CameraModel
from robot_irl.core.io import to_jsonable
from robot_irl.core.spec import KeypointSpec
from robot_irl.errors import InputError
from robot_irl.library.schema import DTYPES, KINDS, SOURCES, Fields, check_version
from robot_irl.library.video import CODECS, STORED

NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


def check_name(name: Any, what: str, *, file: Path | None = None) -> str:
    """Camera, stream, column and derived names become file names and query fields: keep them plain."""
    if not isinstance(name, str) or not name or not set(name) <= NAME_CHARS or name[0] == ".":
        raise InputError(f"bad {what} name {name!r}", file=file, field=what,
                         expected="letters, digits, '_', '-', '.' (not starting with '.')")
    return name


def column_shape(spec: Fields) -> tuple[int, ...]:
    shape = spec.list("shape")
    if not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape):
        raise InputError(f"shape is {shape!r}", file=spec.file, field=spec.prefix + "shape",
                         expected="a list of positive integers ([] for a scalar)")
    return tuple(shape)


def _chunks(f: Fields, root: Path, count_key: str) -> int:
    """Check every chunk listed under ``f``: relative path inside the episode, present, right size."""
    total = 0
    for i, c in enumerate(f.list("chunks")):
        if not isinstance(c, dict):
            raise InputError("chunk is not an object", file=f.file, field=f"{f.prefix}chunks[{i}]",
                             expected="{file, " + count_key + ", bytes}")
        cf = Fields(c, f.file, f"{f.prefix}chunks[{i}].")
        rel = cf.str("file")
        p = PurePosixPath(rel)
        if p.is_absolute() or ".." in p.parts:
            raise InputError(f"path {rel!r} leaves the episode folder", file=f.file, field=f"{cf.prefix}file",
                             expected="a path relative to the episode folder")
        n, size = cf.int(count_key, minimum=1), cf.int("bytes", minimum=1)
        path = root / rel
        if not path.is_file():
            raise InputError("chunk file is missing", file=path, field=f"{cf.prefix}file",
                             expected="the file meta.json lists")
        actual = path.stat().st_size
        if actual != size:
            raise InputError(f"file has {actual} bytes, meta.json says {size} (truncated or replaced)",
                             file=path, field=f"{cf.prefix}bytes", expected=f"{size} bytes")
        total += n
    if total != f.int(count_key, minimum=0):
        raise InputError(f"chunks hold {total} {count_key}, meta.json says {f.data[count_key]}",
                         file=f.file, field=f"{f.prefix}{count_key}", expected=str(total))
    return total


def validate_meta(meta: dict[str, Any], root: Path) -> dict[str, Any]:
    """Validate (and migrate) the meta of the episode folder ``root``; returns the checked dict."""
    file = root / "meta.json"
    meta = check_version(meta, file)
    f = Fields(meta, file)
    f.str("id")
    if meta["id"] != root.name:
        raise InputError(f"id {meta['id']!r} differs from the folder name {root.name!r}", file=file,
                         field="id", expected=repr(root.name))
    f.str("task")
    f.str("source", choices=SOURCES)
    f.str("kind", choices=KINDS)
    f.str("robot", optional=True)
    f.str("env", optional=True)
    f.get("seed", (int,), "an integer or null", optional=True)
    f.number("fps", positive=True)
    f.str("created")
    f.number("start_time")
    if f.number("duration") < 0:
        raise InputError(f"duration is {meta['duration']}", file=file, field="duration", expected="seconds >= 0")
    f.bool("success", optional=True)
    f.bool("recovered")
    f.str_list("tags")
    f.obj("variant")
    f.obj("extra")
    if meta.get("keypoint_spec") is not None:
        KeypointSpec.from_dict(meta["keypoint_spec"], file=f"{file} (keypoint_spec)")
    cams = f.obj("cameras")
    for name in cams.data:
        check_name(name, "camera", file=file)
        c = cams.obj(name)
        size = c.list("size")
        if not (len(size) == 2 and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size)):
            raise InputError(f"size is {size!r}", file=file, field=f"{c.prefix}size", expected="[width, height] > 0")
        c.str("codec", choices=tuple(dict.fromkeys([*CODECS, *STORED])))
        c.str("timestamps")
        if c.data.get("model") is not None:
            model = CameraModel.from_dict(c.data["model"], file=f"{file} (cameras.{name}.model)")
            check_camera_model(model, tuple(size), file, f"{c.prefix}model")
        if c.data.get("calibration") is not None:
            cal = c.obj("calibration")
            if cal.data.get("rms_px") is not None and not (cal.number("rms_px") >= 0):
                raise InputError(f"rms_px is {cal.data['rms_px']}", file=file, field=f"{cal.prefix}rms_px",
                                 expected="pixels >= 0")
            cal.str("source", optional=True)
        _chunks(c, root, "frames")
    streams = f.obj("streams")
    for name in streams.data:
        check_name(name, "stream", file=file)
        s = streams.obj(name)
        cols = s.obj("columns")
        if "timestamp" in cols.data:
            raise InputError("'timestamp' is implicit, not a column", file=file, field=f"{cols.prefix}timestamp",
                             expected="other column names")
        for col in cols.data:
            check_name(col, "column", file=file)
            cs = cols.obj(col)
            column_shape(cs)
            cs.str("dtype", choices=DTYPES)
            cs.str("unit", optional=True)
            if cs.data.get("names") is not None:
                cs.str_list("names")
        _chunks(s, root, "rows")
    return meta


MODEL_KEYS = ("K", "dist", "size", "T_base_cam", "name")
DIST_LENGTHS = (4, 5, 8, 12, 14)      # the coefficient counts OpenCV accepts


def check_camera_model(model: Any, size: tuple[int, int], file: Path, field: str) -> CameraModel:
    """A camera model must describe the video it belongs to: same size, a real pinhole (finite K,
    positive focal lengths), an OpenCV distortion vector and a rigid ``T_base_cam``."""
    if not isinstance(model, CameraModel):
        raise InputError(f"model is {type(model).__name__}", file=file, field=field, expected="a CameraModel")
    if tuple(model.size) != tuple(size):
        raise InputError(f"camera model size {list(model.size)} differs from video size {list(size)}",
                         file=file, field=f"{field}.size", expected=str(list(size)))
    K = model.K
    if not np.isfinite(K).all() or K[0, 0] <= 0 or K[1, 1] <= 0 or not np.allclose(K[2], [0, 0, 1]):
        raise InputError(f"K is {K.tolist()}", file=file, field=f"{field}.K",
                         expected="finite [[fx, s, cx], [0, fy, cy], [0, 0, 1]] with fx, fy > 0")
    if model.dist.size not in DIST_LENGTHS or not np.isfinite(model.dist).all():
        raise InputError(f"dist is {model.dist.tolist()}", file=file, field=f"{field}.dist",
                         expected=f"{' / '.join(map(str, DIST_LENGTHS))} finite OpenCV coefficients")
    T = model.T_base_cam
    R = T[:3, :3]
    if (not np.isfinite(T).all() or not np.allclose(T[3], [0, 0, 0, 1])
            or not np.allclose(R @ R.T, np.eye(3), atol=1e-6) or np.linalg.det(R) <= 0):
        raise InputError("T_base_cam is not a rigid transform", file=file, field=f"{field}.T_base_cam",
                         expected="4×4 [R t; 0 0 0 1] with R a rotation")
    return model


def check_calibration(calibration: Mapping[str, Any], model: CameraModel, file: Path, field: str) -> dict[str, Any]:
    """The record of how a model was obtained, JSON only. Model fields in it (as in
    ``Calibration.to_dict()``) must agree with ``model`` and are dropped: the model is stored once."""
    if not isinstance(calibration, Mapping):
        raise InputError(f"calibration is {type(calibration).__name__}", file=file, field=field,
                         expected="a dict (rms_px, source, ...)")
    try:
        record = to_jsonable(dict(calibration))
    except (TypeError, ValueError) as e:
        raise InputError(f"not JSON ({e})", file=file, field=field, expected="JSON values") from None
    ref = model.to_dict()
    for key in MODEL_KEYS:
        if key in record:
            same = (record[key] == ref[key] if key == "name" else
                    np.shape(record[key]) == np.shape(ref[key]) and np.allclose(record[key], ref[key]))
            if not same:
                raise InputError(f"{key} {record[key]} differs from the model's {ref[key]}", file=file,
                                 field=f"{field}.{key}", expected="the model's value (or leave it out)")
            del record[key]
    rms = record.get("rms_px")
    if rms is not None and (isinstance(rms, bool) or not isinstance(rms, (int, float))
                            or not np.isfinite(rms) or rms < 0):
        raise InputError(f"rms_px is {rms!r}", file=file, field=f"{field}.rms_px", expected="pixels >= 0")
    if record.get("source") is not None and not isinstance(record["source"], str):
        raise InputError(f"source is {record['source']!r}", file=file, field=f"{field}.source",
                         expected="the calibration file or video, as a string")
    return record


def check_timestamps(ts: np.ndarray, file: Path, field: str) -> np.ndarray:
    """Timestamps must be finite and strictly increasing (one clock, seconds)."""
    ts = np.asarray(ts)
    if ts.dtype != np.float64 or ts.ndim != 1:
        raise InputError(f"timestamps are {ts.dtype} with shape {ts.shape}", file=file, field=field,
                         expected="float64 [N] seconds")
    bad = np.flatnonzero(~np.isfinite(ts))
    if bad.size:
        raise InputError(f"timestamp {int(bad[0])} is {ts[bad[0]]}", file=file, field=field,
                         expected="finite seconds")
    back = np.flatnonzero(np.diff(ts) <= 0)
    if back.size:
        i = int(back[0])
        raise InputError(f"timestamps go back or repeat at index {i + 1} ({ts[i]} then {ts[i + 1]})",
                         file=file, field=field, expected="strictly increasing")
    return ts
