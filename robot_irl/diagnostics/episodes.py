"""What every library-based collector needs from an episode: its labels and small frames.

Labels are the episode's own facts (task text, id, success, source and its variant fields), one
value per latent row; frames come from the library's decoder, downsized once, so the projector can
show what the robot saw at each point.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from robot_irl.library import Episode

CAMERA = "cam0"
THUMB_PX = 32
BASE_LABELS = ("task", "episode", "success", "source")
ALWAYS_KEPT = ("task", "episode")  # kept even when constant: the reader needs to see what was selected


def episode_labels(ep: "Episode") -> dict[str, str]:
    """Class labels of one episode: task, episode, success, source and each variant field that
    names a class (strings, booleans, integers); float variant fields are settings, not classes."""
    labels = {"task": ep.task, "episode": ep.id, "success": str(ep.success).lower(), "source": ep.source}
    for key, value in sorted((ep.variant or {}).items()):
        if isinstance(value, (str, bool, int)):
            labels[f"variant.{key}" if key in BASE_LABELS else key] = str(value)
    return labels


class LabelTable:
    """Per-row labels gathered episode by episode; variant fields an episode lacks read 'unknown'."""

    def __init__(self) -> None:
        self._episodes: list[tuple[dict[str, str], int]] = []
        self._extra: dict[str, list[np.ndarray]] = {}

    def add(self, ep: "Episode", n_rows: int, **extra: np.ndarray) -> None:
        """Labels for ``n_rows`` rows of ``ep``; ``extra`` holds per-row arrays (step, phase, ...)."""
        self._episodes.append((episode_labels(ep), n_rows))
        for key, values in extra.items():
            self._extra.setdefault(key, []).append(np.asarray(values))

    def arrays(self) -> dict[str, np.ndarray]:
        """Every label as one array; class labels with a single value are dropped (a one-colour
        plot says nothing) except task and episode."""
        keys = list(dict.fromkeys(k for labels, _ in self._episodes for k in labels))
        out: dict[str, np.ndarray] = {}
        for key in keys:
            values = np.concatenate([np.full(n, labels.get(key, "unknown"), dtype=object)
                                     for labels, n in self._episodes]).astype(str)
            if key in ALWAYS_KEPT or np.unique(values).size > 1:
                out[key] = values
        for key, parts in self._extra.items():
            values = np.concatenate(parts)
            if values.dtype.kind == "f" or np.unique(values).size > 1:
                out[key] = values
        return out


def nearest_index(times: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Index of the sample in sorted ``times`` nearest each query time (streams share one clock,
    never one index)."""
    times = np.asarray(times, dtype=float)
    right = np.searchsorted(times, query).clip(1, max(len(times) - 1, 1))
    left = right - 1
    pick_left = np.abs(query - times[left]) <= np.abs(times[right] - query)
    return np.where(pick_left, left, right).clip(0, len(times) - 1)


def square_thumbnail(frame: np.ndarray, px: int = THUMB_PX) -> np.ndarray:
    """An RGB frame shrunk to ``px x px`` with its aspect kept (letterboxed in black): the
    projector stretches every sprite to a square, which would distort a 4:3 frame."""
    import cv2

    h, w = frame.shape[:2]
    scale = px / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    small = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA)
    out = np.zeros((px, px, 3), dtype=np.uint8)
    top, left = (px - nh) // 2, (px - nw) // 2
    out[top:top + nh, left:left + nw] = small
    return out


def frame_thumbnails(ep: "Episode", indices: Sequence[int], camera: str = CAMERA, px: int = THUMB_PX) -> np.ndarray:
    """Thumbnails ``[len(indices), px, px, 3]`` of the given frames, decoding the video once up to
    the last one asked for (seeking per frame with ``ep.frame`` decodes from a keyframe each time)."""
    indices = [int(i) for i in indices]
    if not indices:
        return np.zeros((0, px, px, 3), dtype=np.uint8)
    want = set(indices)
    small = {i: square_thumbnail(f, px) for i, f in enumerate(ep.video_frames(camera, 0, max(want) + 1))
             if i in want}
    return np.stack([small[i] for i in indices])


def gripper_phases(ep: "Episode", times: np.ndarray) -> np.ndarray | None:
    """Motion phase at each time from the recorded gripper command: ``approach`` before the first
    hold, ``carry`` while holding, ``retreat`` after; None when the episode never holds."""
    if "state" not in ep.streams or "gripper" not in ep.columns("state"):
        return None
    st = ep.arrays("state")
    hold = np.flatnonzero(np.nan_to_num(st["gripper"].astype(float)) > 0)
    if hold.size == 0:
        return None
    t0, t1 = st["timestamp"][hold[0]], st["timestamp"][hold[-1]]
    return np.where(times < t0, "approach", np.where(times <= t1, "carry", "retreat"))
