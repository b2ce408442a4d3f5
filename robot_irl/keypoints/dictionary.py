"""``dictionary: auto``: which predefined ArUco/AprilTag dictionary a video's markers belong to.

A user with a printed tag rarely knows its family; silently assuming one (the old DICT_4X4_50
default) finds nothing and says nothing. Here every predefined dictionary is run on the first
frames; each marker of the spec takes the dictionary in which its id was seen in the most frames
(ties: the smaller dictionary — the 4x4 sets nest, so DICT_4X4_50 and DICT_4X4_1000 see the same
id), and the ids seen per dictionary are reported. A marker seen in no dictionary is an error
that lists what was seen instead.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import cv2
import numpy as np

from robot_irl.core.spec import ARUCO_DICTIONARIES, AUTO_DICTIONARY, KeypointSpec, Marker
from robot_irl.errors import InputError

SCAN_FRAMES = 15   # frames scanned; a marker must be visible in at least one of them


def scan(grays: Sequence[np.ndarray]) -> dict[str, dict[int, int]]:
    """Per dictionary, ``{id: frames it was seen in}`` over the given grey frames."""
    params = cv2.aruco.DetectorParameters()
    seen: dict[str, dict[int, int]] = {}
    for name in ARUCO_DICTIONARIES:
        det = cv2.aruco.ArucoDetector(cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, name)), params)
        counts: dict[int, int] = {}
        for g in grays:
            _, ids, _ = det.detectMarkers(g)
            for i in set(ids.ravel().tolist()) if ids is not None else ():
                counts[int(i)] = counts.get(int(i), 0) + 1
        if counts:
            seen[name] = dict(sorted(counts.items()))
    return seen


def resolve(spec: KeypointSpec, grays: Sequence[np.ndarray], source: str) -> tuple[KeypointSpec, dict]:
    """``spec`` with every ``auto`` dictionary replaced by the one found, and the report
    ``{"chosen": {keypoint: dictionary}, "seen": {dictionary: {id: frames}}, "frames": n}``."""
    auto = [k for k in spec if isinstance(k.feature, Marker) and k.feature.dictionary == AUTO_DICTIONARY]
    if not auto:
        return spec, {}
    seen = scan(grays)
    chosen: dict[str, str] = {}
    for k in auto:
        hits = [(-ids[k.feature.id], ARUCO_DICTIONARIES.index(d), d) for d, ids in seen.items() if k.feature.id in ids]
        if not hits:
            what = "; ".join(f"{d}: ids {sorted(ids)}" for d, ids in seen.items()) or "no marker of any dictionary"
            raise InputError(f"marker id {k.feature.id} of keypoint '{k.name}' is in none of the predefined "
                             f"dictionaries in the first {len(grays)} frames (seen: {what})", file=source,
                             field=f"{k.name}.feature.id",
                             expected="the id printed on the tag, visible early in the video, or a dictionary name")
        chosen[k.name] = min(hits)[2]
    new = tuple(replace(k, feature=replace(k.feature, dictionary=chosen[k.name])) if k.name in chosen else k
                for k in spec)
    return KeypointSpec(new), {"chosen": chosen, "seen": seen, "frames": len(grays)}
