"""Export episodes as a LeRobotDataset v3.0 folder, and import such a folder back.

Layout written (what lerobot 0.4's ``LeRobotDataset(repo_id, root=...)`` reads)::

    meta/info.json                        codebase_version "v3.0", fps, features, path templates
    meta/tasks.parquet                    task text (pandas index) → task_index
    meta/episodes/chunk-000/file-000.parquet   one row per episode: length, file indices, video spans
    meta/stats.json                       min/max/mean/std/count of every numeric feature
    meta/robot_irl.json                   our episode meta and column declarations (for import)
    data/chunk-CCC/file-FFF.parquet       one file per episode, one row per frame
    videos/observation.images.<cam>/chunk-CCC/file-FFF.mp4   one file per episode and camera (mp4v or FFV1)

LeRobot keeps one row per video frame at a fixed fps, with ``timestamp = frame_index / fps``. So
an episode exports only when its cameras and its (single) stream share timestamps, as sim
episodes do; its real timestamps travel in ``robot_irl.timestamp`` (float64). Column
``joint_pos`` becomes ``observation.state``, ``target_sent`` becomes ``action``, every other
column ``robot_irl.<name>``. Import restores our meta and columns exactly from meta/robot_irl.json
and decodes the videos into lossless FFV1, so the round trip loses only what mp4 encoding lost.
A LeRobot dataset written by LeRobot itself imports with its feature names as column names.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from robot_irl.core.camera import CameraModel
from robot_irl.core.io import atomic_write_json
from robot_irl.core.spec import KeypointSpec
from robot_irl.errors import InputError
from robot_irl.library.episode import Episode
from robot_irl.library.library import Library
from robot_irl.library.schema import Fields, read_json
from robot_irl.library.timeseries import ARROW, Column
from robot_irl.library.video import open_writer, verify_count

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000
SIDE = "meta/robot_irl.json"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
VIDEO_CODECS = {"mp4v": ("mpeg4", "yuv420p"), "ffv1": ("ffv1", "bgr0")}
RENAME = {"joint_pos": "observation.state", "target_sent": "action"}
INDEX_FEATURES = ("timestamp", "frame_index", "episode_index", "index", "task_index")
META_KEYS = ("id", "task", "source", "robot", "env", "seed", "fps", "created", "start_time", "success",
             "recovered", "tags", "variant", "keypoint_spec", "extra")


def _key(column: str) -> str:
    return RENAME.get(column, f"robot_irl.{column}")


def _video_key(camera: str) -> str:
    return f"observation.images.{camera}"


def _lerobot_type(col: Column) -> pa.DataType:
    t = ARROW[col.dtype]
    if len(col.shape) <= 1:
        return pa.list_(t, col.shape[0]) if col.shape else t
    out = t
    for _ in col.shape[1:]:
        out = pa.list_(out)
    return pa.list_(out)


def _to_arrow(values: np.ndarray, col: Column) -> pa.Array:
    if len(col.shape) == 1:
        return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), col.shape[0])
    if not col.shape:
        return pa.array(values)
    return pa.array(values.tolist(), type=_lerobot_type(col))


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


def export_lerobot(episodes: Sequence[Episode], out: str | Path, *, video_codec: str = "mp4v",
                   robot_type: str | None = None, progress: Callable[[Episode], None] | None = None) -> Path:
    """Write ``episodes`` (all with the same fps, cameras and columns) as a LeRobot v3.0 dataset.

    ``video_codec`` "mp4v" (MPEG-4 Part 2, plays everywhere; 4:2:0 chroma, so saturated edges lose
    colour detail) or "ffv1" (lossless FFV1 in the same .mp4 path; LeRobot decodes it through
    ffmpeg like any other codec)."""
    out = Path(out)
    if video_codec not in VIDEO_CODECS:
        raise InputError(f"video codec {video_codec!r}", field="--video-codec", expected=str(sorted(VIDEO_CODECS)))
    if not episodes:
        raise InputError("no episodes selected", field="query", expected="a query that selects episodes")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError("export target exists and is not an empty folder", file=out, field="--out",
                         expected="a new or empty folder")
    first = episodes[0]
    fps = first.fps
    if abs(fps - round(fps)) > 1e-6:
        raise InputError(f"fps is {fps}", file=first.path / "meta.json", field="fps",
                         expected="a whole number of frames per second (LeRobot stores fps as an integer)")
    fps_i = int(round(fps))
    stream0 = first.streams[0] if first.streams else None
    columns = first.columns(stream0) if stream0 else {}
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
    tasks: dict[str, int] = {}
    episode_rows: list[dict[str, Any]] = []
    side_eps: list[dict[str, Any]] = []
    stats_acc: dict[str, list[np.ndarray]] = {}
    index = 0
    for e, ep in enumerate(episodes):
        stream, ts = _layout(ep)
        n = len(ts)
        chunk, file = divmod(e, CHUNKS_SIZE)
        task_index = tasks.setdefault(ep.task, len(tasks))
        arrays = ep.arrays(stream) if stream else {}
        cols: dict[str, pa.Array] = {}
        for name, col in columns.items():
            cols[_key(name)] = _to_arrow(arrays[name], col)
            if col.dtype != "bool":
                stats_acc.setdefault(_key(name), []).append(arrays[name].reshape(n, -1).astype(np.float64))
        frame_index = np.arange(n, dtype=np.int64)
        cols["robot_irl.timestamp"] = pa.array(ts)
        cols["timestamp"] = pa.array((frame_index / fps_i).astype(np.float32))
        cols["frame_index"] = pa.array(frame_index)
        cols["episode_index"] = pa.array(np.full(n, e, dtype=np.int64))
        cols["index"] = pa.array(np.arange(index, index + n, dtype=np.int64))
        cols["task_index"] = pa.array(np.full(n, task_index, dtype=np.int64))
        data_path = out / DATA_PATH.format(chunk_index=chunk, file_index=file)
        data_path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(cols), data_path)
        row: dict[str, Any] = {"episode_index": e, "tasks": [ep.task], "length": n, "data/chunk_index": chunk,
                               "data/file_index": file, "dataset_from_index": index, "dataset_to_index": index + n}
        for cam, size in cams.items():
            vkey = _video_key(cam)
            vpath = out / VIDEO_PATH.format(video_key=vkey, chunk_index=chunk, file_index=file)
            vpath.parent.mkdir(parents=True, exist_ok=True)
            w = open_writer(vpath, video_codec, fps_i, size)
            for frame in ep.video_frames(cam, rgb=False):
                w.write(frame)
            w.release()
            verify_count(vpath, n)
            row.update({f"videos/{vkey}/chunk_index": chunk, f"videos/{vkey}/file_index": file,
                        f"videos/{vkey}/from_timestamp": 0.0, f"videos/{vkey}/to_timestamp": n / fps_i})
        row.update({"meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0})
        episode_rows.append(row)
        side = {k: ep.meta.get(k) for k in META_KEYS}
        side["cameras"] = {c: {"model": ep.meta["cameras"][c].get("model"), "codec": ep.meta["cameras"][c]["codec"],
                               "calibration": ep.meta["cameras"][c].get("calibration")} for c in ep.cameras}
        side["stream"] = stream
        side_eps.append(side)
        index += n
        if progress:
            progress(ep)
    features: dict[str, Any] = {}
    for name, col in columns.items():
        shape = list(col.shape) or [1]
        features[_key(name)] = {"dtype": col.dtype, "shape": shape,
                                "names": list(col.names) if col.names and len(col.shape) == 1 else None}
    for cam, (w, h) in cams.items():
        features[_video_key(cam)] = {
            "dtype": "video", "shape": [h, w, 3], "names": ["height", "width", "channels"],
            "info": {"video.height": h, "video.width": w, "video.codec": VIDEO_CODECS[video_codec][0],
                     "video.pix_fmt": VIDEO_CODECS[video_codec][1],
                     "video.is_depth_map": False, "video.fps": fps_i, "video.channels": 3, "has_audio": False}}
    features["robot_irl.timestamp"] = {"dtype": "float64", "shape": [1], "names": None}
    features["timestamp"] = {"dtype": "float32", "shape": [1], "names": None}
    for k in ("frame_index", "episode_index", "index", "task_index"):
        features[k] = {"dtype": "int64", "shape": [1], "names": None}
    info = {"codebase_version": CODEBASE_VERSION, "robot_type": robot_type or first.robot,
            "total_episodes": len(episodes), "total_frames": index, "total_tasks": len(tasks),
            "chunks_size": CHUNKS_SIZE, "data_files_size_in_mb": 100, "video_files_size_in_mb": 200,
            "fps": fps_i, "splits": {"train": f"0:{len(episodes)}"}, "data_path": DATA_PATH,
            "video_path": VIDEO_PATH if cams else None, "features": features}
    atomic_write_json(out / "meta/info.json", info)
    _write_tasks(out / "meta/tasks.parquet", tasks)
    ep_path = out / "meta/episodes/chunk-000/file-000.parquet"
    ep_path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(episode_rows), ep_path)
    stats = {}
    for key, parts in stats_acc.items():
        x = np.concatenate(parts)
        with np.errstate(invalid="ignore"):
            stats[key] = {"min": np.nanmin(x, 0).tolist(), "max": np.nanmax(x, 0).tolist(),
                          "mean": np.nanmean(x, 0).tolist(), "std": np.nanstd(x, 0).tolist(), "count": [len(x)]}
    atomic_write_json(out / "meta/stats.json", stats)
    atomic_write_json(out / SIDE, {"format": "robot-irl lerobot export", "schema_version": 1,
                                   "columns": {_key(n): {"stream": stream0, "column": n, **c.to_dict()}
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


# --- import ---
def _read_parquet(path: Path, field: str) -> pa.Table:
    if not path.is_file():
        raise InputError("missing file", file=path, field=field, expected="a parquet file")
    try:
        return pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise InputError(f"unreadable parquet ({e})", file=path, field=field, expected="a parquet file") from None


def _column(table: pa.Table, key: str, file: Path, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    if key not in table.column_names:
        raise InputError("column is missing", file=file, field=key, expected=f"{dtype} {list(shape)}")
    arr = table.column(key).combine_chunks()
    n = len(arr)
    while pa.types.is_list(arr.type) or pa.types.is_fixed_size_list(arr.type) or pa.types.is_large_list(arr.type):
        arr = arr.flatten()
    flat = arr.to_numpy(zero_copy_only=False)
    want = math.prod(shape) * n
    if flat.size != want:
        raise InputError(f"column holds {flat.size} values for {n} rows", file=file, field=key,
                         expected=f"shape {list(shape)} per row")
    try:
        return flat.astype(dtype).reshape((n, *shape))
    except (TypeError, ValueError) as e:
        raise InputError(f"cannot read as {dtype} ({e})", file=file, field=key, expected=dtype) from None


def _decode(path: Path, start: float, n: int, fps: int, field: str) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        raise InputError("video cannot be opened", file=path, field=field, expected="an mp4 OpenCV decodes")
    first = int(round(start * fps))
    for _ in range(first):
        cap.grab()
    frames = []
    for i in range(n):
        ok, frame = cap.read()
        if not ok:
            cap.release()
            raise InputError(f"video ends after {i} of {n} frames", file=path, field=field, expected=f"{n} frames")
        frames.append(frame)
    cap.release()
    return frames


def import_lerobot(lib: Library, src: str | Path, *, progress: Callable[[Episode], None] | None = None) -> list[Episode]:
    """Import every episode of a LeRobot v3.0 folder into ``lib``; returns the new episodes."""
    src = Path(src)
    if not src.is_dir():
        raise InputError("not a folder", file=src, field="import", expected="a LeRobot dataset folder")
    info_path = src / "meta/info.json"
    info = read_json(info_path, "LeRobot info.json")
    f = Fields(info, info_path)
    version = f.str("codebase_version")
    if version != CODEBASE_VERSION:
        raise InputError(f"codebase_version is {version!r}", file=info_path, field="codebase_version",
                         expected=f"{CODEBASE_VERSION!r} (convert older datasets with lerobot first)")
    fps = f.int("fps", minimum=1)
    feats = f.obj("features")
    data_tpl = f.str("data_path")
    videos = [k for k, v in feats.data.items() if isinstance(v, dict) and v.get("dtype") == "video"]
    video_tpl = f.str("video_path") if videos else None
    for k in videos + [k for k in feats.data if k not in videos]:
        fe = feats.obj(k)
        fe.str("dtype")
        fe.list("shape")
    side_path = src / SIDE
    side = read_json(side_path, "robot_irl.json") if side_path.exists() else None
    ep_dir = src / "meta/episodes"
    parts = sorted(ep_dir.glob("*/*.parquet"))
    if not parts:
        raise InputError("no episode metadata", file=ep_dir, field="meta/episodes",
                         expected="chunk-*/file-*.parquet")
    eps_meta = pa.concat_tables([_read_parquet(p, "meta/episodes") for p in parts]).to_pylist()
    eps_meta.sort(key=lambda r: r["episode_index"])
    if side is not None and len(side["episodes"]) != len(eps_meta):
        raise InputError(f"{len(side['episodes'])} episodes listed for {len(eps_meta)} in meta/episodes",
                         file=side_path, field="episodes", expected=str(len(eps_meta)))
    if side is not None:
        colmap = {k: (v["column"], Column.from_dict(v)) for k, v in side["columns"].items()}
    else:
        colmap = {k: (k, Column(tuple(v["shape"]) if list(v["shape"]) != [1] else (), v["dtype"], None,
                                tuple(v["names"]) if isinstance(v.get("names"), list) and len(v["shape"]) == 1 else None))
                  for k, v in feats.data.items() if k not in videos and k not in INDEX_FEATURES}
    out = []
    for e, row in enumerate(eps_meta):
        data_path = src / data_tpl.format(chunk_index=row["data/chunk_index"], file_index=row["data/file_index"])
        table = _read_parquet(data_path, "data")
        idx = table.column("episode_index").to_numpy()
        table = table.filter(pa.array(idx == row["episode_index"]))
        table = table.take(pa.array(np.argsort(table.column("frame_index").to_numpy(), kind="stable")))
        n = table.num_rows
        if n != row["length"]:
            raise InputError(f"{n} rows for episode {row['episode_index']}, meta/episodes says {row['length']}",
                             file=data_path, field="length", expected=str(row["length"]))
        meta = side["episodes"][e] if side is not None else None
        if "robot_irl.timestamp" in table.column_names:
            ts = _column(table, "robot_irl.timestamp", data_path, "float64", ())
        else:
            ts = _column(table, "timestamp", data_path, "float64", ())
        if meta is not None:
            kw = dict(task=meta["task"], source=meta["source"], fps=meta["fps"], robot=meta["robot"],
                      env=meta["env"], seed=meta["seed"], variant=meta["variant"], tags=meta["tags"],
                      keypoint_spec=KeypointSpec.from_dict(meta["keypoint_spec"]) if meta["keypoint_spec"] else None,
                      extra={**meta["extra"], "imported_from": str(src), "original_id": meta["id"]})
            stream = meta["stream"]
        else:
            tasks = row.get("tasks") or [""]
            kw = dict(task=tasks[0], source="lerobot", fps=fps, robot=info.get("robot_type"), env=None, seed=None,
                      variant={}, tags=[], keypoint_spec=None, extra={"imported_from": str(src)})
            stream = "state" if colmap else None
        cams = []  # decode and check everything first, so a bad file leaves the library untouched
        for vkey in videos:
            cam = vkey.split(".")[-1] if meta is None else next(c for c in meta["cameras"] if _video_key(c) == vkey)
            model, calibration = None, None
            if meta is not None and meta["cameras"][cam].get("model") is not None:
                model = CameraModel.from_dict(meta["cameras"][cam]["model"], file=str(side_path))
                calibration = meta["cameras"][cam].get("calibration")
            vpath = src / video_tpl.format(video_key=vkey, chunk_index=row[f"videos/{vkey}/chunk_index"],
                                           file_index=row[f"videos/{vkey}/file_index"])
            cams.append((cam, model, calibration, _decode(vpath, float(row[f"videos/{vkey}/from_timestamp"]), n, fps, vkey)))
        values = {c: _column(table, k, data_path, col.dtype, col.shape) for k, (c, col) in colmap.items()}
        with lib.writer(**kw) as w:
            for cam, model, calibration, frames in cams:
                h, wd = frames[0].shape[:2]
                w.add_camera(cam, (wd, h), codec="ffv1", model=model, calibration=calibration)
                for t, fr in zip(ts, frames):
                    w.write_frame(cam, fr, float(t), bgr=True)
            if stream is not None:
                w.add_stream(stream, {c: col for c, col in colmap.values()})
                for i, t in enumerate(ts):
                    w.write_row(stream, float(t), **{c: v[i] for c, v in values.items()})
            ep = w.commit(success=meta["success"] if meta is not None else None)
        out.append(ep)
        if progress:
            progress(ep)
    return out
