"""Sim exploration data, plan execution and the `robot-irl dynamics collect|train` CLI (tiny sizes)."""
from __future__ import annotations

import argparse
import json

import gymnasium as gym
import numpy as np
import pytest

from robot_irl.errors import InputError
from robot_irl.models import dynamics_latents
from robot_irl.models.collect import execute_rows, settle_time


def test_settle_time_ignores_idle_tail():
    t = np.arange(6.0)
    q = np.array([[0.0], [0.5], [1.0], [1.0], [1.0], [1.0]])
    assert settle_time(t, q) == 2.0
    assert settle_time(t, np.zeros((6, 1))) == 5.0


def test_execute_rows_splits_into_bounded_steps():
    import sim  # noqa: F401

    env = gym.make("robot_irl/Place-v0", robot="iiwa", render_size=(64, 48))
    obs, _ = env.reset(seed=1)
    cap = float(env.unwrapped.action_space.high[0])
    deltas = np.zeros((3, 7))
    deltas[:, 0] = [2.5 * cap, -cap, 0.0]
    out = execute_rows(env, obs, deltas)
    assert int(out["substeps"]) == 3 and len(out["q_steps"]) == 1 + 3 * 3
    assert out["x_rows"].shape == (4, 3, 3)
    # the joint follows the commanded rows (position control, small lag)
    assert abs(out["q_rows"][1, 0] - obs["joint_pos"][0] - 2.5 * cap) < 0.02
    env.close()


def test_collect_train_cli_and_latents(tmp_path, capsys):
    from robot_irl.models.cli import register

    ap = argparse.ArgumentParser()
    register(ap.add_subparsers())
    data = tmp_path / "explore.npz"
    a = ap.parse_args(["dynamics", "collect", "--episodes", "4", "--rows", "4", "--extra", "1", "--out", str(data),
                       "--quiet"])
    assert a.func(a) == 0
    d = np.load(data)
    assert d["x"].shape == (4, 5, 2, 3) and d["q"].shape == (4, 5, 7) and d["u"].shape == (4, 4, 7)
    assert list(d["names"]) == ["ee", "ee_blob"] and np.isfinite(d["x"]).all()
    run = tmp_path / "dyn"
    t = ap.parse_args(["dynamics", "train", "--data", str(data), "--out", str(run), "--epochs", "3", "--hidden", "16",
                       "--multistep", "3", "--holdout", "0.25"])
    assert t.func(t) == 0
    printed = capsys.readouterr().out
    assert "one step err cm" in printed and f"model saved to {run / 'model.pt'}" in printed and "{" not in printed
    m = json.loads((run / "metrics.json").read_text())
    assert m["one_step_err_cm"] > 0 and m["multistep_steps"] == 3
    from robot_irl.models import LearnedDynamics

    model = LearnedDynamics.load(run / "model.pt")
    h = dynamics_latents(model, d["x"][0, :-1], d["q"][0, :-1], d["u"][0])
    assert h.shape == (4, 3 * 16) and np.all(np.abs(h) <= 1)
    with pytest.raises(InputError, match="shapes"):
        dynamics_latents(model, d["x"][0, :-1], d["q"][0, :-1], d["u"][0, :2])
    bad = ap.parse_args(["dynamics", "train", "--data", str(tmp_path / "none.npz"), "--out", str(run)])
    with pytest.raises(InputError, match="not found"):
        bad.func(bad)


def test_an_exploration_episode_depends_only_on_its_seed_and_index():
    """What lets `dynamics collect --ray` run episodes anywhere in any order: episode e alone (a
    fresh process-level env, nothing run before it) equals episode e of a whole collection."""
    from robot_irl.models.collect import ExplorePlan, collect_exploration, explore_episode, release_env

    whole = collect_exploration(episodes=3, rows=4, extra=1, seed=5, random_frac=0.5)
    try:
        alone = explore_episode(ExplorePlan(rows=4, extra=1, seed=5, random_frac=0.5), 2)
    finally:
        release_env()
    for k in ("x", "q", "u"):
        assert np.array_equal(alone[k], whole[k][2]), k
    assert int(alone["seed"]) == whole["seeds"][2] == 5 * 100_003 + 2
    other = collect_exploration(episodes=3, rows=4, extra=1, seed=6, random_frac=0.5)
    assert not np.array_equal(other["u"], whole["u"])
