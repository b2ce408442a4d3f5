"""The learned-cost runner (robot_irl.control.mpc): a tiny timedep cost trained on synthetic L-shaped
demos of the sim iiwa's keypoints, saved, reloaded and run on the PyBullet arm through the safety
filter; plus ``robot-irl run`` (dry run, a real run recorded in a library, bad input)."""
from __future__ import annotations

import argparse
import json
import os

import gymnasium
import pybullet_data
import io

import numpy as np
import torch
import pytest
from PIL import Image

import sim  # noqa: F401  (registers the envs)
from robot_irl.control import FakeClock, SafetyConfig, backend_config, make_arm
from robot_irl.control import cli as control_cli
from robot_irl.control import registry
from robot_irl.control.pybullet_arm import PyBulletBackend, PyBulletConfig
from robot_irl.control.registry import BackendEntry
from robot_irl.control.mpc import keypoints_at, run_learned
from robot_irl.errors import InputError
from robot_irl.irl import LearnerConfig, fit_cost, load_run
from robot_irl.models import KinematicDynamics, frames_from_spec
from sim.robots import ROBOTS
from test_irl_helpers import l_demos

START = ROBOTS["iiwa"].rest_pose
DX, DZ = -0.08, -0.08


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    spec = gymnasium.make("robot_irl/Reach-v0").unwrapped.keypoint_spec
    dyn = KinematicDynamics(os.path.join(pybullet_data.getDataPath(), ROBOTS["iiwa"].urdf), frames_from_spec(spec))
    demos = l_demos(dyn, START, n=2, dx=DX, dz=DZ, rows=6)
    path = tmp_path_factory.mktemp("runs") / "reach"
    fit_cost(demos, dyn, "timedep", LearnerConfig(outer_iters=20, checkpoint_every=1000, log_every=1000),
             run_dir=path)
    return path


def goal_of(trained):
    x0 = keypoints_at(trained, START)
    return x0 + np.array([DX, 0.0, DZ])


def test_learned_cost_reaches_the_goal_through_the_filter(run_dir):
    trained = load_run(run_dir)
    c = FakeClock()
    arm = make_arm("pybullet", backend_config("pybullet", {"robot": "iiwa"}), safety=SafetyConfig(), clock=c)
    with arm:
        rec = run_learned(arm, trained, goal_of(trained), steps=40)
    a = rec.arrays()
    print("final error cm", rec.final_err_m * 100, rec.summary())
    assert rec.reached and rec.final_err_m < 0.02
    assert len(rec.planned_paths) >= 1 and rec.planned_paths[0].shape == (trained.horizon + 1, 2, 3)
    steps = np.abs(np.diff(np.vstack([START, a["sent"]]), axis=0))
    assert steps.max() <= SafetyConfig().max_delta + 1e-9
    assert not a["refused"].any()


def cli(argv):
    p = argparse.ArgumentParser()
    control_cli.register(p.add_subparsers(dest="cmd"))
    args = p.parse_args(argv)
    return args.func(args)


def test_cli_dry_run_plays_the_plan_on_the_twin(run_dir, tmp_path, capsys):
    trained = load_run(run_dir)
    g = goal_of(trained)
    ee = ",".join(str(v) for v in g[0])
    gif = tmp_path / "preview.gif"
    assert cli(["run", "--arm", "pybullet", "--run", str(run_dir), "--goal", ee, "--dry-run",
                "--preview", str(gif), "--camera-size", "96x72", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["preview"] == str(gif)
    with Image.open(gif) as im:                     # one frame per planned row, at the camera's size
        assert (im.n_frames, im.size) == (trained.horizon + 1, (96, 72))
        im.seek(im.n_frames - 1)
        assert np.asarray(im.convert("RGB")).std() > 5     # the twin and the overlay were drawn
    path = np.asarray(out["planned_keypoints"])
    assert path.shape == (trained.horizon + 1, 2, 3)
    assert np.linalg.norm(path[-1, 0] - g[0]) < 0.02
    np.testing.assert_allclose(path[0], keypoints_at(trained, START), atol=1e-3)  # the arm settles slightly


def test_cli_run_records_an_episode(run_dir, tmp_path, capsys):
    from robot_irl.library import Library
    trained = load_run(run_dir)
    gfile = tmp_path / "goal.npy"
    np.save(gfile, goal_of(trained))
    lib = tmp_path / "lib"
    assert cli(["run", "--arm", "pybullet", "--run", str(run_dir), "--goal", str(gfile), "--library", str(lib),
                "--steps", "40", "--camera", "front", "--camera-size", "96x72", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["final_err_cm"] < 2.0
    ep = Library.open(lib).episode(out["episode"])
    state = ep.arrays("state")
    assert ep.source == "arm" and len(state["target_sent"]) == out["steps"]
    # video at the run's rate, on the rows' clock, with the run's keypoints to draw over it
    assert ep.cameras == ["cam0"] and ep.frame_count("cam0") == out["steps"] == out["frames"]
    assert ep.frame_size("cam0") == (96, 72) and ep.camera_model("cam0") is not None
    ts = ep.timestamps("cam0")
    assert np.all(ts >= state["timestamp"]) and np.all(ts - state["timestamp"] < 0.05)
    assert ep.keypoint_spec.names == [f.name for f in trained.dynamics.frames]
    np.testing.assert_allclose(state["goal_3d"][0], goal_of(trained))
    assert np.linalg.norm(state["keypoints_3d"][-1] - goal_of(trained), axis=-1).max() < 0.03
    assert state["keypoints_visible_cam0"].any()
    first, last = ep.frame("cam0", 0), ep.frame("cam0", ep.frame_count("cam0") - 1)
    assert np.abs(first.astype(int) - last).max() > 50        # the arm moved in the video


class CountingBackend(PyBulletBackend):
    """The PyBullet arm standing in for a physical one: counts every target that reaches it."""

    commands = 0

    def command(self, q):
        CountingBackend.commands += 1
        super().command(q)


@pytest.fixture
def physical_sim(monkeypatch):
    """``--arm pybullet`` registered as a physical arm (a fake at the backend boundary)."""
    configs = registry._configs()
    monkeypatch.setattr(registry, "_configs", lambda: {
        **configs, "pybullet": BackendEntry(PyBulletConfig, lambda cfg, clock: CountingBackend(cfg, clock),
                                            physical=True)})
    CountingBackend.commands = 0


def test_physical_arm_shows_the_twin_and_asks_before_the_first_move(run_dir, tmp_path, monkeypatch, capsys,
                                                                     physical_sim):
    from robot_irl.library import Library
    trained = load_run(run_dir)
    ee = ",".join(str(v) for v in goal_of(trained)[0])
    argv = ["run", "--arm", "pybullet", "--run", str(run_dir), "--goal", ee, "--library", str(tmp_path / "lib"),
            "--preview", str(tmp_path / "p.gif"), "--camera-size", "64x48", "--steps", "3",
            "--workspace", "-1,1,-1,1,-0.2,1.5"]
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    assert cli(argv) == 1
    out = capsys.readouterr().out
    assert CountingBackend.commands == 0 and "not moved" in out
    assert str(tmp_path / "p.gif") in out and (tmp_path / "p.gif").is_file()     # the twin was shown first
    assert Library.open(tmp_path / "lib").rows("kind:*") == []
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    assert cli(argv) == 1                  # moved, but 3 ticks do not reach the goal: exit 1, with why
    assert CountingBackend.commands == 3


def test_physical_arm_without_a_workspace_exits_before_connecting(run_dir, tmp_path, monkeypatch, physical_sim):
    connects = []
    monkeypatch.setattr(CountingBackend, "connect", lambda self: connects.append(1))
    with pytest.raises(InputError, match="teach-workspace") as err:
        cli(["run", "--arm", "pybullet", "--run", str(run_dir), "--goal", "0.5,0,0.5", "--yes",
             "--library", str(tmp_path / "lib")])
    assert err.value.field == "--workspace" and connects == [] and CountingBackend.commands == 0


def test_arm_check_writes_a_box_the_next_run_uses(run_dir, tmp_path, monkeypatch, capsys, physical_sim):
    """Teach the box in teach mode (three corners), write it into the calibration file; the next
    run with that file moves (inside it) where the same run without it was refused."""
    cal = tmp_path / "cal.json"
    corners = [np.array([0.3, -0.4, 0.1]), np.array([0.8, 0.4, 0.2]), np.array([0.5, 0.0, 0.9])]
    seen = iter(corners)
    from robot_irl.control.arm import Arm
    real_obs = Arm.get_observation

    def obs_at_corner(self):
        o = real_obs(self)
        return o if not self.teaching else type(o)(o.t, o.q, o.dq, next(seen))
    monkeypatch.setattr(Arm, "get_observation", obs_at_corner)
    monkeypatch.setattr("sys.stdin", io.StringIO("\n\n\ndone\n"))
    assert cli(["arm", "check", "--arm", "pybullet", "--teach-workspace", "--write-calibration", str(cal),
                "--arm-id", "cell-1"]) == 0
    monkeypatch.setattr(Arm, "get_observation", real_obs)
    from robot_irl.control import ArmCalibration
    box = ArmCalibration.load(cal).workspace
    np.testing.assert_allclose(box[0], [0.3, -0.4, 0.1])
    np.testing.assert_allclose(box[1], [0.8, 0.4, 0.9])
    assert CountingBackend.commands == 0                      # teaching sent no target
    trained = load_run(run_dir)
    ee = ",".join(str(v) for v in goal_of(trained)[0])
    assert cli(["run", "--arm", "pybullet", "--run", str(run_dir), "--goal", ee, "--yes", "--steps", "3",
                "--library", str(tmp_path / "lib"), "--calibration", str(cal), "--preview", str(tmp_path / "p.gif"),
                "--camera-size", "64x48"]) == 1
    assert CountingBackend.commands == 3


def test_cli_unknown_run_folder_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="config.json"):
        cli(["run", "--arm", "pybullet", "--run", str(tmp_path / "nope"), "--goal", "0.5,0,0.5", "--dry-run"])
    with pytest.raises(InputError, match="goal"):
        cli(["run", "--arm", "pybullet", "--run", str(tmp_path / "nope"), "--goal", "0.5,zero", "--dry-run"])


def test_cli_camera_needs_the_sim_arm_and_a_valid_size(run_dir):
    with pytest.raises(InputError, match="--camera"):          # refused before any connection
        cli(["run", "--arm", "ur", "--run", str(run_dir), "--goal", "0.5,0,0.5", "--camera", "front"])
    with pytest.raises(InputError, match="WIDTHxHEIGHT"):
        cli(["run", "--arm", "pybullet", "--run", str(run_dir), "--goal", "0.5,0,0.5", "--camera-size", "96by72"])


def _sagging_plant(tracker, q0, sag, ticks):
    """A position-controlled joint that settles ``sag`` short of every target (load on the arm)."""
    q, sent = np.array(q0, float), []
    for _ in range(ticks):
        t = tracker(q)
        sent.append(t)
        q = t - sag
    return q, np.array(sent)


def test_plan_tracker_caps_ticks_and_servos_out_a_steady_offset():
    from robot_irl.control.mpc import PlanTracker

    rows = np.zeros((4, 3))
    rows[0, 1], rows[1, 1] = 0.3, 0.1              # rows 2-3 do not move: not waited out
    tr = PlanTracker(lambda q: (rows, np.zeros((5, 1, 3))), 3, np.arange(3), horizon=4, replan_every=4, max_step=0.05)
    sag = np.array([0.0, 0.02, 0.0])
    q, sent = _sagging_plant(tr, np.zeros(3), sag, 30)
    steps = np.abs(np.diff(np.vstack([np.zeros(3), sent]), axis=0)).max(1)
    assert steps[:12].max() <= 0.05 + 1e-12             # 2 moving rows x 6 ticks, each within the cap
    assert tr.servoing and len(tr.paths) == 1
    assert abs(q[1] - 0.4) < 1e-3                       # reached the plan's end despite the sag
    assert np.allclose(tr.bias, sag, atol=1e-3)
    # far from the plan's end (travelling, or held back): the integral stays put
    tr2 = PlanTracker(lambda q: (rows, np.zeros((5, 1, 3))), 3, np.arange(3), horizon=4, replan_every=4, max_step=0.05)
    _sagging_plant(tr2, np.zeros(3), np.array([0.0, 0.3, 0.0]), 30)
    assert np.all(tr2.bias == 0)


def test_run_goes_on_until_the_plan_is_done_and_says_how_it_ended(run_dir):
    """The run's time limit comes from the plan (here far more than the old fixed 4 horizons
    of ticks: at a 0.01 rad cap per tick the plan takes ~100 ticks); it reaches and says so."""
    trained = load_run(run_dir)
    c = FakeClock()
    safety = SafetyConfig(max_delta=0.01)
    with make_arm("pybullet", backend_config("pybullet", {"robot": "iiwa", "start": tuple(START)}), safety=safety,
                  clock=c) as arm:
        rec = run_learned(arm, trained, goal_of(trained))
    assert rec.outcome == "reached" and rec.succeeded and rec.final_err_m < 0.01
    assert len(rec) > 4 * trained.horizon and rec.tick_limit > len(rec)
    assert rec.planned_final_err_m < 0.02


def test_run_that_misses_exits_1_with_the_reason(run_dir, tmp_path, capsys):
    """A goal the plan cannot finish within an explicit --steps: exit 1 and a reason naming the
    limit and what to raise; the episode is still kept."""
    trained = load_run(run_dir)
    ee = ",".join(str(v) for v in goal_of(trained)[0])
    code = cli(["run", "--arm", "pybullet", "--run", str(run_dir), "--goal", ee, "--steps", "4",
                "--library", str(tmp_path / "lib"), "--arm-opt", f"start={[float(v) for v in START]}"])
    captured = capsys.readouterr()
    assert code == 1
    assert "goal not reached" in captured.err and "time limit of 4 ticks" in captured.err and "--steps" in captured.err
    assert "outcome" in captured.out and "time limit" in captured.out     # a table, not a JSON line
    from robot_irl.library import Library
    lib = Library.open(tmp_path / "lib")
    assert len(lib.rows("kind:run")) == 1 and lib.rows("") == []          # kept as a run, not as a demo


def test_goal_in_centimetres_or_out_of_reach_is_refused_before_moving(run_dir, tmp_path, monkeypatch):
    sent = []
    monkeypatch.setattr(PyBulletBackend, "command", lambda self, q: sent.append(q))
    with pytest.raises(InputError, match="centimetres") as err:
        cli(["run", "--arm", "pybullet", "--run", str(run_dir), "--goal", "60,10,15", "--library", str(tmp_path / "l")])
    assert err.value.field == "--goal" and "nearest reachable" in str(err.value)
    with pytest.raises(InputError, match="out of reach"):
        cli(["run", "--arm", "pybullet", "--run", str(run_dir), "--goal", "2.5,0,0.3", "--library", str(tmp_path / "l")])
    with pytest.raises(InputError, match="outside the workspace box"):
        cli(["run", "--arm", "pybullet", "--run", str(run_dir), "--goal", "-0.6,0.1,0.15", "--workspace",
             "0,1,-1,1,0,1", "--library", str(tmp_path / "l")])          # a negative goal parses; outside the box
    assert sent == []


def test_dry_run_and_real_run_report_the_same_planned_error(run_dir, tmp_path, capsys):
    trained = load_run(run_dir)
    ee = ",".join(str(v) for v in goal_of(trained)[0])
    common = ["run", "--arm", "pybullet", "--run", str(run_dir), "--goal", ee, "--json",
              "--arm-opt", f"start={[float(v) for v in START]}", "--library", str(tmp_path / "lib")]
    assert cli(common + ["--dry-run", "--preview", str(tmp_path / "p.gif"), "--camera-size", "64x48"]) == 0
    dry = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert cli(common) == 0
    real = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert real["planned_final_err_cm"] == pytest.approx(dry["planned_final_err_cm"], abs=0.05)


def test_dry_run_reports_how_far_the_plan_strays_from_a_straight_line():
    from robot_irl.control.cli import detour_cm
    path = np.zeros((5, 2, 3))
    path[:, :, 0] = np.linspace(0.0, 0.3, 5)[:, None]
    assert detour_cm(path) == pytest.approx(0.0)
    path[2, 1, 1] = 0.1                                   # one keypoint swings 10 cm sideways mid-way
    assert detour_cm(path) == pytest.approx(10.0)


def test_plans_that_settle_off_the_goal_are_closed_by_the_final_approach(run_dir, monkeypatch):
    """A cost whose optimum sits 3 cm off the goal (as a learned cost can from a start unlike the
    demos'): the plans settle there, fresh plans do not get closer, and the final approach on the
    run's model reaches the goal within the step cap."""
    import robot_irl.irl as irl

    real_plan = irl.plan
    off = np.array([0.0, 0.03, 0.0])
    monkeypatch.setattr(irl, "plan", lambda trained, q, goal, h=None, **kw: real_plan(trained, q, goal + off, h, **kw))
    trained = load_run(run_dir)
    with make_arm("pybullet", backend_config("pybullet", {"robot": "iiwa", "start": tuple(START)}),
                  safety=SafetyConfig(), clock=FakeClock()) as arm:
        rec = run_learned(arm, trained, goal_of(trained))
    assert rec.approach_from_m == pytest.approx(0.03, abs=0.006)    # where the plans settled
    assert rec.outcome == "reached" and rec.succeeded and rec.final_err_m < 0.005
    sent = rec.arrays()["sent"]
    assert np.abs(np.diff(np.vstack([START, sent]), axis=0)).max() <= SafetyConfig().max_delta + 1e-9


def test_plans_stay_within_the_joint_range_the_filter_lets_through(run_dir):
    """A joint the plan would put inside the filter's margin is clamped there and the arm settles
    short: the run's model plans within the filter's range (for the run, then restored)."""
    from robot_irl.control.mpc import planning_within_filter, plan_once

    trained = load_run(run_dir)
    dyn = trained.dynamics
    lower, upper = dyn.lower.clone(), dyn.upper.clone()
    safety = SafetyConfig(limit_margin=0.3)
    with make_arm("pybullet", backend_config("pybullet", {"robot": "iiwa", "start": tuple(START)}), safety=safety,
                  clock=FakeClock()) as arm:
        inner = arm.safety_filter.limits
        with planning_within_filter(trained, arm):
            assert np.allclose(dyn.lower.numpy(), np.maximum(lower.numpy(), inner[:, 0]))
            assert np.allclose(dyn.upper.numpy(), np.minimum(upper.numpy(), inner[:, 1]))
            u, _ = plan_once(trained, np.array(START), arm.capabilities.joint_names, goal_of(trained))
        q = np.asarray(START) + np.cumsum(u, axis=0)
        assert np.all(q >= inner[:, 0] - 1e-9) and np.all(q <= inner[:, 1] + 1e-9)
    assert torch.equal(dyn.lower, lower) and torch.equal(dyn.upper, upper)
