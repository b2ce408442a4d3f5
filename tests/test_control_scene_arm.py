"""SceneArmBackend: the robot of a sim task scene driven as an Arm (through the safety filter), with
the gripper the demos' column says, rendered with its keypoint features; gripper_from_demos."""
from __future__ import annotations

import gymnasium
import numpy as np
import pytest

import sim  # noqa: F401  (registers the envs)
from robot_irl.control import FakeClock, SafetyConfig
from robot_irl.control.arm import Arm
from robot_irl.control.scene_arm import GripperPlan, SceneArmBackend, gripper_from_demos
from robot_irl.errors import InputError
from sim.camera import get_camera


class FakeEpisode:
    def __init__(self, gripper, ep_id="ep"):
        self.id, self.streams = ep_id, {"state": None}
        self._g = np.asarray(gripper, float)

    def arrays(self, stream):
        return {"timestamp": np.arange(len(self._g)) * 0.1, "gripper": self._g}


def test_gripper_from_demos_reads_the_first_and_last_recorded_values():
    plan = gripper_from_demos([FakeEpisode([1, 1, 1, -1, np.nan]), FakeEpisode([1, 1, -1, np.nan])])
    assert plan == GripperPlan(moving=1.0, at_rest=-1.0) and plan.releases
    assert not gripper_from_demos([FakeEpisode([1, 1, 1, np.nan])]).releases
    with pytest.raises(InputError, match="gripper column has no value"):
        gripper_from_demos([FakeEpisode([np.nan, np.nan])])


@pytest.fixture(scope="module")
def env():
    e = gymnasium.make("robot_irl/Place-v0", robot="iiwa", render_size=(64, 48))
    yield e
    e.close()


def _drive(env, gripper: GripperPlan):
    env.reset(seed=3, options={"variant": {"goal_region": "right"}})
    u = env.unwrapped
    assert u.robot.holding
    clock = FakeClock()
    backend = SceneArmBackend(env, gripper, clock)
    with Arm(backend, safety=SafetyConfig(), clock=clock) as arm:
        q0 = arm.get_observation().q
        target = q0 + np.r_[0.0, 0.08, 0.0, 0.0, 0.0, 0.0, 0.0]
        for k in range(1, 21):                      # 2 s at 10 Hz: 1 s moving, 1 s holding still
            arm.get_observation()                   # the filter judges each target against a fresh state
            arm.send_action(q0 + min(k / 10, 1.0) * (target - q0))
            clock.sleep(0.1)
            arm.poll()
        frame = arm.render(get_camera("front", (64, 48)))
        q = arm.get_observation().q
    return backend, u, q, target, frame


def test_scene_arm_moves_the_env_robot_and_lets_go_once_at_rest(env):
    backend, u, q, target, frame = _drive(env, GripperPlan(moving=1.0, at_rest=-1.0))
    assert np.abs(q - target).max() < 0.02             # the env's own robot followed the filter's targets
    assert backend.released_at is not None and not u.robot.holding
    assert frame.shape == (48, 64, 3) and len(backend.truth) == 1
    assert np.allclose(backend.truth[0], u.scene.keypoints_3d())
    assert u.bullet is not None                        # the env still owns its world after disconnect


def test_scene_arm_keeps_holding_when_the_demos_never_let_go(env):
    backend, u, *_ = _drive(env, GripperPlan(moving=1.0, at_rest=1.0))
    assert backend.released_at is None and u.robot.holding
