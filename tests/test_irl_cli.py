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
    text = capsys.readouterr().out
    assert "irl_loss" in text and "\ntest " in text
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


FRAMES = "a@lbr_iiwa_link_7:0,0,0.05;b@lbr_iiwa_link_7:0,0,0.1"


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory):
    demos = l_demos(iiwa(), IIWA_Q0, n=4)
    f = tmp_path_factory.mktemp("demos") / "demos.npz"
    np.savez(f, keypoints=demos.keypoints, timestamps=demos.timestamps[0], q0=np.array(IIWA_Q0))
    return f


def _train_argv(f, out, *extra):
    return ["train", "--demos", str(f), "--urdf", IIWA_URDF, "--keypoint-frames", FRAMES, "--iters", "6",
            "--inner-steps", "2", "--out", str(out), "--quiet", *extra]


def test_train_out_over_a_run_needs_force_and_force_clears_it(tmp_path, demo_file, capsys, monkeypatch):
    from robot_irl.cli import main

    out = tmp_path / "run"
    assert main(_train_argv(demo_file, out, "--test", "3")) == 0
    (out / "old.gif").write_bytes(b"GIF89a")
    assert main(_train_argv(demo_file, out)) == 2
    err = capsys.readouterr().err
    assert "a run folder is already there" in err and "--force" in err
    assert (out / "old.gif").exists()
    assert main(_train_argv(demo_file, out, "--force", "--json")) == 0
    assert not (out / "old.gif").exists()
    assert len(list((out / "tb").iterdir())) == 1  # one events file: the old run's are gone
    assert "train_irl_loss" in json.loads(capsys.readouterr().out.split("run saved")[0])
    monkeypatch.chdir(out)
    assert main(_train_argv(demo_file, ".", "--force")) == 2    # never clears the folder it runs in
    assert "is the current folder or holds it" in capsys.readouterr().err and (out / "config.json").exists()


def test_train_refuses_a_folder_that_is_not_a_run(tmp_path, demo_file, capsys):
    from robot_irl.cli import main

    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "config.json").write_text('{"name": "a project of mine"}')
    assert main(_train_argv(demo_file, tmp_path, "--force")) == 2
    assert "not a robot-irl run folder" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").exists()
    assert main(["train", "--out", str(tmp_path), "--resume"]) == 2
    assert "nothing to resume: not a robot-irl run folder" in capsys.readouterr().err
    assert not (tmp_path / "incomplete.json").exists()


def test_test_without_train_trains_on_the_rest(tmp_path, demo_file):
    from robot_irl.cli import main

    out = tmp_path / "run"
    assert main(_train_argv(demo_file, out, "--test", "3")) == 0
    demos = json.loads((out / "config.json").read_text())["demos"]
    assert demos["train_indices"] == [0, 1, 2] and demos["test_indices"] == [3]


@pytest.mark.parametrize("extra, message", [(["--train", "0-2", "--test", "2,3"], "in both --train and --test"),
                                            (["--test", "7"], "out of range")])
def test_split_mistakes_are_refused(tmp_path, demo_file, extra, message):
    args = _parser().parse_args(_train_argv(demo_file, tmp_path / "r", *extra))
    with pytest.raises(InputError, match=message):
        args.func(args)


def test_interrupted_training_is_refused_until_resumed(tmp_path, demo_file, capsys, monkeypatch):
    from robot_irl.cli import main
    from robot_irl.irl import learner, load_run
    from robot_irl.runs import IncompleteRunError

    def ctrl_c(*a, **k):
        raise KeyboardInterrupt

    out = tmp_path / "run"
    monkeypatch.setattr(learner._Logger, "trajectory", ctrl_c)   # Ctrl-C right after the first checkpoint
    assert main(_train_argv(demo_file, out, "--checkpoint-every", "3", "--test", "3")) == 130
    resume = f"robot-irl train --out {out} --resume"
    assert resume in capsys.readouterr().err
    monkeypatch.undo()
    assert main(["eval", str(out)]) == 2
    err = capsys.readouterr().err
    assert "did not finish" in err and resume in err
    with pytest.raises(IncompleteRunError, match="--resume"):
        load_run(out)
    assert main(["train", "--out", str(out), "--resume", "--quiet"]) == 0   # demos remembered
    capsys.readouterr()
    run = load_run(out)
    assert run.demo_info["test_indices"] == [3] and len(run.history) == 6
    assert main(["eval", str(out)]) == 0


def test_options_that_do_nothing_are_named(tmp_path, capsys):
    from robot_irl.cli import main

    (tmp_path / "m.pt").write_bytes(b"")
    assert main(["train", "--demos", str(tmp_path / "none.npz"), "--k", "3", "--model", str(tmp_path / "m.pt"),
                 "--cost", "bc", "--diagnose-every", "5", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "none.npz: field '--demos': keypoint file not found" in err
    assert "note: --k chooses how many demos --query finds; without --query it does nothing" in err
    assert "note: --model is for --dynamics learned; ignored" in err
    assert "note: --diagnose-every applies to cost learning" in err


def test_missing_inputs_are_refused_before_torch_loads(tmp_path):
    import subprocess
    import sys

    code = ("import sys\nfrom robot_irl.cli import main\n"
            f"rcs = [main(['eval', {str(tmp_path / 'nope')!r}]), main(['train', '--demos', 'x.npz', '--out', "
            f"{str(tmp_path / 'r')!r}])]\n"
            "try:\n    main(['train', '--demos', 'q', '--urdf', 'no.urdf', '--out', 'r'])\nexcept SystemExit as e:\n"
            "    rcs.append(e.code)\nprint(rcs, 'torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.strip().splitlines()[-1] == "[2, 2, 2] False", r.stdout + r.stderr
    assert "run folder does not exist" in r.stderr and "keypoint file not found" in r.stderr
    assert "--urdf: no.urdf: no such file" in r.stderr
