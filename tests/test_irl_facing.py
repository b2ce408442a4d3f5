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
from robot_irl.irl.facing import REACH_M, facing_dynamics, facing_pairs, least_rotation, roll_rows
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


def test_roll_residual_sees_the_roll_and_nothing_else(dyn):
    """Near zero for a pose turned about the base with the flange turned back (the roll kept, to the
    2 degrees by which joint 7 is off vertical at START); 10 cm x sin(angle) for a roll."""
    assert facing_pairs(dyn.frames) == [(0, 1)]
    model, pairs = facing_dynamics(dyn)
    q0 = torch.tensor(START[None])
    rows = roll_rows(model.keypoints(q0), pairs, 2, torch.ones(3, 6, dtype=torch.float64), 1.0)
    kept = torch.tensor(START[None] + [0.5, 0.1, 0, 0, 0, 0, 0.5])
    x, J = model.keypoints(kept, jacobian=True)
    e, Je, We = rows(x.reshape(1, 1, -1), J[None])
    assert e.abs().max() < 0.06 * REACH_M and Je.shape == (1, 1, 1, 7) and We.shape == (3, 1)
    # a roll about the pair's line: turn the virtual point's offset about it by 0.2 rad
    a, b = (np.asarray(f.offset) for f in model.frames[:2])
    d = (b - a) / np.linalg.norm(b - a)
    c = np.asarray(model.frames[2].offset) - (a + b) / 2
    rolled = np.cos(0.2) * c + np.sin(0.2) * np.cross(d, c) + (1 - np.cos(0.2)) * (d @ c) * d
    with_roll = KinematicDynamics(dyn.urdf, dyn.frames + [KeypointFrame("r", dyn.frames[0].link, tuple((a + b) / 2 + rolled))])
    assert facing_pairs(with_roll.frames) == []            # three on one link: nothing left free
    x_r = with_roll.keypoints(q0)
    e, _, _ = rows(x_r.reshape(1, 1, -1), torch.zeros(1, 1, 9, 7, dtype=torch.float64))
    assert abs(abs(float(e)) - REACH_M * np.sin(0.2)) < 1e-3


def test_plan_with_the_facing_held_keeps_the_wrist_level(dyn):
    """Goal: the keypoints where the expert would put them, the base turned 0.5 rad and the flange
    turned back (orientation kept). The plain plan reaches them with a tilted flange; held, it does not."""
    model, _ = facing_dynamics(dyn)       # its third keypoint: where the roll shows
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
