"""Video chunks through OpenCV: the codecs the library writes, opening writers, counting and reading frames.

A camera's video is a list of chunk files, each a complete, closed video. Closing a chunk is what
makes its frames safe: a recording killed mid-chunk loses only that chunk's frames, and every
closed chunk stays playable by any tool. OpenCV's wheel writes FFV1 (lossless, used for sim
renders so keypoint accuracy survives) and mp4v (MPEG-4 Part 2 in .mp4, used for cameras).
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from robot_irl.errors import InputError, RobotIRLError


@dataclass(frozen=True)
class Codec:
    fourcc: str
    ext: str
    lossless: bool


CODECS: dict[str, Codec] = {
    "ffv1": Codec("FFV1", "mkv", True),
    "mp4v": Codec("mp4v", "mp4", False),
}


class VideoWriteError(RobotIRLError):
    """OpenCV could not write a chunk as asked (never silently: a recording stops instead)."""


def open_writer(path: Path, codec: str, fps: float, size: tuple[int, int]) -> cv2.VideoWriter:
    c = CODECS[codec]
    w = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*c.fourcc), float(fps),
                        (int(size[0]), int(size[1])))
    if not w.isOpened():
        raise VideoWriteError(f"{path}: OpenCV cannot open a {c.fourcc} writer at {size[0]}x{size[1]}")
    return w


def decoded_count(path: Path) -> int:
    """Frames a decoder really gets out of ``path`` (slow, exact)."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    n = 0
    while cap.grab():
        n += 1
    cap.release()
    return n


def verify_count(path: Path, expected: int) -> None:
    """Check a closed chunk holds ``expected`` frames: the container's count first (cheap), the
    decoder's count when the container disagrees (exact). Raises when frames went missing."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    ok = cap.isOpened()
    prop = int(round(cap.get(cv2.CAP_PROP_FRAME_COUNT))) if ok else -1
    cap.release()
    if prop == expected:
        return
    n = decoded_count(path) if ok else 0
    if n != expected:
        raise VideoWriteError(f"{path}: wrote {expected} frames but the file decodes to {n}")


def iter_chunks(paths: Sequence[Path], counts: Sequence[int], fields: Sequence[str], *,
                start: int = 0, stop: int | None = None, rgb: bool = True) -> Iterator[np.ndarray]:
    """Frames ``start``..``stop`` across chunks; each chunk must decode to exactly its count."""
    total = int(sum(counts))
    stop = total if stop is None else min(stop, total)
    first = 0
    for path, n, field in zip(paths, counts, fields):
        last = first + n
        if last <= start or first >= stop:
            first = last
            continue
        cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        if not cap.isOpened():
            raise InputError("video cannot be opened", file=path, field=field, expected=f"{n} frames")
        try:
            skip = max(start - first, 0)
            if skip:
                cap.set(cv2.CAP_PROP_POS_FRAMES, skip)
                if int(cap.get(cv2.CAP_PROP_POS_FRAMES)) != skip:
                    cap.release()
                    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
                    for _ in range(skip):
                        cap.grab()
            for i in range(first + skip, min(last, stop)):
                ok, frame = cap.read()
                if not ok:
                    raise InputError(f"video ends after {i - first} of {n} frames (truncated or corrupt)",
                                     file=path, field=field, expected=f"{n} frames")
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) if rgb else frame
            if min(last, stop) == last and cap.grab():
                raise InputError(f"video has more than {n} frames", file=path, field=field,
                                 expected=f"{n} frames")
        finally:
            cap.release()
        first = last
