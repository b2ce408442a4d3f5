"""Frames -> the learner's keypoints ``[T, K, 3]``: a trained detector and an :class:`ImageSpace`.

One object does it wherever learned keypoints enter the learner: the exploration episodes a
dynamics model is fitted on (``models.collect``, in each worker), the demos, and a goal image at run
time. It is picklable (the network is loaded on first use in each process) and describes itself
(:meth:`LearnedObserver.to_dict`), so a dynamics model can say which detector, keypoints and camera
its keypoints are, and a run can refuse a goal image that does not fit them.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from robot_irl.errors import InputError
from robot_irl.keypoints.learned.space import ImageSpace

KIND = "learned-image-keypoints"
VIEWS_KIND = "learned-image-keypoints-views"


def _frames_for(camera: str, frames: Any, origin: str) -> Any:
    """The frames of ``camera`` out of ``{camera name: frames}`` (a bare array is one camera's)."""
    if not isinstance(frames, Mapping):
        return frames
    if camera not in frames:
        raise InputError(f"no frames of camera '{camera}' (there are: {', '.join(frames) or 'none'})", file=origin,
                         field="frames", expected="the frames of every camera the keypoints are seen through")
    return frames[camera]


class LearnedObserver:
    """``observer(frames [T, H, W, 3] uint8) -> [T, K, 3]`` metres (base frame, on the space's plane).

    ``model``: a detector folder (``robot-irl keypoints train``); ``space``: where its pixels go in
    metres (its camera must be the frames' camera at the frames' size); ``keep``: the keypoints to
    use (default all, ``lk0 ..``)."""

    def __init__(self, model: str | Path, space: ImageSpace, keep: list[str] | None = None) -> None:
        self.model = str(Path(model).resolve())
        self.space = space
        self._det = None
        det = self.detector
        if tuple(space.camera.size) != tuple(det.source_size):
            raise InputError(f"the camera is {space.camera.size[0]}x{space.camera.size[1]}, the detector's frames "
                             f"{det.source_size[0]}x{det.source_size[1]}", file=self.model, field="camera.size",
                             expected="the camera model at the size of the frames the detector was trained on")
        if keep is not None and (not keep or any(n not in det.names for n in keep)):
            raise InputError(f"keypoints to keep {keep}", file=self.model, field="keep",
                             expected="a non-empty subset of " + ", ".join(det.names))
        self.keep = list(keep) if keep is not None else list(det.names)

    @property
    def detector(self):
        if self._det is None:
            from robot_irl.keypoints.learned.detector import LearnedDetector

            self._det = LearnedDetector.load(self.model)
        return self._det

    @property
    def names(self) -> list[str]:
        return list(self.keep)

    @property
    def cameras(self) -> list[str]:
        """The camera it sees through (its space's camera name), as a list like :class:`ViewsObserver`'s."""
        return [self.space.camera.name]

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_det": None}      # workers load the network themselves

    def pixels(self, frames: Any, origin: str = "frames") -> np.ndarray:
        """``[T, K, 2]`` source pixels of the kept keypoints in ``frames`` (``[T, H, W, 3]``, or
        ``{camera name: frames}`` holding this camera's)."""
        det = self.detector
        uv = det.detect(_frames_for(self.space.camera.name, frames, origin), origin=origin).uv
        return uv[:, [det.names.index(n) for n in self.keep]]

    def __call__(self, frames: Any, origin: str = "frames") -> np.ndarray:
        return self.space.lift(self.pixels(frames, origin))

    def to_dict(self) -> dict[str, Any]:
        det = self.detector
        return {"kind": KIND, "model": self.model, "k": det.k, "size": list(det.size),
                "source_size": list(det.source_size), "names": self.names, "space": self.space.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, file: str | None = None) -> "LearnedObserver":
        """The observer a dynamics model or run was made with; its detector folder must still hold
        the same detector (K and input size), or a clear error."""
        if not isinstance(d, dict) or d.get("kind") != KIND:
            raise InputError(f"observation kind {d.get('kind') if isinstance(d, dict) else d!r}", file=file,
                             field="observation.kind", expected=f"'{KIND}'")
        obs = cls(d["model"], ImageSpace.from_dict(d["space"], file=file), d.get("names"))
        det = obs.detector
        if det.k != int(d["k"]) or list(det.size) != list(d["size"]):
            raise InputError(f"the detector at {obs.model} now has K = {det.k} at {det.size[0]}x{det.size[1]}; "
                             f"this model was made with K = {d['k']} at {d['size'][0]}x{d['size'][1]}",
                             file=file, field="observation.model",
                             expected="the detector folder the dynamics were trained with, unchanged")
        return obs


class ViewsObserver:
    """Learned keypoints seen through several cameras at once, each by its own detector:
    ``observer({camera name: frames}) -> [T, K1 + K2 + ..., 3]``, names ``<camera>.lk0 ..``.

    Why: one camera leaves a keypoint's depth along its ray free, so keypoints that match a goal
    image to a pixel can still put the gripper centimetres off towards or away from the camera; a
    second camera looking from elsewhere pins it. The keypoints are not matched across views (each
    detector learned its own); the learner takes them side by side."""

    def __init__(self, views: list[LearnedObserver]) -> None:
        cams = [v.space.camera.name for v in views]
        if len(views) < 2 or len(set(cams)) != len(cams):
            raise InputError(f"views through cameras {cams}", field="views",
                             expected="two or more views, each through a camera of its own name")
        self.views = list(views)

    @property
    def cameras(self) -> list[str]:
        return [v.space.camera.name for v in self.views]

    @property
    def names(self) -> list[str]:
        return [f"{v.space.camera.name}.{n}" for v in self.views for n in v.names]

    @property
    def model(self) -> str:
        return ", ".join(v.model for v in self.views)

    def __call__(self, frames: Mapping[str, Any], origin: str = "frames") -> np.ndarray:
        if not isinstance(frames, Mapping):
            raise InputError("frames of one camera", file=origin, field="frames",
                             expected=f"{{camera name: frames}} for the cameras {self.cameras}")
        return np.concatenate([v(frames, origin=origin) for v in self.views], axis=1)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": VIEWS_KIND, "names": self.names, "views": [v.to_dict() for v in self.views]}


def observer_from_dict(d: Any, *, file: str | None = None) -> LearnedObserver | ViewsObserver:
    """The observer (one camera or several) a dynamics model or run was made with."""
    if isinstance(d, dict) and d.get("kind") == VIEWS_KIND:
        return ViewsObserver([LearnedObserver.from_dict(v, file=file) for v in d.get("views", [])])
    return LearnedObserver.from_dict(d, file=file)


def episode_cameras(ep: Any, observer: LearnedObserver | ViewsObserver, camera: str = "cam0") -> dict[str, str]:
    """Which of the episode's cameras (``cam0`` ..) each of the observer's cameras is: the episode
    camera whose model carries that camera's name; a one-camera observer falls back to ``camera``."""
    models = {c: ep.camera_model(c) for c in ep.cameras}
    named = {m.name: c for c, m in models.items() if m is not None}
    out = {name: named[name] for name in observer.cameras if name in named}
    missing = [n for n in observer.cameras if n not in out]
    if missing and len(observer.cameras) == 1 and camera in ep.cameras:
        return {observer.cameras[0]: camera}
    if missing:
        raise InputError(f"episode has no camera named {missing} (its cameras: "
                         f"{', '.join(f'{c} ({n})' for n, c in named.items()) or ', '.join(ep.cameras)})",
                         file=ep.id, field="cameras", expected="the cameras the learned keypoints are seen through")
    return out


def observe_episodes(observer: LearnedObserver | ViewsObserver, episodes: list,
                     camera: str = "cam0") -> list[dict[str, Any]]:
    """Per episode the observer's keypoints of its video with their times and the episode's joints:
    the items ``irl.library_demos.demos_from_arrays`` takes (the learner's demos on learned keypoints).
    Each of the observer's cameras is the episode camera of that name (:func:`episode_cameras`)."""
    items = []
    for ep in episodes:
        cams = episode_cameras(ep, observer, camera)
        state = ep.arrays("state") if "state" in ep.streams else {}
        if "joint_pos" not in state:
            raise InputError("the episode records no joint_pos", file=ep.id, field="joint_pos",
                             expected="demos with joint states (the learned dynamics is a function of the joints)")
        first = cams[observer.cameras[0]]
        frames = {name: ep.video_frames(c) for name, c in cams.items()}
        items.append({"name": ep.id, "t": ep.timestamps(first),
                      "x": observer(frames, origin=f"{ep.id} cameras {', '.join(cams.values())}"),
                      "t_state": state["timestamp"], "q": state["joint_pos"]})
    return items
