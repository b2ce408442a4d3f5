"""Sim recording end to end: record → list → load → export LeRobot → import → identical; replay; CLI."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from robot_irl.library import Library
from robot_irl.library.cli import register as register_demos
from robot_irl.library.lerobot import export_lerobot
from robot_irl.library.lerobot_import import import_lerobot
from robot_irl.library.replay import replay
from robot_irl.record.cli import register as register_record
from robot_irl.record.sim import record_sim
from test_library_lerobot import assert_round_trip

pytest.importorskip("sim")


@pytest.fixture(scope="module")
def sim_lib(tmp_path_factory: pytest.TempPathFactory) -> Library:
    lib = Library.open(tmp_path_factory.mktemp("sim") / "lib", create=True)
    record_sim(lib, "robot_irl/Place-v0", episodes=2, seed=5, variant={"color": "blue"}, chunk_frames=10)
    return lib


def test_sim_episode_content(sim_lib: Library) -> None:
    rows = sim_lib.rows("source:sim variant.color=blue")
    assert len(rows) == 2 and all(r["success"] for r in rows)
    ep = sim_lib.episode(rows[0]["id"])
    a = ep.arrays("state")
    n = ep.frame_count("cam0")
    assert len(a["timestamp"]) == n == len(ep.timestamps("cam0")) and n > 10
    np.testing.assert_array_equal(a["timestamp"], ep.timestamps("cam0"))
    assert ep.meta["seed"] == 5 and ep.meta["env"] == "robot_irl/Place-v0" and ep.variant["color"] == "blue"
    assert ep.keypoint_spec is not None and a["keypoints_3d"].shape == (n, len(ep.keypoint_spec), 3)
    # ground-truth 2D keypoints are the camera model's projection of the 3D ones
    cam = ep.camera_model("cam0")
    np.testing.assert_allclose(cam.project(a["keypoints_3d"]), a["keypoints_2d_cam0"], atol=1e-6)
    # the last row is the final state with no action (NaN), every other row has one
    assert np.isnan(a["action_delta"][-1]).all() and np.isfinite(a["action_delta"][:-1]).all()
    np.testing.assert_allclose(a["target_sent"][:-1], a["target_requested"][:-1], atol=1e-9)
    assert a["success"][-1] and ep.success


@pytest.mark.parametrize("codec", ["ffv1", "mp4v", "h264"])
def test_sim_round_trip_through_lerobot(sim_lib: Library, tmp_path: Path, codec: str) -> None:
    eps = sim_lib.select("source:sim")
    out = export_lerobot(eps, tmp_path / "lr", video_codec=codec)
    back = import_lerobot(Library.open(tmp_path / "lib2", create=True), out)
    worst = assert_round_trip(eps, back, lossless=codec == "ffv1")
    assert min(worst) >= 35.0, worst  # luma PSNR of mp4v / H.264 on the renders


def test_replay_draws_ground_truth(sim_lib: Library, tmp_path: Path) -> None:
    ep = sim_lib.select()[0]
    src = replay(ep, "cam0", out=tmp_path / "replay.mkv")
    assert src == "ground truth (state.keypoints_2d_cam0)"
    import cv2
    cap = cv2.VideoCapture(str(tmp_path / "replay.mkv"))
    ok, drawn = cap.read()
    assert ok and not np.array_equal(drawn, ep.frame("cam0", 0, rgb=False))


def test_record_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(required=True)
    register_record(sub)
    register_demos(sub)
    lib = str(tmp_path / "lib")
    args = parser.parse_args(["record", "--source", "sim", "--episodes", "1", "--seed", "2", "--library", lib,
                              "--tags", "cli,first"])
    assert args.func(args) == 0
    args = parser.parse_args(["demos", "list", "tag:cli", "--library", lib, "--json"])
    assert args.func(args) == 0
    assert '"source": "sim"' in capsys.readouterr().out


def test_exploration_episodes_are_dynamics_collect_motions_kept_out_of_demo_queries(tmp_path: Path) -> None:
    """`record --source sim --explore`: models.collect's exploration episodes, every control step
    recorded; kind 'explore', so a demo query never picks them up and `kind:explore` does."""
    from robot_irl.models.collect import ExplorePlan, explore_episode, release_env

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(required=True)
    register_record(sub)
    lib_path = str(tmp_path / "lib")
    args = parser.parse_args(["record", "--source", "sim", "--explore", "--episodes", "2", "--seed", "3",
                              "--size", "64x48", "--library", lib_path])
    assert args.func(args) == 0
    lib = Library.open(lib_path)
    assert lib.select(None) == [] and lib.select("tag:explore") == []
    eps = sorted(lib.select("kind:explore"), key=lambda e: e.meta["seed"])
    assert len(eps) == 2 and all(e.meta["kind"] == "explore" and "explore" in e.meta["tags"] for e in eps)
    try:
        for e, ep in enumerate(eps):
            want = explore_episode(ExplorePlan(seed=3), e)
            assert ep.meta["seed"] == int(want["seed"])
            q = ep.arrays("state")["joint_pos"]
            assert ep.frame_count("cam0") == len(q)
            m = (len(q) - 1) // (len(want["q"]) - 1)       # every row split into m control steps
            assert len(q) == m * (len(want["q"]) - 1) + 1
            np.testing.assert_allclose(q[::m], want["q"], atol=1e-9)
    finally:
        release_env()
