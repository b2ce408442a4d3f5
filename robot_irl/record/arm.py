"""Kinesthetic recording: a person moves the arm in teach (freedrive) mode while robot-irl records.

The arm (any :class:`robot_irl.control.Arm`) is put in teach mode and read at a fixed rate on its
own clock; a camera beside it, if any, is read in a thread and stamped on the same clock, so the
state stream and the video align by timestamp. Stream ``state`` holds per row: ``joint_pos``,
``joint_vel`` (as the arm measures them), ``ee_pos`` (the arm's, else FK), ``ee_quat`` (FK),
``keypoints_3d`` (FK of the keypoint spec, where robot-irl models the robot), and the demonstrated
action: ``target_requested`` = the next measured position, ``action_delta`` = its difference, the
same columns a sim episode has, so `demos replay --sim` and the learner treat both alike. No target
is ever sent to the arm (teach mode refuses them); the last row's action is NaN.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from robot_irl.core.camera import CameraModel
from robot_irl.core.spec import KeypointSpec
from robot_irl.errors import InputError
from robot_irl.library import Column, Episode, EpisodeWriter, Library
from robot_irl.record.camera import open_capture
from robot_irl.record.columns import robot_state_columns
from robot_irl.record.kinematics import RobotKinematics
from robot_irl.record.stamps import CaptureStamper


CAMERA = "cam0"


def arm_columns(joint_names: list[str], spec: KeypointSpec | None) -> dict[str, Column]:
    cols = robot_state_columns(joint_names)
    if spec is not None and len(spec):
        cols["keypoints_3d"] = Column((len(spec), 3), "float64", "m", tuple(spec.names))
    return cols


class _CameraThread:
    """Reads frames from a capture and writes them stamped on the arm's clock.

    A live camera's frames carry their capture time (robot_irl.record.stamps: buffer drained when
    the thread starts, driver timestamp or read time minus the camera's latency), moved onto the
    arm clock by the offset between the two clocks measured at start; frames taken before the
    first state sample are not part of the episode. A video file stands in for a live camera: it
    is read at its own frame rate and stamped when read. An error stops the thread and is
    re-raised by :meth:`check`, so a failing camera ends the recording loudly."""

    def __init__(self, writer: EpisodeWriter, cap: cv2.VideoCapture, stamper: CaptureStamper | None,
                 clock_now: Callable[[], float], t0: float, pace_s: float | None) -> None:
        self.writer, self.cap, self.stamper, self.clock_now, self.t0 = writer, cap, stamper, clock_now, t0
        self.pace_s = pace_s
        self.frames, self.ended = 0, ""
        self.offset = 0.0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="record-camera", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _next(self, first: bool) -> tuple[np.ndarray | None, float]:
        """The next frame and its time on the arm clock."""
        if self.stamper is None:
            ok, frame = self.cap.read()
            return (frame if ok else None), self.clock_now()
        frame, t_mono = self.stamper.first() if first else self.stamper.read()
        return frame, t_mono + self.offset

    def _run(self) -> None:
        try:
            self.offset = self.clock_now() - time.monotonic()   # arm clock minus the stamps' clock
            last = -np.inf
            frame, t_cap = self._next(True)
            while frame is not None and not self._stop.is_set():
                t = t_cap - self.t0
                if t >= 0 and t > last:       # before the first state sample: not part of the episode
                    self.writer.write_frame(CAMERA, frame, t, bgr=True)
                    self.frames += 1
                    last = t
                if self.pace_s is not None:
                    time.sleep(self.pace_s)
                frame, t_cap = self._next(False)
            if frame is None:
                self.ended = "camera: no more frames"
        except BaseException as e:  # noqa: BLE001 - handed to the recording thread by check()
            self.error = e

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def halt(self) -> None:
        """Stop reading and wait for the thread, so the capture can be released safely."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)

    def stop(self) -> None:
        self.halt()
        self.check()


def record_arm(lib: Library, arm: Any, *, task: str = "", rate_hz: float = 50.0, duration: float | None = None,
               max_rows: int | None = None, stop: threading.Event | None = None, arm_name: str = "",
               camera_device: str | Any | None = None, camera_model: CameraModel | None = None,
               keypoint_spec: KeypointSpec | None = None, tags: list[str] | None = None,
               chunk_frames: int = 300, on_start: Callable[[], None] | None = None,
               camera_latency_s: float = 0.0) -> Episode:
    """Record one kinesthetic demonstration from the connected ``arm`` until ``duration`` seconds
    (arm clock), ``max_rows`` samples, ``stop`` is set, or Ctrl-C; returns the committed episode.

    ``on_start`` runs once teach mode is on (e.g. to tell the person to start).
    ``camera_latency_s``: the camera's capture-to-read delay, used where the backend gives no
    driver timestamps. With no explicit
    ``keypoint_spec``, a robot robot-irl models gets its own keypoints (wrist marker, flange blob)."""
    if not (rate_hz > 0 and np.isfinite(rate_hz)):
        raise InputError(f"rate is {rate_hz}", field="--rate", expected="Hz > 0")
    if duration is None and max_rows is None and stop is None:
        raise InputError("no way to stop the recording", field="--duration",
                         expected="a duration, a row count, or a stop key")
    from robot_irl.control.clock import Rate
    caps = arm.capabilities
    if "teach" not in caps.control_modes:
        raise InputError(f"arm '{arm_name or caps.robot}' has no teach mode", field="--arm",
                         expected="an arm whose backend offers teach (freedrive) mode")
    kin = RobotKinematics(caps.robot) if RobotKinematics.available(caps.robot) else None
    spec = keypoint_spec if keypoint_spec is not None else (kin.default_spec() if kin is not None else None)
    cap, cam_thread, stopped_by = None, None, "stop key"
    try:
        if camera_device is not None:
            if isinstance(camera_device, str):
                cap, is_file = open_capture(camera_device, "--camera-device")
            else:   # an opened cv2-like live capture
                cap, is_file, camera_device = camera_device, False, type(camera_device).__name__
            ok, first = cap.read()
            if not ok or first is None or first.ndim != 3:
                raise InputError("device opened but gives no frames", file=camera_device, field="--camera-device",
                                 expected="a source that delivers colour frames")
            cam_fps = cap.get(cv2.CAP_PROP_FPS)
            cam_fps = cam_fps if cam_fps and 0 < cam_fps < 1000 else 30.0
            if is_file:   # that frame only told the size: the thread reads the file from its start
                cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        extra = {"arm": arm_name or caps.robot, "rate_hz": float(rate_hz), "joint_names": list(caps.joint_names),
                 "fk": f"pybullet twin of sim.robots '{caps.robot}'" if kin is not None else None,
                 "camera_device": camera_device, "actions": "demonstrated: target_requested = next joint_pos"}
        with lib.writer(task=task, source="arm", fps=rate_hz, robot=caps.robot, tags=tags, keypoint_spec=spec,
                        extra=extra, chunk_frames=chunk_frames) as w:
            if cap is not None:
                h, wd = first.shape[:2]
                w.add_camera(CAMERA, (wd, h), codec="mp4v", model=camera_model)
            w.add_stream("state", arm_columns(list(caps.joint_names), spec if kin is not None else None))
            arm.teach(True)
            try:
                if on_start is not None:
                    on_start()
                obs = arm.get_observation()
                t0 = obs.t
                if cap is not None:
                    stamper = None if is_file else CaptureStamper(cap, cam_fps, latency_s=camera_latency_s)
                    cam_thread = _CameraThread(w, cap, stamper, arm.clock.now, t0, 1.0 / cam_fps if is_file else None)
                    cam_thread.start()
                pending = _sample(obs, t0, kin, spec)
                rows, repeated, late_max = 0, 0, 0.0
                rate = Rate(rate_hz, arm.clock)
                try:
                    while True:
                        if cam_thread is not None:
                            cam_thread.check()
                        if duration is not None and pending["t"] >= duration:
                            stopped_by = "duration"
                            break
                        if max_rows is not None and rows + 1 >= max_rows:
                            stopped_by = "row count"
                            break
                        if stop is not None and stop.is_set():
                            break
                        late_max = max(late_max, rate.wait())
                        obs = arm.get_observation()
                        if obs.t - t0 <= pending["t"]:     # the arm has no newer measurement yet
                            repeated += 1
                            continue
                        nxt = _sample(obs, t0, kin, spec)
                        _write(w, pending, nxt["joint_pos"])
                        rows += 1
                        pending = nxt
                except KeyboardInterrupt:
                    stopped_by = "Ctrl-C"
            finally:
                arm.teach(False)
            _write(w, pending, None)
            if cam_thread is not None:
                cam_thread.stop()
            return w.commit(extra={"stopped_by": stopped_by, "arm_clock_t0": t0, "late_max_s": late_max,
                                   "repeated_samples": repeated,
                                   "camera_frames": cam_thread.frames if cam_thread else 0,
                                   "camera_ended": cam_thread.ended if cam_thread else "",
                                   "camera_stamps": cam_thread.stamper.report()
                                   if cam_thread and cam_thread.stamper else None})
    finally:
        if cam_thread is not None:
            cam_thread.halt()
        if cap is not None:
            cap.release()
        if kin is not None:
            kin.close()


def _sample(obs: Any, t0: float, kin: RobotKinematics | None, spec: KeypointSpec | None) -> dict[str, Any]:
    q = np.asarray(obs.q, float)
    row: dict[str, Any] = {"t": float(obs.t - t0), "joint_pos": q, "joint_vel": np.asarray(obs.dq, float)}
    if kin is not None:
        pos, quat = kin.ee_pose(q)
        row["ee_pos"] = np.asarray(obs.ee_pos, float) if obs.ee_pos is not None else pos
        row["ee_quat"] = quat
        if spec is not None and len(spec):
            row["keypoints_3d"] = kin.keypoints(q, spec)
    else:
        row["ee_pos"] = np.asarray(obs.ee_pos, float) if obs.ee_pos is not None else np.full(3, np.nan)
        row["ee_quat"] = np.full(4, np.nan)
    return row


def _write(w: EpisodeWriter, row: dict[str, Any], next_q: np.ndarray | None) -> None:
    """Write ``row`` with its demonstrated action: the move to the next measured position."""
    q = row["joint_pos"]
    target = np.full_like(q, np.nan) if next_q is None else next_q
    values = {k: v for k, v in row.items() if k != "t"}
    w.write_row("state", row["t"], target_requested=target, action_delta=target - q, **values)
