"""The `paper` recipe: the released MBIRL code's cost normalisation, RBF centres, per-demo outer steps,
and its figures reproduced on its own demos (shared/mbirl-reference/, skipped when absent)."""
import argparse
import json

import numpy as np
import pytest
import torch

from robot_irl.errors import UnknownNameError
from robot_irl.irl import fit_cost
from robot_irl.irl.cli import register
from robot_irl.irl.config import recipe_config
from robot_irl.irl.costs import cost_from_config, make_cost
from robot_irl.irl.reference import load_reference, reference_dir
from test_irl_helpers import IIWA_Q0, IIWA_URDF, iiwa, l_demos

REF = reference_dir()


def test_integer_rbf_centres_are_the_released_ones():
    c = make_cost("rbf", 1, 9, centres="integer", init=1.0)
    B = c.basis(9)  # rows 1..9; a kernel peaks (value 1) on its centre row
    peaks = [int(r) + 1 for r in torch.nonzero(B == 1.0)[:, 0]]
    assert peaks == [2, 4, 6, 9]            # centre 0 lies on the start row, which carries no cost
    assert torch.allclose(B[0, 0], torch.tensor(np.exp(-0.5), dtype=B.dtype))
    spread = make_cost("rbf", 1, 9).basis(9)
    assert not torch.allclose(B, spread)
    with pytest.raises(UnknownNameError):
        make_cost("rbf", 1, 9, centres="odd")


@pytest.mark.parametrize("kind,divisor", [("weighted", 10), ("timedep", 60), ("rbf", 6)])
def test_mean_normalisation_is_the_released_one(kind, divisor):
    s, m = make_cost(kind, 6, 9, init=0.3), make_cost(kind, 6, 9, init=0.3, norm="mean")
    assert torch.allclose(m.weights(), s.weights() / divisor)
    again = cost_from_config(m.to_config())
    again.load_state_dict(m.state_dict())
    assert torch.equal(again.weights(), m.weights())


def test_paper_recipe_settings():
    cfg = recipe_config("paper", "timedep")
    assert (cfg.inner.method, cfg.inner.steps, cfg.inner.step_size) == ("gd", 1, 1e-3)
    assert (cfg.lr, cfg.lr_final_frac, cfg.outer_iters, cfg.outer_batch) == (1e-2, 1.0, 100, "per_demo")
    assert (cfg.init_weight, cfg.cost_norm, cfg.rbf_centres) == (0.01, "mean", "integer")
    assert recipe_config("paper", "weighted").init_weight == 0.1
    assert cfg.nonneg is False and recipe_config("default").nonneg is True   # the released code never bounds them
    assert recipe_config("paper", "rbf", outer_iters=3).outer_iters == 3
    with pytest.raises(UnknownNameError):
        recipe_config("fast")


def test_per_demo_outer_steps_differ_from_batched():
    m = iiwa()
    demos = l_demos(m, IIWA_Q0, n=2, rows=5)
    per = fit_cost(demos, m, "timedep", recipe_config("paper", "timedep", outer_iters=3))
    one = fit_cost(demos, m, "timedep", recipe_config("paper", "timedep", outer_iters=3, outer_batch="all"))
    assert len(per.history) == len(one.history) == 3
    assert not torch.allclose(per.cost.theta, one.cost.theta)   # 6 Adam steps against 3
    assert per.history[-1] < per.history[0]


def test_cli_recipe_paper(tmp_path, capsys):
    demos = l_demos(iiwa(), IIWA_Q0, n=3)
    f = tmp_path / "demos.npz"
    np.savez(f, keypoints=demos.keypoints, timestamps=demos.timestamps[0], q0=np.array(IIWA_Q0))
    ap = argparse.ArgumentParser(prog="robot-irl")
    register(ap.add_subparsers(dest="cmd", required=True))
    out = tmp_path / "run"
    args = ap.parse_args(["train", "--demos", str(f), "--train", "0-1", "--test", "2", "--urdf", IIWA_URDF,
                          "--keypoint-frames", "a@lbr_iiwa_link_7:0,0,0.05;b@lbr_iiwa_link_7:0,0,0.1",
                          "--cost", "rbf", "--recipe", "paper", "--iters", "2", "--out", str(out), "--quiet"])
    assert args.func(args) == 0
    learner = json.loads((out / "config.json").read_text())["learner"]
    assert (learner["inner"]["method"], learner["inner"]["steps"], learner["outer_iters"]) == ("gd", 1, 2)
    assert (learner["cost_norm"], learner["rbf_centres"], learner["init_weight"]) == ("mean", "integer", 0.01)


@pytest.mark.skipif(REF is None, reason="shared/mbirl-reference/ (the paper's demos) is not present")
def test_paper_recipe_reproduces_the_released_timedep_figure():
    ref = load_reference(REF)
    run = fit_cost(ref.train, ref.dynamics, "timedep", recipe_config("paper", "timedep"), eval_demos=ref.test)
    released = ref.released["timedep"]
    assert run.metrics["test_irl_loss"] == pytest.approx(released["test_loss"], rel=0.02)
    assert run.metrics["test_final_err_cm"] == pytest.approx(released["test_final_cm"], rel=0.05)


def test_released_figures_are_read_from_the_reference_readme(tmp_path):
    from robot_irl.errors import InputError
    from robot_irl.irl.reference import released_figures

    readme = tmp_path / "README.md"
    rows = ["| cost | train IRL loss | test IRL loss | final | CPU |", "|---|---|---|---|---|",
            "| Weighted | 331.1 | 247.5 | 14.47 | 215 s |", "| TimeDep | 195.8 | 123.8 | 4.70 | 215 s |",
            "| RBF | 241.3 | 144.7 | 5.05 | 215 s |"]
    readme.write_text("\n".join(rows))
    with pytest.raises(InputError, match="no_action"):
        released_figures(readme)
    readme.write_text("\n".join(rows + ["| no action (u = 0) | — | 1486.6 | 35.96 | — |"]))
    figs = released_figures(readme)
    assert figs["timedep"] == {"train_loss": 195.8, "test_loss": 123.8, "test_final_cm": 4.70}
    assert figs["no_action"]["test_loss"] == 1486.6 and np.isnan(figs["no_action"]["train_loss"])
