"""Benchmark the simulated world.

1. Env steps/s without rendering, at the env's default control rate and physics substeps, against
   the raw PyBullet work one step does (the same substeps, joint commands and state reads) in a bare
   loop, measured in the same run: ``env_overhead_ratio`` = env time / bare time per step.
2. Render fps per robot scene at 320×240 and 640×480 (markers, blobs and objects included).

Last line: one JSON object.  Usage: ``python scripts/bench_sim.py [--steps 2000]``
"""
from __future__ import annotations

import argparse
import json
import time

import gymnasium as gym
import numpy as np
import pybullet as p

import sim  # noqa: F401


def bare_loop(env, steps: int) -> float:
    """The PyBullet calls one env step makes, and nothing else."""
    u = env.unwrapped
    b, r = u.bullet, u.robot
    c = b.client
    q = u.joint_target.copy()
    links = [r.link_index(kp.link) for kp in u.scene.keypoint_defs if kp.body == "robot"][:1]
    objs = [o.body for o in u.scene.objects.values()]
    t = time.perf_counter()
    for _ in range(steps):
        p.setJointMotorControlArray(r.body, r.joints, p.POSITION_CONTROL, targetPositions=list(q),
                                    forces=[r.forces] * r.n_dof, physicsClientId=c)
        for _ in range(u.substeps):
            p.stepSimulation(physicsClientId=c)
        p.getJointStates(r.body, r.joints, physicsClientId=c)
        p.getLinkStates(r.body, [r.ee_link] + links, computeForwardKinematics=True, physicsClientId=c)
        for o in objs:
            p.getBasePositionAndOrientation(o, physicsClientId=c)
    return (time.perf_counter() - t) / steps


def env_loop(env, steps: int) -> float:
    a = np.zeros(env.action_space.shape)
    a[-1] = 1.0
    t = time.perf_counter()
    for _ in range(steps):
        env.step(a)
    return (time.perf_counter() - t) / steps


def render_fps(env, frames: int) -> float:
    env.render()
    t = time.perf_counter()
    for _ in range(frames):
        env.render()
    return frames / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--frames", type=int, default=30)
    args = ap.parse_args()
    out: dict[str, float] = {}
    ratios = []
    for robot in ("iiwa", "panda"):
        env = gym.make("robot_irl/Place-v0", robot=robot, max_steps=10**9)
        env.reset(seed=0)
        # interleave to share machine noise evenly; best of 3 each
        bare, ours = [], []
        for _ in range(3):
            bare.append(bare_loop(env, args.steps // 3))
            ours.append(env_loop(env, args.steps // 3))
        b, e = min(bare), min(ours)
        ratios.append(e / b)
        print(f"{robot:6s} place: env {1 / e:8.0f} steps/s, bare PyBullet {1 / b:8.0f} steps/s, "
              f"ratio {e / b:.3f} ({env.unwrapped.substeps} substeps at {1 / env.unwrapped.bullet.timestep:.0f} Hz)")
        out[f"{robot}_env_steps_per_s"] = round(1 / e, 1)
        out[f"{robot}_bare_steps_per_s"] = round(1 / b, 1)
        env.close()
    fps_320 = []
    for robot in ("iiwa", "panda"):
        for env_id in sorted(sim.ENV_IDS):
            for size in ((320, 240), (640, 480)):
                env = gym.make(env_id, robot=robot, render_size=size)
                env.reset(seed=0)
                fps = render_fps(env, args.frames if size[0] == 320 else max(args.frames // 3, 5))
                print(f"render {robot:6s} {env_id:20s} {size[0]}x{size[1]}: {fps:6.1f} fps")
                out[f"render_fps_{robot}_{env_id.split('/')[1]}_{size[0]}x{size[1]}"] = round(fps, 1)
                if size == (320, 240):
                    fps_320.append(fps)
                env.close()
    out["env_overhead_ratio"] = round(max(ratios), 3)
    out["render_fps_320x240"] = round(min(fps_320), 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
