"""Keypoint frames: where each keypoint sits on the robot (link name + offset in that link's frame).

The kinematic dynamics model reads these instead of any hard-coded robot, so the same learner runs
on every URDF. They can come from the project's :class:`~robot_irl.core.spec.KeypointSpec`, from a
JSON file, or from a compact command-line string ``name@link:x,y,z;name@link:x,y,z``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robot_irl.core.spec import ROBOT_BODY, KeypointSpec
from robot_irl.errors import InputError


@dataclass(frozen=True)
class KeypointFrame:
    """One keypoint rigidly attached to ``link``; ``offset`` in metres, in the link frame."""

    name: str
    link: str
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "link": self.link, "offset": list(self.offset)}


def frames_from_spec(spec: KeypointSpec) -> list[KeypointFrame]:
    """The robot's keypoints of a spec (object keypoints are not driven by the arm's kinematics)."""
    frames = [KeypointFrame(k.name, k.link, tuple(float(v) for v in k.offset)) for k in spec.on_body(ROBOT_BODY)]
    if not frames:
        raise InputError("the keypoint spec has no keypoint on the robot", field="keypoints",
                         expected=f"at least one keypoint with body '{ROBOT_BODY}'")
    return frames


def frames_from_dicts(items: Any, *, file: str | None = None) -> list[KeypointFrame]:
    """Parse ``[{"name", "link", "offset"}]`` (or a KeypointSpec dict with a ``keypoints`` list)."""
    if isinstance(items, dict) and "keypoints" in items:
        if all(isinstance(k, dict) and "body" in k for k in items["keypoints"]):
            return frames_from_spec(KeypointSpec.from_dict(items, file=file))
        items = items["keypoints"]
    if not isinstance(items, list) or not items:
        raise InputError("keypoint frames must be a non-empty list", file=file, field="keypoint_frames",
                         expected='[{"name": ..., "link": ..., "offset": [x, y, z]}]')
    out = []
    for i, it in enumerate(items):
        where = f"keypoint_frames[{i}]"
        if not isinstance(it, dict) or not isinstance(it.get("link"), str) or not it.get("link"):
            raise InputError("missing link name", file=file, field=f"{where}.link", expected="a URDF link name")
        off = it.get("offset", [0.0, 0.0, 0.0])
        if not (isinstance(off, (list, tuple)) and len(off) == 3):
            raise InputError("bad offset", file=file, field=f"{where}.offset", expected="3 numbers (metres)")
        out.append(KeypointFrame(str(it.get("name", f"kp{i}")), it["link"], tuple(float(v) for v in off)))
    names = [f.name for f in out]
    if len(set(names)) != len(names):
        raise InputError("duplicate keypoint names", file=file, field="keypoint_frames", expected="unique names")
    return out


def parse_keypoint_frames(text: str) -> list[KeypointFrame]:
    """CLI form: a JSON file path, or ``name@link:x,y,z;name@link:x,y,z`` (offset optional)."""
    p = Path(text)
    if text.endswith(".json") or p.is_file():
        if not p.is_file():
            raise InputError("file not found", file=p, field="keypoint_frames", expected="a JSON file")
        try:
            data = json.loads(p.read_text())
        except json.JSONDecodeError as e:
            raise InputError(f"invalid JSON ({e.msg} at line {e.lineno})", file=p) from None
        return frames_from_dicts(data, file=str(p))
    items = []
    for i, part in enumerate(s for s in text.split(";") if s.strip()):
        name, _, rest = part.strip().rpartition("@")
        link, _, off = rest.partition(":")
        try:
            offset = [float(v) for v in off.split(",")] if off else [0.0, 0.0, 0.0]
        except ValueError:
            offset = []
        if not link or len(offset) != 3:
            raise InputError(f"cannot parse '{part}'", field="--keypoint-frames",
                             expected="name@link:x,y,z;name@link:x,y,z or a JSON file")
        items.append({"name": name or f"kp{i}", "link": link, "offset": offset})
    return frames_from_dicts(items)
