"""Record scripted-expert episodes in the PyBullet sim: rendered video, state, ground truth.

One row of stream ``state`` per control step at ``t = step * control_dt`` (the sim's clock), and
one lossless frame of camera ``cam0`` at the same ``t``. The row at ``t`` holds the state at ``t``
and the action taken from it; the final row has no action (NaN), so no state is ever dropped.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from robot_irl.library import Column, Episode, Library
from robot_irl.library.writer import EpisodeWriter
from robot_irl.record.columns import robot_state_columns

CAMERA = "cam0"


def state_columns(n: int, k: int, joint_names: list[str], kp_names: list[str]) -> dict[str, Column]:
    jn = tuple(joint_names)
    return {
        **robot_state_columns(joint_names),
        "target_sent": Column((n,), "float64", "rad", jn),
        "gripper": Column((), "float64", None),
        "keypoints_3d": Column((k, 3), "float64", "m", tuple(kp_names)),
        "goal_3d": Column((k, 3), "float64", "m", tuple(kp_names)),
        f"keypoints_2d_{CAMERA}": Column((k, 2), "float64", "px", tuple(kp_names)),
        f"keypoints_visible_{CAMERA}": Column((k,), "bool", None, tuple(kp_names)),
        "success": Column((), "bool", None),
    }


def record_sim(lib: Library, env_id: str, *, episodes: int, seed: int, robot: str = "iiwa",
               variant: Mapping[str, Any] | None = None, render_size: tuple[int, int] = (320, 240),
               tags: list[str] | None = None, chunk_frames: int = 150,
               progress: Callable[[Episode], None] | None = None, plain: bool = False,
               camera: str = "front", views: tuple[str, ...] = ()) -> list[Episode]:
    """Record ``episodes`` expert episodes with seeds ``seed, seed+1, ...``; returns them committed.

    ``plain``: render the scene without its ArUco plates and coloured spheres (the objects bare),
    so that only detectors that need no markers can find anything; the episodes get the tag
    ``plain`` and ``extra.plain = true``. The ground-truth pixels are recorded as always (the
    projection of each keypoint); its ``keypoints_visible`` column is then all false, since no
    feature is drawn to be seen. ``camera``: the sim camera recorded as ``cam0`` (``robot-irl sim
    list`` names them; default the front view); ``views``: more sim cameras recorded beside it as
    ``cam1``, ``cam2`` .. (the same instants; ground-truth pixels are recorded for ``cam0`` only)."""
    env = make_env(env_id, robot, variant, render_size, plain=plain, camera=camera)
    return _record_each(env, episodes, progress, lambda i: record_episode(
        lib.writer, env, seed=seed + i, env_id=env_id, robot=robot, render_size=render_size, tags=tags,
        chunk_frames=chunk_frames, plain=plain, views=views))


def _record_each(env, episodes: int, progress: Callable[[Episode], None] | None,
                 record_one: Callable[[int], Episode]) -> list[Episode]:
    """``record_one(i)`` for i < ``episodes``, each reported to ``progress``; the env closed after."""
    out = []
    try:
        for i in range(episodes):
            out.append(record_one(i))
            if progress:
                progress(out[-1])
    finally:
        env.close()
    return out


def make_env(env_id: str, robot: str, variant: Mapping[str, Any] | None, render_size: tuple[int, int], *,
             plain: bool = False, camera: str = "front"):
    """The env an expert is recorded in; an episode depends on its seed only, not on what the env
    ran before (``reset(seed=...)`` rebuilds the scene), so one env serves many episodes.
    ``plain``: markers and blobs hidden (see :func:`record_sim`)."""
    import sim
    return sim.make(env_id, robot=robot, variant=dict(variant or {}), render_size=render_size,
                    markers=not plain, blobs=not plain, camera=camera)


def record_episode(writer: Callable[..., EpisodeWriter], env, *, seed: int, env_id: str, robot: str,
                   render_size: tuple[int, int], tags: list[str] | None, chunk_frames: int,
                   plain: bool = False, views: tuple[str, ...] = ()) -> Episode:
    """One expert episode from ``env.reset(seed=seed)`` through ``writer(...)`` (``Library.writer``
    commits into the library; a staging ``Batch.writer`` finalizes it in place for a driver to
    commit); returns the committed episode."""
    from sim.expert import expert_for

    obs, _ = env.reset(seed=seed)
    expert = expert_for(env)
    return _write_episode(writer, env, obs, expert.act, seed=seed, env_id=env_id, robot=robot,
                          render_size=render_size, tags=tags, chunk_frames=chunk_frames, plain=plain, views=views)


def record_exploration(lib: Library, env_id: str, *, episodes: int, seed: int, robot: str = "iiwa",
                       render_size: tuple[int, int] = (320, 240), tags: list[str] | None = None,
                       chunk_frames: int = 150, progress: Callable[[Episode], None] | None = None,
                       plain: bool = False, camera: str = "front", views: tuple[str, ...] = ()) -> list[Episode]:
    """Record ``episodes`` exploration episodes (kind ``explore``): the arm moved through
    ``models.collect``'s plans (the expert's path with noise on every row, or a straight move to a
    random joint goal, then random rows), every control step recorded as a demo is. They show the
    arm in poses no demonstration reaches, which a keypoint detector learned from video must see
    to place its keypoints on what moves (``robot-irl keypoints train --demos "kind:demo,explore"``);
    a query without a ``kind`` term leaves them out, so they never become demonstrations.
    Episode ``e`` is ``models.collect``'s exploration episode ``e`` of a plan seeded ``seed``
    (the same motion ``dynamics collect --seed`` runs). ``camera``, ``views``: as :func:`record_sim`."""
    from robot_irl.models.collect import ExplorePlan, exploration_rows, exploration_seed, steps_per_row

    plan = ExplorePlan(env_id=env_id, robot=robot, seed=seed)
    env = make_env(env_id, robot, None, render_size, plain=plain, camera=camera)
    tags = list(dict.fromkeys([*(tags or []), "explore"]))

    def one(e: int) -> Episode:
        obs, deltas = exploration_rows(env, plan, e)
        m = steps_per_row(env, deltas)
        actions = iter([np.r_[d / m, 1.0] for d in deltas for _ in range(m)])   # rows as execute_rows splits them
        return _write_episode(lib.writer, env, obs, lambda _obs: next(actions, None), seed=exploration_seed(plan, e),
                              env_id=env_id, robot=robot, render_size=render_size, tags=tags,
                              chunk_frames=chunk_frames, plain=plain, kind="explore", until_success=False, views=views)

    return _record_each(env, episodes, progress, one)


def _write_episode(writer: Callable[..., EpisodeWriter], env, obs: dict[str, np.ndarray],
                   act: Callable[[dict[str, np.ndarray]], np.ndarray | None], *, seed: int, env_id: str, robot: str,
                   render_size: tuple[int, int], tags: list[str] | None, chunk_frames: int, plain: bool,
                   kind: str = "demo", until_success: bool = True, views: tuple[str, ...] = ()) -> Episode:
    """Write the episode the env is in (just reset, first observation ``obs``): a frame and a state
    row per control step, ``act(obs)`` choosing each action until it returns None, the episode is
    truncated, or (``until_success``) the task succeeds; ``views``: more sim cameras as ``cam1`` ..."""
    from sim.camera import get_camera

    u = env.unwrapped
    extra = [(f"cam{i + 1}", get_camera(v, tuple(render_size))) for i, v in enumerate(views)]
    spec, cam = u.keypoint_spec, u.camera_model()
    n, k = len(obs["joint_pos"]), len(spec)
    dt = u.control_dt
    if plain:
        tags = list(dict.fromkeys([*(tags or []), "plain"]))
    with writer(task=u.task.text(), source="sim", fps=1.0 / dt, kind=kind, robot=robot, env=env_id, seed=seed,
                variant=u.variant.to_dict(), tags=tags, keypoint_spec=spec,
                extra={"control_dt": dt, "plain": plain}, chunk_frames=chunk_frames) as w:
        w.add_camera(CAMERA, render_size, codec="ffv1", model=cam)
        for name, view in extra:
            w.add_camera(name, render_size, codec="ffv1", model=view.model())
        w.add_stream("state", state_columns(n, k, list(u.robot.joint_names), spec.names))
        step, success, truncated = 0, False, False
        nan = np.full(n, np.nan)
        while True:
            t = step * dt
            w.write_frame(CAMERA, env.render(), t)
            for name, view in extra:
                w.write_frame(name, u.render_view(view), t)
            uv, visible = u.keypoints_2d()
            row = dict(joint_pos=obs["joint_pos"], joint_vel=obs["joint_vel"], ee_pos=obs["ee_pos"],
                       ee_quat=obs["ee_quat"], keypoints_3d=obs["keypoints"], goal_3d=obs["goal"],
                       success=np.bool_(success), **{f"keypoints_2d_{CAMERA}": uv,
                                                     f"keypoints_visible_{CAMERA}": visible})
            a = None if (success and until_success) or truncated else act(obs)
            if a is None:
                w.write_row("state", t, action_delta=nan, target_requested=nan, target_sent=nan,
                            gripper=np.nan, **row)
                break
            requested = u.joint_target + a[:-1]
            obs, _, success, truncated, info = env.step(a)
            w.write_row("state", t, action_delta=a[:-1], target_requested=requested,
                        target_sent=info["joint_target"], gripper=float(a[-1]), **row)
            step += 1
        return w.commit(success=bool(success))
