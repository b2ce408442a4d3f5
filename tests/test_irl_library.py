"""Library episodes -> DemoSet (demos_from_library), the `train --demos QUERY` CLI and its errors."""
from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from robot_irl.errors import InputError, UnknownNameError
from robot_irl.irl import cost_latents, fit_cost, LearnerConfig
from robot_irl.irl.library_demos import demos_from_library
from robot_irl.library import Library

ENV = "robot_irl/Place-v0"


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    from robot_irl.record.sim import record_sim

    lib = Library.open(tmp_path_factory.mktemp("lib") / "library", create=True)
    record_sim(lib, ENV, episodes=2, seed=3, variant={"goal_region": "left"}, render_size=(64, 48), tags=["a"])
    record_sim(lib, ENV, episodes=1, seed=4, variant={"goal_region": "right"}, render_size=(64, 48), tags=["a"])
    return lib


def test_demos_from_library_truth(lib):
    demos, spec = demos_from_library(lib, "tag:a", rows=10, keypoints="auto", goals="recorded")
    assert spec.names == ["ee", "ee_blob"]
    assert demos.keypoints.shape == (3, 10, 2, 3) and demos.q0.shape == (3, 7) and demos.goals.shape == (3, 2, 3)
    ep = lib.select("tag:a")[0]
    st = ep.arrays("state")
    np.testing.assert_allclose(demos.keypoints[0, 0], st["keypoints_3d"][0, :2], atol=1e-9)
    np.testing.assert_array_equal(demos.q_end[0], st["joint_pos"][-1])      # what `run` holds the tool as
    np.testing.assert_array_equal(demos.subset([2, 0]).q_end, demos.q_end[[2, 0]])
    # cut where the arm comes to rest: the last row is near the goal, not after a long idle
    assert np.linalg.norm(demos.keypoints[:, -1] - demos.goals, axis=-1).max() < 0.03
    final, _ = demos_from_library(lib, "tag:a", rows=10, keypoints="truth", goals="final")
    assert final.goals is None
    np.testing.assert_allclose(final.goal_keypoints(), final.keypoints[:, -1])


def test_library_errors(lib):
    with pytest.raises(InputError, match="selects no episode"):
        demos_from_library(lib, "tag:nothing")
    with pytest.raises(InputError, match="no extracted keypoints"):
        demos_from_library(lib, "tag:a", keypoints="extracted")
    with pytest.raises(UnknownNameError, match="unknown keypoint 'wrist'"):
        demos_from_library(lib, "tag:a", names=["ee", "wrist"])


def test_missing_throughout_and_mismatched_spec(tmp_path):
    from robot_irl.record.sim import record_sim

    lib = Library.open(tmp_path / "library", create=True)
    (ep,) = record_sim(lib, ENV, episodes=1, seed=5, render_size=(64, 48), tags=["x"])
    st = ep.arrays("state")
    kp = st["keypoints_3d"].copy()
    kp[:, 1] = np.nan
    ep.write_derived("keypoints", {"keypoints": kp, "timestamps": st["timestamp"]}, meta={"camera": "cam0"})
    with pytest.raises(InputError, match=r"\['ee_blob'\] missing throughout"):
        demos_from_library(lib, "tag:x", keypoints="extracted")
    record_sim(lib, ENV, episodes=1, seed=6, robot="panda", render_size=(64, 48), tags=["x"])
    with pytest.raises(InputError, match="specs differ"):
        demos_from_library(lib, "tag:x", keypoints="truth")


def test_cli_train_from_query_with_diagnosis(lib, tmp_path):
    from robot_irl.irl.cli import register

    ap = argparse.ArgumentParser()
    register(ap.add_subparsers())
    out = tmp_path / "run"
    args = ap.parse_args(["train", "--demos", "tag:a", "--library", str(lib.path), "--keypoints", "truth",
                          "--train", "0-1", "--test", "2", "--iters", "4", "--cost", "timedep", "--out", str(out),
                          "--quiet", "--diagnose-every", "4", "--diagnose-goals", "2"])
    assert args.func(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert "test_path_err_cm" in metrics and "cost.tsne_pca.trust10" in metrics
    assert (out / "plots" / "cost").is_dir()
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["demos"]["query"] == "tag:a" and cfg["demos"]["keypoint_names"] == ["ee", "ee_blob"]
    ev = ap.parse_args(["eval", str(out)])
    assert ev.func(ev) == 0
    assert "eval_test_path_err_cm" in json.loads((out / "metrics.json").read_text())


def test_eval_selects_the_stored_episodes_and_refuses_a_missing_one(lib, tmp_path):
    import shutil

    from robot_irl.irl.cli import register

    copy = Library.open(shutil.copytree(lib.path, tmp_path / "library"))
    ap = argparse.ArgumentParser()
    register(ap.add_subparsers())
    out = tmp_path / "run"
    args = ap.parse_args(["train", "--demos", "tag:a", "--library", str(copy.path), "--keypoints", "truth",
                          "--train", "0-1", "--test", "2", "--iters", "2", "--cost", "weighted", "--out", str(out),
                          "--quiet"])
    assert args.func(args) == 0
    info = json.loads((out / "config.json").read_text())["demos"]
    ids = [e.id for e in copy.select("tag:a")]
    assert info["train_ids"] == ids[:2] and info["test_ids"] == ids[2:]
    ev = ap.parse_args(["eval", str(out)])
    assert ev.func(ev) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["eval_test_irl_loss"] == pytest.approx(m["test_irl_loss"])
    copy.remove([ids[0]])   # by position, the test episode would now be out of range or another one
    with pytest.raises(InputError, match=ids[0]):
        ev.func(ev)


def test_cost_latents_shapes(lib):
    import os

    import pybullet_data

    from robot_irl.models import KinematicDynamics, frames_from_spec

    demos, spec = demos_from_library(lib, "tag:a", rows=6, keypoints="truth")
    dyn = KinematicDynamics(os.path.join(pybullet_data.getDataPath(), "kuka_iiwa/model.urdf"), frames_from_spec(spec))
    run = fit_cost(demos, dyn, "timedep", LearnerConfig(rows=6, outer_iters=3))
    X, labels = cost_latents(run, demos, n_goals=3)
    assert X.shape == (3 * 3 * 5, 12) and np.isfinite(X).all()
    assert labels["perturbed"].sum() == 3 * 2 * 5 and set(labels["step"]) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert labels["goal"].dtype.kind == "U" and labels["cost"].dtype == np.float64


def test_cli_train_empty_query_selects_every_episode(lib, tmp_path):
    from robot_irl.cli import main

    out = tmp_path / "run"
    assert main(["train", "--demos", "", "--library", str(lib.path), "--keypoints", "truth", "--iters", "2",
                 "--out", str(out), "--quiet"]) == 0
    assert json.loads((out / "config.json").read_text())["demos"]["train_indices"] == [0, 1, 2]
