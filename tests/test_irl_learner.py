import json

import numpy as np
import pytest
import torch

from robot_irl.irl import (InnerConfig, LearnerConfig, TrainingDiverged, fit_bc, fit_cost, fit_feature_matching,
                           load_run, plan)
from test_irl_helpers import IIWA_Q0, PANDA_Q0, iiwa, l_demos, panda

FAST = LearnerConfig(outer_iters=60, lr=0.08, inner=InnerConfig(steps=5))


@pytest.mark.parametrize("make,q0", [(iiwa, IIWA_Q0), (panda, PANDA_Q0)])
def test_learner_fits_l_demos_on_any_urdf(make, q0):
    model = make()
    demos = l_demos(model, q0, n=5)
    train, test = demos.subset([0, 1, 2]), demos.subset([3, 4])
    run = fit_cost(train, model, "timedep", FAST, eval_demos=test)
    base = fit_cost(train, model, "default", FAST, eval_demos=test)
    assert run.history[-1] < 0.05 * run.history[0]
    assert run.metrics["test_irl_loss"] < 0.05 * base.metrics["test_irl_loss"]
    assert run.metrics["test_final_err_cm"] < 1.5


def test_masked_keypoints_still_train():
    model = iiwa()
    demos = l_demos(model, IIWA_Q0, n=3)
    demos.keypoints[0, 3, 1] = np.nan
    demos.keypoints[1, 6, 0] = np.nan
    run = fit_cost(demos, model, "rbf", LearnerConfig(outer_iters=20, inner=InnerConfig(steps=3)))
    assert np.isfinite(run.history).all() and run.history[-1] < run.history[0]


def test_divergence_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    model = iiwa()
    demos = l_demos(model, IIWA_Q0, n=2)
    cfg = LearnerConfig(outer_iters=30, checkpoint_every=2, inner=InnerConfig(steps=3))
    real, calls = model.rollout, {"n": 0}

    def blows_up(*a, **k):  # the model starts returning NaN during iteration 6
        calls["n"] += 1
        r = real(*a, **k)
        if calls["n"] > 4 * 5:
            r.x = r.x * float("nan")
        return r

    monkeypatch.setattr(model, "rollout", blows_up)
    with pytest.raises(TrainingDiverged, match="iteration 5.*last good checkpoint"):
        fit_cost(demos, model, "timedep", cfg, run_dir=tmp_path / "run")
    st = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert st["iteration"] == 4
    assert all(torch.isfinite(v).all() for v in st["cost"].values())
    assert len(st["history"]) == 4 and np.isfinite(st["history"]).all()


def test_checkpoint_resume_matches_straight_run(tmp_path, monkeypatch):
    model = iiwa()
    demos = l_demos(model, IIWA_Q0, n=2)
    cfg = LearnerConfig(outer_iters=12, checkpoint_every=4, inner=InnerConfig(steps=3))
    straight = fit_cost(demos, model, "weighted", cfg)
    calls = {"n": 0}
    real = model.rollout

    def interrupted(*a, **k):  # dies during iteration 10 (4 rollouts per iteration)
        calls["n"] += 1
        if calls["n"] > 4 * 9 + 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(model, "rollout", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fit_cost(demos, model, "weighted", cfg, run_dir=tmp_path / "r")
    assert torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=True)["iteration"] == 8
    from robot_irl.runs import IncompleteRunError
    with pytest.raises(IncompleteRunError, match="resume=True"):      # start weights are no trained cost
        load_run(tmp_path / "r")
    monkeypatch.setattr(model, "rollout", real)
    resumed = fit_cost(demos, model, "weighted", cfg, run_dir=tmp_path / "r", resume=True)
    assert len(resumed.history) == 12 and load_run(tmp_path / "r").history == resumed.history
    assert np.allclose(resumed.history, straight.history)


def test_run_folder_roundtrip_and_plan(tmp_path):
    model = iiwa()
    demos = l_demos(model, IIWA_Q0, n=4)
    run = fit_cost(demos.subset([0, 1]), model, "rbf", LearnerConfig(outer_iters=10, inner=InnerConfig(steps=3)),
                   run_dir=tmp_path / "run", eval_demos=demos.subset([2, 3]))
    folder = tmp_path / "run"
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["cost"]["type"] == "rbf" and cfg["dynamics"]["urdf"].endswith("model.urdf")
    assert "test_irl_loss" in json.loads((folder / "metrics.json").read_text())
    assert any((folder / "tb").iterdir()) and (folder / "plots" / "trajectory.png").is_file()
    again = load_run(folder)
    goal = demos.goal_keypoints()[2]
    u1, x1 = plan(run, IIWA_Q0, goal)
    u2, x2 = plan(again, IIWA_Q0, goal)
    assert u1.shape == (9, 7) and x1.shape == (10, 2, 3)
    assert np.allclose(x1, x2)
    u3, x3 = plan(again, IIWA_Q0, goal, horizon=14)   # a cost over normalised time carries to another horizon
    assert x3.shape == (15, 2, 3)


def test_baselines_in_same_harness(tmp_path):
    model = iiwa()
    demos = l_demos(model, IIWA_Q0, n=4)
    train, test = demos.subset([0, 1]), demos.subset([2, 3])
    cfg = LearnerConfig(fm_iters=4, inner=InnerConfig(steps=5))
    fm = fit_feature_matching(train, model, cfg, eval_demos=test)
    bc = fit_bc(train, model, cfg, eval_demos=test, run_dir=tmp_path / "bc")
    for r in (fm, bc):
        assert np.isfinite(r.metrics["test_irl_loss"]) and len(r.metrics["test_per_step_err_cm"]) == 10
    assert bc.metrics["train_irl_loss"] < 5.0          # BC reproduces its own training demos
    assert np.allclose(load_run(tmp_path / "bc").evaluate(test)["irl_loss"], bc.metrics["test_irl_loss"])


def test_mismatched_keypoint_count_is_clear_error():
    from robot_irl.errors import InputError

    model = iiwa()
    demos = l_demos(model, IIWA_Q0, n=2)
    demos.keypoints = demos.keypoints[:, :, :1]
    with pytest.raises(InputError, match="1 keypoints"):
        fit_cost(demos, model, "timedep", FAST)


def test_trajectory_plot_keeps_its_legend_off_the_paths():
    from robot_irl.irl.learner import trajectory_figure

    path = np.cumsum(np.full((1, 6, 2, 3), 0.01), axis=1)
    fig = trajectory_figure(path, path + 0.002, ["ee", "cube"])
    fig.canvas.draw()
    legend = fig.axes[1].get_legend()
    texts = [t.get_text() for t in legend.get_texts()]
    assert texts == ["ee optimised", "ee demo", "cube optimised", "cube demo"]
    renderer = fig.canvas.get_renderer()
    assert legend.get_window_extent(renderer).x0 >= fig.axes[1].get_window_extent(renderer).x1   # beside the axes
    assert legend.get_window_extent(renderer).x1 <= fig.bbox.x1 + 1                               # and not cut off
