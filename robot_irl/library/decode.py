"""The library's one video decoding path: PyAV (FFmpeg's own decoders, AV1 and HEVC included).

OpenCV's FFmpeg build cannot decode AV1, which LeRobot >= 0.4 writes by default, and it reports
every failure as "no frame", so a truncated file, a missing file and an unsupported codec all
read alike. Here each frame comes with its own presentation time (phone footage has a variable
frame rate), and a failure says which of the three it is:

- :class:`VideoMissingError` - the file is not there;
- :class:`CodecUnsupportedError` - the container opens but FFmpeg has no decoder for its codec;
- :class:`VideoTruncatedError` - the container cannot be parsed, or it ends before the frames asked for.

All three are :class:`robot_irl.errors.InputError` naming the file and the field.
OpenCV still writes the recorded chunks (its writer is the faster one at camera rates).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from robot_irl.core.threads import cpu_budget
from robot_irl.errors import InputError


class VideoMissingError(InputError):
    """The video file does not exist."""


class CodecUnsupportedError(InputError):
    """The container opens but this FFmpeg build has no decoder for the stream's codec."""


class VideoTruncatedError(InputError):
    """The file is cut short or corrupt: no parsable container, or fewer frames than expected."""


# Decoder implementations named after the codec they decode, so meta says "av1", not "libdav1d".
CODEC_NAMES = {"libdav1d": "av1", "libaom-av1": "av1", "libopenh264": "h264", "libvpx-vp9": "vp9"}


@dataclass(frozen=True)
class VideoInfo:
    codec: str
    width: int
    height: int
    frames: int | None        # as the container indexes them; None when it does not say
    fps: float | None


def has_decoder(name: str) -> bool:
    """Whether this FFmpeg build has a decoder for codec ``name``."""
    try:
        av.codec.Codec(name, "r")
    except Exception:  # noqa: BLE001 - PyAV raises one of several errors for an unknown codec
        return False
    return True


def open_video(path: Path, field: str = "video") -> av.container.InputContainer:
    """Open a video for reading, or raise the error that says why it cannot be (see module doc)."""
    if not path.is_file():
        raise VideoMissingError("video file is missing", file=path, field=field, expected="the file the dataset lists")
    try:
        c = av.open(str(path), "r")
    except av.error.FFmpegError as e:
        raise VideoTruncatedError(f"video cannot be parsed, file truncated or corrupt ({e})", file=path,
                                  field=field, expected="a complete video file") from None
    if not c.streams.video:
        c.close()
        raise VideoTruncatedError("file holds no video stream", file=path, field=field, expected="a video stream")
    s = c.streams.video[0]
    name = s.codec_context.name if s.codec_context is not None else None
    if not name or name == "none" or not has_decoder(name):
        c.close()
        raise CodecUnsupportedError(f"video codec {CODEC_NAMES.get(name or '', name)!r} not supported by this "
                                    "FFmpeg build", file=path, field=field,
                                    expected="a codec FFmpeg decodes (AV1, H.264, HEVC, VP9, FFV1, MPEG-4)")
    return c


def probe(path: Path, field: str = "video") -> VideoInfo:
    """Codec, size, indexed frame count and nominal fps of the first video stream (no decoding)."""
    with open_video(path, field) as c:
        s = c.streams.video[0]
        name = s.codec_context.name
        return VideoInfo(CODEC_NAMES.get(name, name), s.codec_context.width, s.codec_context.height,
                         int(s.frames) or None, float(s.average_rate) if s.average_rate else None)


def decode(path: Path, *, field: str = "video", bgr: bool = False, start_time: float | None = None,
           end_time: float | None = None) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(time_s, frame)`` for every frame in order, uint8 [H, W, 3] RGB (BGR with ``bgr``).

    ``start_time`` / ``end_time`` keep frames with ``start_time <= t < end_time`` (seconds of the
    file's own clock), for a file that holds several episodes back to back. A decoding error is a
    :class:`VideoTruncatedError`; the caller checks the count it expected."""
    fmt = "bgr24" if bgr else "rgb24"
    c = open_video(path, field)
    try:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        s.thread_count = cpu_budget() or 0   # 0: FFmpeg's own choice (every core); a Ray task: its CPUs
        # One converter for the whole file: ``frame.to_ndarray(format=...)`` builds a new one per
        # frame, and with it a new pool of scaler threads sized to the machine, not the task (two
        # thread starts a frame; with two Ray workers on two cores, each frame's conversion waited
        # on threads the other worker's frames held).
        convert = VideoReformatter()
        tb = float(s.time_base) if s.time_base else 0.0
        if start_time is not None and start_time > 0:
            c.seek(int(start_time / tb) if tb else 0, stream=s, backward=True, any_frame=False)
        try:
            for frame in c.decode(s):
                t = float(frame.pts * tb) if frame.pts is not None else float(frame.time or 0.0)
                if start_time is not None and t < start_time:
                    continue
                if end_time is not None and t >= end_time:
                    break
                yield t, convert.reformat(frame, format=fmt, threads=s.thread_count).to_ndarray()
        except av.error.FFmpegError as e:
            raise VideoTruncatedError(f"video data is corrupt or cut short ({e})", file=path, field=field,
                                      expected="a complete video file") from None
    finally:
        c.close()


def packet_count(path: Path, field: str = "video") -> int:
    """Frames of the first video stream as the container holds them (packets, no decoding): exact
    for the intra-only and B-frame-free streams the library writes, and a fraction of a decode."""
    with open_video(path, field) as c:
        return sum(1 for p in c.demux(c.streams.video[0]) if p.size)


def count_frames(path: Path, field: str = "video") -> int:
    """Frames a decoder really gets out of ``path`` (slow, exact)."""
    return sum(1 for _ in decode(path, field=field))


def decode_exact(path: Path, n: int, *, field: str = "video", bgr: bool = False, start_time: float | None = None,
                 end_time: float | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
    """Exactly ``n`` frames (times, frames) from ``path``'s span, else a :class:`VideoTruncatedError`
    (fewer frames: the file ends early) or an InputError (more frames than the dataset says)."""
    times, frames = [], []
    for t, f in decode(path, field=field, bgr=bgr, start_time=start_time, end_time=end_time):
        times.append(t)
        frames.append(f)
    if len(frames) < n:
        raise VideoTruncatedError(f"video ends after {len(frames)} of {n} frames (file truncated)", file=path,
                                  field=field, expected=f"{n} frames")
    if len(frames) > n:
        raise InputError(f"video holds {len(frames)} frames in the span, the dataset says {n}", file=path,
                         field=field, expected=f"{n} frames")
    return np.asarray(times, dtype=np.float64), frames
