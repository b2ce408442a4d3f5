"""Behaviour cloning as an MLP action-chunk policy with early stopping (irl/bc.py), beside the linear one."""
import numpy as np
import torch

from robot_irl.irl import BCMLPConfig, LearnerConfig, fit_bc_mlp, load_run
from robot_irl.irl.bc import train_bc_mlp
from test_irl_helpers import IIWA_Q0, iiwa, l_demos


def test_early_stopping_keeps_the_best_validation_weights():
    g = torch.Generator().manual_seed(0)
    rel = torch.randn(5, 6, 4, generator=g, dtype=torch.float64)
    u = rel[..., :3] * 0.1 + 0.01 * torch.randn(5, 6, 3, generator=g, dtype=torch.float64)   # learnable + noise
    pol, fig = train_bc_mlp(rel, u, BCMLPConfig(chunk=1, max_epochs=3000, patience=50, hidden=32))
    assert fig["bc_epochs"] < 3000 and fig["bc_epochs"] - fig["bc_best_epoch"] - 1 == 50   # stopped by patience
    assert fig["bc_val_samples"] == 6 and fig["bc_train_samples"] == 24                    # demo 1 held out
    assert fig["bc_val_loss"] < 0.3                     # standardised units: far better than predicting the mean
    refit, fig2 = train_bc_mlp(rel, u, BCMLPConfig(chunk=1, max_epochs=3000, patience=50, hidden=32, refit=True))
    assert fig2 == fig                                   # same stopping point, then retrained on every demo
    assert not torch.allclose(refit.net[0].weight, pol.net[0].weight)


def test_bc_mlp_plans_in_chunks_and_round_trips(tmp_path):
    m = iiwa()
    demos = l_demos(m, IIWA_Q0, n=4, rows=6)
    run = fit_bc_mlp(demos.subset([0, 1, 2]), m, LearnerConfig(), bc=BCMLPConfig(chunk=2, max_epochs=400, patience=40),
                     eval_demos=demos.subset([3]), run_dir=tmp_path / "bc")
    assert run.metrics["test_final_err_cm"] < 5.0       # the demos move 15-25 cm
    u, x = run.plan(IIWA_Q0, demos.goal_keypoints()[3])
    assert u.shape == (5, m.n_joints) and x.shape == (6, 2, 3)
    again = load_run(tmp_path / "bc")
    u2, _ = again.plan(IIWA_Q0, demos.goal_keypoints()[3])
    assert np.allclose(u, u2)
