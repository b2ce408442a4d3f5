"""Camera-to-base from a sim-recorded episode: the wrist marker over the expert's arm poses + FK."""
import argparse

import numpy as np
import pytest

from robot_irl.errors import InputError
from robot_irl.keypoints.geometry import make_T, rotation_angle
from robot_irl.keypoints.handeye import count_distinct, hand_eye_episodes, robot_urdf

pytest.importorskip("pybullet")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    from robot_irl.library import Library
    from robot_irl.record.sim import record_sim

    root = tmp_path_factory.mktemp("lib")
    lib = Library.open(root, create=True)
    ep = record_sim(lib, "robot_irl/Place-v0", episodes=1, seed=0, render_size=(640, 480))[0]
    return root, ep.id, ep.camera_model("cam0")


def parser():
    from robot_irl.keypoints.cli import register
    p = argparse.ArgumentParser()
    register(p.add_subparsers())
    return p


def test_cli_hand_eye_recovers_the_sims_camera_pose(recorded, tmp_path, capsys):
    from robot_irl.library import Library

    root, ep_id, true = recorded
    args = parser().parse_args(["calibrate", "--hand-eye", "--episode", ep_id, "--library", str(root),
                                "-o", str(tmp_path / "cam.json")])
    assert args.func(args) == 0
    ep = Library.open(root).episode(ep_id)
    T, T_true = ep.camera_model("cam0").T_base_cam, true.T_base_cam
    assert np.linalg.norm(T[:3, 3] - T_true[:3, 3]) < 0.015               # camera ~0.9 m away: 7 mm here
    assert np.rad2deg(rotation_angle(T[:3, :3], T_true[:3, :3])) < 1.0    # 0.54° here
    assert np.allclose(ep.camera_model("cam0").K, true.K)
    ext = ep.calibration("cam0")["extrinsics"]
    assert ext["rms_px"] < 1.0 and ext["distinct_poses"] >= 15
    assert (tmp_path / "cam.json").is_file() and "distinct arm poses" in capsys.readouterr().out


def test_too_few_poses_and_missing_urdf_are_clear_errors(recorded):
    from robot_irl.library import Library

    root, ep_id, _ = recorded
    ep = Library.open(root).episode(ep_id)
    with pytest.raises(InputError, match="distinct arm poses"):
        hand_eye_episodes([ep], min_poses=1000)
    with pytest.raises(InputError, match="URDF"):
        robot_urdf("ur5")
    with pytest.raises(InputError, match="marker on the robot|keypoint"):
        hand_eye_episodes([ep], markers=["obj"])


def test_distinct_poses_ignore_repeats():
    still = np.repeat(np.eye(4)[None], 5, axis=0)
    moved = np.stack([make_T(np.eye(3), [0.02 * i, 0, 0]) for i in range(5)])
    assert count_distinct(still) == 1 and count_distinct(moved) == 5
