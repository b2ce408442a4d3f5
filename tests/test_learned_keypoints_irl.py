"""The learner on learned keypoints (issue 18 item 4): the image space pixels are lifted into, the
observer, demos from arrays, and one tiny end-to-end pass through the CLI (a detector trained a few
steps, exploration seen through it, a tiny dynamics fit, a cost, one plan toward a goal image) with
the mismatches it must refuse."""
from __future__ import annotations

import json

import numpy as np
import pytest

from robot_irl.errors import InputError


def _front(size=(64, 48)):
    from sim.camera import get_camera
    return get_camera("front", size).model()


def test_image_space_lifts_onto_the_plane_facing_the_camera_and_back():
    from robot_irl.keypoints.learned.space import ImageSpace, axis_depth
    cam = _front()
    d = axis_depth(cam)
    # the sim's front camera: eye z 0.5 looking at (0.55, 0, 0.12): the axis meets z = 0 at 0.5 / sin(25.4 deg)
    assert d == pytest.approx(0.5 / np.sin(np.arctan2(0.38, 0.8)), rel=1e-6)
    space = ImageSpace.facing(cam)
    uv = np.array([[[10.0, 5.0], [32.0, 24.0]], [[63.0, 47.0], [np.nan, np.nan]]])
    xyz = space.lift(uv)
    assert xyz.shape == (2, 2, 3) and np.isnan(xyz[1, 1]).all()
    assert np.allclose(cam.to_camera(xyz[np.isfinite(xyz).all(-1)])[:, 2], d)     # one depth for every pixel
    assert np.allclose(space.pixels(xyz)[np.isfinite(uv)], uv[np.isfinite(uv)])
    # one scale everywhere: equal pixel steps are equal metres, at the image's edge as at its centre
    step = np.linalg.norm(np.diff(space.lift(np.array([[0.0, 0.0], [1.0, 0.0], [62.0, 47.0], [63.0, 47.0]])), axis=0), axis=-1)
    assert step[0] == pytest.approx(step[2])
    assert ImageSpace.from_dict(json.loads(json.dumps(space.to_dict()))).depth == pytest.approx(d)


def test_image_space_refuses_a_camera_that_never_sees_the_ground_and_a_bad_depth():
    from robot_irl.core.camera import CameraModel
    from robot_irl.keypoints.learned.space import ImageSpace, axis_depth
    up = CameraModel(K=np.eye(3), size=(64, 48), T_base_cam=np.eye(4))     # optical axis along +z of the base
    with pytest.raises(InputError, match="never meets the plane"):
        axis_depth(up)
    with pytest.raises(InputError, match="depth"):
        ImageSpace(_front(), -1.0)
    with pytest.raises(InputError, match="no image space"):
        ImageSpace.from_dict({"depth": 1.0})


def test_demos_from_arrays_cut_where_the_joints_rest_and_end_at_the_last_keypoints():
    from robot_irl.irl.library_demos import demos_from_arrays
    t = np.arange(20) * 0.1
    q = np.minimum(t, 1.0)[:, None] * np.ones((1, 3))          # moves for 1 s, then rests
    x = np.stack([q[:, :1] * np.array([1.0, 0.0, 0.0])] * 2, 1)   # [T, 2, 3]
    demos = demos_from_arrays([{"name": "a", "t": t, "x": x, "t_state": t, "q": q}], rows=5)
    assert demos.keypoints.shape == (1, 5, 2, 3) and demos.names == ["a"]
    assert demos.keypoints[0, -1, 0, 0] == pytest.approx(1.0) and demos.timestamps[0, -1] == pytest.approx(1.0)
    assert np.allclose(demos.q0, 0.0) and np.allclose(demos.goal_keypoints()[0], x[-1])
    with pytest.raises(InputError, match="demo b"):
        demos_from_arrays([{"name": "b", "t": t, "x": x[:, :, :2], "t_state": t, "q": q}])


@pytest.fixture(scope="module")
def plain_lib(tmp_path_factory):
    """Two plain (marker-less) place demos at 64x48, one per goal region."""
    from robot_irl.library import Library
    from robot_irl.record.sim import record_sim
    lib = Library.open(tmp_path_factory.mktemp("lkirl") / "lib", create=True)
    for i, region in enumerate(("right", "left")):
        record_sim(lib, "robot_irl/Place-v0", episodes=1, seed=i, variant={"goal_region": region},
                   render_size=(64, 48), plain=True, tags=["train"])
    return lib.path


@pytest.fixture(scope="module")
def detector(plain_lib, tmp_path_factory):
    """A detector trained for a few steps (K = 4, 32 px wide) on the demos' frames."""
    from robot_irl.keypoints.learned.frames import library_frames
    from robot_irl.keypoints.learned.train import TrainConfig, train_detector
    from robot_irl.library import Library
    out = tmp_path_factory.mktemp("lkirl") / "det"
    train_detector(library_frames(Library.open(plain_lib).select("tag:plain"), 32), out, k=4,
                   config=TrainConfig(steps=3, batch=4, image_every=100), progress=False)
    return out


def test_observer_checks_camera_keypoints_and_detector(detector):
    from robot_irl.keypoints.learned.observe import LearnedObserver
    from robot_irl.keypoints.learned.space import ImageSpace
    with pytest.raises(InputError, match="camera is 320x240, the detector's frames 64x48"):
        LearnedObserver(detector, ImageSpace.facing(_front((320, 240))))
    with pytest.raises(InputError, match="keypoints to keep"):
        LearnedObserver(detector, ImageSpace.facing(_front()), keep=["lk9"])
    obs = LearnedObserver(detector, ImageSpace.facing(_front()), keep=["lk1", "lk3"])
    x = obs(np.zeros((3, 48, 64, 3), np.uint8))
    assert x.shape == (3, 2, 3) and np.isfinite(x).all()
    d = obs.to_dict()
    assert d["names"] == ["lk1", "lk3"] and d["k"] == 4 and d["source_size"] == [64, 48]
    with pytest.raises(InputError, match="now has K = 4.*made with K = 8"):
        LearnedObserver.from_dict({**d, "k": 8}, file="model.pt")
    with pytest.raises(InputError, match="frames are 80x60"):
        obs(np.zeros((1, 60, 80, 3), np.uint8), origin="goal.png")


def test_cli_learned_keypoints_end_to_end(plain_lib, detector, tmp_path, capsys):
    """dynamics collect --detector -> dynamics train -> train --keypoints learned -> run --goal-image."""
    import cv2

    from robot_irl.cli import main
    from robot_irl.library import Library
    from robot_irl.models import LearnedDynamics
    data, dyn_dir, run_dir = tmp_path / "explore.npz", tmp_path / "dyn", tmp_path / "run"
    assert main(["dynamics", "collect", "--detector", str(detector), "--episodes", "3", "--rows", "3", "--extra", "0",
                 "--random-frac", "0", "--out", str(data), "--quiet"]) == 0
    arrays = np.load(data)
    assert arrays["x"].shape == (3, 3, 4, 3) and "frame_links" not in arrays
    assert json.loads(str(arrays["observation"]))["names"] == ["lk0", "lk1", "lk2", "lk3"]
    assert main(["dynamics", "train", "--data", str(data), "--out", str(dyn_dir), "--epochs", "2", "--json"]) == 0
    model = LearnedDynamics.load(dyn_dir / "model.pt")
    assert model.frames is None and model.observation["model"] == str(detector.resolve())
    capsys.readouterr()
    assert main(["train", "--demos", "tag:train", "--library", str(plain_lib), "--keypoints", "learned",
                 "--dynamics", "learned", "--model", str(dyn_dir / "model.pt"), "--iters", "2", "--out", str(run_dir),
                 "--quiet", "--json"]) == 0
    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["demos"]["keypoints"] == "learned" and cfg["demos"]["keypoint_names"] == ["lk0", "lk1", "lk2", "lk3"]
    ep = sorted(Library.open(plain_lib).select("tag:train"), key=lambda e: e.meta["seed"])[1]
    goal_png = tmp_path / "goal.png"
    cv2.imwrite(str(goal_png), cv2.cvtColor(list(ep.video_frames("cam0"))[-1], cv2.COLOR_RGB2BGR))
    capsys.readouterr()
    start = ",".join(f"{v:.4f}" for v in ep.arrays("state")["joint_pos"][0])
    assert main(["run", "--run", str(run_dir), "--goal-image", str(goal_png), "--dry-run", "--json", "--sim-time",
                 "--arm-opt", f"start=[{start}]", "--preview", str(tmp_path / "p.gif")]) in (0, 1)
    shown = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert np.asarray(shown["goal_keypoints"]).shape == (4, 3) and np.asarray(shown["planned_keypoints"]).shape[1:] == (4, 3)
    # the mismatches: an image of another size, a goal point for learned keypoints, both goals, none
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), np.zeros((24, 32, 3), np.uint8))
    for argv, message in ((["--goal-image", str(small)], "frames are 32x24"),
                          (["--goal", "0.6,0,0.2"], "with a run on learned keypoints"),
                          (["--goal", "0.6,0,0.2", "--goal-image", str(goal_png)], "both given"),
                          ([], "no goal")):
        assert main(["run", "--run", str(run_dir), "--dry-run", "--sim-time", *argv]) == 2
        assert message in capsys.readouterr().err
    assert main(["train", "--demos", "tag:train", "--library", str(plain_lib), "--keypoints", "learned",
                 "--out", str(tmp_path / "r2")]) == 2
    assert "--keypoints learned with --dynamics kinematic" in capsys.readouterr().err
