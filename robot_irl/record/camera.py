"""Record from ``cv2.VideoCapture``: a camera index, a stream URL, or a video file on disk.

A live source's frames are stamped at capture (robot_irl.record.stamps: the driver's buffer
drained at start, the driver's timestamp where the backend gives one, else read time minus the
camera's measured latency), seconds from the first fresh frame, whose time.monotonic() is kept in
``extra.clock_t0``; a file keeps its own presentation times. Recording stops at a key (q or Esc, with
``show``), Ctrl-C, a duration, a frame count, or the end of the file. Camera videos are mp4 (mp4v).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2

from robot_irl.core.camera import CameraModel
from robot_irl.core.spec import KeypointSpec
from robot_irl.errors import InputError
from robot_irl.library import Episode, Library
from robot_irl.record.stamps import CaptureStamper

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


def record_camera(lib: Library, device: str | Any, *, task: str = "", duration: float | None = None,
                  max_frames: int | None = None, show: bool = False, model: CameraModel | None = None,
                  tags: list[str] | None = None, chunk_frames: int = 150, latency_s: float = 0.0,
                  keypoint_spec: KeypointSpec | None = None, extra: dict[str, Any] | None = None) -> Episode:
    """Record from ``device`` (an index, a path, a URL, or an opened cv2-like live capture) until a
    duration, a frame count, a key, Ctrl-C or the end of a file. ``latency_s``: the camera's
    capture-to-read delay, used when the backend gives no driver timestamps. ``keypoint_spec``:
    what extraction will look for (stored with the episode; ``demos spec --set`` changes it).
    ``extra``: more fields for the episode's ``extra`` (e.g. a person demo's ``demonstrator``)."""
    if isinstance(device, str):
        cap, is_file = open_capture(device)
        name = device if is_file or "://" in device else f"camera {device}"
    else:
        cap, is_file, name = device, False, type(device).__name__
    try:
        fps = cap.get(cv2.CAP_PROP_FPS)
        fps = fps if fps and 0 < fps < 1000 else 30.0
        stamper = None if is_file else CaptureStamper(cap, fps, latency_s=latency_s)
        if stamper is None:
            ok, frame = cap.read()
            t_first = t_cap = 0.0
        else:
            frame, t_cap = stamper.first()
            ok, t_first = frame is not None, t_cap
        if not ok or frame is None or frame.ndim != 3:
            raise InputError("device opened but gives no frames", file=name, field="--device",
                             expected="a source that delivers colour frames")
        h, w = frame.shape[:2]
        stopped_by, synthesized = "end of file" if is_file else "device stopped", 0
        with lib.writer(task=task, source="camera", fps=fps, tags=tags, chunk_frames=chunk_frames,
                        keypoint_spec=keypoint_spec, extra={"device": name, **(extra or {})}) as wr:
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
                        t = t_cap - t_first
                    if t > last:
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
                    if stamper is None:
                        ok, frame = cap.read()
                    else:
                        frame, t_cap = stamper.read()
                        ok = frame is not None
                    if not ok:
                        break
            except KeyboardInterrupt:
                stopped_by = "Ctrl-C"
            extra: dict[str, Any] = {"stopped_by": stopped_by, "synthesized_timestamps": synthesized}
            if stamper is not None:
                extra.update(clock_t0=t_first, camera_stamps=stamper.report())
            return wr.commit(extra=extra)
    finally:
        cap.release()
        if show:
            cv2.destroyAllWindows()
