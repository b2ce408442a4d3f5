"""Replay an episode's video with its keypoints drawn over it (to a file, a window, or both).

Keypoints come from derived data ``keypoints`` (what extraction saved for this camera: its pixels
``uv`` and each value's status, drawn as saved: a filled circle where detected, a ring where a
flow bridge tracked it, a cross where cleaning interpolated it, nothing where missing) or else
from the ground-truth column ``keypoints_2d_<camera>`` that sim episodes carry. They are matched
to frames by timestamp (nearest within half a frame period), never by index.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from robot_irl.errors import InputError
from robot_irl.library.episode import Episode
from robot_irl.library.video import CODECS, open_writer

COLOURS = [(0, 0, 255), (0, 200, 0), (255, 80, 0), (0, 200, 255), (255, 0, 255), (255, 255, 0)]


def keypoints_for(ep: Episode, camera: str) -> tuple[np.ndarray, np.ndarray, list[str], str,
                                                   np.ndarray | None] | None:
    """(timestamps [T], uv [T, K, 2], names, where from, status names [T, K] or None) of the 2D
    keypoints for ``camera``, if any."""
    names = ep.keypoint_spec.names if ep.keypoint_spec is not None else []
    if "keypoints" in ep.derived():
        d = ep.read_derived("keypoints")
        uv = d.arrays.get("uv")
        if uv is not None and uv.ndim == 3 and uv.shape[-1] == 2 and d.meta.get("camera_name", camera) == camera:
            codes = d.meta.get("status_codes")
            status = d.arrays.get("status")
            labels = (np.asarray(codes, dtype=object)[status] if codes is not None and status is not None
                      else None)
            return d.arrays["timestamps"], uv, [str(n) for n in d.meta.get("names") or names or range(uv.shape[1])], \
                f"derived keypoints v{d.version} (as saved, with status)", labels
    for stream in ep.streams:
        col = f"keypoints_2d_{camera}"
        if col in ep.columns(stream):
            a = ep.arrays(stream)
            return a["timestamp"], a[col], names or [str(i) for i in range(a[col].shape[1])], \
                f"ground truth ({stream}.{col})", None
    return None


def draw_keypoint(frame: np.ndarray, uv: tuple[float, float], name: str, colour: tuple[int, int, int],
                  status: str | None) -> None:
    """One keypoint, its mark telling its status: filled dot (detected, or ground truth), ring
    (tracked by flow), cross (interpolated by cleaning); the name, with the status unless detected."""
    p = (int(round(uv[0])), int(round(uv[1])))
    if status == "tracked":
        cv2.circle(frame, p, 5, colour, 1)
    elif status == "interpolated":
        cv2.drawMarker(frame, p, colour, cv2.MARKER_TILTED_CROSS, 9, 1)
    else:
        cv2.circle(frame, p, 3, colour, -1)
    label = name if status in (None, "detected") else f"{name} ({status})"
    cv2.putText(frame, label, (p[0] + 6, p[1] - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1)


def replay(ep: Episode, camera: str, *, out: Path | None = None, show: bool = False) -> str:
    """Draw keypoints on every frame of ``camera``; write ``out`` (.mp4 or .mkv) and/or show a window.
    Returns where the keypoints came from."""
    if out is None and not show:
        raise InputError("nothing to do", field="--out", expected="--out FILE and/or --show")
    kps = keypoints_for(ep, camera)
    ts = ep.timestamps(camera)
    writer = None
    if out is not None:
        codec = {"." + c.ext: name for name, c in CODECS.items()}.get(out.suffix)
        if codec is None:
            raise InputError(f"unsupported extension {out.suffix!r}", file=out, field="--out", expected=".mp4 or .mkv")
        out.parent.mkdir(parents=True, exist_ok=True)
        writer = open_writer(out, codec, ep.fps, ep.frame_size(camera))
    half = 0.5 / ep.fps
    try:
        for i, frame in enumerate(ep.video_frames(camera, rgb=False)):
            if kps is not None:
                kt, uv, names, _, labels = kps
                j = int(np.clip(np.searchsorted(kt, ts[i]), 0, len(kt) - 1))
                if j > 0 and abs(kt[j - 1] - ts[i]) < abs(kt[j] - ts[i]):
                    j -= 1
                if abs(kt[j] - ts[i]) <= half:
                    for k, (u, v) in enumerate(uv[j]):
                        status = None if labels is None else str(labels[j, k])
                        if np.isfinite(u) and np.isfinite(v) and status != "missing":
                            draw_keypoint(frame, (u, v), str(names[k]), COLOURS[k % len(COLOURS)], status)
            cv2.putText(frame, f"{ep.id}  t={ts[i]:.2f}s", (5, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1)
            if writer is not None:
                writer.write(frame)
            if show:
                cv2.imshow(ep.id, frame)
                if cv2.waitKey(max(1, int(1000 / ep.fps))) & 0xFF in (ord("q"), 27):
                    break
    finally:
        if writer is not None:
            writer.release()
        if show:
            cv2.destroyAllWindows()
    return kps[3] if kps is not None else "no keypoints"
