"""Camera-to-base from a sim-recorded episode: the wrist marker over the expert's arm poses + FK; and, on
the same render, the live-camera path end to end (record -> extract -> 3D -> train, no joint log)."""
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


class LiveReplay:
    """A sim render played as a live camera (cv2.VideoCapture's interface): frame k is taken at
    ``t_start + k / fps`` plus clock jitter and handed out LATENCY s later, stamped by the driver
    (CAP_PROP_POS_MSEC); frame ``drop`` is never delivered (a dropped frame). No joint log."""

    LATENCY = 0.02

    def __init__(self, frames: list, fps: float, drop: int, seed: int = 0) -> None:
        self.frames, self.fps, self.drop = frames, fps, drop
        self.jitter = np.random.default_rng(seed).uniform(-0.15, 0.15, len(frames)) / fps
        self.t_start: float | None = None
        self.next, self.cur, self.delivered = 0, -1, []

    def taken(self, k: int) -> float:
        return self.t_start + k / self.fps + self.jitter[k]

    def grab(self) -> bool:
        import time
        if self.t_start is None:    # the camera starts with the recording: its first frame is fresh
            self.t_start = time.monotonic() + 1.0 / self.fps
        if self.next == self.drop:
            self.next += 1
        if self.next >= len(self.frames):
            return False
        ready = self.taken(self.next) + self.LATENCY
        time.sleep(max(0.0, ready - time.monotonic()))
        self.cur, self.next = self.next, self.next + 1
        self.delivered.append(self.cur)
        return True

    def retrieve(self):
        return True, self.frames[self.cur].copy()

    def read(self):
        return self.retrieve() if self.grab() else (False, None)

    def get(self, prop: int) -> float:
        import cv2
        if prop == cv2.CAP_PROP_FPS:
            return self.fps
        return self.taken(self.cur) * 1000.0 if prop == cv2.CAP_PROP_POS_MSEC and self.cur >= 0 else 0.0

    def release(self) -> None:
        pass


def test_live_camera_recording_to_3d_keypoints_to_a_cost(recorded, tmp_path, capsys):
    """End to end without a joint log: the Place render replayed as a live camera (clock stamps
    with jitter, one dropped frame) -> record (camera source, the sim camera's model) -> extract
    with the defaults -> 3D robot keypoints against the sim's truth -> train a cost, its start
    pose solved by IK from the first frame's robot keypoints and goals from the final ones."""
    import json

    from robot_irl.cli import main
    from robot_irl.core.spec import KeypointSpec
    from robot_irl.library import Library
    from robot_irl.record.camera import record_camera
    root, ep_id, true = recorded
    sim_ep = Library.open(root).episode(ep_id)
    frames = list(sim_ep.video_frames("cam0", rgb=False))
    truth = sim_ep.arrays("state")["keypoints_3d"]
    spec = sim_ep.keypoint_spec
    live = LiveReplay(frames, fps=sim_ep.fps, drop=8)           # the sim's own rate (10 Hz)
    lib = Library.open(tmp_path / "live", create=True)
    ep = record_camera(lib, live, model=true, keypoint_spec=KeypointSpec.from_dict(spec.to_dict()),
                       latency_s=LiveReplay.LATENCY)
    assert live.delivered == [k for k in range(len(frames)) if k != 8]
    ts = ep.timestamps("cam0")
    assert "state" not in ep.streams and ep.meta["extra"]["camera_stamps"]["stamps"] == "driver"
    assert np.diff(ts).max() > 1.5 / sim_ep.fps and np.std(np.diff(np.delete(ts, [8]))) > 1e-3   # a drop and jitter
    assert main(["extract", ep.id, "--library", str(lib.path), "--quiet"]) == 0
    d = Library.open(lib.path).episode(ep.id).read_derived("keypoints")
    ee = spec.index("ee")
    xyz = d.arrays["keypoints"][:, ee]
    err = np.linalg.norm(xyz - truth[live.delivered, ee], axis=1)
    assert np.isfinite(err).mean() > 0.8 and np.nanmedian(err) < 0.01, err
    import os

    import pybullet_data
    urdf = os.path.join(pybullet_data.getDataPath(), "kuka_iiwa/model.urdf")
    out = tmp_path / "run"
    assert main(["train", "--demos", "", "--library", str(lib.path), "--keypoints", "extracted", "--goals", "final",
                 "--urdf", urdf, "--rows", "4", "--iters", "1", "--out", str(out), "--quiet", "--json"]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["demos"]["goals"] == "final" and cfg["demos"]["keypoint_names"] == ["ee", "ee_blob"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert np.isfinite(metrics["train_final_err_cm"]), metrics
    # the start pose by IK reproduces the first frame's robot keypoints (no joint log was used)
    import torch

    from robot_irl.models import KinematicDynamics, frames_from_spec
    dyn = KinematicDynamics(urdf, frames_from_spec(spec.on_body("robot")))
    first = d.arrays["keypoints"][0, [ee, spec.index("ee_blob")]]
    q0 = dyn.inverse_kinematics(torch.as_tensor(first[None], dtype=dyn.dtype))
    fk = dyn.keypoints(q0).detach().numpy().reshape(-1, 3)
    assert np.linalg.norm(fk - first, axis=1).max() < 0.02
