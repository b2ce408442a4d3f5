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
# A marker lying still in the scene: with a camera that has no robot pose, 3D comes out in its frame.
WORLD_BODY = "world"

# HSV-friendly named colours for blob keypoints and objects (RGB 0..1).
COLORS: dict[str, tuple[float, float, float]] = {
    "red": (0.9, 0.1, 0.1),
    "green": (0.1, 0.8, 0.1),
    "blue": (0.1, 0.2, 0.9),
    "yellow": (0.95, 0.85, 0.1),
    "magenta": (0.9, 0.1, 0.9),
    "cyan": (0.1, 0.85, 0.9),
}


# Predefined dictionaries of cv2.aruco (names as OpenCV spells them); ``auto`` scans them all.
ARUCO_DICTIONARIES = (
    "DICT_4X4_50", "DICT_4X4_100", "DICT_4X4_250", "DICT_4X4_1000", "DICT_5X5_50", "DICT_5X5_100", "DICT_5X5_250",
    "DICT_5X5_1000", "DICT_6X6_50", "DICT_6X6_100", "DICT_6X6_250", "DICT_6X6_1000", "DICT_7X7_50", "DICT_7X7_100",
    "DICT_7X7_250", "DICT_7X7_1000", "DICT_ARUCO_ORIGINAL", "DICT_APRILTAG_16h5", "DICT_APRILTAG_25h9",
    "DICT_APRILTAG_36h10", "DICT_APRILTAG_36h11", "DICT_ARUCO_MIP_36h12")
AUTO_DICTIONARY = "auto"
MARKER_POINTS = ("centre", "corner0", "corner1", "corner2", "corner3")


@dataclass(frozen=True)
class Marker:
    """A square ArUco/AprilTag marker: dictionary name (``cv2.aruco`` constant without prefix, or
    ``auto``: found by scanning the first frames), id, the side length of its black square in
    metres (None: unknown, pixels only) and which of its points is the keypoint: the centre or
    one of the four corners in OpenCV's order (``corner0`` top-left of the upright marker, then
    clockwise). Several keypoints may sit on one marker, each on another point."""

    id: int
    size: float | None = 0.04
    dictionary: str = "DICT_4X4_50"
    kind: str = "marker"
    point: str = "centre"

    @property
    def corner(self) -> int | None:
        """Corner index 0..3 of the keypoint, None for the centre."""
        return None if self.point == "centre" else int(self.point[-1])


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
        _validate(self.keypoints, None)

    def marker_groups(self) -> dict[str, list[KeypointDef]]:
        """Keypoints per physical marker, keyed by the first keypoint on it (the one detectors,
        flow and pose work with; the others take their point of its corners)."""
        groups: dict[tuple[str, int], list[KeypointDef]] = {}
        for k in self.keypoints:
            if isinstance(k.feature, Marker):
                groups.setdefault((k.feature.dictionary, k.feature.id), []).append(k)
        return {g[0].name: g for g in groups.values()}

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
            if not isinstance(kp.get("name"), str) or not kp.get("name"):
                raise InputError("missing or empty 'name'", file=file, field=f"{where}.name",
                                 expected="non-empty string")
            feat = kp.get("feature")
            feature: Feature | None
            if feat is None:
                feature = None
            elif isinstance(feat, dict) and feat.get("kind") == "marker":
                feature = _marker(feat, file, f"{where}.feature")
            elif isinstance(feat, dict) and feat.get("kind") == "blob":
                _known_keys(feat, ("kind", "color", "radius"), file, f"{where}.feature")
                if feat.get("color") not in COLORS:
                    raise InputError(f"unknown colour {feat.get('color')!r}", file=file, field=f"{where}.feature.color",
                                     expected="one of: " + ", ".join(COLORS))
                feature = Blob(color=str(feat["color"]), radius=_positive(feat.get("radius", 0.012), file,
                                                                           f"{where}.feature.radius"))
            else:
                raise InputError("unknown feature", file=file, field=f"{where}.feature",
                                 expected="null or an object with kind 'marker' or 'blob'")
            # a free object needs no body/link: a marker's points are one rigid body of their own
            default_body = f"marker{feature.id}" if isinstance(feature, Marker) else kp["name"]
            for key, default in (("body", default_body), ("link", "base")):
                kp = {**kp, key: kp.get(key, default)}
                if not isinstance(kp[key], str) or not kp[key]:
                    raise InputError(f"empty or non-text '{key}'", file=file, field=f"{where}.{key}",
                                     expected="non-empty string (or leave it out for a free object)")

            def vec3(key: str, default: tuple[float, float, float]) -> tuple[float, float, float]:
                v = kp.get(key, default)
                if not (isinstance(v, (list, tuple)) and len(v) == 3
                        and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)):
                    raise InputError(f"bad '{key}'", file=file, field=f"{where}.{key}",
                                     expected="3 numbers (metres)")
                return (float(v[0]), float(v[1]), float(v[2]))

            out.append(KeypointDef(name=kp["name"], body=kp["body"], link=kp["link"],
                                   offset=vec3("offset", (0.0, 0.0, 0.0)), feature=feature,
                                   normal=vec3("normal", (0.0, 0.0, 1.0)), up=vec3("up", (1.0, 0.0, 0.0))))
        _validate(out, file)
        return cls(tuple(out))


def _positive(v: Any, file: str | None, field: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
        raise InputError(f"{v!r} is not a positive number", file=file, field=field, expected="a positive number (m)")
    return float(v)


def _marker(feat: dict[str, Any], file: str | None, where: str) -> Marker:
    """A marker feature from JSON: ``id`` and ``dictionary`` required (``auto`` to scan), ``size``
    only needed for 3D, ``point`` the centre (default) or a corner."""
    _known_keys(feat, ("kind", "id", "size", "dictionary", "point"), file, where)
    mid = feat.get("id")
    if isinstance(mid, bool) or not isinstance(mid, int) or mid < 0:
        raise InputError(f"marker id {mid!r}", file=file, field=f"{where}.id", expected="an integer >= 0")
    if "dictionary" not in feat:
        raise InputError("marker without a dictionary", file=file, field=f"{where}.dictionary",
                         expected="'auto' (scan the first frames) or one of: " + ", ".join(ARUCO_DICTIONARIES))
    d = feat["dictionary"]
    if d != AUTO_DICTIONARY and d not in ARUCO_DICTIONARIES:
        raise InputError(f"unknown dictionary {d!r}", file=file, field=f"{where}.dictionary",
                         expected="'auto' or one of: " + ", ".join(ARUCO_DICTIONARIES))
    point = feat.get("point", "centre")
    if point not in MARKER_POINTS:
        raise InputError(f"unknown marker point {point!r}", file=file, field=f"{where}.point",
                         expected="one of: " + ", ".join(MARKER_POINTS))
    size = None if feat.get("size") is None else _positive(feat["size"], file, f"{where}.size")
    return Marker(id=mid, size=size, dictionary=d, point=point)


def _validate(keypoints: "tuple[KeypointDef, ...] | list[KeypointDef]", file: str | None) -> None:
    """Unique names; one keypoint per marker point; the points of one marker on one rigid body."""
    names = [k.name for k in keypoints]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise InputError(f"duplicate keypoint names {sorted(dupes)}", file=file, field="keypoints",
                         expected="unique names")
    first: dict[tuple[str, int], KeypointDef] = {}
    points: set[tuple[str, int, str]] = set()
    for k in keypoints:
        if not isinstance(k.feature, Marker):
            continue
        f = k.feature
        key = (f.dictionary, f.id, f.point)
        if key in points:
            raise InputError(f"two keypoints on the {f.point} of marker {f.id} ({f.dictionary})", file=file,
                             field=f"{k.name}.feature.point",
                             expected="one keypoint per marker point: " + ", ".join(MARKER_POINTS))
        points.add(key)
        other = first.setdefault((f.dictionary, f.id), k)
        for attr in ("body", "link", "offset", "normal", "up"):
            if getattr(other, attr) != getattr(k, attr) or other.feature.size != f.size:
                what = attr if getattr(other, attr) != getattr(k, attr) else "feature.size"
                raise InputError(f"keypoints '{other.name}' and '{k.name}' sit on one marker ({f.id}) but "
                                 f"differ in {what}", file=file, field=f"{k.name}.{what}",
                                 expected="the same body, link, offset, normal, up and size for every "
                                          "point of one marker")
