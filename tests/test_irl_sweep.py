"""`robot-irl train --sweep` without Ray: the sweep file is checked (file, key, what was expected)
before torch or Ray load, trials expand the same way every time, the best trial is chosen on
validation figures only, and a tiny serial sweep writes its trials as normal run folders."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from robot_irl.cli import main
from robot_irl.errors import InputError, RobotIRLError
from robot_irl.irl.sweep import TrialResult, expand, load_sweep, parse_sweep, select_best
from test_irl_helpers import IIWA_Q0, IIWA_URDF, iiwa, l_demos

ROOT = Path(__file__).resolve().parents[1]
FRAMES = "a@lbr_iiwa_link_7:0,0,0.05;b@lbr_iiwa_link_7:0,0,0.1"


@pytest.mark.parametrize("data, key, expected", [
    ({"params": {"lr": [0.1]}, "search": "bayes"}, "search", "one of ['grid', 'random']"),
    ({"params": {"lr": [0.1]}, "schedular": "asha"}, "schedular", "keys among"),
    ({"params": {"lr": [0.1, -1]}}, "params.lr[1]", "a learning rate > 0"),
    ({"params": {"cost": ["timedep", "bc"]}}, "params.cost[1]", "one of ['default', 'weighted', 'timedep', 'rbf']"),
    ({"params": {"inner_steps": [2.5]}}, "params.inner_steps[0]", "an integer >= 1"),
    ({"params": {"momentum": [0.9]}}, "params.momentum", "one of ['cost', 'lr'"),
    ({"params": {}}, "params", "a mapping of settings"),
    ({"params": {"lr": {"log_uniform": [0.1, 0.01]}}, "search": "random"}, "params.lr.log_uniform", "lo < hi"),
    ({"params": {"lr": {"log_uniform": [0.01, 0.1]}}}, "params.lr", "ranges {log_uniform|uniform"),
    ({"params": {"lr": [0.1]}, "samples": 4}, "samples", "samples only with search: random"),
    ({"params": {"lr": [0.1]}, "asha": {"grace_period": 5}}, "asha", "only with scheduler: asha"),
    ({"params": {"lr": [0.1]}, "scheduler": "asha", "asha": {"grace_period": 0}}, "asha.grace_period", ">= 1"),
    ({"params": {"lr": [0.1]}, "max_concurrent": 0}, "max_concurrent", "an integer >= 1"),
])
def test_a_bad_sweep_file_names_the_file_the_key_and_what_was_expected(data, key, expected):
    with pytest.raises(InputError) as e:
        parse_sweep(data, "my_sweep.yaml")
    assert f"my_sweep.yaml: field '{key}'" in str(e.value) and expected in str(e.value)


def test_sweep_file_is_read_without_torch_or_ray(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("search: random\nsamples: 5\nseed: 3\nparams:\n  cost: [timedep, weighted]\n"
                 "  lr: {log_uniform: [0.001, 0.1]}\n  seed: [0, 1, 2]\n  iters: 20\n")
    code = (f"import sys; from robot_irl.irl.sweep import load_sweep, expand; t = expand(load_sweep({str(f)!r})); "
            "print(len(t), sorted(m for m in ('torch', 'ray') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip().splitlines()[-1] == "5 []"
    trials = expand(load_sweep(f))
    assert trials == expand(load_sweep(f))                      # the same draws every time (seed 3)
    assert all(0.001 <= t["lr"] <= 0.1 and t["iters"] == 20 and t["seed"] in (0, 1, 2) for t in trials)
    with pytest.raises(InputError, match="sweep file not found"):
        load_sweep(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("params: [unclosed")
    with pytest.raises(InputError, match="not valid YAML"):
        load_sweep(tmp_path / "bad.yaml")


def test_grid_expands_every_combination_in_file_order():
    spec = parse_sweep({"params": {"cost": ["timedep", "weighted"], "lr": [0.05, 0.02], "inner_steps": 3}})
    assert expand(spec) == [{"cost": c, "lr": lr, "inner_steps": 3} for c in ("timedep", "weighted")
                            for lr in (0.05, 0.02)]


def test_best_trial_is_chosen_on_validation_not_test():
    def trial(name, val, test, status="done"):
        return TrialResult(name, {}, name, status=status, figures={"val_irl_loss": val, "test_irl_loss": test})

    trials = [trial("t0", 5.0, 1.0), trial("t1", 2.0, 9.0), trial("t2", 1.0, 0.5, status="stopped"),
              trial("t3", math.nan, 0.1)]
    assert select_best(trials).name == "t1"          # lowest validation loss among finished trials
    with pytest.raises(RobotIRLError, match="no trial finished"):
        select_best([trial("t0", 1.0, 1.0, status="failed")])


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory):
    demos = l_demos(iiwa(), IIWA_Q0, n=5)
    f = tmp_path_factory.mktemp("sweep") / "demos.npz"
    np.savez(f, keypoints=demos.keypoints, timestamps=demos.timestamps[0], q0=np.array(IIWA_Q0))
    return f


def sweep_argv(demo_file: Path, sweep: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--sweep", str(sweep), "--demos", str(demo_file), "--urdf", IIWA_URDF, "--keypoint-frames",
            FRAMES, "--val", "3", "--test", "4", "--out", str(out), "--quiet", *extra]


def test_serial_sweep_writes_run_folders_and_scores_only_the_best_on_test(demo_file, tmp_path, capsys):
    sweep = tmp_path / "s.yaml"
    sweep.write_text("report_every: 2\nparams:\n  lr: [0.05, 0.01]\n  inner_steps: 1\n  iters: 4\n")
    out = tmp_path / "sweep"
    assert main(sweep_argv(demo_file, sweep, out, "--json", "--lr", "0.3")) == 0
    cap = capsys.readouterr()
    assert "note: --lr is swept" in cap.err
    figs = json.loads(cap.out)
    trials = json.loads((out / "trials.json").read_text())["trials"]
    vals = {t["name"]: t["val_irl_loss"] for t in trials}
    assert figs["best_trial"] == min(vals, key=vals.get) and figs["trials_done"] == 2
    assert figs["test_irl_loss"] > 0 and (out / "plots" / "sweep.png").stat().st_size > 1000
    for t in trials:
        run = Path(t["run"])
        m = json.loads((run / "metrics.json").read_text())
        assert m["val_irl_loss"] == t["val_irl_loss"] and not any(k.startswith("test_") for k in m)
        assert [it for it, _ in t["curve"]] == [2, 4] and list((run / "tb").iterdir())
        assert json.loads((run / "config.json").read_text())["demos"]["val_indices"] == [3]
    # a trial's folder is a normal run: eval opens it
    assert main(["eval", trials[0]["run"], "--json"]) == 0


def test_sweep_input_errors_come_before_any_work(demo_file, tmp_path, capsys):
    asha = tmp_path / "a.yaml"
    asha.write_text("scheduler: asha\nparams:\n  lr: [0.05, 0.01]\n")
    assert main(sweep_argv(demo_file, asha, tmp_path / "o1")) == 2
    assert "field 'scheduler'" in capsys.readouterr().err
    fifo = tmp_path / "f.yaml"
    fifo.write_text("params:\n  lr: [0.05]\n")
    argv = [a for a in sweep_argv(demo_file, fifo, tmp_path / "o2") if a not in ("--val", "3")]
    assert main(argv) == 2
    assert "field '--val'" in capsys.readouterr().err
    assert main(sweep_argv(demo_file, fifo, tmp_path / "o3", "--train", "0-3")) == 2
    assert "demos [3] are in both --train and --val" in capsys.readouterr().err
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o3").exists()
