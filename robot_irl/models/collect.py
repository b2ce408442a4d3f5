"""Exploration data for learned keypoint dynamics, and plan execution, in the PyBullet sim.

The learner plans a whole motion in a few rows (e.g. 9 joint deltas), each far larger than the
env's per-step delta cap. :func:`execute_rows` carries out such a plan in the env: every row is
split into the same number of bounded steps (so rows keep equal durations) and the state is read
at row boundaries. A learned model must predict exactly those row transitions, so
:func:`collect_exploration` gathers them the same way, from

- perturbed-expert plans: the scripted expert's joint path (up to where it comes to rest) resampled
  to ``rows`` rows by time, each row's delta perturbed by N(0, ``noise`` rad), and
- random plans: a straight joint-space move to a random nearby configuration with noisy rows,

each followed by ``extra`` random rows (so open-loop errors over 10 steps can be measured).
Keypoints are the sim's ground truth, restricted to the chosen names (the learner's keypoints), or,
with an ``observe`` callable (``{camera name: frames [T, H, W, 3]}`` -> ``[T, K, 3]``, e.g. a learned
detector's ``keypoints.learned.observe.LearnedObserver``), what it sees in the frames of the scene
camera, and of any more ``views``, rendered at every row boundary (``render_size``; ``plain``: markers
and blobs hidden, as the demos it is meant for were recorded). The callable is passed in, not
imported: this layer knows no detector.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from robot_irl.errors import InputError, RobotIRLError

if TYPE_CHECKING:
    from robot_irl.core.cluster import RayCluster


def settle_time(t: np.ndarray, q: np.ndarray, settle_rad: float = 2e-3) -> float:
    """Time at which the joints reach their final values (within ``settle_rad``) for good."""
    ok = np.isfinite(q).all(1)
    t, q = t[ok], q[ok]
    moving = np.flatnonzero(np.abs(q - q[-1]).max(1) > settle_rad)
    if not len(moving):
        return float(t[-1])
    return float(t[min(moving[-1] + 1, len(t) - 1)])


def steps_per_row(env: Any, deltas: np.ndarray) -> int:
    """How many env steps every row of ``deltas`` is split into: enough that no step exceeds the
    env's per-step delta cap on any joint (the same count for all rows, so rows keep equal durations)."""
    cap = float(np.min(env.unwrapped.action_space.high[:-1]))
    return max(1, int(math.ceil(float(np.abs(np.asarray(deltas, float)).max(initial=0.0)) / cap - 1e-9)))


def execute_rows(env: Any, obs: dict[str, np.ndarray], deltas: np.ndarray, *, gripper: float = 1.0,
                 settle_steps: int = 0, release: bool = False, render: bool = False,
                 views: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Execute joint-delta rows ``deltas [H, n]`` from the env's current state ``obs``.

    Each row becomes ``m = ceil(max |delta| / cap)`` equal env steps (the same ``m`` for all rows);
    then ``settle_steps`` steps holding the last target (gripper opened if ``release``).
    Returns per row boundary ``x_rows [H+1, K, 3]`` keypoints and ``q_rows [H+1, n]`` joint
    positions, per env step ``x_steps [S+1, K, 3]``, ``q_steps [S+1, n]``, ``t_steps [S+1]`` (s),
    and ``success`` (the env's flag after the last step); with ``render`` also ``frames [H+1, h, w, 3]``,
    the env's camera image at every row boundary, and ``frames_<name>`` through each sim camera in ``views``.
    """
    u = env.unwrapped
    deltas = np.asarray(deltas, dtype=np.float64)
    m = steps_per_row(env, deltas)
    xs, qs = [obs["keypoints"].copy()], [obs["joint_pos"].copy()]
    rows = [0]
    frames: list[np.ndarray] = []
    seen: dict[str, list[np.ndarray]] = {v: [] for v in views} if render else {}

    def snap() -> None:
        if render:
            frames.append(env.render())
            for v in views:
                seen[v].append(u.render_view(v))

    snap()
    success = False
    for d in deltas:
        for _ in range(m):
            obs, _, _, _, info = env.step(np.r_[d / m, gripper])
            xs.append(obs["keypoints"].copy())
            qs.append(obs["joint_pos"].copy())
            success = bool(info.get("success", False))
        rows.append(len(xs) - 1)
        snap()
    for _ in range(settle_steps):
        obs, _, _, _, info = env.step(np.r_[np.zeros(deltas.shape[1]), -1.0 if release else gripper])
        xs.append(obs["keypoints"].copy())
        qs.append(obs["joint_pos"].copy())
        success = bool(info.get("success", False))
    x_steps, q_steps = np.array(xs), np.array(qs)
    out = {"x_rows": x_steps[rows], "q_rows": q_steps[rows], "x_steps": x_steps, "q_steps": q_steps,
           "t_steps": np.arange(len(xs)) * u.control_dt, "success": np.array(success), "substeps": np.array(m)}
    if render:
        out["frames"] = np.array(frames)
        out.update({f"frames_{v}": np.array(f) for v, f in seen.items()})
    return out


def expert_rollout(env: Any, seed: int, variant: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
    """Run the scripted expert from ``reset(seed)``: per step keypoints, joint positions, targets,
    times, and the goal keypoints."""
    from sim.expert import expert_for

    obs, _ = env.reset(seed=seed, options={"variant": variant} if variant else None)
    u = env.unwrapped
    expert = expert_for(env)
    xs, qs, targets = [obs["keypoints"].copy()], [obs["joint_pos"].copy()], [u.joint_target.copy()]
    for _ in range(u.task.max_steps):
        obs, _, term, trunc, _ = env.step(expert.act(obs))
        xs.append(obs["keypoints"].copy())
        qs.append(obs["joint_pos"].copy())
        targets.append(u.joint_target.copy())
        if term or trunc:
            break
    return {"x": np.array(xs), "q": np.array(qs), "target": np.array(targets),
            "t": np.arange(len(xs)) * u.control_dt, "goal": obs["goal"].copy()}


def expert_rows(rollout: dict[str, np.ndarray], rows: int, settle_rad: float = 2e-3) -> np.ndarray:
    """The expert's joint-target path up to where it comes to rest, resampled to ``rows`` rows by
    time; returns the row deltas ``[rows-1, n]``."""
    t_end = settle_time(rollout["t"], rollout["q"], settle_rad)
    tq = np.linspace(0.0, t_end, rows)
    path = np.stack([np.interp(tq, rollout["t"], rollout["target"][:, j]) for j in range(rollout["target"].shape[1])], 1)
    return np.diff(path, axis=0)


@dataclass(frozen=True)
class ExplorePlan:
    """What one exploration episode needs (picklable: it is shipped to Ray workers)."""

    env_id: str = "robot_irl/Place-v0"
    robot: str = "iiwa"
    rows: int = 10
    extra: int = 2
    noise: float = 0.05
    random_frac: float = 0.3
    keypoint_names: tuple[str, ...] | None = None
    regions: tuple[str, ...] = ("left", "right")
    seed: int = 0
    observe: Any = None                       # frames [T, H, W, 3] -> keypoints [T, K, 3] (see module doc)
    render_size: tuple[int, int] | None = None  # the frames' (W, H); needed with observe
    plain: bool = False                       # render without markers and blobs
    camera: str = "front"                     # the sim camera rendered
    views: tuple[str, ...] = ()               # more sim cameras rendered beside it (keypoints seen from several sides)


_ENV: dict[tuple, Any] = {}   # this process's env per (env id, robot, rendering): a Ray worker runs many episodes


def _env_for(env_id: str, robot: str, render_size: tuple[int, int] | None = None, plain: bool = False,
             camera: str = "front"):
    """One env per process and robot: building the scene costs about as much as an episode."""
    key = (env_id, robot, render_size, plain, camera)
    if key not in _ENV:
        import gymnasium as gym

        import sim  # noqa: F401  (registers the env ids)

        release_env()
        _ENV[key] = gym.make(env_id, robot=robot, render_size=tuple(render_size or (64, 48)),
                             markers=not plain, blobs=not plain, camera=camera)
    return _ENV[key]


def release_env() -> None:
    """Close this process's cached env (the driver, after a serial run)."""
    for env in _ENV.values():
        env.close()
    _ENV.clear()


def episode_rng(seed: int, episode: int) -> np.random.Generator:
    """The exploration noise of episode ``episode`` of a run seeded ``seed``: its own stream, so an
    episode is the same whichever process runs it and whatever ran before it (a stream distinct from
    the env's ``reset(seed=)`` stream, which is seeded by the episode seed alone)."""
    return np.random.default_rng([seed, episode])


def exploration_seed(plan: ExplorePlan, e: int) -> int:
    """The env seed of episode ``e`` of ``plan``."""
    return plan.seed * 100_003 + e


def exploration_rows(env: Any, plan: ExplorePlan, e: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Reset ``env`` to episode ``e`` of ``plan`` and return its first observation and joint-delta
    rows ``[rows - 1 + extra, n]``: the expert's path resampled to ``plan.rows`` rows with Gaussian
    noise on every row (or, with probability ``random_frac``, a straight move to a random joint
    goal), then ``extra`` rows of twice that noise. They depend only on ``plan.seed`` and ``e``."""
    u = env.unwrapped
    lim = u.robot.joint_limits
    rng = episode_rng(plan.seed, e)
    rows = plan.rows
    ep_seed = exploration_seed(plan, e)
    variant = {"goal_region": plan.regions[e % len(plan.regions)]}
    if rng.random() < plan.random_frac:
        obs, _ = env.reset(seed=ep_seed, options={"variant": variant})
        q0 = obs["joint_pos"]
        q_goal = np.clip(q0 + rng.normal(0.0, 0.4, q0.shape), lim[:, 0], lim[:, 1])
        deltas = np.repeat(((q_goal - q0) / (rows - 1))[None], rows - 1, 0)
    else:
        deltas = expert_rows(expert_rollout(env, ep_seed, variant), rows)
        obs, _ = env.reset(seed=ep_seed, options={"variant": variant})
    deltas = deltas + rng.normal(0.0, plan.noise, deltas.shape)
    deltas = np.concatenate([deltas, rng.normal(0.0, 2 * plan.noise, (plan.extra, deltas.shape[1]))])
    return obs, deltas


def explore_episode(plan: ExplorePlan, e: int) -> dict[str, np.ndarray]:
    """Episode ``e`` of ``plan`` (a Ray task with ``--ray``): ``x [T, K, 3]``, ``q [T, n]``,
    ``u [T-1, n]`` and its env seed; it depends only on ``plan`` and ``e``. With ``plan.observe``,
    ``x`` is what it sees in the frames rendered at the row boundaries."""
    env = _env_for(plan.env_id, plan.robot, plan.render_size, plan.plain, plan.camera)
    spec = env.unwrapped.keypoint_spec
    names = list(plan.keypoint_names) if plan.keypoint_names else spec.on_body("robot").names
    idx = [spec.index(n) for n in names]
    obs, deltas = exploration_rows(env, plan, e)
    out = execute_rows(env, obs, deltas, render=plan.observe is not None, views=plan.views)
    if plan.observe is None:
        x = out["x_rows"][:, idx]
    else:
        frames = {plan.camera: out["frames"], **{v: out[f"frames_{v}"] for v in plan.views}}
        x = plan.observe(frames, origin=f"exploration episode {e}")
    return {"x": x, "q": out["q_rows"], "u": deltas, "seed": np.array(exploration_seed(plan, e))}


def _robot_arrays(plan: ExplorePlan) -> dict[str, np.ndarray]:
    """What the robot is (limits, keypoint names, links and offsets, URDF), from this process's env."""
    u = _env_for(plan.env_id, plan.robot, plan.render_size, plan.plain, plan.camera).unwrapped
    lim = u.robot.joint_limits
    out = {"lower": lim[:, 0].copy(), "upper": lim[:, 1].copy(), "robot": np.array(plan.robot),
           "env": np.array(plan.env_id), "rows": np.array(plan.rows), "joint_names": np.array(u.robot.joint_names),
           "urdf": np.array(u.robot.urdf_path)}
    if plan.observe is not None:
        # keypoints seen in images sit on no link: what they are is the observer's description
        return {**out, "names": np.array(plan.observe.names), "observation": np.array(json.dumps(plan.observe.to_dict()))}
    spec = u.keypoint_spec
    names = list(plan.keypoint_names) if plan.keypoint_names else spec.on_body("robot").names
    kps = [spec.keypoints[spec.index(n)] for n in names]
    return {**out, "names": np.array(names), "frame_links": np.array([k.link for k in kps]),
            "frame_offsets": np.array([k.offset for k in kps], float)}


def collect_exploration(env_id: str = "robot_irl/Place-v0", *, robot: str = "iiwa", episodes: int = 150,
                        rows: int = 10, extra: int = 2, noise: float = 0.05, random_frac: float = 0.3,
                        keypoint_names: list[str] | None = None, regions: tuple[str, ...] = ("left", "right"),
                        seed: int = 0, progress: bool = False, cluster: RayCluster | None = None,
                        observe: Any = None, render_size: tuple[int, int] | None = None,
                        plain: bool = False, camera: str = "front",
                        views: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Exploration episodes (see module docstring). Returns arrays ``x [N, T, K, 3]`` (metres),
    ``q [N, T, n]``, ``u [N, T-1, n]`` (commanded row deltas), ``lower``/``upper [n]``, ``names [K]``,
    ``seeds [N]``, with ``T = rows + extra``; and what the robot is — ``joint_names [n]``,
    ``frame_links [K]`` / ``frame_offsets [K, 3]`` (each keypoint's link and offset) and ``urdf`` —
    which a learned model keeps so a runner can drive the arm with it. With ``observe`` (and
    ``render_size``, ``plain``, ``camera``, ``views``) ``x`` is what the observer sees in the rendered frames and, instead
    of the keypoints' links, ``observation`` holds its description (JSON).

    Episode ``e`` depends only on ``seed`` and ``e`` (:func:`episode_rng`), so with ``cluster`` (a
    :class:`robot_irl.core.cluster.RayCluster`; one Ray task per episode, gathered on the driver) the
    arrays are the same as here. A failed episode raises (the data set is all episodes or none)."""
    from tqdm import tqdm

    if episodes < 2 or rows < 2:
        raise InputError(f"episodes={episodes}, rows={rows}", field="episodes", expected="at least 2 of each")
    if observe is not None and (render_size is None or keypoint_names):
        raise InputError("observe needs render_size and takes no keypoint_names", field="observe",
                         expected="the frames' size for the observer, keypoints named by the observer")
    plan = ExplorePlan(env_id, robot, rows, extra, noise, random_frac,
                       tuple(keypoint_names) if keypoint_names else None, tuple(regions), seed,
                       observe, None if render_size is None else (int(render_size[0]), int(render_size[1])), plain,
                       camera, tuple(views))
    try:
        robot_arrays = _robot_arrays(plan)   # also checks the env, robot and keypoint names before any task
        if cluster is None:
            done = [explore_episode(plan, e) for e in tqdm(range(episodes), desc="collect", disable=not progress)]
        else:
            release_env()
            report = cluster.map(explore_episode, range(episodes), key=lambda e: f"episode {e}",
                                 args=lambda e: (plan, e), verb="collected", unit="ep", progress=progress)
            if report.failed:
                raise RobotIRLError(f"exploration incomplete, nothing written: {report.summary()}")
            done = [report.done[f"episode {e}"] for e in range(episodes)]
    finally:
        release_env()
    return {"x": np.array([d["x"] for d in done]), "q": np.array([d["q"] for d in done]),
            "u": np.array([d["u"] for d in done]), "seeds": np.array([int(d["seed"]) for d in done]), **robot_arrays}
