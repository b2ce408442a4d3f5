"""The learned-cost runner (robot_irl.control.mpc): a tiny timedep cost trained on synthetic L-shaped
demos of the sim iiwa's keypoints, saved, reloaded and run on the PyBullet arm through the safety
filter; plus ``robot-irl run`` (dry run, a real run recorded in a library, bad input)."""
from __future__ import annotations

import argparse
import json
import os

import gymnasium
import pybullet_data
import numpy as np
import pytest
import torch

import sim  # noqa: F401  (registers the envs)
from robot_irl.control import FakeClock, SafetyConfig, backend_config, make_arm
from robot_irl.control import cli as control_cli
from robot_irl.control.mpc import keypoints_at, run_learned
from robot_irl.errors import InputError
from robot_irl.irl import LearnerConfig, fit_cost, load_run
from robot_irl.models import KinematicDynamics, frames_from_spec
from sim.robots import ROBOTS
from test_irl_helpers import l_demos

START = ROBOTS["iiwa"].rest_pose
DX, DZ = -0.08, -0.08


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    spec = gymnasium.make("robot_irl/Reach-v0").unwrapped.keypoint_spec
    dyn = KinematicDynamics(os.path.join(pybullet_data.getDataPath(), ROBOTS["iiwa"].urdf), frames_from_spec(spec))
    demos = l_demos(dyn, START, n=2, dx=DX, dz=DZ, rows=6)
    path = tmp_path_factory.mktemp("runs") / "reach"
    fit_cost(demos, dyn, "timedep", LearnerConfig(outer_iters=20, checkpoint_every=1000, log_every=1000),
             run_dir=path)
    return path


def goal_of(trained):
    x0 = keypoints_at(trained, START)
    return x0 + np.array([DX, 0.0, DZ])


def test_learned_cost_reaches_the_goal_through_the_filter(run_dir):
    trained = load_run(run_dir)
    c = FakeClock()
    arm = make_arm("pybullet", backend_config("pybullet", {"robot": "iiwa"}), safety=SafetyConfig(), clock=c)
    with arm:
        rec = run_learned(arm, trained, goal_of(trained), steps=40)
    a = rec.arrays()
    print("final error cm", rec.final_err_m * 100, rec.summary())
    assert rec.reached and rec.final_err_m < 0.02
    assert len(rec.planned_paths) >= 1 and rec.planned_paths[0].shape == (trained.horizon + 1, 2, 3)
    steps = np.abs(np.diff(np.vstack([START, a["sent"]]), axis=0))
    assert steps.max() <= SafetyConfig().max_delta + 1e-9
    assert not a["refused"].any()


def cli(argv):
    p = argparse.ArgumentParser()
    control_cli.register(p.add_subparsers(dest="cmd"))
    args = p.parse_args(argv)
    return args.func(args)


def test_cli_dry_run_prints_the_planned_path(run_dir, capsys):
    trained = load_run(run_dir)
    g = goal_of(trained)
    ee = ",".join(str(v) for v in g[0])
    assert cli(["run", "--arm", "pybullet", "--run", str(run_dir), "--goal", ee, "--dry-run"]) == 0
    out = json.loads(capsys.readouterr().out)
    path = np.asarray(out["planned_keypoints"])
    assert path.shape == (trained.horizon + 1, 2, 3)
    assert np.linalg.norm(path[-1, 0] - g[0]) < 0.02
    np.testing.assert_allclose(path[0], keypoints_at(trained, START), atol=1e-3)  # the arm settles slightly


def test_cli_run_records_an_episode(run_dir, tmp_path, capsys):
    from robot_irl.library import Library
    trained = load_run(run_dir)
    gfile = tmp_path / "goal.npy"
    np.save(gfile, goal_of(trained))
    lib = tmp_path / "lib"
    assert cli(["run", "--arm", "pybullet", "--run", str(run_dir), "--goal", str(gfile), "--library", str(lib),
                "--steps", "40"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["final_err_cm"] < 2.0
    ep = Library.open(lib).episode(out["episode"])
    assert ep.source == "arm" and len(ep.arrays("state")["target_sent"]) == out["steps"]


def test_cli_unknown_run_folder_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="config.json"):
        cli(["run", "--arm", "pybullet", "--run", str(tmp_path / "nope"), "--goal", "0.5,0,0.5", "--dry-run"])
    with pytest.raises(InputError, match="goal"):
        cli(["run", "--arm", "pybullet", "--run", str(tmp_path / "nope"), "--goal", "0.5,zero", "--dry-run"])
