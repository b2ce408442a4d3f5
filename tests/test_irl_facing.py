"""Holding the roll of a link that carries only two keypoints (robot_irl/irl/facing.py): the virtual
keypoint's geometry, and a plan to a goal reached by turning the base that keeps the wrist level
where the plain plan tilts it."""
from __future__ import annotations

import os

import numpy as np
import pybullet_data
import pytest
import torch

from robot_irl.irl import LearnerConfig
from robot_irl.irl.costs import make_cost
from robot_irl.irl.facing import facing_dynamics, facing_goals, facing_pairs, least_rotation
from robot_irl.irl.run import TrainedRun
from robot_irl.models import KinematicDynamics
from robot_irl.models.frames import KeypointFrame
from sim.robots import ROBOTS

IIWA = ROBOTS["iiwa"]
START = np.array([0.0, 0.6, 0.0, -1.4, 0.0, 1.1, -2.6])   # flange down, as the Place demos start


@pytest.fixture(scope="module")
def dyn():
    frames = [KeypointFrame("ee", IIWA.ee_link_name, tuple(IIWA.marker_offset)),
              KeypointFrame("ee_blob", IIWA.ee_link_name, tuple(IIWA.blob_offset))]
    return KinematicDynamics(os.path.join(pybullet_data.getDataPath(), IIWA.urdf), frames)


def test_least_rotation_turns_one_direction_into_the_other():
    g = torch.Generator().manual_seed(0)
    d0, d1 = (torch.nn.functional.normalize(torch.randn(6, 3, generator=g, dtype=torch.float64), dim=-1)
              for _ in range(2))
    d1[0], d1[1] = d0[0], -d0[1]                      # the same direction, and the opposite one
    R = least_rotation(d0, d1)
    assert torch.allclose((R @ d0[..., None]).squeeze(-1), d1, atol=1e-9)
    assert torch.allclose(R @ R.transpose(-1, -2), torch.eye(3, dtype=torch.float64).expand(6, 3, 3), atol=1e-9)
    assert torch.allclose(torch.linalg.det(R), torch.ones(6, dtype=torch.float64))
    assert torch.allclose(R[0], torch.eye(3, dtype=torch.float64))


def test_virtual_point_follows_a_link_that_only_moves(dyn):
    assert facing_pairs(dyn.frames) == [(0, 1)]
    model, pairs = facing_dynamics(dyn)
    start = model.keypoints(torch.tensor(START[None]))
    shift = torch.tensor([0.05, -0.1, 0.02], dtype=torch.float64)
    goal = facing_goals(start, start[:, :2] + shift, pairs)
    assert torch.allclose(goal[:, 0], start[:, 2] + shift, atol=1e-12)
    off = np.linalg.norm(np.cross(np.subtract(model.frames[2].offset, IIWA.marker_offset),
                                  IIWA.blob_offset - IIWA.marker_offset)) / np.linalg.norm(IIWA.blob_offset - IIWA.marker_offset)
    assert off > 0.05                                  # off the pair's line: the roll moves it


def test_plan_with_the_facing_held_keeps_the_wrist_level(dyn):
    """Goal: the keypoints where the expert would put them, the base turned 0.5 rad and the flange
    turned back (orientation kept). The plain plan reaches them with a tilted flange; held, it does not."""
    model, _ = facing_dynamics(dyn)
    q_goal = START + np.array([0.5, 0.1, 0.0, 0.0, 0.0, 0.0, 0.5])
    x_goal = dyn.keypoints(torch.tensor(q_goal[None]))[0]
    cost = make_cost("timedep", 6, 9, init=0.4, nonneg=True).to(torch.float64)
    run = TrainedRun("mbirl", dyn, LearnerConfig(rows=10), cost=cost)
    err = {}
    for hold in (False, True):
        u, x = run.plan(START, x_goal.numpy(), hold_facing=hold)
        q_end = START + u.sum(0)
        virt = model.keypoints(torch.tensor(np.stack([q_end, q_goal])))[:, 2]
        err[hold] = (float(np.linalg.norm(x[-1] - x_goal.numpy(), axis=-1).max()),
                     float(torch.linalg.norm(virt[0] - virt[1])))
    print("final keypoint error m, virtual point error m (plain, held):", err[False], err[True])
    assert err[True][0] < 0.01 and err[False][0] < 0.01
    assert err[True][1] < 0.3 * err[False][1]
