"""The simulated world: env API, ground truth, determinism, experts, bad input."""
import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import sim
from robot_irl.errors import UnknownNameError
from sim.expert import expert_for

ROBOTS = ["iiwa", "panda"]


@pytest.mark.parametrize("env_id", sorted(sim.ENV_IDS))
@pytest.mark.parametrize("robot", ROBOTS)
def test_check_env(env_id, robot):
    env = gym.make(env_id, robot=robot)
    check_env(env.unwrapped, skip_render_check=False)
    env.close()


@pytest.mark.parametrize("env_id", sorted(sim.ENV_IDS))
@pytest.mark.parametrize("robot", ROBOTS)
def test_expert_succeeds(env_id, robot):
    env = gym.make(env_id, robot=robot)
    for seed in (0, 1):
        obs, info = env.reset(seed=seed)
        expert = expert_for(env)
        for _ in range(env.unwrapped.max_steps):
            obs, _, terminated, truncated, info = env.step(expert.act(obs))
            if terminated or truncated:
                break
        assert terminated and info["is_success"], (env_id, robot, seed)
    env.close()


def _rollout(seed: int, variant=None):
    env = gym.make("robot_irl/Place-v0", variant=variant)
    obs, _ = env.reset(seed=seed)
    expert = expert_for(env)
    traj = [obs["keypoints"]]
    targets = []
    for _ in range(15):
        obs, _, _, _, info = env.step(expert.act(obs))
        traj.append(obs["keypoints"])
        targets.append(info["joint_target"])
    img = env.render()
    env.close()
    return np.array(traj), np.array(targets), img


def test_same_seed_same_episode():
    a, ta, ia = _rollout(3)
    b, tb, ib = _rollout(3)
    c, _, _ = _rollout(4)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ta, tb)
    np.testing.assert_array_equal(ia, ib)
    assert not np.allclose(a, c)


def test_action_is_bounded_delta_and_target_reported():
    env = gym.make("robot_irl/Reach-v0")
    obs, info = env.reset(seed=0)
    start = info["joint_target"].copy()
    big = np.r_[np.full(7, 10.0), 1.0]
    _, _, _, _, info = env.step(big)
    step = info["joint_target"] - start
    lim = env.unwrapped.robot.joint_limits
    assert np.all(step <= env.unwrapped.robot.max_delta + 1e-12)
    assert np.all((info["joint_target"] >= lim[:, 0]) & (info["joint_target"] <= lim[:, 1]))
    env.close()


def test_variants_change_scene_and_text():
    env = gym.make("robot_irl/Place-v0")
    _, info = env.reset(seed=0, options={"variant": {"shape": "cylinder", "color": "blue", "goal_region": "left"}})
    assert info["task_text"] == "place the blue cylinder to the left"
    goal_x = env.unwrapped.goal[env.unwrapped.keypoint_spec.index("obj"), 0]
    assert 0.36 <= goal_x <= 0.47
    env.close()


def test_keypoint_spec_drives_observation():
    env = gym.make("robot_irl/Push-v0", robot="panda")
    obs, _ = env.reset(seed=0)
    spec = env.unwrapped.keypoint_spec
    assert spec.names == ["ee", "ee_blob", "obj"]
    assert obs["keypoints"].shape == (3, 3)
    ee = obs["keypoints"][spec.index("ee")]
    assert np.linalg.norm(ee - obs["ee_pos"]) < 0.15   # the marker sits on the hand
    with pytest.raises(UnknownNameError, match="valid|one of"):
        spec.index("elbow")
    env.close()


@pytest.mark.parametrize("kwargs, kind", [
    ({"robot": "ur5"}, "robot"),
    ({"camera": "ceiling"}, "camera"),
    ({"variant": {"shape": "torus"}}, "object shape"),
    ({"variant": {"colour": "red"}}, "variant field"),
])
def test_bad_input_lists_valid_names(kwargs, kind):
    with pytest.raises(UnknownNameError) as e:
        gym.make("robot_irl/Place-v0", **kwargs)
    assert kind in str(e.value) and "one of" in str(e.value)


def test_unknown_env_id_lists_valid():
    with pytest.raises(UnknownNameError) as e:
        sim.make("robot_irl/Stack-v0")
    assert "robot_irl/Place-v0" in str(e.value)
