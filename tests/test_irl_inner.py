"""The inner loop's Gauss-Newton step at joint limits (robot_irl.irl.inner)."""
import torch

from robot_irl.irl.inner import InnerConfig, optimise_actions
from test_irl_helpers import IIWA_Q0, iiwa


def test_gn_step_works_around_a_joint_held_at_its_limit():
    m = iiwa()
    q0 = torch.tensor([IIWA_Q0], dtype=m.dtype)
    # A1 and A3 start on one axis, so the minimum-norm step shares a turn between them; the goal
    # turns with A3 only and A1 may not move: reachable only if the step drops A1 once it is stuck
    q_goal = q0 + torch.tensor([[0.0, -0.3, 0.4, -0.3, 0.0, 0.2, 0.0]], dtype=m.dtype)
    goal = 100 * m.keypoints(q_goal).reshape(1, -1)        # cm
    m.upper = m.upper.clone()
    m.upper[0] = IIWA_Q0[0] + 0.02
    H = 4
    W = torch.ones(H, goal.shape[1], dtype=m.dtype)
    u, r = optimise_actions(m, W, q0, goal, H, InnerConfig(steps=5), scale=100.0)
    final_cm = (100 * r.x[0, -1] - goal.reshape(-1, 3)).norm(dim=-1).max()
    assert r.q[0, :, 0].max() <= m.upper[0] + 1e-9
    assert torch.allclose(r.q[0, 1:], q0 + torch.cumsum(u[0], 0))    # actions never ask past a limit
    assert final_cm < 0.5, final_cm
