"""Frames -> the learner's keypoints ``[T, K, 3]``: a trained detector and an :class:`ImageSpace`.

One object does it wherever learned keypoints enter the learner: the exploration episodes a
dynamics model is fitted on (``models.collect``, in each worker), the demos, and a goal image at run
time. It is picklable (the network is loaded on first use in each process) and describes itself
(:meth:`LearnedObserver.to_dict`), so a dynamics model can say which detector, keypoints and camera
its keypoints are, and a run can refuse a goal image that does not fit them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from robot_irl.errors import InputError
from robot_irl.keypoints.learned.space import ImageSpace

KIND = "learned-image-keypoints"


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

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_det": None}      # workers load the network themselves

    def pixels(self, frames: Any, origin: str = "frames") -> np.ndarray:
        """``[T, K, 2]`` source pixels of the kept keypoints."""
        det = self.detector
        uv = det.detect(frames, origin=origin).uv
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


def observe_episodes(observer: LearnedObserver, episodes: list, camera: str = "cam0") -> list[dict[str, Any]]:
    """Per episode the observer's keypoints of its video with their times and the episode's joints:
    the items ``irl.library_demos.demos_from_arrays`` takes (the learner's demos on learned keypoints)."""
    items = []
    for ep in episodes:
        if camera not in ep.cameras:
            raise InputError(f"episode has no camera '{camera}'", file=ep.id, field="cameras",
                             expected="one of: " + ", ".join(ep.cameras))
        state = ep.arrays("state") if "state" in ep.streams else {}
        if "joint_pos" not in state:
            raise InputError("the episode records no joint_pos", file=ep.id, field="joint_pos",
                             expected="demos with joint states (the learned dynamics is a function of the joints)")
        items.append({"name": ep.id, "t": ep.timestamps(camera),
                      "x": observer(ep.video_frames(camera), origin=f"{ep.id} camera {camera}"),
                      "t_state": state["timestamp"], "q": state["joint_pos"]})
    return items
