"""Keypoint trajectories as extracted from video: the one container every stage hands on.

Arrays follow the design's convention: ``uv [T, K, 2]`` pixels, ``xyz [T, K, 3]`` metres in the
robot base frame, ``confidence [T, K]`` in 0..1, ``status [T, K]`` and ``source [T, K]`` as small
integer codes whose names are in :data:`STATUS` and :data:`SOURCES`. A frame is never dropped:
where a keypoint is not seen its values are NaN and its status is ``missing``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robot_irl.core.io import atomic_write_bytes, to_jsonable
from robot_irl.errors import InputError

STATUS = ("missing", "detected", "tracked", "interpolated")
MISSING, DETECTED, TRACKED, INTERPOLATED = range(4)

SOURCES = ("none", "aruco", "blob", "flow", "pose", "filter", "learned")
SRC_NONE, SRC_ARUCO, SRC_BLOB, SRC_FLOW, SRC_POSE, SRC_FILTER, SRC_LEARNED = range(7)


@dataclass
class KeypointTrack:
    """Per-frame keypoints of one video. ``uv`` are image pixels as detected (distorted, OpenCV
    pixel centres); ``xyz`` is NaN where the geometry gave no 3D position."""

    names: list[str]
    timestamps: np.ndarray
    uv: np.ndarray
    confidence: np.ndarray
    status: np.ndarray
    source: np.ndarray
    xyz: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    velocity: np.ndarray | None = None   # [T, K, 3] m/s, set by offline cleaning where 3D exists

    @classmethod
    def empty(cls, names: list[str], timestamps: np.ndarray) -> "KeypointTrack":
        T, K = len(timestamps), len(names)
        return cls(names=list(names), timestamps=np.asarray(timestamps, dtype=np.float64),
                   uv=np.full((T, K, 2), np.nan), confidence=np.zeros((T, K)),
                   status=np.zeros((T, K), np.uint8), source=np.zeros((T, K), np.uint8),
                   xyz=np.full((T, K, 3), np.nan))

    def __len__(self) -> int:
        return len(self.timestamps)

    def copy(self) -> "KeypointTrack":
        return KeypointTrack(list(self.names), self.timestamps.copy(), self.uv.copy(), self.confidence.copy(),
                             self.status.copy(), self.source.copy(), self.xyz.copy(),
                             json.loads(json.dumps(to_jsonable(self.meta))),
                             None if self.velocity is None else self.velocity.copy())

    def status_names(self) -> np.ndarray:
        """``status`` as strings ``[T, K]``."""
        return np.asarray(STATUS, dtype=object)[self.status]

    def counts(self) -> dict[str, dict[str, int]]:
        """Frames per status, per keypoint: the figures a person checks first."""
        return {n: {s: int((self.status[:, k] == i).sum()) for i, s in enumerate(STATUS)}
                for k, n in enumerate(self.names)}

    def missing_everywhere(self) -> list[str]:
        """Keypoints not seen in any frame (reported by the pipeline, never filled)."""
        return [n for k, n in enumerate(self.names) if bool((self.status[:, k] == MISSING).all())]

    # --- files -------------------------------------------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        out = {"timestamps": self.timestamps, "uv": self.uv, "confidence": self.confidence,
               "status": self.status, "source": self.source, "xyz": self.xyz}
        if self.velocity is not None:
            out["velocity"] = self.velocity
        return out

    def save_npz(self, path: str | Path) -> Path:
        """One compressed ``.npz``: the arrays plus names, code tables and meta as JSON."""
        import io
        buf = io.BytesIO()
        header = {"names": self.names, "status_codes": list(STATUS), "source_codes": list(SOURCES),
                  "meta": to_jsonable(self.meta)}
        np.savez_compressed(buf, header=np.frombuffer(json.dumps(header).encode(), np.uint8), **self.arrays())
        atomic_write_bytes(path, buf.getvalue())
        return Path(path)

    def save_parquet(self, path: str | Path) -> Path:
        """Long format, one row per (frame, keypoint): frame, timestamp, keypoint, u, v, x, y, z,
        confidence, status, source (names, not codes) — for spreadsheets and pandas."""
        import io

        import pyarrow as pa
        import pyarrow.parquet as pq
        T, K = self.status.shape
        cols = {"frame": np.repeat(np.arange(T), K), "timestamp": np.repeat(self.timestamps, K),
                "keypoint": np.tile(np.asarray(self.names, dtype=object), T),
                "u": self.uv[..., 0].ravel(), "v": self.uv[..., 1].ravel(), "x": self.xyz[..., 0].ravel(),
                "y": self.xyz[..., 1].ravel(), "z": self.xyz[..., 2].ravel(), "confidence": self.confidence.ravel(),
                "status": np.asarray(STATUS, dtype=object)[self.status.ravel()],
                "source": np.asarray(SOURCES, dtype=object)[self.source.ravel()]}
        table = pa.table(cols).replace_schema_metadata({"robot_irl": json.dumps(to_jsonable(self.meta))})
        buf = io.BytesIO()
        pq.write_table(table, buf)
        atomic_write_bytes(path, buf.getvalue())
        return Path(path)

    @classmethod
    def load_npz(cls, path: str | Path) -> "KeypointTrack":
        try:
            with np.load(path, allow_pickle=False) as z:
                header = json.loads(bytes(z["header"]).decode())
                arr = {k: z[k] for k in z.files if k != "header"}
        except (OSError, ValueError, KeyError) as e:
            raise InputError(f"not a keypoint file ({e})", file=path, expected="an .npz written by extract") from None
        return cls(names=header["names"], meta=header.get("meta", {}), velocity=arr.pop("velocity", None), **arr)
