"""Holding the tool as the demos ended it (robot_irl.control.tool) and landing a plan with it
(robot_irl.control.mpc: solve_reach's hold, PlanTracker's finish), on the sim iiwa's URDF."""
from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np
import pybullet_data
import pytest

from robot_irl.control.mpc import PlanTracker, keypoints_at, reach_objective, solve_reach
from robot_irl.control.tool import ToolHold, tool_link
from robot_irl.errors import InputError
from robot_irl.models import KinematicDynamics
from robot_irl.models.frames import KeypointFrame
from sim.robots import ROBOTS

URDF = os.path.join(pybullet_data.getDataPath(), ROBOTS["iiwa"].urdf)
JOINTS = [f"lbr_iiwa_joint_{i}" for i in range(1, 8)]
START = np.asarray(ROBOTS["iiwa"].rest_pose, float)


def turned(q: np.ndarray, joint: int, by: float) -> np.ndarray:
    q = np.array(q, dtype=float)
    q[joint] += by
    return q


def test_the_hold_keeps_only_what_the_demos_agree_on():
    assert tool_link(URDF, JOINTS) == "lbr_iiwa_link_7"
    # the base joint turns the tool about the vertical and keeps its height
    close = ToolHold.from_demos(URDF, JOINTS, [START, turned(START, 0, 0.04)])
    assert close.axes is not None and close.height is not None
    assert close.turned_rad(START) == pytest.approx(0.02, abs=2e-3)        # the mean lies between them
    r, J = close.residual(turned(START, 0, 0.02))
    assert r.shape == (10,) and J.shape == (10, 7) and float(abs(r).max()) < 1e-6
    apart = ToolHold.from_demos(URDF, JOINTS, [START, turned(START, 0, 0.6)])
    assert apart.axes is None and apart.height == pytest.approx(close.height, abs=1e-6)
    # the shoulder tilts the tool and lifts it by decimetres: nothing to hold
    assert ToolHold.from_demos(URDF, JOINTS, [START, turned(START, 1, 0.5)]) is None
    with pytest.raises(InputError, match="demo_end_joints"):
        ToolHold.from_demos(URDF, JOINTS, [START[:6]])


def test_a_reach_with_the_hold_turns_the_tool_back_and_still_reaches_the_goal():
    """One keypoint at the flange fixes where it is, not how it is turned: from a start turned 0.4
    rad about the flange's axis the plain reach leaves it turned, the held reach turns it back."""
    flange = KinematicDynamics(URDF, [KeypointFrame("flange", "lbr_iiwa_link_7", (0.0, 0.0, 0.0))], joints=JOINTS)
    trained = SimpleNamespace(dynamics=flange)
    hold = ToolHold.from_demos(URDF, JOINTS, [START])
    q0 = turned(START, 6, 0.4)
    goal = keypoints_at(trained, START) + np.array([0.05, -0.04, 0.0])
    q_plain, _, e_plain = solve_reach(trained, goal, q0)
    q_held, _, e_held = solve_reach(trained, goal, q0, hold=hold, iters=100)
    assert e_plain < 1e-3 and e_held < 3e-3
    assert hold.turned_rad(q_plain) > 0.3 and hold.turned_rad(q_held) < 0.02
    assert reach_objective(trained, goal, q_held, hold) < reach_objective(trained, goal, q_plain, hold)


def test_a_landed_plan_bends_onto_its_new_end_without_a_stop():
    rows = np.zeros((3, 2))
    rows[:, 0] = 0.1
    end = np.array([0.3, 0.0])
    shift = np.array([0.02, -0.03])
    tr = PlanTracker(lambda q: (rows, np.zeros((4, 1, 3))), 2, np.arange(2), horizon=3, replan_every=3,
                     max_step=0.05, finish=lambda q_end: q_end + shift)
    ticks = [tr(np.zeros(2)) for _ in range(6)]      # 3 rows x 2 ticks
    np.testing.assert_allclose(ticks[-1], end + shift)
    np.testing.assert_allclose(ticks[0], [0.05, 0.0] + shift / 6)    # the shift ramps in from the start
    steps = np.abs(np.diff(np.vstack([np.zeros(2), ticks]), axis=0)).max(1)
    assert steps.max() <= 0.05 + np.abs(shift).max() / 6 + 1e-12
    assert tr.servoing
    np.testing.assert_allclose(tr(end + shift), end + shift)         # the servo holds the landed end
    # a plan cut into segments is landed only on the segment that reaches its end
    calls = []
    seg = PlanTracker(lambda q: (rows, np.zeros((4, 1, 3))), 2, np.arange(2), horizon=3, replan_every=1,
                      max_step=0.05, finish=lambda q_end: calls.append(q_end) or None)
    seg(np.zeros(2))
    assert calls == []


HELD = (0.0, 0.0, 0.12)      # the sim iiwa's grasp: 12 cm down link 7's axis


def _past_the_range() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A pose with the tool held as at START whose elbow (joint 4) lies 0.05 rad past a range's
    bound, that pose clamped into the range, and the range."""
    flange = SimpleNamespace(dynamics=KinematicDynamics(URDF, [KeypointFrame("flange", "lbr_iiwa_link_7", (0.0, 0.0, 0.0))],
                                                        joints=JOINTS))
    bent = turned(START, 3, -0.3)
    q_free = solve_reach(flange, keypoints_at(flange, bent), bent, hold=ToolHold.from_demos(URDF, JOINTS, [START]),
                         iters=100)[0]
    lower, upper = np.full(7, -2.9), np.full(7, 2.9)
    lower[3] = q_free[3] + 0.05
    return q_free, np.clip(q_free, lower, upper), lower, upper


def test_a_goal_past_the_range_tilts_the_tool_to_put_the_held_point_where_it_goes():
    hold = ToolHold.from_demos(URDF, JOINTS, [START], held_point=HELD)
    q_free, q_clamped, lower, upper = _past_the_range()
    target = hold.held_at(q_free)
    assert np.linalg.norm(hold.held_at(q_clamped) - target) > 0.01      # the held tool, one joint short
    q = hold.tilt_to(q_clamped, target, lower, upper)
    assert np.all(q >= lower - 1e-9) and np.all(q <= upper + 1e-9)
    assert np.linalg.norm(hold.held_at(q) - target) < 1e-3
    assert 0.01 < hold.turned_rad(q) < 0.15                               # a small tilt, not a new pose
    assert hold.to_dict()["held_point"] == list(HELD)


def test_only_a_reach_the_range_stopped_is_tilted_and_only_with_a_held_point():
    """The planner's landing (LearnedPlanner._tilted) leaves a reach inside the range alone and tilts
    one that ends on a bound; a hold without a held point never tilts."""
    from robot_irl.control.mpc import LearnedPlanner

    flange = KinematicDynamics(URDF, [KeypointFrame("flange", "lbr_iiwa_link_7", (0.0, 0.0, 0.0))], joints=JOINTS)
    q_free, q_clamped, lower, upper = _past_the_range()
    flange.lower, flange.upper = flange.as_tensor(lower), flange.as_tensor(upper)     # the planning range
    trained = SimpleNamespace(dynamics=flange)
    hold = ToolHold.from_demos(URDF, JOINTS, [q_free], held_point=HELD)     # demos that ended at q_free
    planner = SimpleNamespace(hold=hold, trained=trained, goal=keypoints_at(trained, q_free))
    q_held = solve_reach(trained, planner.goal, q_clamped, hold=hold, iters=100)[0]
    assert q_held[3] == pytest.approx(lower[3])                          # stopped by the bound
    q = LearnedPlanner._tilted(planner, q_held)
    assert np.linalg.norm(hold.held_at(q) - hold.held_at(q_free)) < 2e-3 < \
        np.linalg.norm(hold.held_at(q_held) - hold.held_at(q_free))
    inside = solve_reach(trained, keypoints_at(trained, START), START, hold=hold)[0]
    assert LearnedPlanner._tilted(planner, inside) is inside
    planner.hold = ToolHold.from_demos(URDF, JOINTS, [q_free])
    assert LearnedPlanner._tilted(planner, q_held) is q_held
    with pytest.raises(InputError, match="held_point"):
        planner.hold.tilt_to(q_held, hold.held_at(q_free), lower, upper)
    with pytest.raises(InputError, match="held_point"):
        ToolHold(URDF, JOINTS, np.eye(3), held_point=(0.0, 0.12))
