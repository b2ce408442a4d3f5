"""Capture-time stamps for live camera frames.

A frame's time is when the sensor took it, not when ``read()`` returned it: drivers buffer a few
frames (V4L2 keeps 4-5 by default), so at the start of a recording ``read()`` hands out frames
that were taken before the recording began, back to back, and a frame always arrives some tens of
milliseconds after its exposure. So:

- the buffer is drained at start: frames are grabbed until one grab has to wait for a new frame
  (half a frame period or more), and that fresh frame is the first one recorded;
- each frame gets the driver's timestamp where the backend gives one (OpenCV's V4L2 backend
  reports the buffer's CLOCK_MONOTONIC time as ``CAP_PROP_POS_MSEC``; it is used when it lies
  within a second of ``time.monotonic()``), else its read time minus ``latency_s``, the camera's
  delay measured once (e.g. filming a monotonic clock on screen); the median read-minus-driver
  delay is reported when the driver stamps frames, so that figure can be carried to a camera or
  backend that does not.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

DRIVER_WINDOW_S = 1.0   # a driver stamp further than this from the monotonic clock is on another clock


class CaptureStamper:
    """Reads a cv2-like live capture (``grab``/``retrieve``/``get``) and stamps each frame with its
    capture time on ``time.monotonic()``."""

    def __init__(self, cap: Any, fps: float, *, latency_s: float = 0.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cap, self.period, self.latency_s, self.clock = cap, 1.0 / fps, float(latency_s), clock
        self.driver_frames = 0
        self.frames = 0
        self.drained = 0
        self._delays: list[float] = []

    def _stamp(self, t_read: float) -> float:
        ms = self.cap.get(cv2.CAP_PROP_POS_MSEC)
        t_driver = ms / 1000.0 if ms and ms > 0 else None
        self.frames += 1
        if t_driver is not None and abs(t_read - t_driver) < DRIVER_WINDOW_S and t_driver <= t_read:
            self.driver_frames += 1
            self._delays.append(t_read - t_driver)
            return t_driver
        return t_read - self.latency_s

    def first(self, max_drain: int = 64) -> tuple[np.ndarray | None, float]:
        """Drain the driver's buffer and return the first fresh frame and its capture time
        (frame None when the source ends)."""
        for _ in range(max_drain):
            start = self.clock()
            if not self.cap.grab():
                return None, 0.0
            t_read = self.clock()
            if t_read - start >= 0.5 * self.period:
                break
            self.drained += 1
        ok, frame = self.cap.retrieve()
        return (frame if ok else None), self._stamp(t_read)

    def read(self) -> tuple[np.ndarray | None, float]:
        """The next frame and its capture time (frame None when the source ends)."""
        ok, frame = self.cap.read()
        t_read = self.clock()
        return (frame if ok else None), (self._stamp(t_read) if ok else 0.0)

    def report(self) -> dict[str, Any]:
        """How the frames were stamped, for the episode's ``extra``."""
        return {"stamps": "driver" if self.frames and self.driver_frames == self.frames else
                "read time - latency" if not self.driver_frames else "mixed",
                "latency_s": self.latency_s, "buffer_drained": self.drained,
                "driver_delay_median_s": float(np.median(self._delays)) if self._delays else None}
