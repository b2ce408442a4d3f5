"""Demo-library episodes as a :class:`DemoSet`: the one path from recorded video to the learner.

Per episode: the keypoints the learner models (by default every keypoint on the robot's body; an
object keypoint is not moved by kinematic dynamics), taken from the derived ``keypoints`` data the
OpenCV extractor wrote (``keypoints="extracted"``) or from the recording's ground truth column
``keypoints_3d`` (``"truth"``; ``"auto"`` prefers extracted). The motion is cut where the arm comes
to rest (``trim``: the last time any joint is farther than ``settle_rad`` from its final value; a
demo that waits after finishing would otherwise teach "move early, then idle" in proportions that
depend on how long it idled), then resampled by timestamp to ``rows`` rows. Start joints come
from the state stream. Goals (``goals=``): ``"recorded"`` (default) = the task's goal from the
``goal_3d`` column; ``"final"`` = where each demo's keypoints ended (the usual IRL assumption that
the demonstrator reached its goal; for episodes without a recorded goal). On the Place transfer
eval the two gave mixed differences (notes/irl.md), so the recorded goal stays the default.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from robot_irl.core.spec import KeypointSpec
from robot_irl.errors import InputError, UnknownNameError
from robot_irl.irl.demos import DemoSet
from robot_irl.models.collect import settle_time

KEYPOINT_SOURCES = ("extracted", "truth", "auto")
GOAL_SOURCES = ("final", "recorded")


def resample_track(t: np.ndarray, x: np.ndarray, t_new: np.ndarray) -> np.ndarray:
    """Linear interpolation per coordinate over observed samples; NaN where fewer than two exist
    or outside the observed span (missing stays missing)."""
    out = np.full((len(t_new),) + x.shape[1:], np.nan)
    flat, oflat = x.reshape(len(t), -1), out.reshape(len(t_new), -1)
    for c in range(flat.shape[1]):
        ok = np.isfinite(flat[:, c])
        if ok.sum() >= 2:
            inside = (t_new >= t[ok][0] - 1e-9) & (t_new <= t[ok][-1] + 1e-9)
            oflat[inside, c] = np.interp(t_new[inside], t[ok], flat[ok, c])
    return out


def _episode_keypoints(ep: Any, idx: list[int], source: str, camera: str | None) -> tuple[np.ndarray, np.ndarray, str]:
    derived = ep.derived().get("keypoints")
    if source in ("extracted", "auto") and derived:
        d = ep.read_derived("keypoints")
        if camera and d.meta.get("camera") not in (None, camera):
            raise InputError(f"episode {ep.id}: keypoints were extracted from camera '{d.meta.get('camera')}'",
                             field="--camera", expected=f"keypoints extracted from '{camera}' (robot-irl extract)")
        return np.asarray(d.arrays["timestamps"], float), np.asarray(d.arrays["keypoints"], float)[:, idx], "extracted"
    if source == "extracted":
        raise InputError(f"episode {ep.id} has no extracted keypoints", field="--keypoints",
                         expected="run `robot-irl extract <query>` first, or use --keypoints truth|auto")
    state = ep.arrays("state") if "state" in ep.streams else {}
    if "keypoints_3d" not in state:
        raise InputError(f"episode {ep.id} has neither extracted nor ground-truth keypoints", field="--keypoints",
                         expected="derived keypoints (robot-irl extract) or a keypoints_3d state column")
    return np.asarray(state["timestamp"], float), np.asarray(state["keypoints_3d"], float)[:, idx], "truth"


def demos_from_library(lib: Any, query: str, *, rows: int = 10, keypoints: str = "auto",
                       names: list[str] | None = None, body: str = "robot", trim: bool = True,
                       settle_rad: float = 2e-3, camera: str | None = None,
                       goals: str = "recorded") -> tuple[DemoSet, KeypointSpec]:
    """Select episodes with ``query`` and return ``(DemoSet, spec of the chosen keypoints)``.

    ``names`` picks keypoints by name (default: those on ``body``). Raises InputError for an empty
    selection, episodes without a keypoint spec or with different specs, unknown keypoint names, a
    chosen keypoint never observed in an episode, and missing extracted keypoints with
    ``keypoints="extracted"``.
    """
    if keypoints not in KEYPOINT_SOURCES:
        raise UnknownNameError("keypoint source", keypoints, KEYPOINT_SOURCES)
    if goals not in GOAL_SOURCES:
        raise UnknownNameError("goal source", goals, GOAL_SOURCES)
    episodes = lib.select(query)
    where = f"library {lib.path}, query '{query}'"
    if not episodes:
        raise InputError(f"the query '{query}' selects no episode", file=lib.path, field="--demos",
                         expected="a query matching recorded episodes (see `robot-irl demos list`)")
    spec = episodes[0].keypoint_spec
    if spec is None:
        raise InputError(f"episode {episodes[0].id} has no keypoint spec", file=lib.path, field="keypoint_spec",
                         expected="episodes recorded with a keypoint spec")
    for ep in episodes[1:]:
        other = ep.keypoint_spec
        if other is None or other.to_dict() != spec.to_dict():
            raise InputError(f"episode {ep.id} has keypoints {other.names if other else None}, episode "
                             f"{episodes[0].id} has {spec.names} (specs differ)", file=lib.path,
                             field="keypoint_spec", expected="one keypoint spec for all selected episodes "
                             "(narrow the query, e.g. by robot: or env:)")
    chosen = spec.select(list(names)) if names else spec.on_body(body)
    if not len(chosen):
        raise InputError(f"no keypoint on body '{body}' (spec has {[(k.name, k.body) for k in spec]})",
                         file=lib.path, field="keypoints", expected="a body that carries keypoints, or names")
    idx = [spec.index(n) for n in chosen.names]
    kps, ts, q0, q_end, recorded, sources = [], [], [], [], [], []
    have_goals = goals == "recorded"
    for ep in episodes:
        t_kp, x, src = _episode_keypoints(ep, idx, keypoints, camera)
        sources.append(src)
        never = [chosen.names[k] for k in range(len(idx)) if not np.isfinite(x[:, k]).all(-1).any()]
        if never:
            raise InputError(f"episode {ep.id}: keypoint(s) {never} missing throughout ({src})", file=lib.path,
                             field="keypoints", expected="every modelled keypoint observed in some frames "
                             "(check the markers are visible, or drop the keypoint with --keypoint-names)")
        state = ep.arrays("state") if "state" in ep.streams else {}
        t_end = t_kp[-1]
        if "joint_pos" in state:
            q = np.asarray(state["joint_pos"], float)
            q0.append(q[0])
            q_end.append(q[-1])
            if trim:
                t_end = min(t_end, max(settle_time(state["timestamp"], q, settle_rad), t_kp[0] + 1e-6))
        if have_goals and "goal_3d" not in state:
            raise InputError(f"episode {ep.id} records no goal_3d", file=lib.path, field="goals",
                             expected="goals='final' (the demo's last keypoints) for episodes without a recorded goal")
        if have_goals:
            recorded.append(np.asarray(state["goal_3d"][0], float)[idx])
        t_new = np.linspace(t_kp[0], t_end, rows)
        kps.append(resample_track(t_kp, x, t_new))
        ts.append(t_new - t_new[0])
    if len(q0) not in (0, len(episodes)):
        raise InputError("some selected episodes have joint states and some do not", file=lib.path,
                         field="joint_pos", expected="episodes of one kind (all with a state stream or none)")
    src_note = "+".join(sorted(set(sources)))
    demos = DemoSet(np.array(kps), np.array(ts), q0=np.array(q0) if q0 else None,
                    q_end=np.array(q_end) if q_end else None,
                    goals=np.array(recorded) if have_goals else None, names=[e.id for e in episodes],
                    source=f"{where} ({src_note} keypoints)")
    return demos, chosen


def learned_demos_from_library(lib: Any, query: str, *, rows: int = 10, model: str | None = None) -> tuple[DemoSet, Any]:
    """Demos on learned keypoints and the observer that made them: the detector of the learned
    dynamics ``model`` (``robot-irl dynamics collect --detector`` + ``dynamics train``) run on the
    selected episodes' video, lifted as its exploration data was (:func:`demos_from_arrays`)."""
    from robot_irl.keypoints.learned.observe import observe_episodes, observer_from_dict
    from robot_irl.models import LearnedDynamics

    if not model:
        raise InputError("--keypoints learned needs --dynamics learned --model", field="--model",
                         expected="a model from `robot-irl dynamics collect --detector DIR` + `dynamics train`")
    dyn = LearnedDynamics.load(model)
    if dyn.observation is None:
        raise InputError("the dynamics model was trained on the simulator's keypoints, not a learned detector's",
                         file=model, field="--model",
                         expected="a model from `robot-irl dynamics collect --detector DIR` + `dynamics train`")
    observer = observer_from_dict(dyn.observation, file=str(model))
    episodes = lib.select(query)
    if not episodes:
        raise InputError(f"the query '{query}' selects no episode", file=lib.path, field="--demos",
                         expected="a query matching recorded episodes (see `robot-irl demos list`)")
    demos = demos_from_arrays(observe_episodes(observer, episodes), rows=rows,
                              source=f"library {lib.path}, query '{query}' (learned keypoints, {observer.model})")
    return demos, observer


def demos_from_arrays(items: list[dict[str, Any]], *, rows: int = 10, trim: bool = True,
                      settle_rad: float = 2e-3, source: str = "arrays") -> DemoSet:
    """A :class:`DemoSet` from per-demo arrays, cut and resampled as :func:`demos_from_library` does
    (cut where the joints come to rest, ``rows`` rows by time; q0 / q_end = the first / last joints; goals = where
    each demo's keypoints ended). For keypoints that are not in an episode's spec, e.g. a learned
    detector's (``keypoints.learned.observe``). Each item: ``name``, ``t [T]`` and ``x [T, K, 3]``
    (the keypoints' times and values), ``t_state [S]`` and ``q [S, n]`` (the joints')."""
    if not items:
        raise InputError("no demos", field="demos", expected="at least one demo")
    kps, ts, q0, q_end = [], [], [], []
    for it in items:
        t_kp, x = np.asarray(it["t"], float), np.asarray(it["x"], float)
        t_q, q = np.asarray(it["t_state"], float), np.asarray(it["q"], float)
        if x.ndim != 3 or x.shape[-1] != 3 or len(x) != len(t_kp) or len(q) != len(t_q) or not len(q):
            raise InputError(f"demo {it.get('name')}: t {t_kp.shape}, x {x.shape}, t_state {t_q.shape}, q {q.shape}",
                             field="demos", expected="t [T], x [T, K, 3], t_state [S], q [S, n] with S >= 1")
        t_end = t_kp[-1]
        if trim:
            t_end = min(t_end, max(settle_time(t_q, q, settle_rad), t_kp[0] + 1e-6))
        t_new = np.linspace(t_kp[0], t_end, rows)
        kps.append(resample_track(t_kp, x, t_new))
        ts.append(t_new - t_new[0])
        q0.append(q[0])
        q_end.append(q[-1])
    return DemoSet(np.array(kps), np.array(ts), q0=np.array(q0), q_end=np.array(q_end), goals=None,
                   names=[str(it.get("name", i)) for i, it in enumerate(items)], source=source)


def library_robot(lib: Any, query: str) -> str:
    """The one robot the selected episodes were recorded with (for choosing a URDF)."""
    robots = sorted({str(r.get("robot")) for r in lib.rows(query)})
    if len(robots) != 1:
        raise InputError(f"the selection mixes robots {robots}", file=lib.path, field="--demos",
                         expected="episodes of one robot (add robot:NAME to the query)")
    return robots[0]
