"""Kinesthetic recording from an Arm in teach mode (pybullet backend, a simulated hand moving it)."""
from __future__ import annotations

import argparse
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from robot_irl.control import backend_config, make_arm
from robot_irl.errors import InputError
from robot_irl.library import Library
from robot_irl.record.arm import record_arm
from robot_irl.record.cli import register as register_record
from robot_irl.record.hand import SimulatedHand
from robot_irl.record.kinematics import RobotKinematics
from test_record_camera import write_video


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory):
    """One 1.2 s recording at 50 Hz while a hand moves the iiwa, with a camera (a video file) beside it."""
    tmp = tmp_path_factory.mktemp("arm")
    write_video(tmp / "cam.mkv", 60, fps=30.0)
    lib = Library.open(tmp / "lib", create=True)
    with make_arm("pybullet", backend_config("pybullet", {"robot": "iiwa"})) as arm:
        hand = SimulatedHand.wander(arm, segments=2, segment_s=0.5, amplitude=0.3, seed=3)
        ep = record_arm(lib, arm, task="wave the arm", rate_hz=50, duration=1.2, arm_name="pybullet",
                        camera_device=str(tmp / "cam.mkv"), tags=["kin"], on_start=hand.start)
        hand.stop()
        assert not arm.teaching                       # teach mode is left off after recording
    return lib, ep, hand


def test_arm_episode_follows_the_hand(recorded) -> None:
    lib, ep, hand = recorded
    assert ep.source == "arm" and ep.task == "wave the arm" and ep.robot == "iiwa" and ep.tags == ["kin"]
    assert ep.meta["extra"]["stopped_by"] == "duration" and ep.meta["extra"]["arm"] == "pybullet"
    a = ep.arrays("state")
    ts = a["timestamp"]
    assert ts[0] == 0.0 and 1.2 <= ts[-1] < 1.3 and 30 <= len(ts) <= 75     # fewer if the machine starves us
    assert np.median(np.diff(ts)) == pytest.approx(0.02, abs=0.005)      # the fixed rate, on the arm's clock
    shift = ep.meta["extra"]["arm_clock_t0"] - hand.t0
    # positions as the hand moved them: its last move before each reading (the hand thread may be
    # starved for a while on a loaded 2-core machine, so allow up to 250 ms of lag)
    lag = np.linspace(0.0, 0.25, 251)
    err = [min(np.abs(hand.path(t + shift - d)[0] - q).max() for d in lag) for t, q in zip(ts, a["joint_pos"])]
    assert max(err) < 0.01     # rad; the hand moves ±0.3 rad
    assert np.ptp(a["joint_pos"], axis=0).max() > 0.2                   # and it did move
    # velocities are the arm's own measurement; the sim's teach damper stops the joints within a
    # physics step of each hand move, so only samples read right after a move carry the hand's speed
    vel_want = np.array([hand.path(t + shift)[1] for t in ts])
    assert np.isfinite(a["joint_vel"]).all()
    moving = np.linalg.norm(vel_want, axis=1) > 0.3
    close = np.linalg.norm(a["joint_vel"] - vel_want, axis=1) < 0.05 * np.linalg.norm(vel_want, axis=1)
    assert (close & moving).any()
    # demonstrated actions: the next measured position; none after the last state
    np.testing.assert_array_equal(a["target_requested"][:-1], a["joint_pos"][1:])
    np.testing.assert_allclose(a["action_delta"][:-1], np.diff(a["joint_pos"], axis=0))
    assert np.isnan(a["target_requested"][-1]).all() and np.isnan(a["action_delta"][-1]).all()


def test_arm_episode_pose_and_keypoints_from_fk(recorded) -> None:
    _, ep, _ = recorded
    a = ep.arrays("state")
    spec = ep.keypoint_spec
    assert spec is not None and spec.names == ["ee", "ee_blob"]
    kin = RobotKinematics("iiwa")
    try:
        for i in (0, len(a["timestamp"]) // 2, -1):
            pos, quat = kin.ee_pose(a["joint_pos"][i])
            np.testing.assert_allclose(a["ee_pos"][i], pos, atol=1e-4)
            assert abs(abs(float(a["ee_quat"][i] @ quat)) - 1.0) < 1e-6
            x, y, z, w = quat
            R = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                          [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                          [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
            ee = spec.get("ee")
            np.testing.assert_allclose(a["keypoints_3d"][i, 0], pos + R @ np.array(ee.offset), atol=1e-6)
    finally:
        kin.close()


def test_camera_beside_the_arm_shares_the_clock(recorded) -> None:
    _, ep, _ = recorded
    ts, rows = ep.timestamps("cam0"), ep.arrays("state")["timestamp"]
    assert ep.frame_count("cam0") == len(ts) == ep.meta["extra"]["camera_frames"] >= 25
    assert all(p.suffix == ".mp4" for p in ep.video_files("cam0"))
    assert ts[0] >= 0.0 and ts[-1] <= rows[-1] + 0.1              # inside the recording, same clock
    assert np.median(np.diff(ts)) == pytest.approx(1 / 30, rel=0.3)  # a file is paced like a live camera
    ep.validate(deep=True)


def test_stop_event_and_refusals(tmp_path: Path) -> None:
    lib = Library.open(tmp_path / "lib", create=True)
    stop = threading.Event()
    with make_arm("pybullet", backend_config("pybullet", {"robot": "panda"})) as arm:
        ep = record_arm(lib, arm, task="", rate_hz=100, stop=stop, arm_name="pybullet",
                        on_start=lambda: threading.Timer(0.3, stop.set).start())
        assert ep.meta["extra"]["stopped_by"] == "stop key" and ep.robot == "panda"
        assert 0.2 < ep.arrays("state")["timestamp"][-1] < 1.0
        with pytest.raises(InputError) as e:
            record_arm(lib, arm, rate_hz=50)                    # nothing would ever stop it
        assert e.value.field == "--duration"
        with pytest.raises(InputError) as e:
            record_arm(lib, arm, rate_hz=50, max_rows=5, camera_device=str(tmp_path / "none.mp4"))
        assert e.value.field == "--camera-device"
    no_teach = SimpleNamespace(capabilities=SimpleNamespace(control_modes=("joint_position",), robot="x"))
    with pytest.raises(InputError) as e:
        record_arm(lib, no_teach, max_rows=3)
    assert e.value.field == "--arm"
    assert [r["id"] for r in lib.rows()] == [ep.id] and not lib.staged()   # refusals left nothing behind


def test_record_arm_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    parser = argparse.ArgumentParser()
    register_record(parser.add_subparsers(required=True))
    lib = str(tmp_path / "lib")
    args = parser.parse_args(["record", "--source", "arm", "--arm", "pybullet", "--sim-hand", "--max-rows", "20",
                              "--rate", "40", "--task", "cli arm", "--library", lib])
    assert args.func(args) == 0
    assert "20 rows at 40 Hz" in capsys.readouterr().out
    (ep,) = Library.open(lib).select("source:arm")
    assert ep.task == "cli arm" and ep.meta["extra"]["stopped_by"] == "row count"
    args = parser.parse_args(["record", "--source", "arm", "--library", lib, "--max-rows", "3"])
    with pytest.raises(InputError):
        args.func(args)
