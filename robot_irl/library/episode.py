"""One recorded episode, read through a typed API: meta, videos, time series, derived data.

Every stage after recording reads episodes only through this class, so the file layout
(demos/README.md) can change behind it with a schema version and a migration.
"""
from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from filelock import FileLock

from robot_irl.core.camera import CameraModel
from robot_irl.core.io import atomic_write_json, to_jsonable
from robot_irl.core.spec import KeypointSpec
from robot_irl.errors import InputError, UnknownNameError
from robot_irl.library.catalog import summary
from robot_irl.library.meta import check_calibration, check_camera_model, check_name, check_timestamps, validate_meta
from robot_irl.library.schema import Fields, read_json
from robot_irl.library.timeseries import Column, read_stream, to_arrays
from robot_irl.library.video import decoded_count, iter_chunks

if TYPE_CHECKING:
    from robot_irl.library.library import Library

DERIVED_KINDS = "biuf"  # bool, signed/unsigned int, float arrays only: no pickled objects


@dataclass(frozen=True)
class Derived:
    """Data a later stage computed from an episode (keypoints, embeddings, ...), at one version."""

    name: str
    version: int
    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]
    created: str


class Episode:
    def __init__(self, root: str | Path, library: "Library | None" = None) -> None:
        self.path = Path(root)
        self.library = library
        self.meta = validate_meta(read_json(self.path / "meta.json", "episode meta.json"), self.path)
        self._timestamps: dict[str, np.ndarray] = {}

    def __repr__(self) -> str:
        return f"Episode({self.id!r}, task={self.task!r}, source={self.source!r})"

    # --- meta ---
    @property
    def id(self) -> str:
        return self.meta["id"]

    @property
    def task(self) -> str:
        return self.meta["task"]

    @property
    def source(self) -> str:
        return self.meta["source"]

    @property
    def kind(self) -> str:
        """"demo" (a demonstration) or "run" (a learned policy's run)."""
        return self.meta["kind"]

    @property
    def robot(self) -> str | None:
        return self.meta.get("robot")

    @property
    def fps(self) -> float:
        return float(self.meta["fps"])

    @property
    def tags(self) -> list[str]:
        return list(self.meta["tags"])

    @property
    def variant(self) -> dict[str, Any]:
        return dict(self.meta["variant"])

    @property
    def success(self) -> bool | None:
        return self.meta.get("success")

    @property
    def cameras(self) -> list[str]:
        return sorted(self.meta["cameras"])

    @property
    def streams(self) -> list[str]:
        return sorted(self.meta["streams"])

    @property
    def keypoint_spec(self) -> KeypointSpec | None:
        d = self.meta.get("keypoint_spec")
        return None if d is None else KeypointSpec.from_dict(d)

    def _camera(self, camera: str) -> dict[str, Any]:
        if camera not in self.meta["cameras"]:
            raise UnknownNameError("camera", camera, self.meta["cameras"], file=self.path / "meta.json")
        return self.meta["cameras"][camera]

    def _stream(self, stream: str) -> dict[str, Any]:
        if stream not in self.meta["streams"]:
            raise UnknownNameError("stream", stream, self.meta["streams"], file=self.path / "meta.json")
        return self.meta["streams"][stream]

    def camera_model(self, camera: str) -> CameraModel | None:
        d = self._camera(camera).get("model")
        return None if d is None else CameraModel.from_dict(d)

    def calibration(self, camera: str) -> dict[str, Any] | None:
        """How the camera's model was obtained (``rms_px``, ``source``, ``updated``, ...), if recorded."""
        c = self._camera(camera).get("calibration")
        return None if c is None else dict(c)

    def update_camera_model(self, camera: str, model: CameraModel,
                            calibration: Mapping[str, Any] | None = None) -> CameraModel:
        """Store a (re)calibrated camera model for ``camera`` in this episode's meta, atomically.

        Calibration usually happens after recording (a ChArUco video, a hand-eye solve), so the
        model is written into the committed episode: ``meta.json`` is re-read under the episode's
        meta lock, changed, validated as a whole and replaced by one rename, so a reader sees the
        old meta or the new one and a concurrent writer of another field is not overwritten.
        ``calibration`` is a JSON record of how the model was obtained (``rms_px`` ≥ 0,
        ``source`` file, views, ...); K/dist/size/T_base_cam in it must agree with ``model`` and
        are not stored twice. The catalog row is refreshed (its summary does not change)."""
        if self.library is None:
            raise InputError("episode opened without its library", field="library",
                             expected="an episode from Library.episode()/select()")
        self._camera(camera)
        file = self.path / "meta.json"
        model = check_camera_model(model, self.frame_size(camera), file, f"cameras.{camera}.model")
        record = None if calibration is None else check_calibration(calibration, model, file,
                                                                       f"cameras.{camera}.calibration")
        with FileLock(self.library.lock_path(f"{self.id}.meta")):
            meta = validate_meta(read_json(file, "episode meta.json"), self.path)
            cam = meta["cameras"][camera]
            cam["model"] = model.to_dict()
            if record is not None:
                record["updated"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
                cam["calibration"] = record
            meta = validate_meta(to_jsonable(meta), self.path)
            atomic_write_json(file, meta)
            self.meta = meta
            self.library.catalog.upsert([summary(meta, self.derived(), file.stat().st_mtime_ns)])
        return self.camera_model(camera)

    def set_keypoint_spec(self, spec: KeypointSpec, source: str = "") -> KeypointSpec:
        """Set or replace this episode's keypoint spec, atomically (as :meth:`update_camera_model`).

        A camera episode is recorded before anyone says which markers matter, so the spec comes
        later. The one it replaces is kept, numbered, in ``extra.keypoint_spec_history``
        (``{"version", "spec", "replaced", "source"}``): keypoints extracted with it stay explained.
        Derived keypoints are not touched; extract again to use the new spec."""
        if self.library is None:
            raise InputError("episode opened without its library", field="library",
                             expected="an episode from Library.episode()/select()")
        file = self.path / "meta.json"
        with FileLock(self.library.lock_path(f"{self.id}.meta")):
            meta = validate_meta(read_json(file, "episode meta.json"), self.path)
            history = list(meta["extra"].get("keypoint_spec_history", []))
            if meta.get("keypoint_spec") is not None:
                history.append({"version": len(history) + 1, "spec": meta["keypoint_spec"],
                                "replaced": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                                "source": source})
                meta["extra"]["keypoint_spec_history"] = history
            meta["keypoint_spec"] = spec.to_dict()
            meta = validate_meta(to_jsonable(meta), self.path)
            atomic_write_json(file, meta)
            self.meta = meta
            self.library.catalog.upsert([summary(meta, self.derived(), file.stat().st_mtime_ns)])
        return self.keypoint_spec

    # --- video ---
    def frame_count(self, camera: str) -> int:
        return int(self._camera(camera)["frames"])

    def frame_size(self, camera: str) -> tuple[int, int]:
        """(width, height) in pixels."""
        w, h = self._camera(camera)["size"]
        return int(w), int(h)

    def timestamps(self, camera: str) -> np.ndarray:
        """Capture time of every frame (seconds, the episode's clock); length == frame count."""
        if camera not in self._timestamps:
            c = self._camera(camera)
            path = self.path / c["timestamps"]
            field = f"cameras.{camera}.timestamps"
            try:
                t = pq.read_table(path)
            except (pa.ArrowInvalid, OSError) as e:
                raise InputError(f"unreadable timestamps ({e})", file=path, field=field,
                                 expected="a parquet file with a float64 'timestamp' column") from None
            if "timestamp" not in t.column_names or t.schema.field("timestamp").type != pa.float64():
                raise InputError(f"columns are {t.schema}", file=path, field=field,
                                 expected="a float64 'timestamp' column")
            ts = check_timestamps(t.column("timestamp").to_numpy(), path, field)
            if len(ts) != c["frames"]:
                raise InputError(f"{len(ts)} timestamps for {c['frames']} frames", file=path, field=field,
                                 expected=f"one timestamp per frame ({c['frames']})")
            self._timestamps[camera] = ts
        return self._timestamps[camera].copy()

    def video_files(self, camera: str) -> list[Path]:
        """The camera's chunk files in order (each a complete video any player opens)."""
        return [self.path / ch["file"] for ch in self._camera(camera)["chunks"]]

    def video_frames(self, camera: str, start: int = 0, stop: int | None = None, *,
                     rgb: bool = True) -> Iterator[np.ndarray]:
        """Frames ``start``..``stop`` as uint8 ``[H, W, 3]`` (RGB unless ``rgb=False``)."""
        c = self._camera(camera)
        fields = [f"cameras.{camera}.chunks[{i}].frames" for i in range(len(c["chunks"]))]
        return iter_chunks(self.video_files(camera), [ch["frames"] for ch in c["chunks"]], fields,
                           start=start, stop=stop, rgb=rgb)

    def frame(self, camera: str, index: int, *, rgb: bool = True) -> np.ndarray:
        n = self.frame_count(camera)
        if not 0 <= index < n:
            raise InputError(f"frame {index} of {n}", field="frame", expected=f"0..{n - 1}")
        return next(self.video_frames(camera, index, index + 1, rgb=rgb))

    # --- time series ---
    def columns(self, stream: str = "state") -> dict[str, Column]:
        return {n: Column.from_dict(c) for n, c in self._stream(stream)["columns"].items()}

    def timeseries(self, stream: str = "state") -> pa.Table:
        """The stream as a pyarrow table: ``timestamp`` plus one (fixed-size list) column per field."""
        return read_stream(self.path, stream, self._stream(stream), self.path / "meta.json")

    def arrays(self, stream: str = "state") -> dict[str, np.ndarray]:
        """The stream as numpy: ``timestamp [T]`` and each column ``[T, *shape]``."""
        return to_arrays(self.timeseries(stream), self._stream(stream)["columns"])

    # --- checks ---
    def validate(self, *, deep: bool = False) -> None:
        """Read every timestamp and row (and with ``deep`` decode every video frame) to prove the
        episode is whole. Opening already checked meta and file sizes."""
        for cam in self.cameras:
            self.timestamps(cam)
            if deep:
                for i, (path, ch) in enumerate(zip(self.video_files(cam), self._camera(cam)["chunks"])):
                    n = decoded_count(path)
                    if n != ch["frames"]:
                        raise InputError(f"video decodes to {n} frames, meta.json says {ch['frames']}", file=path,
                                         field=f"cameras.{cam}.chunks[{i}].frames", expected=str(ch["frames"]))
        for s in self.streams:
            self.timeseries(s)
        for name, versions in self.derived().items():
            for v in versions:
                self.read_derived(name, v)

    # --- derived data ---
    def _derived_root(self) -> Path:
        return self.path / "derived"

    def derived(self) -> dict[str, list[int]]:
        """Names of derived data and their versions, e.g. ``{"keypoints": [1, 2]}``."""
        out: dict[str, list[int]] = {}
        root = self._derived_root()
        if root.is_dir():
            for d in sorted(root.iterdir()):
                if d.is_dir() and not d.name.startswith("."):
                    vs = sorted(int(v.name[1:]) for v in d.iterdir()
                                if v.is_dir() and v.name[:1] == "v" and v.name[1:].isdigit())
                    if vs:
                        out[d.name] = vs
        return out

    def write_derived(self, name: str, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any] | None = None,
                      *, version: int = 1) -> Path:
        """Store arrays computed from this episode beside it, under ``derived/<name>/v<version>/``.

        ``version`` is the producer's format version: readers ask for the one they understand.
        Writing the same name and version again replaces it atomically (a reader sees the old
        data or the new, never a mix)."""
        if self.library is None:
            raise InputError("episode opened without its library", field="library",
                             expected="an episode from Library.episode()/select()")
        check_name(name, "derived")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise InputError(f"version is {version!r}", field="version", expected="an integer >= 1")
        info: dict[str, Any] = {}
        clean: dict[str, np.ndarray] = {}
        for key, arr in arrays.items():
            check_name(key, f"derived.{name} array")
            a = np.asarray(arr)
            if a.dtype.kind not in DERIVED_KINDS:
                raise InputError(f"array has dtype {a.dtype}", field=f"derived.{name}.{key}",
                                 expected="bool, integer or float")
            clean[key] = a
            info[key] = {"shape": list(a.shape), "dtype": str(a.dtype)}
        if "timestamps" in clean:
            check_timestamps(clean["timestamps"].astype(np.float64), self.path, f"derived.{name}.timestamps")
        created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        target = self._derived_root() / name / f"v{version}"
        with FileLock(self.library.lock_path(f"{self.id}.derived")):
            tmp = target.parent / f".v{version}.tmp-{secrets.token_hex(4)}"
            tmp.mkdir(parents=True)
            try:
                with open(tmp / "arrays.npz", "wb") as f:
                    np.savez(f, **clean)
                    f.flush()
                    os.fsync(f.fileno())
                atomic_write_json(tmp / "derived.json", {"name": name, "version": version, "created": created,
                                                         "arrays": info, "meta": to_jsonable(dict(meta or {}))})
                old = None
                if target.exists():
                    old = target.parent / f".v{version}.old-{secrets.token_hex(4)}"
                    os.rename(target, old)
                os.rename(tmp, target)
                if old is not None:
                    shutil.rmtree(old)
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp)
            self.library.catalog.set_derived(self.id, self.derived())
        return target

    def read_derived(self, name: str, version: int | None = None) -> Derived:
        """Derived data ``name`` at ``version`` (default: the newest)."""
        have = self.derived()
        if name not in have:
            raise UnknownNameError("derived data", name, have, file=self._derived_root())
        if version is None:
            version = have[name][-1]
        if version not in have[name]:
            raise UnknownNameError(f"version of derived data '{name}'", str(version), map(str, have[name]),
                                   file=self._derived_root() / name)
        d = self._derived_root() / name / f"v{version}"
        info = read_json(d / "derived.json", "derived.json")
        f = Fields(info, d / "derived.json")
        spec, user_meta = f.obj("arrays"), f.obj("meta")
        try:
            with np.load(d / "arrays.npz", allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError, zipfile.BadZipFile) as e:
            raise InputError(f"unreadable arrays ({e})", file=d / "arrays.npz", field=f"derived.{name}",
                             expected="an .npz written by Episode.write_derived") from None
        if set(arrays) != set(spec.data):
            raise InputError(f"arrays {sorted(arrays)} differ from the listed {sorted(spec.data)}",
                             file=d / "arrays.npz", field=f"derived.{name}.arrays", expected=str(sorted(spec.data)))
        for k, a in arrays.items():
            want = spec.data[k]
            if list(a.shape) != want.get("shape") or str(a.dtype) != want.get("dtype"):
                raise InputError(f"array is {a.dtype} {list(a.shape)}", file=d / "arrays.npz",
                                 field=f"derived.{name}.arrays.{k}", expected=f"{want.get('dtype')} {want.get('shape')}")
        return Derived(name, version, arrays, user_meta.data, f.str("created"))
