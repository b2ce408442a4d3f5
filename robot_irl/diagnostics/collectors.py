"""Keypoint-trajectory latents of the demo library: one row per time step of each episode.

Row features: the keypoints at that step *and* where the episode's keypoints end up, both in the
robot base frame (metres), flattened: ``[x_t (K*3), x_end (K*3)]``.

Why this and not goal-relative keypoints: a map of goal-relative positions folds every demo onto
the origin at its end, so demos of different goals (task variants) become indistinguishable exactly
where they differ, and a user looking for "did the left and right demos come out different?" sees
one blob. Base-frame positions alone do not separate variants either while demos still share their
start. Adding the end position (the outcome of the demo, the last observed value of each keypoint)
gives every row its episode's destination: variants separate at every step, a demo that ended
somewhere unusual (a failed grasp, a bad keypoint track) stands out as its own strand, and within a
strand the time steps stay ordered by position. The end is the observed one, not the recorded goal,
so the same definition holds for camera demos (no goal recorded) and shows failures as they were.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from robot_irl.diagnostics.episodes import CAMERA, LabelTable, frame_thumbnails, gripper_phases, nearest_index
from robot_irl.diagnostics.latents import Latents, register_collector
from robot_irl.errors import InputError

if TYPE_CHECKING:
    from robot_irl.library import Episode


def episode_keypoints(ep: "Episode", *, extracted: bool = True) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]] | None:
    """``(timestamps [T], keypoints [T, K, 3] base frame, names)`` of an episode, or None.

    Keypoints extracted from video (derived ``keypoints``) are preferred when ``extracted``: they
    are what training sees for camera demos; the sim's recorded ground truth is used otherwise.
    """
    if extracted and "keypoints" in ep.derived():
        d = ep.read_derived("keypoints")
        names = tuple(d.meta.get("names") or (ep.keypoint_spec.names if ep.keypoint_spec else ()))
        kp = np.asarray(d.arrays["keypoints"], dtype=float)
        if kp.ndim == 3 and kp.shape[2] == 3:
            return np.asarray(d.arrays["timestamps"], dtype=float), kp, names
    if "state" in ep.streams and "keypoints_3d" in (cols := ep.columns("state")):
        st = ep.arrays("state")
        return st["timestamp"], np.asarray(st["keypoints_3d"], dtype=float), tuple(cols["keypoints_3d"].names or ())
    return None


def last_observed(kp: np.ndarray) -> np.ndarray:
    """``[K, 3]``: each keypoint's last finite position (NaN if never seen)."""
    end = np.full(kp.shape[1:], np.nan)
    for k in range(kp.shape[1]):
        seen = np.flatnonzero(np.isfinite(kp[:, k]).all(axis=1))
        if seen.size:
            end[k] = kp[seen[-1], k]
    return end


def collect_keypoints(source: str | Path, *, query: str | None = None, extracted: bool = True, every: int = 1,
                      thumbnails: bool = True, camera: str = CAMERA) -> Latents:
    """Keypoint latents of the library at ``source`` (episodes matching ``query``).

    Labels: task, episode, success, source, variant fields, ``phase`` (from the gripper, sim
    episodes) and ``step`` (time normalised to [0, 1] within the episode). Rows where a keypoint
    is missing are left out (t-SNE needs finite coordinates); every ``every``-th row is kept.
    Episodes left out whole (no keypoints, a keypoint never seen) are named in ``skipped``.
    """
    from robot_irl.library import Library

    if every < 1:
        raise InputError(f"every is {every}", field="every", expected="a positive integer")
    lib = Library.open(source)
    rows: list[np.ndarray] = []
    thumbs: list[np.ndarray] = []
    table = LabelTable()
    names: tuple[str, ...] | None = None
    first_id = ""
    skipped: dict[str, str] = {}
    for ep in lib.select(query):
        got = episode_keypoints(ep, extracted=extracted)
        if got is None:
            skipped[ep.id] = "no keypoints (neither recorded nor extracted)"
            continue
        ts, kp, ep_names = got
        if names is None:
            names, first_id = ep_names, ep.id
        elif ep_names != names:
            raise InputError(f"episode {ep.id} has keypoints {list(ep_names)} but {first_id} has {list(names)}",
                             file=lib.path, field="query",
                             expected="a query selecting episodes with the same keypoints (e.g. task:place)")
        x = np.concatenate([kp.reshape(len(kp), -1), np.broadcast_to(last_observed(kp).reshape(1, -1), (len(kp), kp[0].size))],
                           axis=1)
        keep = np.flatnonzero(np.isfinite(x).all(axis=1))[::every]
        if keep.size == 0:
            never = [n for i, n in enumerate(ep_names or range(kp.shape[1]))
                     if not np.isfinite(kp[:, i]).all(axis=1).any()]
            skipped[ep.id] = (f"keypoint{'s' if len(never) > 1 else ''} {', '.join(map(str, never))} never seen"
                              if never else "no time step with every keypoint seen")
            continue
        step = (ts[keep] - ts[0]) / max(ts[-1] - ts[0], 1e-9)
        phase = gripper_phases(ep, ts[keep])
        table.add(ep, keep.size, step=step.astype(float),
                  phase=phase if phase is not None else np.full(keep.size, "unknown"))
        rows.append(x[keep])
        if thumbnails and camera in ep.cameras:
            thumbs.append(frame_thumbnails(ep, nearest_index(ep.timestamps(camera), ts[keep]), camera))
        elif thumbnails:
            thumbnails = False  # one episode without video: no sprite at all rather than a misleading one
    if not rows:
        why = "; ".join(f"{k}: {v}" for k, v in list(skipped.items())[:5])
        raise InputError((f"no episode with keypoints matches {query!r}" if query else "no episode has keypoints")
                         + (f" ({why})" if why else ""), file=lib.path, field="query",
                         expected="episodes with recorded (record --source sim) or extracted (robot-irl extract) keypoints")
    return Latents(X=np.concatenate(rows), labels=table.arrays(),
                   thumbnails=np.concatenate(thumbs) if thumbnails else None, name="keypoints", skipped=skipped)


register_collector("keypoints", collect_keypoints)
