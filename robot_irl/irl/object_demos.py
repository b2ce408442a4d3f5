"""Person demos as the learner sees them: the object's keypoints, in the robot base frame, cut to
the carry and aligned by progress.

Per episode (``tag:person`` demos; any demo whose extracted 3D is in a reference marker's world
frame works): the derived ``keypoints`` (``robot-irl extract``) of the chosen object keypoints,
moved into the base frame with the cell's world-to-base registration ``T_base_world`` (stored in
the arm's calibration, ``robot-irl world``). The carry is cut out: it starts where the object
has been lifted (the hand has grasped and lifted it; the robot's scripted top-down grasp and
lift take it there) and ends where it has settled at its final place (the
hand let go). The carry is then resampled at equal steps of *path length* (progress), not time:
a person's pauses, hesitations and uneven speed vanish, and demos of different durations line up
row by row. The object's lift height (carry start above its rest height) is kept for the robot's
grasp.

Every refusal names what is missing and the command that provides it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robot_irl.core.frames import transform
from robot_irl.core.spec import WORLD_BODY, KeypointSpec, Marker
from robot_irl.errors import InputError
from robot_irl.irl.demos import DemoSet

#: a demo whose object never gets this far (m, horizontally) from where it rested carries nothing
MOVED_M = 0.01
#: the carry starts once the object has risen this fraction of its highest lift
LIFTED_FRAC = 0.9
#: ... and as settled once it stays within this distance (m) of where it ended
SETTLED_M = 0.004
FINE_ROWS = 50
TRUTH_COLUMN = "object_world_truth"   # the sim's truth beside a rendered person demo (robot_irl.record.person)


@dataclass
class ObjectDemos:
    """Progress-aligned carries, base frame. ``demos.keypoints [N, rows, K, 3]``; ``rest [N, K, 3]``
    where each object rested before it was picked up; ``lift_m`` the median carry start height
    above the rest; ``spec`` the object keypoints modelled (object frame offsets)."""

    demos: DemoSet
    spec: KeypointSpec
    rest: np.ndarray
    lift_m: float
    segments: list[tuple[float, float]] = field(default_factory=list)
    frame: str = "robot base (world frame registered to the base)"
    fine: np.ndarray | None = None        # [N, FINE_ROWS, K, 3] the same carries at a finer progress step (scoring)
    keypoints_source: str = "extracted"
    cell_spec: KeypointSpec | None = None  # the demos' whole spec (reference marker + object): what a run's camera looks for

    @property
    def rest_height(self) -> float:
        """Where the demos' objects came to rest (centre keypoint height, base frame, median): the
        height a run-time goal given on the table is put at, seen through the same extraction."""
        return float(np.median(self.demos.keypoints[:, -1, 0, 2]))

    def info(self) -> dict[str, Any]:
        return {"names": self.demos.names, "keypoints": self.spec.names, "lift_m": self.lift_m,
                "rest_height_m": self.rest_height, "segments_s": self.segments, "frame": self.frame,
                "alignment": "progress (path length)", "keypoints_source": self.keypoints_source}


def _object_body(spec: KeypointSpec, where: str) -> tuple[str, tuple[str, int] | None]:
    bodies = sorted({k.body for k in spec if k.body not in (WORLD_BODY, "robot")})
    if not bodies:
        raise InputError("the keypoint spec has no object keypoint", file=where, field="keypoint_spec",
                         expected="keypoints on the object (set with `robot-irl demos spec ID --set SPEC.json`)")
    if len(bodies) > 1:
        raise InputError(f"the spec has several objects {bodies}", file=where, field="keypoint_spec",
                         expected="one object per person demo")
    marks = [(k.feature.dictionary, k.feature.id) for k in spec if k.body == bodies[0] and isinstance(k.feature, Marker)]
    return bodies[0], (marks[0] if marks else None)


def world_track(ep: Any, names: list[str], where: str) -> tuple[np.ndarray, np.ndarray]:
    """(timestamps [T], keypoints [T, K, 3] in the episode's world frame) of ``names``; refuses a
    demo without extracted keypoints, without the reference marker, or without the object."""
    if "keypoints" not in ep.derived():
        raise InputError(f"episode {ep.id} has no extracted keypoints", file=where, field="derived.keypoints",
                         expected=f"run `robot-irl extract {ep.id}` first")
    d = ep.read_derived("keypoints")
    frame = str(d.meta.get("xyz_frame", ""))
    stored = list(d.meta.get("names", []))
    if not frame.startswith("world"):
        raise InputError(f"episode {ep.id}: its keypoints are in the '{frame}' frame, not a reference marker's "
                         "world frame (the spec has no marker on body 'world')", file=where, field="xyz_frame",
                         expected="a marker on body 'world' in the spec (`robot-irl demos spec ID --set SPEC.json`), "
                                  f"then `robot-irl extract {ep.id}`")
    frames = int(d.meta.get("frames", len(d.arrays["timestamps"])))
    if int(d.meta.get("world_frames_missing", 0)) + int(d.meta.get("world_frames_rejected", 0)) >= frames:
        raise InputError(f"episode {ep.id}: the reference marker (body 'world') was not seen in any of its {frames} "
                         "frames, so none of its 3D is in the world frame", file=where, field="world marker",
                         expected="the reference marker in view while recording (`robot-irl record --source camera "
                                  "--person --keypoint-spec SPEC.json` with the marker on the table)")
    missing = [n for n in names if n not in stored]
    if missing:
        raise InputError(f"episode {ep.id}: keypoints {missing} were not extracted (extracted: {stored})", file=where,
                         field="keypoints", expected=f"re-run `robot-irl extract {ep.id}` with the current spec")
    # The extraction's own 3D, before cleaning: cleaning judges samples by their pixels, and the
    # object's pose-derived points at a person's quick moves were dropped in 40 % of the carry's
    # frames (dev seed 3), where the raw 3D agreed with the truth within 1 cm. The carry is
    # smoothed along its path here instead (``_smooth``, ``progress_resample``).
    arr = d.arrays["raw_keypoints"] if "raw_keypoints" in d.arrays else d.arrays["keypoints"]
    x = np.asarray(arr, float)[:, [stored.index(n) for n in names]]
    never = [n for k, n in enumerate(names) if not np.isfinite(x[:, k]).all(-1).any()]
    if never:
        raise InputError(f"episode {ep.id}: the object (keypoints {never}) was never seen in the world frame",
                         file=where, field="object keypoints",
                         expected="the object's marker in view with the reference marker (re-record with "
                                  "`robot-irl record --source camera --person`), or a spec naming its marker "
                                  f"(`robot-irl demos spec {ep.id} --set SPEC.json`, then `robot-irl extract {ep.id}`)")
    return np.asarray(d.arrays["timestamps"], float), x


def _fill(t: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Missing samples linearly filled from their neighbours (ends held), per coordinate."""
    out = x.copy()
    flat = out.reshape(len(t), -1)
    for c in range(flat.shape[1]):
        ok = np.isfinite(flat[:, c])
        flat[:, c] = np.interp(t, t[ok], flat[ok, c])
    return out


def _smooth(x: np.ndarray, n: int = 5) -> np.ndarray:
    k = np.ones(n) / n
    pad = np.concatenate([np.repeat(x[:1], n // 2, 0), x, np.repeat(x[-1:], n // 2, 0)])
    return np.stack([np.convolve(pad[:, d], k, mode="valid") for d in range(x.shape[1])], 1)


def carry_segment(t: np.ndarray, x: np.ndarray, centre: int = 0) -> tuple[int, int]:
    """Indices (first, last) of the carry: from the first frame where the object's ``centre``
    keypoint has risen LIFTED_FRAC of its highest lift (the hand has grasped and lifted it: the
    robot's scripted grasp and lift take it there), to the first frame after which it stays within
    SETTLED_M of where it ended. Why height, not the first sideways motion: the height of a lift
    (~10 cm) stands far above extraction noise, while sideways drift during the lift is of the
    noise's size (a sideways threshold cut extracted demos 3 cm lower than the true ones)."""
    c = _smooth(x[:, centre])
    rest, end = np.median(c[:3], 0), np.median(c[-3:], 0)
    side = np.linalg.norm(c[:, :2] - rest[:2], axis=1)
    if not (side > MOVED_M).any():
        raise InputError("the object never moves", field="keypoints", expected=f"a demo that carries the object "
                         f"more than {MOVED_M * 100:g} cm")
    rise = c[:, 2] - rest[2]
    i0 = int(np.flatnonzero(rise >= LIFTED_FRAC * rise.max())[0])
    away = np.flatnonzero(np.linalg.norm(c - end, axis=1) > SETTLED_M)
    i1 = min(int(away[-1]) + 1, len(t) - 1) if len(away) else len(t) - 1
    if i1 - i0 < 2:
        raise InputError("the carry is shorter than 3 frames", field="keypoints", expected="a slower demo or a higher fps")
    return i0, i1


def progress_resample(x: np.ndarray, rows: int, centre: int = 0) -> np.ndarray:
    """``x [T, K, 3]`` at ``rows`` equal steps of the ``centre`` keypoint's (smoothed) path length."""
    c = _smooth(x[:, centre])
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(c, axis=0), axis=1))])
    s = s / max(s[-1], 1e-12)
    s = np.maximum.accumulate(s + np.arange(len(s)) * 1e-9)
    q = np.linspace(0.0, 1.0, rows)
    flat = x.reshape(len(x), -1)
    return np.stack([np.interp(q, s, flat[:, j]) for j in range(flat.shape[1])], 1).reshape(rows, *x.shape[1:])


def truth_track(ep: Any, names: list[str], all_names: list[str], where: str) -> tuple[np.ndarray, np.ndarray]:
    """The simulator's true object keypoints (world frame), stored in the object's spec order."""
    a = ep.arrays("state") if "state" in ep.streams else {}
    if TRUTH_COLUMN not in a:
        raise InputError(f"episode {ep.id} has no '{TRUTH_COLUMN}' column", file=where, field="keypoints",
                         expected="a simulated person demo (robot-irl record --source sim --env person), or extracted keypoints")
    return np.asarray(a["timestamp"], float), np.asarray(a[TRUTH_COLUMN], float)[:, [all_names.index(n) for n in names]]


def is_person_demo(ep: Any) -> bool:
    """A person's demo (``robot-irl record --person`` / ``--env person``): its demonstrator says so."""
    return (ep.meta.get("extra") or {}).get("demonstrator") == "person"


def person_selection(lib: Any, query: str) -> bool:
    """Whether ``query`` selects person demos (True) or robot demos (False); a mix is refused,
    since the two are learned differently (object keypoints after a grasp vs. the robot's own)."""
    episodes = lib.select(query)
    person = [is_person_demo(e) for e in episodes]
    if any(person) and not all(person):
        ids = [e.id for e, p in zip(episodes, person) if p][:3]
        raise InputError(f"the query '{query}' mixes person demos ({ids}...) with robot demos", file=lib.path,
                         field="--demos", expected="only person demos (add `tag:person`) or only robot demos "
                                                   "(add `-tag:person`)")
    return bool(episodes) and all(person)


def object_demos_from_library(lib: Any, query: str, T_base_world: np.ndarray | None, *, rows: int = 10,
                              names: list[str] | None = None, keypoints: str = "extracted") -> ObjectDemos:
    """Person demos selected by ``query`` → :class:`ObjectDemos` (see module docstring).

    ``names``: the object keypoints to model (default: those without a feature of their own, then
    the first marker's point; three off one line fix the object's whole pose). ``T_base_world``: the cell's registration; None is
    refused with the command that measures it."""
    episodes = lib.select(query)
    where = f"library {lib.path}, query '{query}'"
    if not episodes:
        raise InputError(f"the query '{query}' selects no episode", file=lib.path, field="--demos",
                         expected="person demos (`robot-irl demos list tag:person`)")
    if T_base_world is None:
        raise InputError("no world-to-base registration: the demos are in the reference marker's world frame and "
                         "the robot needs that frame in its base frame", field="calibration.world",
                         expected="`robot-irl world touch --calibration ARM.json` (touch the marker's corners in "
                                  "teach mode) or `robot-irl world set --calibration ARM.json --pose X,Y,Z,YAW_DEG`")
    T = np.asarray(T_base_world, float)
    if T.shape != (4, 4) or not np.all(np.isfinite(T)):
        raise InputError(f"T_base_world has shape {T.shape}", field="calibration.world.T_base_world",
                         expected="a finite 4x4 transform")
    first = episodes[0]
    spec = first.keypoint_spec
    if spec is None:
        raise InputError(f"episode {first.id} has no keypoint spec", file=where, field="keypoint_spec",
                         expected=f"`robot-irl demos spec {first.id} --set SPEC.json`")
    body, mark = _object_body(spec, first.id)
    for ep in episodes[1:]:
        other = ep.keypoint_spec
        ob, om = _object_body(other, ep.id) if other is not None else (None, None)
        if other is None or ob != body or om != mark:
            raise InputError(f"demos of different objects: episode {first.id} shows '{body}' (marker {mark}), "
                             f"episode {ep.id} shows '{ob}' (marker {om})", file=where, field="--demos",
                             expected="demos of one object (narrow the query, or set one spec with "
                                      "`robot-irl demos spec QUERY --set SPEC.json`)")
    obj_kps = [k for k in spec if k.body == body]
    # centre-like points (no feature) first: keypoint 0 is what segmenting and judging follow
    marked = [k.name for k in obj_kps if k.feature is not None]
    names = list(names) if names else [k.name for k in obj_kps if k.feature is None] + marked[:1]
    unknown = [n for n in names if n not in [k.name for k in obj_kps]]
    if unknown:
        raise InputError(f"unknown object keypoints {unknown}", file=where, field="--keypoint-names",
                         expected=f"names of the object's keypoints {[k.name for k in obj_kps]}")
    chosen = spec.select(names)
    if keypoints not in ("extracted", "truth"):
        raise InputError(f"keypoints='{keypoints}'", field="keypoints", expected="'extracted' or 'truth'")
    kps, fine, rest, segs, lifts = [], [], [], [], []
    for ep in episodes:
        if keypoints == "truth":
            t, xw = truth_track(ep, names, [k.name for k in obj_kps], where)
        else:
            t, xw = world_track(ep, names, where)
        x = _fill(t, transform(T, xw))
        i0, i1 = carry_segment(t, x)
        r = np.median(x[:3], 0)
        rest.append(r)
        seg = x[i0:i1 + 1]
        lifts.append(float(_smooth(seg[:, 0])[0, 2] - r[0, 2]))
        kps.append(progress_resample(seg, rows))
        fine.append(progress_resample(seg, FINE_ROWS))
        segs.append((float(t[i0]), float(t[i1])))
    demos = DemoSet(np.array(kps), np.linspace(0.0, 1.0, rows), names=[e.id for e in episodes],
                    source=f"{where} (person demos, {keypoints} object keypoints, progress-aligned)")
    return ObjectDemos(demos, chosen, np.array(rest), float(np.median(lifts)), segs, fine=np.array(fine),
                       keypoints_source=keypoints, cell_spec=spec)


#: a coordinate the demos move less than this (m, rms over demos) has no progress profile to speak of
STYLE_MIN_MOVE_M = 0.01


def style_reference(start: np.ndarray, end: np.ndarray, fine: np.ndarray, centre: int = 0) -> np.ndarray:
    """The demos' style carried to a new ``start`` → ``end`` (``[3]`` each): ``[R, 3]``, at equal
    steps of its own path length.

    The style is how each coordinate closes its gap as the motion progresses (the person's y early,
    height late): per coordinate c, the demos' progress profile ``phi_c(s)`` = least-squares fit of
    their displacement so far against their whole displacement, ``sum_n D_nc (x_nc(s) - x_nc(0)) /
    sum_n D_nc^2`` (a demo that moved c further says more about how c moves), and the reference is
    ``start_c + phi_c(s) (end_c - start_c)``. Why not the demos' deviations from their straight
    lines, moved onto the new ends: a demo whose goal lay 12 cm to the side bulges 3 cm sideways,
    and that bulge carried unscaled to a goal straight ahead is not how the person would move
    there; averaged over demos with different goals it put a ~1 cm floor under every path (the
    demos themselves scored 0.9-1.0 cm against it, dev seed 0). A coordinate the demos hardly move
    (rms below STYLE_MIN_MOVE_M) keeps that older mapping: its mean deviation added to the line."""
    d = np.asarray(fine, float)[:, :, centre]                      # [N, R, 3]
    s = np.linspace(0.0, 1.0, d.shape[1])[:, None]
    disp = d[:, -1] - d[:, 0]                                      # [N, 3]
    so_far = d - d[:, :1]                                          # [N, R, 3]
    denom = (disp ** 2).sum(0)                                     # [3]
    phi = (so_far * disp[:, None]).sum(0) / np.maximum(denom, 1e-12)
    ref = start + phi * (end - start)
    flat = np.sqrt(denom / len(d)) < STYLE_MIN_MOVE_M
    if flat.any():
        dev = (so_far - s * disp[:, None]).mean(0)                 # deviation from each demo's own line
        ref[:, flat] = (start + s * (end - start) + dev)[:, flat]
    return progress_resample(ref[:, None], d.shape[1])[:, 0]


def style_path_error(path: np.ndarray, fine: np.ndarray, centre: int = 0) -> float:
    """How far (m, mean over progress) an object path ``[T, K, 3]`` is from the demos' style
    (:func:`style_reference` from the path's own start to its own end; the demos' carries ``fine
    [N, R, K, 3]``), both compared at equal steps of their own path length (``centre`` keypoint)."""
    p = progress_resample(np.asarray(path, float), fine.shape[1], centre)[:, centre]
    return float(np.mean(np.linalg.norm(p - style_reference(p[0], p[-1], fine, centre), axis=-1)))
