import argparse
import json

import numpy as np
import pytest

from robot_irl.errors import InputError
from robot_irl.irl.cli import register
from test_irl_helpers import IIWA_Q0, IIWA_URDF, iiwa, l_demos


def _parser():
    ap = argparse.ArgumentParser(prog="robot-irl")
    register(ap.add_subparsers(dest="cmd", required=True))
    return ap


def test_train_then_eval_from_keypoint_file(tmp_path, capsys):
    demos = l_demos(iiwa(), IIWA_Q0, n=4)
    f = tmp_path / "demos.npz"
    np.savez(f, keypoints=demos.keypoints, timestamps=demos.timestamps[0], q0=np.array(IIWA_Q0))
    out = tmp_path / "run"
    args = _parser().parse_args(["train", "--demos", str(f), "--train", "0-1", "--test", "2,3", "--urdf", IIWA_URDF,
                                 "--keypoint-frames", "a@lbr_iiwa_link_7:0,0,0.05;b@lbr_iiwa_link_7:0,0,0.1",
                                 "--cost", "timedep", "--iters", "15", "--inner-steps", "3", "--out", str(out),
                                 "--quiet"])
    assert args.func(args) == 0
    assert "test_irl_loss" in capsys.readouterr().out
    args = _parser().parse_args(["eval", str(out)])
    assert args.func(args) == 0
    text = capsys.readouterr().out
    assert "final_err_cm" in text and "test per-step error" in text
    m = json.loads((out / "metrics.json").read_text())
    assert m["eval_test_irl_loss"] == pytest.approx(m["test_irl_loss"])


def test_train_needs_robot_description(tmp_path):
    f = tmp_path / "d.npz"
    np.savez(f, keypoints=np.zeros((1, 3, 2, 3)))
    args = _parser().parse_args(["train", "--demos", str(f), "--out", str(tmp_path / "r")])
    with pytest.raises(InputError, match="--urdf"):
        args.func(args)


def test_eval_of_missing_run_is_clear(tmp_path):
    args = _parser().parse_args(["eval", str(tmp_path / "nope")])
    with pytest.raises(InputError, match="does not exist"):
        args.func(args)
