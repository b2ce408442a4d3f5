"""Record from ``cv2.VideoCapture``: a camera index, a stream URL, or a video file on disk.

A live source is timestamped when ``read()`` returns (monotonic clock, seconds from the first
frame); a file keeps its own presentation times. Recording stops at a key (q or Esc, with
``show``), Ctrl-C, a duration, a frame count, or the end of the file. Camera videos are mp4 (mp4v).
"""
from __future__ import annotations

import time
from pathlib import Path

import cv2

from robot_irl.core.camera import CameraModel
from robot_irl.errors import InputError
from robot_irl.library import Episode, Library

CAMERA = "cam0"


def open_capture(device: str, field: str = "--device") -> tuple[cv2.VideoCapture, bool]:
    """Open ``device`` (an index like "0", a path or a URL); returns the capture and whether it is a file."""
    is_index = device.isdigit()
    is_url = "://" in device
    if not (is_index or is_url) and not Path(device).is_file():
        raise InputError("no such camera, file or URL", file=device, field=field,
                         expected="a camera index (0, 1, ...), an existing video file, or a URL")
    cap = cv2.VideoCapture(int(device)) if is_index else cv2.VideoCapture(device)
    if not cap.isOpened():
        raise InputError("OpenCV cannot open this camera device or video", file=device, field=field,
                         expected="a readable camera, video file or stream")
    return cap, not (is_index or is_url)


def record_camera(lib: Library, device: str, *, task: str = "", duration: float | None = None,
                  max_frames: int | None = None, show: bool = False, model: CameraModel | None = None,
                  tags: list[str] | None = None, chunk_frames: int = 150) -> Episode:
    cap, is_file = open_capture(device)
    try:
        ok, frame = cap.read()
        t_first = t_read = time.monotonic()
        if not ok or frame is None or frame.ndim != 3:
            raise InputError("device opened but gives no frames", file=device, field="--device",
                             expected="a source that delivers colour frames")
        fps = cap.get(cv2.CAP_PROP_FPS)
        fps = fps if fps and 0 < fps < 1000 else 30.0
        h, w = frame.shape[:2]
        stopped_by, synthesized = "end of file" if is_file else "device stopped", 0
        with lib.writer(task=task, source="camera", fps=fps, tags=tags, chunk_frames=chunk_frames,
                        extra={"device": device if is_file or "://" in device else f"camera {device}"}) as wr:
            wr.add_camera(CAMERA, (w, h), codec="mp4v", model=model)
            last, n = -1.0, 0
            try:
                while True:
                    if is_file:
                        t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
                        if not t > last:  # container without usable times: one frame period on
                            t = last + 1.0 / fps if last >= 0 else 0.0
                            synthesized += 1
                    else:
                        t = t_read - t_first
                    wr.write_frame(CAMERA, frame, t, bgr=True)
                    last, n = t, n + 1
                    if duration is not None and t >= duration:
                        stopped_by = "duration"
                        break
                    if max_frames is not None and n >= max_frames:
                        stopped_by = "frame count"
                        break
                    if show:
                        cv2.imshow(f"recording {wr.id} (q to stop)", frame)
                        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                            stopped_by = "key"
                            break
                    ok, frame = cap.read()
                    t_read = time.monotonic()
                    if not ok:
                        break
            except KeyboardInterrupt:
                stopped_by = "Ctrl-C"
            return wr.commit(extra={"stopped_by": stopped_by, "synthesized_timestamps": synthesized})
    finally:
        cap.release()
        if show:
            cv2.destroyAllWindows()
