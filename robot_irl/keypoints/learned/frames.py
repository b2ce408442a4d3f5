"""Training frames for the learned keypoint detector: library episodes (a query selects them) or
a video file, resized to the detector's input size, each frame tagged with its episode.

Why episodes matter: the detector learns by reconstructing one frame from another *of the same
episode* (same scene, moved parts), so every frame carries the index of the sequence it came from.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from robot_irl.errors import InputError

MIN_FRAMES = 8          # fewer than this cannot teach a detector anything
MIN_PER_SEQUENCE = 2    # a pair (source, target) needs two frames of one sequence


@dataclass
class FrameSet:
    """``images [N, H, W, 3]`` uint8 RGB at the detector size; ``sequence [N]`` which episode (or
    video) each came from; ``source_size`` the (W, H) of the original frames, the pixel frame the
    detector's keypoints are reported in; ``ids`` the sequence names."""

    images: np.ndarray
    sequence: np.ndarray
    source_size: tuple[int, int]
    ids: list[str]

    def __len__(self) -> int:
        return len(self.images)

    def check_trainable(self, origin: str) -> None:
        """Enough frames, and at least one sequence with a pair, or a clear error naming ``origin``."""
        if len(self) < MIN_FRAMES:
            raise InputError(f"only {len(self)} frames", file=origin, field="frames",
                             expected=f"at least {MIN_FRAMES} frames to train a keypoint detector")
        counts = np.bincount(self.sequence)
        if counts.max(initial=0) < MIN_PER_SEQUENCE:
            raise InputError("no episode has two frames", file=origin, field="frames",
                             expected="episodes with several frames each (pairs of one episode are reconstructed)")


def input_size(source_size: tuple[int, int], width: int) -> tuple[int, int]:
    """Detector input (W, H): ``width`` wide, the source's aspect, height a multiple of 4."""
    w, h = source_size
    return width, max(4, int(round(width * h / w / 4.0)) * 4)


def resize(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def _collect(sequences: list[tuple[str, list[np.ndarray]]], width: int, origin: str,
             max_frames_per_sequence: int | None = None) -> FrameSet:
    sizes = {(f.shape[1], f.shape[0]) for _, frames in sequences for f in frames}
    if not sizes:
        raise InputError("no frames", file=origin, field="frames", expected=f"at least {MIN_FRAMES} frames")
    if len(sizes) > 1:
        by = {}
        for name, frames in sequences:
            for f in frames:
                by.setdefault((f.shape[1], f.shape[0]), name)
        listed = ", ".join(f"{w}x{h} ({n})" for (w, h), n in sorted(by.items()))
        raise InputError(f"frames of mixed sizes: {listed}", file=origin, field="frames",
                         expected="one frame size for every selected episode (select episodes of one camera size)")
    source = sizes.pop()
    size = input_size(source, width)
    images, seq, ids = [], [], []
    for i, (name, frames) in enumerate(sequences):
        if max_frames_per_sequence and len(frames) > max_frames_per_sequence:
            idx = np.linspace(0, len(frames) - 1, max_frames_per_sequence).round().astype(int)
            frames = [frames[j] for j in idx]
        images += [resize(f, size) for f in frames]
        seq += [i] * len(frames)
        ids.append(name)
    return FrameSet(np.stack(images), np.asarray(seq, dtype=np.int64), source, ids)


def library_frames(episodes: list, width: int, camera: str = "cam0", origin: str = "library") -> FrameSet:
    """Every frame of ``episodes``' camera, resized; mixed frame sizes are an error."""
    seqs = []
    for ep in episodes:
        if camera not in ep.cameras:
            raise InputError(f"episode has no camera '{camera}'", file=ep.id, field="cameras",
                             expected="one of: " + ", ".join(ep.cameras))
        seqs.append((ep.id, list(ep.video_frames(camera))))
    return _collect(seqs, width, origin)


def sequence_frames(frames: list[np.ndarray], width: int, segment: int = 0, name: str = "frames") -> FrameSet:
    """Frames of one camera in memory (e.g. a video with a marker painted out); with ``segment`` > 0
    cut into sequences of that many frames (a long video of one scene is many short episodes for
    pair sampling)."""
    n = segment if segment > 0 else max(1, len(frames))
    seqs = [(f"{name}[{i}:{i + n}]", frames[i:i + n]) for i in range(0, len(frames), n)]
    return _collect(seqs, width, name)


def video_frames(path: str | Path, width: int, segment: int = 0) -> FrameSet:
    """A video file's frames (RGB), as :func:`sequence_frames`."""
    from robot_irl.library.decode import decode
    return sequence_frames([f for _, f in decode(Path(path))], width, segment, str(path))
