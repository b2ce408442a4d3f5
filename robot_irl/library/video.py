"""Video chunks through OpenCV: the codecs the library writes, opening writers, counting and reading frames.

A camera's video is a list of chunk files, each a complete, closed video. Closing a chunk is what
makes its frames safe: a recording killed mid-chunk loses only that chunk's frames, and every
closed chunk stays playable by any tool. OpenCV's wheel writes FFV1 (lossless, used for sim
renders so keypoint accuracy survives) and mp4v (MPEG-4 Part 2 in .mp4, used for cameras).
"""
from __future__ import annotations

import struct
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


def _boxes(f, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """ISO-BMFF boxes between ``start`` and ``end``: (type, payload start, payload end)."""
    pos = start
    while pos + 8 <= end:
        f.seek(pos)
        size, kind = struct.unpack(">I4s", f.read(8))
        head = 8
        if size == 1:
            size, head = struct.unpack(">Q", f.read(8))[0], 16
        elif size == 0:
            size = end - pos
        if size < head or pos + size > end:
            return
        yield kind, pos + head, pos + size
        pos += size


def mp4_sample_count(path: Path) -> int | None:
    """Frames of the (single) video track of an .mp4 as its muxer indexed them (``stsz`` sample
    count): a few reads instead of opening a decoder, which costs ~7 ms per chunk. None when the
    file is not laid out as expected (the caller then asks the decoder)."""
    try:
        with open(path, "rb") as f:
            end = f.seek(0, 2)
            box = (0, end)
            for want in (b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsz"):
                found = [(a, b) for kind, a, b in _boxes(f, *box) if kind == want]
                if len(found) != 1:
                    return None
                box = found[0]
            f.seek(box[0])
            data = f.read(12)
            if len(data) != 12:
                return None
            return struct.unpack(">I", data[8:12])[0]
    except (OSError, struct.error):
        return None


def verify_count(path: Path, expected: int) -> None:
    """Check a closed chunk holds ``expected`` frames: the container's count first (cheap: the
    mp4 index, else OpenCV's property), the decoder's count when the container disagrees (exact).
    Raises when frames went missing."""
    if path.suffix == ".mp4" and mp4_sample_count(path) == expected:
        return
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
