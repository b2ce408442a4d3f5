"""A trained learned-keypoint detector (model folder) applied to frames: the same
:class:`KeypointTrack` the marker path writes, so cleaning, lifting, the library and the learner
take it unchanged.

Per frame and keypoint: ``uv`` is the heat map's centre of mass in the source frame's pixels (a
model trained on a crop cuts every frame the same way and reports in the whole frame's pixels);
``confidence`` is the heat map's mass near that centre (1: one sharp peak, near 0: spread over the
image, i.e. the keypoint is not sure where it is); ``meta['spread_px']`` keeps the median spread.
Keypoint names are ``lk0 .. lk{K-1}``.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robot_irl.core.camera import CameraModel
from robot_irl.errors import InputError
from robot_irl.keypoints.learned.frames import Crop, resize
from robot_irl.keypoints.learned.train import KIND, WEIGHTS, to_pixels, to_tensor
from robot_irl.keypoints.track import DETECTED, SRC_LEARNED, KeypointTrack
from robot_irl.runs import RunDir


@dataclass
class Detections:
    """``uv [T, K, 2]`` source pixels, ``peak [T, K]`` 0..1, ``spread [T, K]`` source pixels."""

    uv: np.ndarray
    peak: np.ndarray
    spread: np.ndarray


class LearnedDetector:
    """Load with :meth:`load`; :meth:`detect` runs it on RGB frames of the size it was trained on."""

    def __init__(self, net, config: dict, path: Path) -> None:
        self.net, self.config, self.path = net, config, path
        det = config["detector"]
        self.k = net.cfg.total_k    # keypoints put out, all members
        self.size = (int(det["width"]), int(det["height"]))
        self.source_size = tuple(int(v) for v in config["source_size"])
        crop = config.get("crop")
        self.crop = None if crop is None else Crop(*(int(v) for v in crop))
        self._view = self.source_size if self.crop is None else (self.crop.w, self.crop.h)   # what the net sees
        self._offset = np.zeros(2) if self.crop is None else np.array([self.crop.x, self.crop.y], float)

    @property
    def names(self) -> list[str]:
        return [f"lk{i}" for i in range(self.k)]

    @classmethod
    def load(cls, path: str | Path, *, k: int | None = None) -> "LearnedDetector":
        """Open a model folder written by ``robot-irl keypoints train``; ``k`` (if given) must match."""
        import torch

        from robot_irl.keypoints.learned.model import DetectorConfig, KeypointEnsemble
        run = RunDir(path)
        run.require_finished()
        config = run.config()
        if config.get("kind") != KIND:
            raise InputError(f"kind is {config.get('kind')!r}", file=run.path / "config.json", field="kind",
                             expected=f"'{KIND}' (a folder written by robot-irl keypoints train)")
        det = config.get("detector", {})
        total = int(det.get("k", -1)) * int(det.get("members", 1))
        if k is not None and total != k:
            raise InputError(f"the model has K = {total} keypoints, {k} were asked for",
                             file=run.path / "config.json", field="detector.k",
                             expected=f"a model with {k} keypoints in all (--k times --members), or no --k")
        weights = run.path / WEIGHTS
        if not weights.exists():
            raise InputError("missing weights", file=weights, expected="a finished robot-irl keypoints train folder")
        blob = torch.load(weights, map_location="cpu", weights_only=True)
        if blob.get("config") != det:
            raise InputError("weights do not match config.json", file=weights, field="config",
                             expected=f"detector {det}")
        net = KeypointEnsemble(DetectorConfig(**det))
        states = blob["states"] if "states" in blob else [blob["state"]]   # "state": one net, before members
        if len(states) != len(net.members):
            raise InputError(f"{len(states)} member weights for {len(net.members)} members", file=weights,
                             field="states", expected=f"detector {det}")
        for member, state in zip(net.members, states):
            member.load_state_dict(state)
        net.eval()
        return cls(net, config, run.path)

    def check_frame(self, shape: tuple[int, ...], origin: str) -> None:
        """Frames must have the size (W×H) the model was trained on, or a clear error."""
        w, h = shape[1], shape[0]
        if (w, h) != self.source_size or len(shape) != 3 or shape[2] != 3:
            sw, sh = self.source_size
            raise InputError(f"frames are {w}x{h}" + ("" if len(shape) == 3 and shape[2] == 3 else f" {shape}"),
                             file=origin, field="frames",
                             expected=f"{sw}x{sh} RGB frames, the size the model {self.path} was trained on "
                                      f"(train one on frames of this size)")

    def detect(self, frames: Iterable[np.ndarray], *, origin: str = "frames", batch: int = 64) -> Detections:
        """Keypoints of every frame (uint8 RGB at the trained source size)."""
        import torch
        uv, peak, spread = [], [], []
        buf: list[np.ndarray] = []

        def flush() -> None:
            with torch.no_grad():
                mu, p, s = self.net.keypoints(to_tensor(np.stack(buf)))
            uv.append(to_pixels(mu.numpy().astype(np.float64), self._view) + self._offset)
            peak.append(p.numpy().astype(np.float64))
            spread.append(s.numpy().astype(np.float64) * self._view[0] / 2.0)
            buf.clear()

        for f in frames:
            self.check_frame(f.shape, origin)
            buf.append(resize(f if self.crop is None else self.crop.apply(f), self.size))
            if len(buf) == batch:
                flush()
        if buf:
            flush()
        if not uv:
            raise InputError("no frames", file=origin, field="frames", expected="at least one frame")
        return Detections(np.concatenate(uv), np.concatenate(peak), np.concatenate(spread))


def lift_to_plane(uv: np.ndarray, camera: CameraModel, z: float) -> np.ndarray:
    """3D (base frame) of pixels ``uv [T, K, 2]`` on the horizontal plane at height ``z``."""
    from robot_irl.keypoints.geometry import ray_plane, undistort_points
    ideal = undistort_points(uv, camera.K, camera.dist)
    return ray_plane(camera, ideal, np.array([0.0, 0.0, z]), np.array([0.0, 0.0, 1.0]))


def extract_learned(detector: LearnedDetector, frames: Iterable[np.ndarray], timestamps: np.ndarray, *,
                    camera: CameraModel | None = None, plane_z: float | None = None, min_confidence: float = 0.0,
                    keep: list[str] | None = None, origin: str = "frames") -> KeypointTrack:
    """A :class:`KeypointTrack` from a learned detector: every keypoint ``detected`` in every
    frame where its confidence reaches ``min_confidence`` (else missing, NaN). 3D only with a
    camera and ``plane_z`` (the plane the tracked points move in; a learned keypoint has no
    known height of its own). ``keep``: only these keypoints (e.g. those the report found useful)."""
    names = detector.names
    if keep is not None:
        unknown = [n for n in keep if n not in names]
        if unknown or not keep:
            raise InputError(f"keypoints to keep {keep}", file=detector.path, field="keep",
                             expected="a non-empty subset of " + ", ".join(names))
    d = detector.detect(frames, origin=origin)
    if keep is not None:
        idx = [names.index(n) for n in keep]
        d = Detections(d.uv[:, idx], d.peak[:, idx], d.spread[:, idx])
        names = list(keep)
    ts = np.asarray(timestamps, dtype=np.float64)
    if len(ts) != len(d.uv):
        raise InputError(f"{len(ts)} timestamps for {len(d.uv)} frames", file=origin, field="timestamps",
                         expected="one timestamp per frame")
    track = KeypointTrack.empty(names, ts)
    ok = d.peak >= min_confidence
    track.uv[ok] = d.uv[ok]
    track.confidence[:] = np.where(ok, d.peak, 0.0)
    track.status[ok] = DETECTED
    track.source[ok] = SRC_LEARNED
    if camera is not None and plane_z is not None:
        track.xyz = lift_to_plane(track.uv, camera, plane_z)
    track.meta.update({"detector": "learned", "model": str(detector.path), "k": detector.k,
                       "spread_px": np.median(d.spread, axis=0).tolist(), "plane_z": plane_z,
                       "xyz_frame": "base" if track.xyz is not None and np.isfinite(track.xyz).any() else None})
    return track
