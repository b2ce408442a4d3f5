"""Training frames for the learned keypoint detector: library episodes (a query selects them) or
a video file, resized to the detector's input size, each frame tagged with its episode.

Why episodes matter: the detector learns by reconstructing one frame from another *of the same
episode* (same scene, moved parts), so every frame carries the index of the sequence it came from.

Why a crop: a camera left to watch a task sees mostly what never moves (bench, wall). At a CPU's
input size the part that moves is then a few dozen pixels; cut to it first (:func:`motion_crop`: the
box round what changes over the frames) and the same input size spends its pixels there. Measured on
``../shared/realvideo/apriltag_motor.mp4`` (a turning disc filling a third of the frame): tag-centre
error 43.1 -> 36.5 px at 96 px and 3000 steps (scripts/bench_learned_keypoints.py; notes/keypoints.md,
session 10). Keypoints are still reported in the full frame's pixels.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from robot_irl.errors import InputError

MIN_FRAMES = 8          # fewer than this cannot teach a detector anything
MIN_PER_SEQUENCE = 2    # a pair (source, target) needs two frames of one sequence


@dataclass(frozen=True)
class Crop:
    """A box of the source frames, ``x``, ``y`` its top-left corner, ``w`` × ``h`` its size (pixels)."""

    x: int
    y: int
    w: int
    h: int

    def check(self, source_size: tuple[int, int], origin: str) -> None:
        """Inside frames of ``source_size`` (W, H) and at least 8 pixels each way, or a clear error."""
        W, H = source_size
        if self.w < 8 or self.h < 8 or self.x < 0 or self.y < 0 or self.x + self.w > W or self.y + self.h > H:
            raise InputError(f"crop {self.to_list()} (x, y, w, h)", file=origin, field="crop",
                             expected=f"a box of at least 8x8 pixels inside the {W}x{H} frames")

    def apply(self, frame: np.ndarray) -> np.ndarray:
        return frame[self.y:self.y + self.h, self.x:self.x + self.w]

    def to_list(self) -> list[int]:
        return [self.x, self.y, self.w, self.h]

    @classmethod
    def parse(cls, text: str) -> "Crop":
        """``"X,Y,W,H"`` (pixels) → a crop, or a clear error."""
        try:
            x, y, w, h = (int(v) for v in text.split(","))
        except ValueError:
            raise InputError(f"--crop {text!r}", field="--crop",
                             expected="'auto' or X,Y,W,H: four integers (pixels of the source frames)") from None
        return cls(x, y, w, h)


def motion_crop(frames: list[np.ndarray], *, margin: float = 0.1, level: float = 0.3,
                origin: str = "frames", most: int = 400) -> Crop:
    """The box round what moves over ``frames`` (RGB, one size): per pixel the standard deviation of
    its grey level over (up to ``most`` evenly spread) frames; pixels above ``level`` times its 99th
    percentile; the largest connected region of them, its box grown by ``margin`` of its size on each
    side. A few pixels of sensor noise or a flicker far from the task do not pass: only the largest
    region counts. Frames with nothing moving are an error."""
    if len(frames) < 2:
        raise InputError(f"{len(frames)} frame(s)", file=origin, field="crop",
                         expected="at least two frames to find what moves in (or give the crop as X,Y,W,H)")
    idx = np.linspace(0, len(frames) - 1, min(len(frames), most)).round().astype(int)
    total = square = 0.0
    for i in idx:      # one frame at a time: a long HD video does not fit in memory as a stack
        g = cv2.cvtColor(frames[i], cv2.COLOR_RGB2GRAY).astype(np.float64)
        total, square = total + g, square + g * g
    mean = total / len(idx)
    sd = np.sqrt(np.maximum(square / len(idx) - mean * mean, 0.0))
    top = float(np.percentile(sd, 99))
    if top < 1.0:
        raise InputError("nothing moves in the frames (grey levels vary by < 1 in 99 % of pixels)", file=origin,
                         field="crop", expected="video of something that moves, or the crop as X,Y,W,H")
    _, _, stats, _ = cv2.connectedComponentsWithStats((sd > level * top).astype(np.uint8))
    x, y, w, h = (int(v) for v in stats[1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA])), :4])
    H, W = sd.shape
    gx, gy = int(round(margin * w)), int(round(margin * h))
    x0, y0, x1, y1 = max(0, x - gx), max(0, y - gy), min(W, x + w + gx), min(H, y + h + gy)
    crop = Crop(x0, y0, max(8, x1 - x0), max(8, y1 - y0))
    crop.check((W, H), origin)
    return crop


def resolve_crop(crop: "Crop | str | None", frames: list[np.ndarray], origin: str) -> "Crop | None":
    """``'auto'`` → :func:`motion_crop` of ``frames``; ``"X,Y,W,H"`` → that box; a Crop as is."""
    if crop is None or isinstance(crop, Crop):
        return crop
    return motion_crop(frames, origin=origin) if crop == "auto" else Crop.parse(crop)


@dataclass
class FrameSet:
    """``images [N, H, W, 3]`` uint8 RGB at the detector size; ``sequence [N]`` which episode (or
    video) each came from; ``source_size`` the (W, H) of the original frames, the pixel frame the
    detector's keypoints are reported in; ``ids`` the sequence names; ``crop`` the box of the source
    frames the images were cut to before resizing (None: the whole frame)."""

    images: np.ndarray
    sequence: np.ndarray
    source_size: tuple[int, int]
    ids: list[str]
    crop: Crop | None = None

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
             crop: Crop | str | None = None) -> FrameSet:
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
    crop = resolve_crop(crop, [f for _, frames in sequences for f in frames], origin)
    if crop is not None:
        crop.check(source, origin)
    size = input_size(source if crop is None else (crop.w, crop.h), width)
    images, seq, ids = [], [], []
    for i, (name, frames) in enumerate(sequences):
        images += [resize(f if crop is None else crop.apply(f), size) for f in frames]
        seq += [i] * len(frames)
        ids.append(name)
    return FrameSet(np.stack(images), np.asarray(seq, dtype=np.int64), source, ids, crop)


def library_frames(episodes: list, width: int, camera: str = "cam0", origin: str = "library",
                   crop: Crop | str | None = None) -> FrameSet:
    """Every frame of ``episodes``' camera, cut to ``crop`` (``'auto'``: :func:`motion_crop` over all
    of them) and resized; mixed frame sizes are an error."""
    seqs = []
    for ep in episodes:
        if camera not in ep.cameras:
            raise InputError(f"episode has no camera '{camera}'", file=ep.id, field="cameras",
                             expected="one of: " + ", ".join(ep.cameras))
        seqs.append((ep.id, list(ep.video_frames(camera))))
    return _collect(seqs, width, origin, crop)


def sequence_frames(frames: list[np.ndarray], width: int, segment: int = 0, name: str = "frames",
                    crop: Crop | str | None = None) -> FrameSet:
    """Frames of one camera in memory (e.g. a video with a marker painted out); with ``segment`` > 0
    cut into sequences of that many frames (a long video of one scene is many short episodes for
    pair sampling); ``crop`` as :func:`library_frames`."""
    n = segment if segment > 0 else max(1, len(frames))
    seqs = [(f"{name}[{i}:{i + n}]", frames[i:i + n]) for i in range(0, len(frames), n)]
    return _collect(seqs, width, name, crop)


def video_frames(path: str | Path, width: int, segment: int = 0, crop: Crop | str | None = None) -> FrameSet:
    """A video file's frames (RGB), as :func:`sequence_frames`."""
    from robot_irl.library.decode import decode
    return sequence_frames([f for _, f in decode(Path(path))], width, segment, str(path), crop)
