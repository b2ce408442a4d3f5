"""Export episodes as a LeRobotDataset v3.0 folder that LeRobot loads and trains on.

Layout written (what ``LeRobotDataset(repo_id, root=...)`` of lerobot 0.4-0.6 reads)::

    meta/info.json                        codebase_version "v3.0", fps, features (video codec included)
    meta/tasks.parquet                    task text (pandas index) → task_index
    meta/episodes/chunk-000/file-000.parquet   one row per episode: length, file indices, video spans
    meta/stats.json                       LeRobot's stats for every feature, cameras included
    meta/robot_irl.json                   our episode meta, column declarations, NaN cells (for import)
    data/chunk-CCC/file-FFF.parquet       one file per episode, one row per frame
    videos/observation.images.<cam>/chunk-CCC/file-FFF.mp4   one file per episode and camera

LeRobot keeps one row per video frame at a fixed fps, with ``timestamp = frame_index / fps``. So
an episode exports only when its cameras and its (single) stream share timestamps, as sim
episodes do; its real timestamps travel in ``robot_irl.timestamp`` (float64). Column
``joint_pos`` becomes ``observation.state`` and ``target_sent`` becomes ``action`` (float32, as
LeRobot's policies take them; the exact float64 values travel as ``robot_irl.<name>``), every
other column ``robot_irl.<name>``.

No NaN reaches LeRobot: a training batch pads action chunks from an episode's last frame, so one
NaN there makes every loss NaN. Our recordings have no action after the final state; export
writes the hold the arm really did there (the last target, carried forward; a ``*delta*`` column
0), and ``meta/robot_irl.json`` lists every filled cell so import restores the NaN exactly.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from robot_irl.core.io import atomic_write_json
from robot_irl.errors import InputError
from robot_irl.library.episode import Episode
from robot_irl.library.timeseries import ARROW, Column
from robot_irl.library.video import verify_count

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000
SIDE = "meta/robot_irl.json"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
# --video-codec → (FFmpeg encoder, the codec name LeRobot's info.json uses, pix_fmt, encoder options).
# h264: crf 18 keeps sim renders above ~40 dB; g 2 as LeRobot writes, so a random frame decodes fast.
VIDEO_CODECS: dict[str, tuple[str, str, str, dict[str, str]]] = {
    "h264": ("libx264", "h264", "yuv420p", {"crf": "18", "g": "2"}),
    "mp4v": ("mpeg4", "mpeg4", "yuv420p", {"qmin": "1", "qmax": "2"}),   # near-lossless, as OpenCV's mp4v
    "ffv1": ("ffv1", "ffv1", "bgr0", {}),
}
RENAME = {"joint_pos": "observation.state", "target_sent": "action"}
INDEX_FEATURES = ("timestamp", "frame_index", "episode_index", "index", "task_index")
META_KEYS = ("id", "task", "source", "kind", "robot", "env", "seed", "fps", "created", "start_time", "success",
             "recovered", "tags", "variant", "keypoint_spec", "extra")
QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)


def video_key(camera: str) -> str:
    return f"observation.images.{camera}"


def pick_codec(requested: str = "auto") -> str:
    """``auto``: H.264 where this FFmpeg has an H.264 encoder, else mp4v (always built in)."""
    if requested != "auto":
        if requested not in VIDEO_CODECS:
            raise InputError(f"video codec {requested!r}", field="--video-codec",
                             expected=str(["auto", *sorted(VIDEO_CODECS)]))
        return requested
    try:
        av.codec.Codec(VIDEO_CODECS["h264"][0], "w")
        return "h264"
    except Exception:  # noqa: BLE001 - PyAV raises different errors for a missing encoder
        return "mp4v"


def _lerobot_type(col: Column, dtype: str) -> pa.DataType:
    t = ARROW[dtype]
    if len(col.shape) <= 1:
        return pa.list_(t, col.shape[0]) if col.shape else t
    out = t
    for _ in col.shape[1:]:
        out = pa.list_(out)
    return pa.list_(out)


def _to_arrow(values: np.ndarray, col: Column, dtype: str) -> pa.Array:
    values = values.astype(dtype)
    if len(col.shape) == 1:
        return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), col.shape[0])
    if not col.shape:
        return pa.array(values)
    return pa.array(values.tolist(), type=_lerobot_type(col, dtype))


def fill_nan(name: str, x: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """``x`` without NaN, and the flat indices of the cells filled: a ``*delta*`` column holds 0,
    any other column the last value before it (the target the arm kept holding), or the first
    value after it when the column starts with NaN, or 0 when a cell is never set."""
    mask = np.isnan(x)
    if not mask.any():
        return x, []
    y = x.copy().reshape(len(x), -1)
    m = mask.reshape(len(x), -1)
    if "delta" in name:
        y[m] = 0.0
    else:
        for j in np.flatnonzero(m.any(0)):
            col, bad = y[:, j], m[:, j]
            good = np.flatnonzero(~bad)
            if not len(good):
                col[:] = 0.0
                continue
            prev = np.maximum.accumulate(np.where(~bad, np.arange(len(col)), -1))
            col[:] = np.where(prev >= 0, col[np.maximum(prev, 0)], col[good[0]])
    return y.reshape(x.shape), np.flatnonzero(mask.reshape(-1)).tolist()


def sample_indices(n: int) -> np.ndarray:
    """The frames LeRobot samples for image stats (lerobot.datasets.compute_stats.sample_indices)."""
    num = n if n < 100 else max(100, min(int(n ** 0.75), 10_000))
    return np.round(np.linspace(0, n - 1, num)).astype(int)


def _stats(x: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> dict[str, Any]:
    out = {"min": x.min(axes, keepdims=keepdims), "max": x.max(axes, keepdims=keepdims),
           "mean": x.mean(axes, keepdims=keepdims), "std": x.std(axes, keepdims=keepdims)}
    for q in QUANTILES:
        out[f"q{int(round(q * 100)):02d}"] = np.quantile(x, q, axis=axes, keepdims=keepdims)
    return out


def feature_stats(x: np.ndarray) -> dict[str, Any]:
    """LeRobot's stats of a numeric feature, over frames: [N, *shape] → per-element lists."""
    x = x.astype(np.float64).reshape(len(x), -1) if x.ndim == 1 else x.astype(np.float64)
    st = {k: np.asarray(v).tolist() for k, v in _stats(x, (0,), False).items()}
    st["count"] = [len(x)]
    return st


def image_stats(frames: Iterable[np.ndarray]) -> dict[str, Any]:
    """LeRobot's image stats: per channel over sampled frames scaled to [0, 1], shape (3, 1, 1);
    frames larger than 300 px are strided down to ~150 px first, as LeRobot does."""
    imgs = []
    for f in frames:
        h, w = f.shape[:2]
        if max(h, w) >= 300:
            step = int(max(h, w) / 150)
            f = f[::step, ::step]
        imgs.append(f.transpose(2, 0, 1).astype(np.float32) / 255.0)
    x = np.stack(imgs)                                        # N, C, H, W
    st = {k: np.asarray(v)[0].tolist() for k, v in _stats(x, (0, 2, 3), True).items()}
    st["count"] = [len(imgs)]
    return st


def _write_video(path: Path, frames: Iterable[np.ndarray], fps: int, size: tuple[int, int], codec: str) -> None:
    enc, _, pix, opts = VIDEO_CODECS[codec]
    if codec != "ffv1" and (size[0] % 2 or size[1] % 2):
        raise InputError(f"{codec} with 4:2:0 chroma needs an even frame size, not {size[0]}x{size[1]}",
                         field="--video-codec", expected="--video-codec ffv1 for odd sizes")
    with av.open(str(path), "w") as c:
        s = c.add_stream(enc, rate=fps)
        s.width, s.height, s.pix_fmt, s.options = size[0], size[1], pix, dict(opts)
        for f in frames:
            for pkt in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)


def _layout(ep: Episode) -> tuple[str | None, np.ndarray]:
    """The stream whose rows become LeRobot rows, and the shared timestamps; refuses what cannot align."""
    meta_file = ep.path / "meta.json"
    if len(ep.streams) > 1:
        raise InputError(f"episode {ep.id} has streams {ep.streams}", file=meta_file, field="streams",
                         expected="at most one stream (LeRobot has one row per frame)")
    stream = ep.streams[0] if ep.streams else None
    ts = ep.arrays(stream)["timestamp"] if stream else None
    for cam in ep.cameras:
        ct = ep.timestamps(cam)
        if ts is None:
            ts = ct
        elif len(ct) != len(ts) or not np.allclose(ct, ts, rtol=0, atol=1e-9):
            raise InputError(f"camera {cam} has {len(ct)} frames not aligned with {len(ts)} rows of {stream}",
                             file=meta_file, field=f"cameras.{cam}.timestamps",
                             expected="one frame per row at the same timestamps (as sim episodes are)")
    if ts is None or len(ts) == 0:
        raise InputError(f"episode {ep.id} holds no rows or frames", file=meta_file, field="streams",
                         expected="a non-empty episode")
    return stream, ts


def _check_same(episodes: Sequence[Episode]) -> tuple[int, dict[str, Column], dict[str, tuple[int, int]]]:
    first = episodes[0]
    fps = first.fps
    if abs(fps - round(fps)) > 1e-6:
        raise InputError(f"fps is {fps}", file=first.path / "meta.json", field="fps",
                         expected="a whole number of frames per second (LeRobot stores fps as an integer)")
    columns = first.columns(first.streams[0]) if first.streams else {}
    cams = {c: first.frame_size(c) for c in first.cameras}
    for ep in episodes:
        f = ep.path / "meta.json"
        if ep.fps != fps:
            raise InputError(f"fps {ep.fps} differs from {fps} of {first.id}", file=f, field="fps",
                             expected="one fps for every exported episode")
        if {c: ep.frame_size(c) for c in ep.cameras} != cams:
            raise InputError(f"cameras differ from those of {first.id}", file=f, field="cameras",
                             expected=str(cams))
        if (ep.columns(ep.streams[0]) if ep.streams else {}) != columns:
            raise InputError(f"columns differ from those of {first.id}", file=f, field="streams",
                             expected="the same columns in every exported episode")
    return int(round(fps)), columns, cams


def _features(columns: dict[str, Column]) -> dict[str, tuple[str, str, Column]]:
    """LeRobot key → (our column, LeRobot dtype, column); state/action also keep an exact copy."""
    out = {}
    for name, col in columns.items():
        if name in RENAME:
            out[RENAME[name]] = (name, "float32" if col.dtype == "float64" else col.dtype, col)
        out[f"robot_irl.{name}"] = (name, col.dtype, col)
    return out


def export_lerobot(episodes: Sequence[Episode], out: str | Path, *, video_codec: str = "auto",
                   robot_type: str | None = None, progress: Callable[[Episode], None] | None = None) -> Path:
    """Write ``episodes`` (all with the same fps, cameras and columns) as a LeRobot v3.0 dataset.

    ``video_codec``: "auto" (H.264 where the encoder exists, else mp4v), "h264", "mp4v" (MPEG-4
    Part 2, plays everywhere) or "ffv1" (lossless)."""
    out = Path(out)
    codec = pick_codec(video_codec)
    if not episodes:
        raise InputError("no episodes selected", field="query", expected="a query that selects episodes")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError("export target exists and is not an empty folder", file=out, field="--out",
                         expected="a new or empty folder")
    fps, columns, cams = _check_same(episodes)
    feats = _features(columns)
    stream0 = episodes[0].streams[0] if episodes[0].streams else None
    tasks: dict[str, int] = {}
    episode_rows: list[dict[str, Any]] = []
    side_eps: list[dict[str, Any]] = []
    numeric: dict[str, list[np.ndarray]] = {}
    images: dict[str, list[np.ndarray]] = {}
    index = 0
    for e, ep in enumerate(episodes):
        stream, ts = _layout(ep)
        n = len(ts)
        chunk, file = divmod(e, CHUNKS_SIZE)
        task_index = tasks.setdefault(ep.task, len(tasks))
        arrays = ep.arrays(stream) if stream else {}
        filled: dict[str, list[int]] = {}
        clean: dict[str, np.ndarray] = {}
        for name, col in columns.items():
            x = arrays[name]
            if x.dtype.kind == "f":
                x, cells = fill_nan(name, x)
                if cells:
                    filled[name] = cells
            clean[name] = x
        frame_index = np.arange(n, dtype=np.int64)
        cols: dict[str, pa.Array] = {}
        for key, (name, dtype, col) in feats.items():
            cols[key] = _to_arrow(clean[name], col, dtype)
            numeric.setdefault(key, []).append(clean[name].astype(dtype).reshape(n, *(col.shape or (1,))))
        index_cols = {"robot_irl.timestamp": ts, "timestamp": (frame_index / fps).astype(np.float32),
                      "frame_index": frame_index, "episode_index": np.full(n, e, dtype=np.int64),
                      "index": np.arange(index, index + n, dtype=np.int64),
                      "task_index": np.full(n, task_index, dtype=np.int64)}
        for key, v in index_cols.items():
            cols[key] = pa.array(v)
            numeric.setdefault(key, []).append(v.reshape(n, 1))
        data_path = out / DATA_PATH.format(chunk_index=chunk, file_index=file)
        data_path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(cols), data_path)
        row: dict[str, Any] = {"episode_index": e, "tasks": [ep.task], "length": n, "data/chunk_index": chunk,
                               "data/file_index": file, "dataset_from_index": index, "dataset_to_index": index + n}
        for cam, size in cams.items():
            vkey = video_key(cam)
            vpath = out / VIDEO_PATH.format(video_key=vkey, chunk_index=chunk, file_index=file)
            vpath.parent.mkdir(parents=True, exist_ok=True)
            keep = set(sample_indices(n).tolist())
            sampled: list[np.ndarray] = images.setdefault(vkey, [])

            def frames(cam: str = cam, keep: set[int] = keep, sampled: list[np.ndarray] = sampled):
                for i, f in enumerate(ep.video_frames(cam)):
                    if i in keep:
                        sampled.append(f)
                    yield f
            _write_video(vpath, frames(), fps, size, codec)
            verify_count(vpath, n)
            row.update({f"videos/{vkey}/chunk_index": chunk, f"videos/{vkey}/file_index": file,
                        f"videos/{vkey}/from_timestamp": 0.0, f"videos/{vkey}/to_timestamp": n / fps})
        row.update({"meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0})
        episode_rows.append(row)
        side = {k: ep.meta.get(k) for k in META_KEYS}
        side["cameras"] = {c: {"model": ep.meta["cameras"][c].get("model"), "codec": ep.meta["cameras"][c]["codec"],
                               "calibration": ep.meta["cameras"][c].get("calibration")} for c in ep.cameras}
        side["stream"] = stream
        side["filled"] = filled
        side_eps.append(side)
        index += n
        if progress:
            progress(ep)
    features: dict[str, Any] = {}
    for key, (name, dtype, col) in feats.items():
        features[key] = {"dtype": dtype, "shape": list(col.shape) or [1],
                         "names": list(col.names) if col.names and len(col.shape) == 1 else None}
    _, lr_codec, pix, opts = VIDEO_CODECS[codec]
    for cam, (w, h) in cams.items():
        features[video_key(cam)] = {
            "dtype": "video", "shape": [h, w, 3], "names": ["height", "width", "channels"],
            "info": {"video.height": h, "video.width": w, "video.codec": lr_codec, "video.pix_fmt": pix,
                     "video.is_depth_map": False, "video.fps": fps, "video.channels": 3, "has_audio": False,
                     "video.g": int(opts["g"]) if "g" in opts else None}}
    features["robot_irl.timestamp"] = {"dtype": "float64", "shape": [1], "names": None}
    features["timestamp"] = {"dtype": "float32", "shape": [1], "names": None}
    for k in ("frame_index", "episode_index", "index", "task_index"):
        features[k] = {"dtype": "int64", "shape": [1], "names": None}
    info = {"codebase_version": CODEBASE_VERSION, "robot_type": robot_type or episodes[0].robot,
            "total_episodes": len(episodes), "total_frames": index, "total_tasks": len(tasks),
            "chunks_size": CHUNKS_SIZE, "data_files_size_in_mb": 100, "video_files_size_in_mb": 200,
            "fps": fps, "splits": {"train": f"0:{len(episodes)}"}, "data_path": DATA_PATH,
            "video_path": VIDEO_PATH if cams else None, "features": features}
    atomic_write_json(out / "meta/info.json", info)
    _write_tasks(out / "meta/tasks.parquet", tasks)
    ep_path = out / "meta/episodes/chunk-000/file-000.parquet"
    ep_path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(episode_rows), ep_path)
    stats = {key: feature_stats(np.concatenate(parts)) for key, parts in numeric.items()}
    stats.update({key: image_stats(frames) for key, frames in images.items()})
    atomic_write_json(out / "meta/stats.json", stats)
    atomic_write_json(out / SIDE, {"format": "robot-irl lerobot export", "schema_version": 2,
                                   "columns": {f"robot_irl.{n}": {"stream": stream0, "column": n, **c.to_dict()}
                                               for n, c in columns.items()},
                                   "episodes": side_eps})
    return out


def _write_tasks(path: Path, tasks: dict[str, int]) -> None:
    """tasks.parquet as pandas writes it (task text as the index), which LeRobot reads with pandas."""
    table = pa.table({"task_index": pa.array(list(tasks.values()), pa.int64()),
                      "__index_level_0__": pa.array(list(tasks), pa.large_string())})
    pandas_meta = {"index_columns": ["__index_level_0__"],
                   "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode",
                                       "numpy_type": "object", "metadata": {"encoding": "UTF-8"}}],
                   "columns": [{"name": "task_index", "field_name": "task_index", "pandas_type": "int64",
                                "numpy_type": "int64", "metadata": None},
                               {"name": None, "field_name": "__index_level_0__", "pandas_type": "unicode",
                                "numpy_type": "object", "metadata": None}],
                   "attributes": {}, "creator": {"library": "pyarrow", "version": pa.__version__},
                   "pandas_version": "2.2.0"}
    pq.write_table(table.replace_schema_metadata({"pandas": json.dumps(pandas_meta)}), path)
