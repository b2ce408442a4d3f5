"""Import a LeRobot dataset folder (codebase v3.0, or v2.0/v2.1 converted on the way in) into a library.

What LeRobot users have on disk: v3.0 (LeRobot >= 0.4: many episodes per data file and per video
file, spans in ``meta/episodes``) and v2.x (most datasets on the hub: one parquet and one mp4 per
episode, ``meta/episodes.jsonl``). Both are read into one list of :class:`EpisodeSource` and
imported the same way; paths always come from ``info.json``'s ``data_path`` / ``video_path``
templates. Video is decoded through the library's one PyAV path (AV1, H.264, HEVC, VP9, ...),
each frame stamped with its own presentation time.

An import is all-or-nothing per dataset (:meth:`Library.batch`), and a dataset already imported
(same content hash of its metadata and data files) is refused, naming the episodes it became.
A folder we exported ourselves carries ``meta/robot_irl.json``, which restores our meta, columns
and NaN cells exactly.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from robot_irl.core.camera import CameraModel
from robot_irl.core.spec import KeypointSpec
from robot_irl.errors import InputError
from robot_irl.library.decode import VideoTruncatedError, decode_exact, probe
from robot_irl.library.episode import Episode
from robot_irl.library.lerobot import INDEX_FEATURES, SIDE, video_key
from robot_irl.library.library import Library
from robot_irl.library.schema import DTYPES, Fields, read_json
from robot_irl.library.timeseries import Column
from robot_irl.library.video import STORED, remux_span

VERSIONS = ("v2.0", "v2.1", "v3.0")
SOURCE_KEY = "lerobot_source"   # extra.<this>: {"dataset": content hash, "episode_index": e, "path": folder}


@dataclass
class EpisodeSource:
    """Where one LeRobot episode lives: its data file (rows filtered by episode_index) and, per
    video key, the file and the time span [start, end) of its frames in that file."""

    index: int
    task: str
    length: int
    data: Path
    videos: dict[str, tuple[Path, float, float]] = field(default_factory=dict)


@dataclass
class Dataset:
    root: Path
    info: dict[str, Any]
    version: str
    fps: int
    features: dict[str, dict[str, Any]]
    video_keys: list[str]
    episodes: list[EpisodeSource]
    meta_files: list[Path]


def _fill(template: str, info_path: Path, field_name: str, **keys: Any) -> str:
    try:
        return template.format(**keys)
    except (KeyError, IndexError, ValueError) as e:
        raise InputError(f"template {template!r} uses {e} which this reader does not know", file=info_path,
                         field=field_name, expected=f"placeholders among {sorted(keys)}") from None


def _read_parquet(path: Path, field_name: str) -> pa.Table:
    if not path.is_file():
        raise InputError("file missing", file=path, field=field_name, expected="a parquet file")
    try:
        return pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise InputError(f"unreadable parquet, file truncated or corrupt ({e})", file=path, field=field_name,
                         expected="a parquet file") from None


def _jsonl(path: Path, field_name: str) -> list[dict[str, Any]]:
    if not path.is_file():
        raise InputError("file missing", file=path, field=field_name, expected="one JSON object per line")
    out = []
    for i, line in enumerate(path.read_text().splitlines()):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise InputError(f"line {i + 1} is not JSON ({e})", file=path, field=field_name,
                                 expected="one JSON object per line") from None
    return out


def read_dataset(src: str | Path) -> Dataset:
    """Read and check a LeRobot dataset's metadata (no video decoding yet)."""
    root = Path(src)
    if not root.is_dir():
        raise InputError("not a folder", file=root, field="import", expected="a LeRobot dataset folder")
    info_path = root / "meta/info.json"
    info = read_json(info_path, "LeRobot info.json")
    f = Fields(info, info_path)
    version = f.str("codebase_version")
    if version not in VERSIONS:
        raise InputError(f"codebase_version is {version!r}, which this robot-irl does not read", file=info_path,
                         field="codebase_version",
                         expected=f"one of {list(VERSIONS)} (convert it with LeRobot's converters first)")
    fps = f.int("fps", minimum=1)
    feats = f.obj("features")
    data_tpl = f.str("data_path")
    videos = [k for k, v in feats.data.items() if isinstance(v, dict) and v.get("dtype") == "video"]
    video_tpl = f.str("video_path") if videos else None
    for k in feats.data:
        fe = feats.obj(k)
        dtype = fe.str("dtype")
        fe.list("shape")
        if k not in videos and k not in INDEX_FEATURES and dtype not in DTYPES and dtype != "string":
            raise InputError(f"feature dtype {dtype!r} is not imported", file=info_path,
                             field=f"features.{k}.dtype", expected=f"video or one of {list(DTYPES)}")
    chunks_size = info.get("chunks_size") or 1000
    eps: list[EpisodeSource] = []
    if version == "v3.0":
        ep_dir = root / "meta/episodes"
        meta_files = sorted(ep_dir.glob("*/*.parquet"))
        if not meta_files:
            raise InputError("no episode metadata", file=ep_dir, field="meta/episodes",
                             expected="chunk-*/file-*.parquet")
        tables = [_read_parquet(p, "meta/episodes") for p in meta_files]
        rows = pa.concat_tables([t.select([c for c in t.column_names if not c.startswith("stats/")]) for t in tables],
                                promote_options="default").to_pylist()
        for r in sorted(rows, key=lambda r: r["episode_index"]):
            e = r["episode_index"]
            data = root / _fill(data_tpl, info_path, "data_path", chunk_index=r["data/chunk_index"],
                                file_index=r["data/file_index"], episode_index=e, episode_chunk=e // chunks_size)
            src_ep = EpisodeSource(e, (r.get("tasks") or [""])[0], int(r["length"]), data)
            for vk in videos:
                path = root / _fill(video_tpl or "", info_path, "video_path", video_key=vk,
                                    chunk_index=r[f"videos/{vk}/chunk_index"], file_index=r[f"videos/{vk}/file_index"],
                                    episode_index=e, episode_chunk=e // chunks_size)
                src_ep.videos[vk] = (path, float(r[f"videos/{vk}/from_timestamp"]),
                                     float(r[f"videos/{vk}/to_timestamp"]))
            eps.append(src_ep)
    else:
        ep_file = root / "meta/episodes.jsonl"
        meta_files = [ep_file, root / "meta/tasks.jsonl"]
        for r in sorted(_jsonl(ep_file, "meta/episodes.jsonl"), key=lambda r: r["episode_index"]):
            e, n = int(r["episode_index"]), int(r["length"])
            keys = dict(episode_chunk=e // chunks_size, episode_index=e, chunk_index=e // chunks_size, file_index=e)
            data = root / _fill(data_tpl, info_path, "data_path", **keys)
            src_ep = EpisodeSource(e, (r.get("tasks") or [""])[0], n, data)
            for vk in videos:
                path = root / _fill(video_tpl or "", info_path, "video_path", video_key=vk, **keys)
                src_ep.videos[vk] = (path, 0.0, n / fps)
            eps.append(src_ep)
    if not eps:
        raise InputError("dataset has no episodes", file=root / "meta", field="episodes", expected="at least one")
    return Dataset(root, info, version, fps, feats.data, videos, eps, [info_path, *meta_files])


def source_identity(ds: Dataset) -> str:
    """A content hash of what defines the dataset (info, episode metadata, data files), so the
    same dataset copied to another folder is still recognised."""
    h = hashlib.sha256()
    for p in [*ds.meta_files, *sorted({e.data for e in ds.episodes})]:
        if p.is_file():
            h.update(p.relative_to(ds.root).as_posix().encode())
            with open(p, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()[:32]


def imported_as(lib: Library, identity: str) -> list[str]:
    """Ids of the episodes already imported from the dataset with this identity."""
    out = []
    for ep in lib.select("kind:*"):
        if (ep.meta["extra"].get(SOURCE_KEY) or {}).get("dataset") == identity:
            out.append(ep.id)
    return out


def _column(table: pa.Table, key: str, file: Path, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    if key not in table.column_names:
        raise InputError("column is missing", file=file, field=key, expected=f"{dtype} {list(shape)}")
    arr = table.column(key).combine_chunks()
    n = len(arr)
    while pa.types.is_list(arr.type) or pa.types.is_fixed_size_list(arr.type) or pa.types.is_large_list(arr.type):
        arr = arr.flatten()
    flat = arr.to_numpy(zero_copy_only=False)
    if flat.size != math.prod(shape) * n:
        raise InputError(f"column holds {flat.size} values for {n} rows", file=file, field=key,
                         expected=f"shape {list(shape)} per row")
    try:
        return flat.astype(dtype).reshape((n, *shape))
    except (TypeError, ValueError) as e:
        raise InputError(f"cannot read as {dtype} ({e})", file=file, field=key, expected=dtype) from None


def _episode_rows(ds: Dataset, src: EpisodeSource, cache: dict[Path, pa.Table]) -> pa.Table:
    if src.data not in cache:
        cache.clear()   # data files are read in order; keep one in memory
        cache[src.data] = _read_parquet(src.data, "data_path")
    table = cache[src.data]
    if "episode_index" in table.column_names:
        table = table.filter(pc.equal(table.column("episode_index"), src.index))
    if "frame_index" in table.column_names:
        table = table.take(pa.array(np.argsort(table.column("frame_index").to_numpy(), kind="stable")))
    if table.num_rows != src.length:
        raise InputError(f"{table.num_rows} rows for episode {src.index}, the episode metadata says {src.length}",
                         file=src.data, field="length", expected=str(src.length))
    return table


def _foreign_columns(ds: Dataset) -> dict[str, tuple[str, Column]]:
    out = {}
    for k, v in ds.features.items():
        if k in ds.video_keys or k in INDEX_FEATURES or v["dtype"] == "string":
            continue
        shape = tuple(v["shape"])
        names = v.get("names")
        names = tuple(names) if isinstance(names, list) and len(shape) == 1 and len(names) == shape[0] \
            and all(isinstance(x, str) for x in names) else None
        out[k] = (k, Column(() if shape == (1,) else shape, v["dtype"], None, names))
    return out


def import_lerobot(lib: Library, src: str | Path, *,
                   progress: Callable[[Episode], None] | None = None) -> list[Episode]:
    """Import every episode of a LeRobot dataset into ``lib``, all or none; returns the new episodes."""
    ds = read_dataset(src)
    identity = source_identity(ds)
    done = imported_as(lib, identity)
    if done:
        raise InputError(f"this dataset was imported already as {len(done)} episode(s): {' '.join(done)}",
                         file=ds.root, field="import",
                         expected="a dataset not imported before (`robot-irl demos rm ID...` removes those)")
    side_path = ds.root / SIDE
    side = read_json(side_path, "robot_irl.json") if side_path.exists() else None
    if side is not None and len(side["episodes"]) != len(ds.episodes):
        raise InputError(f"{len(side['episodes'])} episodes listed for {len(ds.episodes)} in the dataset",
                         file=side_path, field="episodes", expected=str(len(ds.episodes)))
    colmap = ({k: (v["column"], Column.from_dict(v)) for k, v in side["columns"].items()} if side is not None
              else _foreign_columns(ds))
    cache: dict[Path, pa.Table] = {}
    with lib.batch() as batch:
        for e, src_ep in enumerate(ds.episodes):
            _import_one(batch, ds, src_ep, side["episodes"][e] if side is not None else None, colmap, identity,
                        cache, side_path)
        # leaving the block commits the batch: every episode enters the library at once
    if progress:
        for ep in batch.episodes:
            progress(ep)
    return batch.episodes


def _import_one(batch, ds: Dataset, src: EpisodeSource, meta: dict[str, Any] | None,
                colmap: dict[str, tuple[str, Column]], identity: str, cache: dict[Path, pa.Table],
                side_path: Path) -> None:
    table = _episode_rows(ds, src, cache)
    n = src.length
    ours = "robot_irl.timestamp" in table.column_names
    ts = _column(table, "robot_irl.timestamp" if ours else "timestamp", src.data, "float64", ())
    if not ours:   # LeRobot's float32 seconds (k/fps) read as the decimal they stand for
        ts = np.round(ts, 6)
    origin = {"dataset": identity, "episode_index": src.index, "path": str(ds.root), "codebase_version": ds.version}
    if meta is not None:
        kw = dict(task=meta["task"], source=meta["source"], fps=meta["fps"], kind=meta.get("kind", "demo"),
                  robot=meta["robot"], env=meta["env"], seed=meta["seed"], variant=meta["variant"], tags=meta["tags"],
                  keypoint_spec=KeypointSpec.from_dict(meta["keypoint_spec"]) if meta["keypoint_spec"] else None,
                  extra={**meta["extra"], "original_id": meta["id"], SOURCE_KEY: origin})
        stream = meta["stream"]
    else:
        kw = dict(task=src.task, source="lerobot", fps=ds.fps, robot=ds.info.get("robot_type"), env=None, seed=None,
                  variant={}, tags=[], keypoint_spec=None, extra={SOURCE_KEY: origin})
        stream = "state" if colmap else None
    values = {c: _column(table, k, src.data, col.dtype, col.shape) for k, (c, col) in colmap.items()}
    for c, cells in ((meta or {}).get("filled") or {}).items():   # cells our export filled to keep LeRobot NaN-free
        flat = values[c].reshape(-1)   # a view: _column returns a fresh contiguous array
        flat[np.asarray(cells, dtype=np.int64)] = np.nan
    with batch.writer(**kw) as w:
        for vk, (path, start, end) in src.videos.items():
            cam = vk.split(".")[-1] if meta is None else next(c for c in meta["cameras"] if video_key(c) == vk)
            model, calibration = None, None
            if meta is not None and meta["cameras"][cam].get("model") is not None:
                model = CameraModel.from_dict(meta["cameras"][cam]["model"], file=str(side_path))
                calibration = meta["cameras"][cam].get("calibration")
            _import_video(w, cam, path, start, end, n, ds.fps, vk, ts if ours else None, model, calibration)
        if stream is not None:
            w.add_stream(stream, {c: col for c, col in colmap.values()})
            for i, t in enumerate(ts):
                w.write_row(stream, float(t), **{c: v[i] for c, v in values.items()})
        w.commit(success=meta["success"] if meta is not None else None)


def _import_video(w, cam: str, path: Path, start: float, end: float, n: int, fps: int, field_name: str,
                  ts: np.ndarray | None, model: CameraModel | None, calibration: dict | None) -> None:
    """One camera of one episode: its packets copied as they are (no decoding, no generation loss)
    when the episode starts on a keyframe, else decoded and stored as lossless FFV1. Frame times are
    the frames' own presentation times from the episode's start (``ts`` when our export kept them)."""
    half = 0.5 / fps
    info = probe(path, field_name)
    tmp = w.root / f".remux-{cam}.{STORED[info.codec].ext if info.codec in STORED else 'mp4'}"
    try:
        got = remux_span(path, tmp, start - half, end - half, field=field_name)
        if got is not None:
            times = np.asarray(got[1])
            _check_count(len(times), n, path, field_name)
            w.add_camera(cam, (info.width, info.height), codec=got[0], model=model, calibration=calibration)
            stamps = list(_increasing(ts if ts is not None else np.maximum(times - start, 0.0)))
            w.add_chunk(cam, lambda dst: (os.replace(tmp, dst), stamps)[1])
            return
    finally:
        tmp.unlink(missing_ok=True)
    times, frames = decode_exact(path, n, field=field_name, start_time=start - half, end_time=end - half)
    h, wd = frames[0].shape[:2]
    w.add_camera(cam, (wd, h), codec="ffv1", model=model, calibration=calibration)
    for t, fr in zip(_increasing(ts if ts is not None else np.maximum(times - start, 0.0)), frames):
        w.write_frame(cam, fr, float(t))


def _check_count(got: int, n: int, path: Path, field_name: str) -> None:
    if got < n:
        raise VideoTruncatedError(f"video ends after {got} of {n} frames (file truncated)", file=path,
                                  field=field_name, expected=f"{n} frames")
    if got > n:
        raise InputError(f"video holds {got} frames in the span, the dataset says {n}", file=path,
                         field=field_name, expected=f"{n} frames")


def _increasing(ts: np.ndarray) -> Iterator[float]:
    """Frame times as decoded; a repeated pts (some muxers round) is nudged up by a microsecond."""
    last = -math.inf
    for t in ts:
        t = float(t) if t > last else last + 1e-6
        last = t
        yield t
