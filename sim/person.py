"""A person in the simulator: an invisible hand moves the object along a human-like path, and the
cell camera films it with no robot in the world.

Why it looks the way it does: a person is not a metronome. The path rests, lifts the object
(almost straight up, a little drift), carries it over an arc (the horizontal coordinates close
their gaps at different rates, so the path curves in x-y; the height stays up early and drops
late, so it curves in x-z), sets it down and lets go. Speed is uneven (a random time warp), the
carry pauses once part way, and the hand trembles (smoothed noise, millimetres) while it holds.
The learner must see the same task in demos of different durations and speeds.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from robot_irl.errors import InputError
from sim.bullet import Bullet, p
from sim.camera import SceneCamera
from sim.cell import CELL_CAMERA, CellLayout, add_marked_object, add_table, add_world_marker, object_points, render
from sim.scene import OBJECT_HALF, TABLE_TOP_Z

REST_Z = TABLE_TOP_Z + OBJECT_HALF
#: where a person's object starts and ends (base frame, x/y boxes in metres)
START_BOX = ((0.46, 0.54), (-0.06, 0.02))
GOAL_BOX = ((0.62, 0.70), (-0.02, 0.08))


@dataclass(frozen=True)
class PersonStyle:
    """How the person moves (ranges sampled per demo)."""

    lift: tuple[float, float] = (0.09, 0.12)        # m above the rest height
    lift_s: tuple[float, float] = (0.5, 0.8)
    carry_s: tuple[float, float] = (1.4, 2.4)
    pause_s: tuple[float, float] = (0.15, 0.4)
    rest_before_s: tuple[float, float] = (0.3, 0.6)
    rest_after_s: tuple[float, float] = (0.4, 0.7)
    tremor_m: float = 0.0015
    y_rate: float = 2.0     # y closes its gap faster than x (exponent of the x profile): the x-y arc
    drop_power: float = 3.0  # height profile 1 - s^p: stays up, drops late: the x-z arc


def _minjerk(s: np.ndarray) -> np.ndarray:
    s = np.clip(s, 0.0, 1.0)
    return s ** 3 * (10 - 15 * s + 6 * s ** 2)


def _warp(rng: np.random.Generator, n: int, pause_at: float, pause_frac: float) -> np.ndarray:
    """Progress 0..1 over ``n`` samples with uneven speed and one pause."""
    u = np.linspace(0.0, 1.0, n)
    wobble = 1.0 + 0.45 * np.sin(2 * np.pi * (rng.uniform(0.6, 1.4) * u + rng.uniform()))
    speed = np.gradient(_minjerk(u)) * wobble
    speed[np.abs(u - pause_at) < pause_frac / 2] = 0.0
    s = np.cumsum(speed)
    return (s - s[0]) / (s[-1] - s[0])


def _tremor(rng: np.random.Generator, n: int, sigma: float) -> np.ndarray:
    raw = rng.normal(0.0, 1.0, (n + 8, 3))
    kernel = np.hanning(9) / np.hanning(9).sum()
    smooth = np.stack([np.convolve(raw[:, d], kernel, mode="valid") for d in range(3)], 1)[:n]
    return sigma * smooth / max(smooth.std(), 1e-9)


def person_path(rng: np.random.Generator, start_xy, goal_xy, fps: float, style: PersonStyle = PersonStyle()
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Timestamps ``[T]``, object centre ``[T, 3]`` (base frame) and yaw ``[T]`` (deg) of one demo."""
    u = lambda r: float(rng.uniform(*r))
    dt = 1.0 / fps
    n_rest0, n_lift = int(u(style.rest_before_s) * fps), int(u(style.lift_s) * fps)
    carry_s = u(style.carry_s)      # one draw: the carry's frame count and its pause's share both come from it
    n_carry, n_rest1 = int(carry_s * fps), int(u(style.rest_after_s) * fps)
    start = np.array([*start_xy, REST_Z])
    goal = np.array([*goal_xy, REST_Z])
    lift = np.array([*(start[:2] + rng.normal(0, 0.002, 2)), REST_Z + u(style.lift)])
    rest0 = np.repeat(start[None], n_rest0, 0)
    a = _minjerk(np.linspace(0, 1, n_lift))[:, None]
    up = start + a * (lift - start)
    s = _warp(rng, n_carry, rng.uniform(0.3, 0.6), u(style.pause_s) / carry_s)
    sx = _minjerk(s)
    sy = 1.0 - (1.0 - sx) ** style.y_rate
    sz = sx ** style.drop_power
    carry = np.stack([lift[0] + sx * (goal[0] - lift[0]), lift[1] + sy * (goal[1] - lift[1]),
                      lift[2] + sz * (goal[2] - lift[2])], 1)
    held = np.concatenate([up, carry])
    shake = _tremor(rng, len(held), style.tremor_m)
    fade = np.minimum(1.0, np.minimum(np.arange(len(held)), np.arange(len(held))[::-1]) / 4.0)[:, None]
    held = held + shake * fade
    held[:, 2] = np.maximum(held[:, 2], REST_Z)
    rest1 = np.repeat(goal[None], n_rest1, 0)
    pos = np.concatenate([rest0, held, rest1])
    yaw0 = rng.uniform(-8, 8)
    yaw = yaw0 + np.concatenate([np.zeros(n_rest0), np.cumsum(rng.normal(0, 0.3, len(held))), np.zeros(n_rest1)])
    yaw[len(rest0) + len(held):] = yaw[len(rest0) + len(held) - 1]
    return np.arange(len(pos)) * dt, pos, yaw


@dataclass
class PersonDemo:
    """One rendered demonstration: RGB frames, their times, and the truth beside them."""

    frames: list[np.ndarray]
    timestamps: np.ndarray
    object_base: np.ndarray       # [T, K, 3] object keypoints (layout order), base frame, truth
    object_world: np.ndarray      # [T, K, 3] the same in the reference marker's world frame
    camera: SceneCamera
    layout: CellLayout
    start_xy: np.ndarray
    goal_xy: np.ndarray


def sample_start_goal(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    s = np.array([rng.uniform(*START_BOX[0]), rng.uniform(*START_BOX[1])])
    g = np.array([rng.uniform(*GOAL_BOX[0]), rng.uniform(*GOAL_BOX[1])])
    return s, g


def render_person_demo(seed: int, *, layout: CellLayout = CellLayout(), camera: SceneCamera = CELL_CAMERA,
                       fps: float = 10.0, style: PersonStyle = PersonStyle(), start_xy=None, goal_xy=None,
                       show_world_marker: bool = True, show_object_marker: bool = True) -> PersonDemo:
    """Render one person demo (seeded). ``show_world_marker=False`` / ``show_object_marker=False``
    leave a marker out of the world (to test what extraction and the learner say then)."""
    if fps <= 0:
        raise InputError(f"fps={fps}", field="fps", expected="> 0")
    rng = np.random.default_rng(seed)
    s, g = sample_start_goal(rng)
    s = s if start_xy is None else np.asarray(start_xy, float)
    g = g if goal_xy is None else np.asarray(goal_xy, float)
    t, pos, yaw = person_path(rng, s, g, fps, style)
    bullet = Bullet()
    try:
        add_table(bullet)
        if show_world_marker:
            add_world_marker(bullet, layout)
        body = add_marked_object(bullet, layout, pos[0], yaw_deg=float(yaw[0]))
        if not show_object_marker:   # the marker links drawn fully transparent
            for link in range(p.getNumJoints(body, physicsClientId=bullet.client)):
                p.changeVisualShape(body, link, rgbaColor=[0, 0, 0, 0], physicsClientId=bullet.client)
        frames, truth = [], []
        for x, a in zip(pos, yaw):
            bullet.set_pose(body, x, Rotation.from_euler("z", a, degrees=True).as_quat())
            truth.append(object_points(bullet, body, layout))
            frames.append(render(bullet, camera))
    finally:
        bullet.close()
    base = np.array(truth)
    T_wb = np.linalg.inv(layout.T_base_world)
    world = base @ T_wb[:3, :3].T + T_wb[:3, 3]
    return PersonDemo(frames, t, base, world, camera, layout, s, g)
