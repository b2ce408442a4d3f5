"""Collectors of trained runs: cost latents (many planned trajectories per demo, not one row per
demo) and learned-dynamics hidden features, found from the run folders alone."""
from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

from robot_irl.diagnostics import collect
from robot_irl.diagnostics.cli import register
from robot_irl.errors import InputError
from robot_irl.runs import RunDir
from test_irl_helpers import IIWA_Q0, iiwa, l_demos


@pytest.mark.timeout(120)
def test_cost_latents_of_a_trained_run(tmp_path) -> None:
    from robot_irl.irl import LearnerConfig, fit_cost

    dyn = iiwa()
    demos = l_demos(dyn, IIWA_Q0, n=3, rows=6)
    path = tmp_path / "demos.npz"
    np.savez(path, keypoints=demos.keypoints, q0=np.tile(IIWA_Q0, (3, 1)), names=np.array(["a", "b", "c"]))
    fit_cost(demos, dyn, "timedep", LearnerConfig(outer_iters=3), run_dir=tmp_path / "run",
             demo_info={"file": str(path), "train_indices": [0, 1], "test_indices": [2]})
    lat = collect("cost", tmp_path / "run", n_goals=4)
    H = 5  # rows - 1 planned states after the start
    assert lat.name == "cost" and lat.X.shape == (3 * 4 * H, 2 * 2 * 3)
    assert list(np.unique(lat.labels["split"], return_counts=True)[1]) == [1 * 4 * H, 2 * 4 * H]  # test, train
    assert set(lat.labels["perturbed"]) == {"True", "False"} and np.unique(lat.labels["goal"]).size == 12
    assert lat.labels["cost"].dtype.kind == "f" and np.ptp(lat.labels["cost"]) > 0  # continuous colouring
    # the CLI form writes into a folder of its own inside the run, leaving the run's config alone
    parser = argparse.ArgumentParser(prog="robot-irl")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["diagnose", str(tmp_path / "run"), "--latent", "cost", "--goals", "4",
                              "--method", "pca", "--no-tensorboard"])
    assert args.func(args) == 0
    out = RunDir(tmp_path / "run" / "diagnostics" / "cost")
    assert out.config()["latents"]["n_goals"] == 4 and out.metrics()["cost.n_points"] == 3 * 4 * H
    assert RunDir(tmp_path / "run").config()["kind"] == "irl_train"


def test_cost_latents_need_recorded_demos(tmp_path) -> None:
    from robot_irl.irl import LearnerConfig, fit_cost

    dyn = iiwa()
    fit_cost(l_demos(dyn, IIWA_Q0, n=2, rows=4), dyn, "weighted", LearnerConfig(outer_iters=1), run_dir=tmp_path / "r")
    with pytest.raises(InputError, match="records no demos"):
        collect("cost", tmp_path / "r")


@pytest.mark.timeout(120)
def test_dynamics_latents_of_a_dynamics_run(tmp_path) -> None:
    from robot_irl.models import train_dynamics
    from robot_irl.models.learned import DynamicsTrainConfig

    m = iiwa()
    rng = np.random.default_rng(0)
    N, T = 12, 6
    q0 = torch.tensor(IIWA_Q0, dtype=torch.float64) + torch.as_tensor(rng.normal(0, 0.2, (N, 7)))
    u = torch.as_tensor(rng.normal(0, 0.05, (N, T - 1, 7)))
    r = m.rollout(q0, u)
    data = tmp_path / "explore.npz"
    np.savez(data, x=r.x.numpy(), q=r.q.numpy(), u=u.numpy(), lower=np.asarray(m.lower), upper=np.asarray(m.upper),
             rows=np.array(T - 1), seeds=np.arange(N))  # rows: plan rows incl. the start, one extra row after
    model, _ = train_dynamics(r.x.numpy(), r.q.numpy(), u.numpy(), lower=m.lower, upper=m.upper,
                              cfg=DynamicsTrainConfig(hidden=16, ensemble=2, epochs=5, batch=64, multistep=2))
    run = RunDir.create(tmp_path / "dyn", {"data": str(data)}, kind="dynamics_train")
    model.save(run.path / "model.pt")
    lat = collect("dynamics", run.path)
    assert lat.name == "dynamics" and lat.X.shape == (N * (T - 1), 2 * 16)
    assert np.abs(lat.X).max() <= 1.0  # tanh units
    assert set(lat.labels["segment"]) == {"plan", "extra"} and (lat.labels["segment"] == "extra").sum() == N
    assert np.unique(lat.labels["episode"]).size == N and (lat.labels["err_cm"] >= 0).all()
    with pytest.raises(InputError, match="no exploration data"):
        collect("dynamics", run.path / "model.pt")
    with pytest.raises(InputError, match="no learned dynamics"):
        collect("dynamics", RunDir.create(tmp_path / "other", {}, kind="diagnose").path)
