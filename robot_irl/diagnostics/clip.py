"""CLIP latents of the demo library: the keyframe (and optionally task-text) embeddings that
retrieval searches, one row each, so a user sees what the search model tells apart.

Embeddings come from the retrieval stage's per-episode store (derived ``clip-<model>``); episodes
not yet embedded by this model are embedded now and stored there, exactly as ``robot-irl search``
would, so diagnosis and search always look at the same vectors.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from robot_irl.diagnostics.episodes import THUMB_PX, LabelTable, frame_thumbnails, gripper_phases
from robot_irl.diagnostics.latents import Latents, register_collector
from robot_irl.errors import InputError


def collect_clip(source: str | Path, *, query: str | None = None, model: str | None = None,
                 pretrained: str | None = None, texts: bool = False, thumbnails: bool = True) -> Latents:
    """CLIP rows of the library at ``source``: keyframes of each episode matching ``query``.

    ``model``: an open_clip architecture or ``local-dir:PATH`` (default: the newest model that
    ``robot-irl clip train`` saved in the library). ``texts`` adds one row per episode for its task
    text (label ``kind`` says which rows are texts); the continuous ``step`` label is then left out,
    a text has no time in the episode. Labels: task, episode, success, source, variant fields,
    ``phase`` (from the gripper), ``step`` (normalised keyframe time).
    """
    from robot_irl.library import Library
    from robot_irl.retrieval.index import KINDS
    from robot_irl.retrieval.library_index import CAMERA, embed_episode, library_encoder, stored_embeddings

    lib = Library.open(source)
    encoder = library_encoder(lib, model, pretrained)
    rows: list[np.ndarray] = []
    thumbs: list[np.ndarray] = []
    table = LabelTable()
    for ep in lib.select(query):
        if CAMERA not in ep.cameras:
            continue
        arrays = stored_embeddings(ep, encoder.model_id) or embed_episode(ep, encoder, CAMERA)
        kinds = np.array([KINDS[k] for k in arrays["kinds"]])
        keep = np.flatnonzero((kinds == "keyframe") | (texts & (kinds == "text")))
        if keep.size == 0:
            continue
        frames, times = arrays["frames"][keep], arrays["times"][keep]
        is_frame = frames >= 0
        ts = ep.timestamps(CAMERA)
        step = np.where(is_frame, (np.nan_to_num(times) - ts[0]) / max(ts[-1] - ts[0], 1e-9), 0.0)
        phase = gripper_phases(ep, np.nan_to_num(times))
        phase = np.full(keep.size, "unknown") if phase is None else phase
        extra = {"kind": kinds[keep], "phase": np.where(is_frame, phase, "text")}
        if not texts:
            extra["step"] = step.astype(float)
        table.add(ep, keep.size, **extra)
        rows.append(np.asarray(arrays["embeddings"][keep], dtype=np.float32))
        if thumbnails:
            t = np.zeros((keep.size, THUMB_PX, THUMB_PX, 3), dtype=np.uint8)
            t[:] = 96  # text rows: a plain grey tile
            t[is_frame] = frame_thumbnails(ep, frames[is_frame], CAMERA)
            thumbs.append(t)
    if not rows:
        raise InputError(f"no episode with camera {CAMERA} matches {query!r}" if query else f"no episode has camera {CAMERA}",
                         file=lib.path, field="query", expected="recorded episodes with video")
    return Latents(X=np.concatenate(rows), labels=table.arrays(),
                   thumbnails=np.concatenate(thumbs) if thumbnails else None, name="clip")


register_collector("clip", collect_clip)
