"""Crash-safe episode recording.

A recording lives in ``<library>/staging/<id>/`` until it is committed by one ``rename`` into
``episodes/``. While it runs, frames go to a video chunk per camera and rows to a buffer per
stream; a chunk is *flushed* when it is full or ``flush_seconds`` old: the video chunk is closed
(a complete file) and its ``chunk-N.json`` sidecar (frame count, timestamps) written atomically;
a row chunk is written as one parquet file atomically. A process killed at any moment therefore
leaves only whole flushed chunks plus at most one unflushed chunk per stream, and
:func:`finalize` (run by ``commit`` and by ``demos repair``) builds the episode from the flushed
ones and says exactly what it could not keep. Every chunk is fsynced before it counts as flushed
(its sidecar, itself fsynced, is written after it), so a power loss keeps every counted chunk; the
fsyncs run on a sealing thread, in order, so a slow disk never stalls the recording loop
(``flush``/``commit``/``sealed`` wait for them).
Nothing is dropped silently: a frame of the wrong size, a timestamp that goes back, or a chunk
whose file holds fewer frames than were written is an error, never a skipped frame; a chunk that
repair finds truncated or corrupt is dropped with the chunks after it, and reported.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from filelock import FileLock

from robot_irl.core.camera import CameraModel
from robot_irl.core.io import atomic_write_json, to_jsonable
from robot_irl.core.spec import KeypointSpec
from robot_irl.errors import InputError
from robot_irl.library.meta import check_calibration, check_camera_model, check_name
from robot_irl.library.schema import KINDS, SCHEMA_VERSION, SOURCES, check_version, read_json
from robot_irl.library.timeseries import Column, build_table, check_row, fsync_path, write_chunk
from robot_irl.library.video import CODECS, STORED, open_writer, verify_count

if TYPE_CHECKING:
    from robot_irl.library.episode import Episode
    from robot_irl.library.library import Library

RECORDING = "recording.json"
CHUNK_RE = re.compile(r"^chunk-(\d{6})\.")


def write_sidecar(path: Path, data: dict[str, Any], *, durable: bool = False) -> None:
    """Write-then-rename: atomic against a killed process. ``durable`` also fsyncs the file and its
    folder, as a chunk's sidecar needs: it is what counts the chunk as flushed, so it must not
    reach the disk before the chunk does (the chunk is fsynced first)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data))
    if durable:
        fsync_path(tmp)
    os.replace(tmp, path)
    if durable:
        fsync_path(path.parent)


def _chunk_name(i: int, ext: str) -> str:
    return f"chunk-{i:06d}.{ext}"


class _Sealer:
    """Makes closed chunks durable off the recording thread, in order: the fsyncs wait on the disk
    (milliseconds each), which would otherwise stall a camera loop at every chunk. A chunk still
    counts as flushed only once its sidecar (or parquet rename) is written, after its fsync, so
    crash safety is the same; :meth:`wait` (flush, commit) returns once all are sealed and raises
    the first error, and :meth:`check` raises one early on the recording thread."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seal-chunks")
        self._pending: list[Future] = []
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        with self._lock:
            self._pending.append(self._pool.submit(fn, *args))

    def check(self) -> None:
        with self._lock:
            done = [f for f in self._pending if f.done()]
            self._pending = [f for f in self._pending if not f.done()]
        for f in done:
            f.result()

    def wait(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        errors = [f.exception() for f in pending]
        for e in errors:
            if e is not None:
                raise e

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def _seal_video(path: Path, times: list[float]) -> None:
    verify_count(path, len(times))
    fsync_path(path)
    write_sidecar(path.with_suffix(".json"), {"file": path.name, "frames": len(times), "bytes": path.stat().st_size,
                                             "timestamps": times}, durable=True)


class _CameraSink:
    """One camera: the open video chunk, its frames' timestamps, the flushed chunks' sidecars."""

    def __init__(self, root: Path, name: str, size: tuple[int, int], fps: float, codec: str, sealer: _Sealer) -> None:
        self.dir = root / "cameras" / name
        self.sealer = sealer
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name, self.size, self.fps, self.codec = name, size, fps, codec
        self.shape = (size[1], size[0], 3)
        self.index = 0
        self.writer: cv2.VideoWriter | None = None
        self.path: Path | None = None
        self.times: list[float] = []
        self.last_t = -math.inf
        self.opened_at = 0.0
        self.frames = 0

    def add_chunk(self, write: Callable[[Path], Sequence[float]]) -> int:
        """Store a ready-made chunk: ``write(path)`` writes the video file and returns its frames'
        times (seconds, the episode's clock). Made durable and counted like an encoded chunk."""
        self.flush()
        self.sealer.wait()
        path = self.dir / _chunk_name(self.index, (CODECS.get(self.codec) or STORED[self.codec]).ext)
        times = [float(t) for t in write(path)]
        if not times or not all(math.isfinite(t) for t in times) or times[0] <= self.last_t \
                or any(b <= a for a, b in zip(times, times[1:])):
            path.unlink(missing_ok=True)
            raise InputError(f"chunk frame times {times[:3]}... after {self.last_t}",
                             field=f"cameras.{self.name}.timestamp",
                             expected="finite, strictly increasing seconds after the frames before")
        fsync_path(path)
        write_sidecar(path.with_suffix(".json"), {"file": path.name, "frames": len(times),
                                                 "bytes": path.stat().st_size, "timestamps": times}, durable=True)
        self.last_t = times[-1]
        self.frames += len(times)
        self.index += 1
        return len(times)

    def write(self, frame: np.ndarray, t: float, bgr: bool) -> None:
        if self.codec not in CODECS:
            raise InputError(f"camera {self.name} stores ready-made {self.codec} chunks", field=f"cameras.{self.name}",
                             expected="add_chunk (write_frame encodes only ffv1 or mp4v)")
        if frame.shape != self.shape or frame.dtype != np.uint8:
            raise InputError(f"frame is {frame.dtype} {frame.shape}", field=f"cameras.{self.name}.frame",
                             expected=f"uint8 {self.shape} (the size given to add_camera)")
        if not math.isfinite(t) or t <= self.last_t:
            raise InputError(f"timestamp {t} after {self.last_t}", field=f"cameras.{self.name}.timestamp",
                             expected="finite, strictly increasing seconds")
        if self.writer is None:
            self.path = self.dir / _chunk_name(self.index, CODECS[self.codec].ext)
            self.writer = open_writer(self.path, self.codec, self.fps, self.size)
            self.opened_at = time.monotonic()
        self.writer.write(frame if bgr else cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        self.times.append(float(t))
        self.last_t = float(t)
        self.frames += 1

    def flush(self) -> None:
        """Close the open chunk, check it holds every frame written, then mark it flushed."""
        if self.writer is None:
            return
        self.writer.release()
        self.writer = None
        assert self.path is not None
        self.sealer.submit(_seal_video, self.path, self.times)
        self.times = []
        self.index += 1


class _StreamSink:
    """One time-series stream: buffered rows, written as a parquet chunk on flush."""

    def __init__(self, root: Path, name: str, columns: Mapping[str, Column], sealer: _Sealer) -> None:
        self.dir = root / "data" / name
        self.sealer = sealer
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name, self.columns = name, dict(columns)
        self.index = 0
        self.times: list[float] = []
        self.values: dict[str, list[np.ndarray]] = {c: [] for c in columns}
        self.last_t = -math.inf
        self.started_at = 0.0
        self.rows = 0

    def write(self, t: float, values: Mapping[str, Any]) -> None:
        if not math.isfinite(t) or t <= self.last_t:
            raise InputError(f"timestamp {t} after {self.last_t}", field=f"streams.{self.name}.timestamp",
                             expected="finite, strictly increasing seconds")
        row = check_row(self.columns, values, self.name)
        if not self.times:
            self.started_at = time.monotonic()
        for k, v in row.items():
            self.values[k].append(v)
        self.times.append(float(t))
        self.last_t = float(t)
        self.rows += 1

    def flush(self) -> None:
        if not self.times:
            return
        self.sealer.submit(write_chunk, self.dir / _chunk_name(self.index, "parquet"),
                           build_table(self.columns, self.times, self.values))
        self.times = []
        self.values = {c: [] for c in self.columns}
        self.index += 1


class EpisodeWriter:
    """Records one episode into a library; use as a context manager (``with lib.writer(...) as w``).

    Declare cameras and streams, then feed frames and rows with their timestamps (seconds on the
    episode's one clock). Leaving the ``with`` block normally commits; an exception flushes what
    was written and leaves the episode in staging for ``demos repair``.
    """

    def __init__(self, library: "Library", root: Path, info: dict[str, Any], *, chunk_frames: int,
                 flush_seconds: float, lock: FileLock, adopt: "Callable[[Path], Episode] | None" = None) -> None:
        self.library, self.root, self.info = library, root, info
        self._adopt = adopt if adopt is not None else library._adopt
        self.chunk_frames, self.flush_seconds = chunk_frames, flush_seconds
        self._lock = lock
        self._cams: dict[str, _CameraSink] = {}
        self._streams: dict[str, _StreamSink] = {}
        self._done = False
        self._sealer = _Sealer()
        self._save_info()

    @property
    def id(self) -> str:
        return self.info["id"]

    @property
    def committed(self) -> bool:
        """Committed or aborted: the writer takes no more frames."""
        return self._done

    def _save_info(self) -> None:
        write_sidecar(self.root / RECORDING, self.info)

    def add_camera(self, name: str, size: tuple[int, int], *, codec: str = "ffv1",
                   model: CameraModel | None = None, calibration: Mapping[str, Any] | None = None) -> None:
        """Declare a camera: frame ``size`` (width, height), ``codec`` ("ffv1" lossless .mkv or
        "mp4v" .mp4), its model if known and how that model was obtained (as in
        ``Episode.update_camera_model``, which stores one after recording)."""
        check_name(name, "camera")
        if name in self._cams:
            raise InputError(f"camera {name!r} declared twice", field="cameras", expected="unique names")
        if codec not in CODECS and codec not in STORED:
            raise InputError(f"unknown codec {codec!r}", field=f"cameras.{name}.codec",
                             expected=f"{list(CODECS)} (encoded here) or {list(STORED)} (ready-made chunks)")
        size = (int(size[0]), int(size[1]))
        file = self.root / RECORDING
        if model is not None:
            check_camera_model(model, size, file, f"cameras.{name}.model")
        elif calibration is not None:
            raise InputError("a calibration record without a model", field=f"cameras.{name}.calibration",
                             expected="model= as well")
        entry: dict[str, Any] = {"size": list(size), "codec": codec,
                                 "model": model.to_dict() if model is not None else None}
        if calibration is not None:
            entry["calibration"] = check_calibration(calibration, model, file, f"cameras.{name}.calibration")
        self._cams[name] = _CameraSink(self.root, name, size, self.info["fps"], codec, self._sealer)
        self.info["cameras"][name] = entry
        self._save_info()

    def add_stream(self, name: str, columns: Mapping[str, Column]) -> None:
        """Declare a time-series stream and its columns (``timestamp`` is implicit)."""
        check_name(name, "stream")
        if name in self._streams:
            raise InputError(f"stream {name!r} declared twice", field="streams", expected="unique names")
        for c, spec in columns.items():
            check_name(c, "column")
            if c == "timestamp":
                raise InputError("'timestamp' is implicit", field=f"streams.{name}.columns", expected="other names")
            if spec.dtype not in ("float64", "float32", "int64", "int32", "uint8", "bool"):
                raise InputError(f"dtype {spec.dtype!r}", field=f"streams.{name}.columns.{c}",
                                 expected="float64, float32, int64, int32, uint8 or bool")
        self._streams[name] = _StreamSink(self.root, name, columns, self._sealer)
        self.info["streams"][name] = {"columns": {c: s.to_dict() for c, s in columns.items()}}
        self._save_info()

    def write_frame(self, camera: str, frame: np.ndarray, t: float, *, bgr: bool = False) -> None:
        """Append one frame (uint8 [H, W, 3], RGB unless ``bgr``) captured at time ``t``."""
        sink = self._cams.get(camera)
        if sink is None:
            raise InputError(f"unknown camera {camera!r}", field="camera", expected=f"one of {sorted(self._cams)}")
        sink.write(frame, t, bgr)
        if len(sink.times) >= self.chunk_frames or time.monotonic() - sink.opened_at >= self.flush_seconds:
            sink.flush()
            self._sealer.check()

    def add_chunk(self, camera: str, write: Callable[[Path], Sequence[float]]) -> int:
        """Add a ready-made video chunk to ``camera`` (declared with a codec from ``STORED``):
        ``write(path)`` writes the file there and returns its frames' times; returns the frame count."""
        sink = self._cams.get(camera)
        if sink is None:
            raise InputError(f"unknown camera {camera!r}", field="camera", expected=f"one of {sorted(self._cams)}")
        return sink.add_chunk(write)

    def write_row(self, stream: str, t: float, **values: Any) -> None:
        """Append one row of ``stream`` at time ``t``; ``values`` holds every declared column."""
        sink = self._streams.get(stream)
        if sink is None:
            raise InputError(f"unknown stream {stream!r}", field="stream", expected=f"one of {sorted(self._streams)}")
        sink.write(t, values)
        if len(sink.times) >= self.chunk_frames or time.monotonic() - sink.started_at >= self.flush_seconds:
            sink.flush()
            self._sealer.check()

    def sealed(self) -> None:
        """Wait until every closed chunk is durable (fsynced and counted); the open chunks stay open."""
        self._sealer.wait()

    def flush(self) -> None:
        """Make everything written so far durable (closes the open chunks)."""
        try:
            for s in (*self._cams.values(), *self._streams.values()):
                s.flush()
        finally:
            self._sealer.wait()

    def commit(self, *, success: bool | None = None, tags: list[str] | None = None,
               extra: Mapping[str, Any] | None = None) -> "Episode":
        """Flush, write meta.json, and move the episode into the library in one rename."""
        if self._done:
            raise InputError("episode already committed", field="commit", expected="one commit per writer")
        self.flush()
        self.info["success"] = success
        if tags:
            self.info["tags"] = sorted(set(self.info["tags"]) | set(tags))
        if extra:
            self.info["extra"].update(to_jsonable(dict(extra)))
        self._save_info()
        report = finalize(self.root, recovered=False)
        if report.lost:
            raise InputError("; ".join(report.lost), file=self.root, field="chunks", expected="every chunk flushed")
        ep = self._adopt(self.root)
        self._done = True
        self._sealer.close()
        self._lock.release()
        return ep

    def abort(self) -> None:
        """Flush what was written and leave the episode in staging for ``demos repair``."""
        if self._done:
            return
        try:
            self.flush()
        finally:
            self._done = True
            self._sealer.close()
            self._lock.release()

    def __enter__(self) -> "EpisodeWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._done:
            return
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def new_info(*, episode_id: str, task: str, source: str, kind: str, fps: float, robot: str | None, env: str | None,
             seed: int | None, variant: Mapping[str, Any] | None, tags: list[str] | None,
             keypoint_spec: KeypointSpec | None, extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """The recording.json a new recording starts with (meta.json minus what only commit knows)."""
    if source not in SOURCES:
        raise InputError(f"source is {source!r}", field="source", expected=f"one of {list(SOURCES)}")
    if kind not in KINDS:
        raise InputError(f"kind is {kind!r}", field="kind", expected=f"one of {list(KINDS)}")
    if not isinstance(task, str):
        raise InputError(f"task is {task!r}", field="task", expected="a string")
    if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise InputError(f"fps is {fps!r}", field="fps", expected="a number > 0")
    for t in tags or []:
        if not isinstance(t, str) or not t or any(ch.isspace() or ch == "," for ch in t):
            raise InputError(f"tag {t!r}", field="tags", expected="non-empty strings without spaces or commas")
    now = time.time()
    return {"schema_version": SCHEMA_VERSION, "id": episode_id, "task": task, "source": source, "kind": kind,
            "robot": robot, "env": env, "seed": seed, "fps": float(fps),
            "created": dt.datetime.fromtimestamp(now, dt.timezone.utc).isoformat(timespec="seconds"),
            "start_time": now, "success": None, "recovered": False, "tags": sorted(set(tags or [])),
            "variant": to_jsonable(dict(variant or {})),
            "keypoint_spec": keypoint_spec.to_dict() if keypoint_spec is not None else None,
            "cameras": {}, "streams": {}, "extra": to_jsonable(dict(extra or {}))}


class FinalizeReport:
    """What finalize kept and what it could not (unflushed chunks of a killed recording)."""

    def __init__(self) -> None:
        self.kept: list[str] = []
        self.lost: list[str] = []


def _indexed(folder: Path, suffix: str) -> list[tuple[int, Path]]:
    out = []
    for p in folder.iterdir() if folder.is_dir() else []:
        m = CHUNK_RE.match(p.name)
        if m and p.name.endswith(suffix):
            out.append((int(m.group(1)), p))
    return sorted(out)


def _contiguous(parts: list[tuple[int, Path]], folder: Path, field: str) -> None:
    for expect, (i, _) in enumerate(parts):
        if i != expect:
            raise InputError(f"chunk {expect} is missing", file=folder, field=field,
                             expected="contiguous chunks from 0")


def finalize(root: Path, *, recovered: bool) -> FinalizeReport:
    """Turn a staging folder into a complete episode folder (meta.json, per-camera timestamps).

    Keeps every flushed chunk and reports what it cannot keep (a video chunk without its sidecar:
    the frames written after the last flush). Chunks must be contiguous from 0: a gap means a file
    was lost, which is an error, not something to paper over. Safe to rerun after a crash: nothing
    is deleted before meta.json is written, and meta.json replaces recording.json."""
    report = FinalizeReport()
    if not (root / RECORDING).exists() and (root / "meta.json").exists():
        _cleanup(root, read_json(root / "meta.json", "meta.json"))
        return report
    info = check_version(read_json(root / RECORDING, "recording.json"), root / RECORDING)
    starts, ends = [], []
    for cam, c in info["cameras"].items():
        folder = root / "cameras" / cam
        sidecars = _indexed(folder, ".json")
        _contiguous(sidecars, folder, f"cameras.{cam}.chunks")
        chunks, times = [], []
        for i, side in sidecars:
            try:
                s = read_json(side, "chunk sidecar")
            except InputError:
                if not recovered:
                    raise
                s = {"file": side.name, "bytes": -1}   # a torn sidecar: its chunk is dropped below
            video = folder / s["file"]
            if not video.is_file() or video.stat().st_size != s["bytes"]:
                if recovered:  # an OS crash kept the sidecar but not all of its video: stop before it
                    report.lost.append(f"camera {cam}: chunk {s['file']} did not reach the disk whole; "
                                       f"it and the chunks after it are dropped")
                    side.unlink()
                    for _, later in sidecars[i + 1:]:
                        later.unlink()
                    break
                raise InputError("flushed chunk is missing or changed", file=video,
                                 field=f"cameras.{cam}.chunks[{i}]", expected=f"{s['bytes']} bytes")
            chunks.append({"file": f"cameras/{cam}/{s['file']}", "frames": s["frames"], "bytes": s["bytes"]})
            times.extend(s["timestamps"])
        listed = {ch["file"].rsplit("/", 1)[1] for ch in chunks}
        for p in sorted(folder.glob("chunk-*.*")) if folder.is_dir() else []:
            if p.suffix != ".json" and p.name not in listed:
                report.lost.append(f"camera {cam}: unflushed chunk {p.name} (frames after the "
                                   f"{len(times)} flushed ones)")
        ts_rel = f"cameras/{cam}/timestamps.parquet"
        pq.write_table(pa.table({"timestamp": pa.array(np.asarray(times, dtype=np.float64))}), root / ts_rel)
        c.update({"frames": len(times), "chunks": chunks, "timestamps": ts_rel})
        report.kept.append(f"camera {cam}: {len(times)} frames in {len(chunks)} chunks"
                           + (f", last at t={times[-1]:.3f}s" if times else ""))
        if times:
            starts.append(times[0])
            ends.append(times[-1])
    for name, s in info["streams"].items():
        folder = root / "data" / name
        parts = _indexed(folder, ".parquet")
        _contiguous(parts, folder, f"streams.{name}.chunks")
        chunks, rows, last = [], 0, None
        for i, (_, p) in enumerate(parts):
            try:
                t = pq.read_table(p).column("timestamp").to_numpy()
            except (pa.ArrowException, OSError, KeyError) as e:
                if not recovered:
                    raise InputError(f"unreadable chunk ({e})", file=p, field=f"streams.{name}.chunks[{i}]",
                                     expected="a parquet chunk written by robot-irl") from None
                report.lost.append(f"stream {name}: chunk {p.name} is truncated or corrupt; it and the "
                                   f"{len(parts) - i - 1} chunk(s) after it are dropped")
                for _, later in parts[i:]:
                    later.unlink()
                break
            if len(t):
                starts.append(float(t[0]))
                ends.append(float(t[-1]))
                last = float(t[-1])
            chunks.append({"file": f"data/{name}/{p.name}", "rows": len(t), "bytes": p.stat().st_size})
            rows += len(t)
        s.update({"rows": rows, "chunks": chunks})
        report.kept.append(f"stream {name}: {rows} rows in {len(chunks)} chunks"
                           + (f", last at t={last:.3f}s" if last is not None else ""))
    info["duration"] = (max(ends) - min(starts)) if starts else 0.0
    if recovered:
        info["recovered"] = True
        info["tags"] = sorted(set(info["tags"]) | {"recovered"})
    atomic_write_json(root / "meta.json", info)
    os.unlink(root / RECORDING)
    _cleanup(root, info)
    return report


def _cleanup(root: Path, meta: dict[str, Any]) -> None:
    """Delete what meta.json does not list under cameras/ and data/ (sidecars, unflushed chunks,
    temp files): after finalize they are not part of the episode."""
    keep = {root / ch["file"] for c in meta["cameras"].values() for ch in c["chunks"]}
    keep |= {root / c["timestamps"] for c in meta["cameras"].values()}
    keep |= {root / ch["file"] for s in meta["streams"].values() for ch in s["chunks"]}
    for sub in ("cameras", "data"):
        for p in sorted((root / sub).rglob("*")) if (root / sub).is_dir() else []:
            if p.is_file() and p not in keep:
                p.unlink()
