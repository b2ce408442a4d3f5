"""The transfer eval's path measures (scripts/eval_transfer.py): the time-free (spatial) path error
ignores the pace a path is followed at, the time-normalised one does not; the end position is the
median over the frames at rest, and an end never observed is a failure."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "eval_transfer.py"


@pytest.fixture(scope="module")
def et():
    sys.path.insert(0, str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location("eval_transfer", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _path(t: np.ndarray) -> np.ndarray:
    """Two keypoints 5 cm apart along an L: 20 cm in x, then 10 cm down, ``t`` in [0, 1]."""
    s = np.clip(t, 0, 1) * 0.3
    p = np.stack([np.minimum(s, 0.2), np.zeros_like(s), -np.maximum(s - 0.2, 0)], -1)
    return np.stack([p, p + [0.0, 0.05, 0.0]], 1)


def test_spatial_error_ignores_the_pace_the_time_normalised_error_does_not(et):
    t = np.linspace(0, 1, 300)
    expert, slow_start = _path(t), _path(t ** 2)            # the same path, a different pace
    assert et.spatial_error(slow_start, expert) < 1e-3
    timed = np.linalg.norm(et.resample(t, slow_start, 1.0) - et.resample(t, expert, 1.0), axis=-1).mean()
    assert timed > 0.03
    shifted = expert + [0.0, 0.01, 0.0]                     # off both legs of the L by 1 cm
    assert et.spatial_error(shifted, expert) == pytest.approx(0.01, abs=1e-3)
    gone = np.full_like(expert, np.nan)
    assert et.spatial_error(gone, expert) == np.inf


def test_final_position_is_the_median_at_rest_and_unseen_is_a_failure(et):
    t = np.arange(10) * 0.1
    x = np.zeros((10, 2, 3))
    x[5:, :, 0] = np.array([0.10, 0.11, 0.10, 0.30, 0.12])[:, None]   # at rest from 0.5 s, one outlier
    assert et.final_position(t, x, 0.5)[0, 0] == pytest.approx(0.11)
    x[:] = np.nan
    assert np.isinf(et.final_position(t, x, 0.5)).all()


def test_resume_reuses_only_a_seed_made_with_the_same_settings(et, tmp_path):
    """``--resume`` takes a finished seed's figures only when the settings that change them match."""
    import argparse
    import json

    args = argparse.Namespace(demos=5, goals=20, iters=400, explore=0, dynamics_structure="fk", train_goals="final",
                              render_size="640x480")
    (tmp_path / "figures.json").write_text(json.dumps({"settings": et.settings(args), "methods": ["timedep"],
                                                       "counts": [5], "figures": {"path_err_cm": 1.5}}))
    assert et.load_seed(args, tmp_path) == {"path_err_cm": 1.5}
    assert et.load_seed(argparse.Namespace(**{**vars(args), "goals": 6}), tmp_path) is None
    assert et.load_seed(args, tmp_path / "missing") is None


def test_the_learned_transfer_splits_goals_by_what_the_safety_filter_lets_a_run_reach():
    """A goal whose expert ended a joint inside the filter's margin (or at its hard limit) is apart;
    success is counted on each side, nan where a side has no goal."""
    path = SCRIPT.parent / "eval_learned_transfer.py"
    spec = importlib.util.spec_from_file_location("eval_learned_transfer", path)
    elt = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(elt)
    from robot_irl.control import SafetyConfig

    m = SafetyConfig().limit_margin
    limits = np.array([[-2.0, 2.0], [-1.0, 1.0]])
    refs = [{"expert_q_end": np.array(q)} for q in
            ([0.0, 0.0], [2.0, 0.0], [0.0, -1.0 + m / 2], [1.9, 0.9], [0.0, 1.0 - 2 * m])]
    inside = elt.within_filter(refs, limits)
    assert inside.tolist() == [True, False, False, True, True]
    assert elt.split_rates([True, False, True, False, True], inside) == (2 / 3, 0.5)
    within, outside = elt.split_rates([True, True], np.array([True, True]))
    assert within == 1.0 and np.isnan(outside)
