"""The keypoint spec: one declarative list of keypoints per scene or robot.

For every keypoint it names the body and link it sits on, an offset in that link's frame, and the
visual feature that marks it in video (an ArUco marker or a coloured blob). The simulator's ground
truth, the OpenCV extraction and the learner's kinematic model all read this one spec, so a
keypoint called ``ee`` means the same point in all three.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from robot_irl.errors import InputError, UnknownNameError

ROBOT_BODY = "robot"

# HSV-friendly named colours for blob keypoints and objects (RGB 0..1).
COLORS: dict[str, tuple[float, float, float]] = {
    "red": (0.9, 0.1, 0.1),
    "green": (0.1, 0.8, 0.1),
    "blue": (0.1, 0.2, 0.9),
    "yellow": (0.95, 0.85, 0.1),
    "magenta": (0.9, 0.1, 0.9),
    "cyan": (0.1, 0.85, 0.9),
}


@dataclass(frozen=True)
class Marker:
    """A square ArUco marker: dictionary name (``cv2.aruco`` constant without prefix), id and the
    side length of its black square in metres. The keypoint is the marker's centre."""

    id: int
    size: float = 0.04
    dictionary: str = "DICT_4X4_50"
    kind: str = "marker"


@dataclass(frozen=True)
class Blob:
    """A coloured sphere; the keypoint is its centre. ``radius`` in metres."""

    color: str
    radius: float = 0.012
    kind: str = "blob"

    @property
    def rgb(self) -> tuple[float, float, float]:
        if self.color not in COLORS:
            raise UnknownNameError("blob colour", self.color, COLORS)
        return COLORS[self.color]


Feature = Marker | Blob


@dataclass(frozen=True)
class KeypointDef:
    """One keypoint: ``body`` is ``"robot"`` or an object name; ``link`` a link name of that body
    (``"base"`` for an object's base); ``offset`` metres in the link frame; ``normal`` the
    direction (link frame) a marker faces; ``feature`` how it shows in video, or None."""

    name: str
    body: str
    link: str
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    feature: Feature | None = None
    normal: tuple[float, float, float] = (0.0, 0.0, 1.0)
    up: tuple[float, float, float] = (1.0, 0.0, 0.0)


KEYPOINT_KEYS = ("name", "body", "link", "offset", "feature", "normal", "up")


def _known_keys(data: dict[str, Any], valid: tuple[str, ...], file: str | None, where: str) -> None:
    """A misspelt key (``ofset``) would otherwise silently fall back to its default: refuse it."""
    for key in data:
        if key not in valid:
            raise InputError(f"unknown key {key!r}", file=file, field=f"{where}.{key}",
                             expected="one of: " + ", ".join(valid))


@dataclass(frozen=True)
class KeypointSpec:
    """An ordered set of keypoints. Arrays of keypoints ``[T, K, D]`` follow this order."""

    keypoints: tuple[KeypointDef, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        names = [k.name for k in self.keypoints]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise InputError(f"duplicate keypoint names {sorted(dupes)}", field="keypoints",
                             expected="unique names")
        ids = [(k.feature.dictionary, k.feature.id) for k in self.keypoints if isinstance(k.feature, Marker)]
        if len(ids) != len(set(ids)):
            raise InputError("two keypoints share one marker id", field="keypoints.feature.id",
                             expected="one marker id per keypoint")

    @property
    def names(self) -> list[str]:
        return [k.name for k in self.keypoints]

    def __len__(self) -> int:
        return len(self.keypoints)

    def __iter__(self):
        return iter(self.keypoints)

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise UnknownNameError("keypoint", name, self.names) from None

    def get(self, name: str) -> KeypointDef:
        return self.keypoints[self.index(name)]

    def select(self, names: list[str]) -> "KeypointSpec":
        return KeypointSpec(tuple(self.get(n) for n in names))

    def on_body(self, body: str) -> "KeypointSpec":
        return KeypointSpec(tuple(k for k in self.keypoints if k.body == body))

    # --- serialisation (stored in episode meta and run configs) ---
    def to_dict(self) -> dict[str, Any]:
        return {"keypoints": [asdict(k) for k in self.keypoints]}

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, file: str | None = None) -> "KeypointSpec":
        if not isinstance(data, dict) or not isinstance(data.get("keypoints"), list):
            raise InputError("keypoint spec must be an object with a 'keypoints' list", file=file,
                             field="keypoints", expected="list of keypoint objects")
        out = []
        for i, kp in enumerate(data["keypoints"]):
            where = f"keypoints[{i}]"
            if not isinstance(kp, dict):
                raise InputError("not an object", file=file, field=where, expected="object")
            _known_keys(kp, KEYPOINT_KEYS, file, where)
            for req in ("name", "body", "link"):
                if not isinstance(kp.get(req), str) or not kp.get(req):
                    raise InputError(f"missing or empty '{req}'", file=file, field=f"{where}.{req}",
                                     expected="non-empty string")
            feat = kp.get("feature")
            feature: Feature | None
            if feat is None:
                feature = None
            elif isinstance(feat, dict) and feat.get("kind") == "marker":
                _known_keys(feat, ("kind", "id", "size", "dictionary"), file, f"{where}.feature")
                feature = Marker(id=int(feat["id"]), size=float(feat.get("size", 0.04)),
                                 dictionary=str(feat.get("dictionary", "DICT_4X4_50")))
            elif isinstance(feat, dict) and feat.get("kind") == "blob":
                _known_keys(feat, ("kind", "color", "radius"), file, f"{where}.feature")
                feature = Blob(color=str(feat["color"]), radius=float(feat.get("radius", 0.012)))
            else:
                raise InputError("unknown feature", file=file, field=f"{where}.feature",
                                 expected="null or an object with kind 'marker' or 'blob'")

            def vec3(key: str, default: tuple[float, float, float]) -> tuple[float, float, float]:
                v = kp.get(key, default)
                if not (isinstance(v, (list, tuple)) and len(v) == 3):
                    raise InputError(f"bad '{key}'", file=file, field=f"{where}.{key}",
                                     expected="3 numbers (metres)")
                return (float(v[0]), float(v[1]), float(v[2]))

            out.append(KeypointDef(name=kp["name"], body=kp["body"], link=kp["link"],
                                   offset=vec3("offset", (0.0, 0.0, 0.0)), feature=feature,
                                   normal=vec3("normal", (0.0, 0.0, 1.0)), up=vec3("up", (1.0, 0.0, 0.0))))
        return cls(tuple(out))
