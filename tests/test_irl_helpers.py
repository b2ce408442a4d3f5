"""Shared helpers (no tests) for the models/irl tests: robots from pybullet_data and L-shaped demos."""
from __future__ import annotations

import os

import numpy as np
import pybullet_data
import torch

from robot_irl.irl import DemoSet
from robot_irl.models import KeypointFrame, KinematicDynamics

DATA = pybullet_data.getDataPath()
IIWA_URDF = os.path.join(DATA, "kuka_iiwa", "model.urdf")
PANDA_URDF = os.path.join(DATA, "franka_panda", "panda.urdf")
IIWA_Q0 = [0.0, 0.0, 0.0, 1.5708, 0.0, 1.0367, 0.0]
PANDA_Q0 = [0.0, -0.3, 0.0, -2.2, 0.0, 2.0, 0.8]


def iiwa() -> KinematicDynamics:
    return KinematicDynamics(IIWA_URDF, [KeypointFrame("a", "lbr_iiwa_link_7", (0, 0, 0.05)),
                                         KeypointFrame("b", "lbr_iiwa_link_7", (0, 0, 0.10))])


def panda() -> KinematicDynamics:
    return KinematicDynamics(PANDA_URDF, [KeypointFrame("a", "panda_hand", (0, 0, 0.05)),
                                          KeypointFrame("b", "panda_hand", (0, 0, 0.10))],
                             joints=[f"panda_joint{i}" for i in range(1, 8)])


def l_demos(model: KinematicDynamics, q0, n: int = 5, seed: int = 0, dx: float = -0.15, dz: float = -0.2,
            rows: int = 10) -> DemoSet:
    """L-shaped demos as in the paper's benchmark, scaled to the robot (x first, then z)."""
    rng = np.random.default_rng(seed)
    x0 = model.keypoints(torch.tensor([q0], dtype=model.dtype))[0].numpy()
    half = rows // 2
    out = []
    for _ in range(n):
        g1 = x0.copy()
        g1[:, 0] += dx + 0.01 * rng.standard_normal()
        g2 = g1.copy()
        g2[:, 2] += dz + 0.01 * rng.standard_normal()
        d = np.repeat(x0[None], rows, 0)
        d[:half, :, 0] = np.linspace(x0[:, 0], g1[:, 0], half)
        d[half:, :, 0] = g1[:, 0]
        d[half:, :, 2] = np.linspace(g1[:, 2], g2[:, 2], rows - half)
        out.append(d)
    return DemoSet(np.stack(out), np.arange(float(rows)), q0=np.array(q0))
