"""Frames in, overlay frames out: a video file or any iterator of images, and the preview writer.

Files are read through the library's one decoding path (:mod:`robot_irl.library.decode`, PyAV):
each frame keeps its own presentation time (phone footage has a variable frame rate), and a
missing, truncated or unsupported file fails with an error that says which."""
from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

from robot_irl.errors import InputError
from robot_irl.keypoints.detectors import Detection, Frame
from robot_irl.keypoints.track import DETECTED, INTERPOLATED, MISSING, STATUS, TRACKED, KeypointTrack
from robot_irl.library.decode import decode, packet_count, probe

VIDEO_EXPECTED = "a readable video file (e.g. .mkv/FFV1, .avi, .mp4) with at least one frame"


def file_timestamps(video: Path, ts_file: str | None, fps: float | None) -> np.ndarray | None:
    """A video file's frame times from ``--timestamps`` (a checked .npy) or ``--fps``; None: the
    container's own stamps."""
    if ts_file:
        try:
            ts = np.load(ts_file, allow_pickle=False)
        except FileNotFoundError:
            raise InputError("timestamps file not found", file=ts_file, field="--timestamps",
                             expected="an existing .npy with one time (s) per frame") from None
        except (ValueError, OSError) as e:
            raise InputError(f"cannot read timestamps ({e})", file=ts_file, field="--timestamps",
                             expected="a .npy array (np.save) with one time (s) per frame") from None
        if ts.ndim != 1 or ts.dtype.kind not in "iuf":
            raise InputError(f"timestamps of shape {ts.shape} and type {ts.dtype}", file=ts_file,
                             field="--timestamps", expected="a 1-D numeric array, one time (s) per frame")
        return ts.astype(np.float64)
    if fps is not None:
        if not (np.isfinite(fps) and fps > 0):
            raise InputError(f"--fps {fps}", field="--fps", expected="a frame rate > 0")
        return np.arange(packet_count(video)) / fps
    return None


class FrameSource:
    """BGR ``uint8`` frames from a video path or an iterator (``rgb=True`` for RGB input, e.g. a
    gymnasium ``render()``). ``fps`` and ``n_frames`` are known for files only (the count is the
    container's estimate; the pipeline counts what it actually reads); ``times`` holds the
    presentation time (s) of every frame decoded from a file so far."""

    def __init__(self, video: str | Path | Iterable[np.ndarray], *, rgb: bool = False) -> None:
        self.rgb = rgb
        self.fps: float | None = None
        self.n_frames: int | None = None
        self.times: list[float] = []
        self._path: Path | None = None
        if isinstance(video, (str, Path)):
            self.name = str(video)
            self._path = Path(video)
            info = probe(self._path)
            self.fps, self.n_frames = info.fps, info.frames
            self._iter: Iterable[np.ndarray] | None = None
        else:
            self.name = "<frames>"
            self.n_frames = len(video) if hasattr(video, "__len__") else None
            self._iter = video

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._path is not None:
            for bgr, _ in self._prefetched(gray=False):
                yield bgr
        else:
            yield from self._checked()

    def frames(self) -> Iterator[Frame]:
        """:class:`Frame` objects; from a file, the grey image is made in the decode thread too
        (off the detection thread, and while the frame is still in that core's cache)."""
        if self._path is not None:
            for bgr, gray in self._prefetched(gray=True):
                yield Frame(bgr, gray)
        else:
            for bgr in self._checked():
                yield Frame(bgr)

    def _checked(self) -> Iterator[np.ndarray]:
        """Frames of an iterator, validated and converted to BGR."""
        for i, frame in enumerate(self._iter):
            frame = np.asarray(frame)
            if frame.dtype != np.uint8 or frame.ndim not in (2, 3):
                raise InputError(f"frame {i} is {frame.dtype} {frame.shape}", field="video",
                                 expected="uint8 images [H, W] or [H, W, 3]")
            yield cv2.cvtColor(frame, cv2.COLOR_RGB2BGR) if (self.rgb and frame.ndim == 3) else frame


    def _prefetched(self, depth: int = 8, gray: bool = False) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """Decode in a background thread (FFmpeg releases the GIL), so decoding the next frame
        overlaps detecting this one; a decode error is re-raised here."""
        q: queue.Queue = queue.Queue(maxsize=depth)
        stop = threading.Event()
        frames = decode(self._path, bgr=True)

        def work() -> None:
            try:
                for time_s, frame in frames:
                    if stop.is_set():
                        return
                    g = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if gray else None
                    q.put((time_s, frame, g))
                q.put(None)
            except BaseException as e:  # handed to the consumer
                q.put(e)

        th = threading.Thread(target=work, name="video-decode", daemon=True)
        th.start()
        try:
            while True:
                item = q.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                self.times.append(item[0])
                yield item[1], item[2]
        finally:
            stop.set()
            while th.is_alive():
                try:
                    q.get_nowait()
                except queue.Empty:
                    th.join(0.01)
            frames.close()


STATUS_COLOURS = {DETECTED: (60, 220, 60), TRACKED: (0, 200, 255), INTERPOLATED: (255, 80, 255)}


class PreviewWriter:
    """An MP4 of the input with every keypoint drawn: green detected, orange tracked by flow,
    marker outlines, names; missing keypoints listed top-left. For a person to check by eye."""

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._w = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        if not self._w.isOpened():
            raise InputError("cannot write preview video", file=self.path, field="preview", expected="a writable .mp4 path")

    def write(self, bgr: np.ndarray, observations: dict[str, tuple[int, Detection]], missing: list[str],
              timestamp: float) -> None:
        img = bgr.copy()
        for name, (status, d) in observations.items():
            col = STATUS_COLOURS.get(status, (255, 255, 255))
            if d.corners is not None:
                cv2.polylines(img, [np.round(d.corners * 16).astype(np.int32)], True, col, 1, cv2.LINE_AA, shift=4)
            u, v = np.round(d.uv * 16).astype(int)
            cv2.circle(img, (int(u), int(v)), 4 * 16, col, 1, cv2.LINE_AA, shift=4)
            cv2.putText(img, f"{name} {d.confidence:.2f}", (int(d.uv[0]) + 6, int(d.uv[1]) - 6),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.4, col, 1, cv2.LINE_AA)
        cv2.putText(img, f"t={timestamp:.3f}s" + (f"  missing: {', '.join(missing)}" if missing else ""), (6, 16),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 255) if missing else (255, 255, 255), 1, cv2.LINE_AA)
        self._w.write(img)

    def write_saved(self, bgr: np.ndarray, track: KeypointTrack, t: int) -> None:
        """Frame ``t`` with the track's values as saved: each keypoint in its status colour
        (green detected, orange tracked, magenta filled) with status and confidence; missing
        ones listed top-left."""
        img = bgr.copy()
        missing = []
        for k, name in enumerate(track.names):
            status = int(track.status[t, k])
            if status == MISSING or not np.isfinite(track.uv[t, k]).all():
                missing.append(name)
                continue
            col = STATUS_COLOURS.get(status, (255, 255, 255))
            u, v = np.round(track.uv[t, k] * 16).astype(int)
            cv2.circle(img, (int(u), int(v)), 4 * 16, col, 1 if status == DETECTED else 2, cv2.LINE_AA, shift=4)
            cv2.putText(img, f"{name} {STATUS[status]} {track.confidence[t, k]:.2f}",
                        (int(track.uv[t, k, 0]) + 6, int(track.uv[t, k, 1]) - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, col, 1,
                        cv2.LINE_AA)
        cv2.putText(img, f"t={track.timestamps[t]:.3f}s" + (f"  missing: {', '.join(missing)}" if missing else ""),
                    (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 255) if missing else (255, 255, 255), 1,
                    cv2.LINE_AA)
        self._w.write(img)

    def close(self) -> None:
        self._w.release()


def write_track_preview(frames: Iterable[np.ndarray], track: KeypointTrack, path: str | Path, *,
                        rgb: bool = False) -> Path:
    """An MP4 of ``frames`` with ``track`` drawn as it was saved (after cleaning): what a person
    checks is what the next stage gets, fills and bridges included."""
    ts = track.timestamps
    fps = float(1.0 / np.median(np.diff(ts))) if len(ts) > 1 and np.median(np.diff(ts)) > 0 else 30.0
    writer: PreviewWriter | None = None
    try:
        for t, frame in enumerate(FrameSource(frames, rgb=rgb) if not isinstance(frames, FrameSource) else frames):
            if t >= len(track):
                break
            if writer is None:
                writer = PreviewWriter(path, fps, (frame.shape[1], frame.shape[0]))
            writer.write_saved(frame, track, t)
    finally:
        if writer is not None:
            writer.close()
    return Path(path)
