"""Collectors that turn stages' outputs into :class:`Latents`: library keypoint trajectories.

Each row is one time step of one episode: keypoint positions relative to the episode's goal
keypoints (so demos of one goal region look alike wherever the goal is), with the episode's
task, goal region, episode id and the normalised time step as labels.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from robot_irl.diagnostics.latents import Latents, register_collector
from robot_irl.errors import InputError


def collect_keypoints(source: str | Path, *, query: str | None = None, extracted: bool = True) -> Latents:
    """Keypoint latents of the library at ``source``; uses the OpenCV-extracted keypoints where an
    episode has them (``extracted``), else the recorded ground truth."""
    from robot_irl.library import Library

    lib = Library.open(source)
    rows, task, region, episode, step = [], [], [], [], []
    for ep in lib.select(query):
        state = ep.arrays("state")
        if "keypoints_3d" not in state:
            continue
        kps = state["keypoints_3d"]
        if extracted and "keypoints" in ep.derived():
            d = ep.read_derived("keypoints")
            idx = np.searchsorted(d.arrays["timestamps"], state["timestamp"]).clip(0, len(d.arrays["timestamps"]) - 1)
            kps = d.arrays["keypoints"][idx]
        goal = state["goal_3d"][0] if "goal_3d" in state else kps[-1]
        x = (kps - goal[None]).reshape(len(kps), -1)
        ok = np.isfinite(x).all(axis=1)
        T = len(x)
        rows.append(x[ok])
        task += [ep.task] * int(ok.sum())
        region += [str(ep.variant.get("goal_region", "?"))] * int(ok.sum())
        episode += [ep.id] * int(ok.sum())
        step += list((np.arange(T) / max(T - 1, 1))[ok])
    if not rows:
        raise InputError("no episode with keypoints matches", file=source, field="query",
                         expected="episodes recorded with keypoints (e.g. `record --source sim`)")
    return Latents(X=np.concatenate(rows), labels={"goal_region": np.array(region), "task": np.array(task),
                                                   "episode": np.array(episode), "step": np.array(step, dtype=float)},
                   name="keypoints")


register_collector("keypoints", collect_keypoints)
