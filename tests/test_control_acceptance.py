"""Issue 6 acceptance, end to end on the sim: record Place-v0 expert demos into a library, learn a
time-dependent cost from their ground-truth robot keypoints (the MBIRL work), then `robot-irl run
--arm pybullet` drives the arm from two held-out demos' start poses to their goals through the
safety filter, recording each run (with video) as an episode that `robot-irl demos show` opens."""
from __future__ import annotations

import argparse
import json
import os

import numpy as np
import pybullet_data
import pytest

from robot_irl.control import cli as control_cli
from robot_irl.irl import LearnerConfig, fit_cost
from robot_irl.irl.library_demos import demos_from_library
from robot_irl.library import Library
from robot_irl.library import cli as library_cli
from robot_irl.models import KinematicDynamics, frames_from_spec
from robot_irl.record.sim import record_sim
from sim.robots import ROBOTS

pytestmark = pytest.mark.timeout(120)


def cli(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd")
    control_cli.register(sub)
    library_cli.register(sub)
    args = p.parse_args(argv)
    return args.func(args)


def test_run_reaches_held_out_place_goals_and_opens_as_an_episode(tmp_path, capsys):
    lib = Library.open(tmp_path / "lib", create=True)
    record_sim(lib, "robot_irl/Place-v0", episodes=3, seed=0, render_size=(160, 120), tags=["train"])
    held_out = record_sim(lib, "robot_irl/Place-v0", episodes=2, seed=100, render_size=(160, 120), tags=["heldout"])

    train, spec = demos_from_library(lib, "tag:train", rows=10, keypoints="truth")
    test, _ = demos_from_library(lib, "tag:heldout", rows=10, keypoints="truth")
    dyn = KinematicDynamics(os.path.join(pybullet_data.getDataPath(), ROBOTS["iiwa"].urdf), frames_from_spec(spec))
    trained = fit_cost(train, dyn, "timedep", LearnerConfig(rows=10, outer_iters=60, checkpoint_every=10_000,
                                                            log_every=10_000), run_dir=tmp_path / "run")
    planned = trained.evaluate(test)      # the MBIRL work's held-out figure, from the demos' own starts

    idx = [held_out[0].keypoint_spec.index(n) for n in spec.names]
    errors = []
    for ep in held_out:
        goal = ep.arrays("state")["goal_3d"][0][idx]
        np.save(tmp_path / f"{ep.id}.npy", goal)
        assert cli(["run", "--arm", "pybullet", "--run", str(tmp_path / "run"), "--goal", str(tmp_path / f"{ep.id}.npy"),
                    "--like", ep.id, "--library", str(tmp_path / "lib"), "--camera", "front",
                    "--camera-size", "160x120", "--json"]) == 0
        out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        err = np.linalg.norm(np.asarray(out["final_keypoints"]) - goal, axis=-1)
        errors.append(float(err.max()))

        run_ep = Library.open(tmp_path / "lib").episode(out["episode"])
        assert run_ep.task == ep.task and run_ep.meta["extra"]["like"] == ep.id
        np.testing.assert_allclose(run_ep.arrays("state")["joint_pos"][0], ep.arrays("state")["joint_pos"][0],
                                   atol=0.02)                      # started where the held-out demo did
        assert cli(["demos", "show", out["episode"], "--check", "--json", "--library", str(tmp_path / "lib")]) == 0
        shown = json.loads(capsys.readouterr().out)
        assert shown["source"] == "arm" and shown["cameras"]["cam0"]["frames"] == out["steps"]
        assert shown["keypoints"] == spec.names and "keypoints_3d" in shown["streams"]["state"]["columns"]
    print(f"\nheld-out runs: final keypoint error (max over keypoints) {[round(e * 100, 2) for e in errors]} cm; "
          f"planned on the demos (trained.evaluate): final {planned['final_err_cm']:.2f} cm, "
          f"path {planned['path_err_cm']:.2f} cm")
    assert max(errors) < 0.02
