"""Video chunks: the codecs the library writes (through OpenCV), counting and reading frames
(through the one PyAV decoding path, robot_irl.library.decode).

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

import av
import cv2
import numpy as np

from robot_irl.errors import InputError, RobotIRLError
from robot_irl.library.decode import CODEC_NAMES, count_frames, decode, open_video, packet_count, probe


@dataclass(frozen=True)
class Codec:
    fourcc: str
    ext: str
    lossless: bool


CODECS: dict[str, Codec] = {
    "ffv1": Codec("FFV1", "mkv", True),
    "mp4v": Codec("mp4v", "mp4", False),
}
# Codecs of chunks stored as they came (imports copy the source's packets, no re-encoding): read
# through the PyAV path like any chunk, never written frame by frame.
STORED: dict[str, Codec] = {name: Codec("", "mkv" if name == "ffv1" else "mp4", name == "ffv1")
                            for name in ("av1", "h264", "hevc", "vp9", "mpeg4", "ffv1")}


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
    """Frames a decoder really gets out of ``path`` (slow, exact); 0 when it cannot be read."""
    try:
        return count_frames(path)
    except InputError:
        return 0


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
    mp4 index, else the stream header or its packets), the decoder's count when the container
    disagrees (exact). Raises when frames went missing."""
    if path.suffix == ".mp4" and mp4_sample_count(path) == expected:
        return
    try:
        if (probe(path).frames or packet_count(path)) == expected:
            return
    except InputError:
        pass
    n = decoded_count(path)
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
        got = 0
        frames = decode(path, field=field, bgr=not rgb)
        try:
            for i, (_, frame) in enumerate(frames):
                got = i + 1
                if got > n:
                    raise InputError(f"video has more than {n} frames", file=path, field=field,
                                     expected=f"{n} frames")
                if first + i >= stop:
                    if min(last, stop) < last:
                        break
                    continue
                if first + i >= start:
                    yield frame
        finally:
            frames.close()
        if got < min(last, stop) - first:
            raise InputError(f"video ends after {got} of {n} frames (file truncated or corrupt)",
                             file=path, field=field, expected=f"{n} frames")
        first = last


def remux_span(src: Path, dst: Path, start: float, end: float, *,
               field: str = "video") -> tuple[str, list[float]] | None:
    """Copy the frames of ``src`` presented in [start, end) seconds into ``dst`` without re-encoding
    (packets copied, timestamps shifted), and return (codec, their presentation times in ``src``).

    Nothing is lost or decoded: an imported AV1 or H.264 episode keeps its exact bytes, and import
    runs faster than decoding. None when the codec is not one the library stores or the span does
    not start on a keyframe (a decoder could not start there): the caller re-encodes instead."""
    with open_video(src, field) as inp:
        s = inp.streams.video[0]
        name = s.codec_context.name
        codec = CODEC_NAMES.get(name, name)
        if codec not in STORED or not s.time_base:
            return None
        tb = float(s.time_base)
        if start > 0:
            inp.seek(int(start / tb), stream=s, backward=True, any_frame=False)
        pkts = []
        try:
            for p in inp.demux(s):
                if p.pts is None or p.size == 0:
                    continue
                if p.dts is not None and p.dts * tb >= end:
                    break
                if start <= p.pts * tb < end:
                    pkts.append(p)
        except av.error.FFmpegError as e:
            raise InputError(f"video data is corrupt or cut short ({e})", file=src, field=field,
                             expected="a complete video file") from None
        if not pkts or not pkts[0].is_keyframe:
            return None
        shift = min(p.dts if p.dts is not None else p.pts for p in pkts)
        times = sorted(p.pts * tb for p in pkts)
        with av.open(str(dst), "w") as out:
            o = out.add_stream_from_template(s, opaque=True)   # stream copy: no encoder needed
            for p in pkts:
                p.pts -= shift
                if p.dts is not None:
                    p.dts -= shift
                p.stream = o
                out.mux(p)
    return codec, times
