"""Learned keypoints (issue 18): plain sim renders, the detector's train → extract → report path at
tiny sizes, the probe and verdict maths, and the bad inputs the issue names."""
from __future__ import annotations

import json

import numpy as np
import pytest

from robot_irl.errors import InputError
from robot_irl.keypoints.learned.frames import sequence_frames
from robot_irl.keypoints.learned.probe import LinearProbe, keypoint_report, probe_errors


@pytest.fixture(scope="module")
def plain_lib(tmp_path_factory):
    """Three plain (marker-less) place episodes at 64x48."""
    from robot_irl.library import Library
    from robot_irl.record.sim import record_sim
    path = tmp_path_factory.mktemp("learned") / "lib"
    lib = Library.open(path, create=True)
    record_sim(lib, "robot_irl/Place-v0", episodes=3, seed=0, render_size=(64, 48), plain=True)
    return path


@pytest.fixture(scope="module")
def model(plain_lib, tmp_path_factory):
    """A detector trained for a few steps through the CLI (K = 4, 32 px wide)."""
    from robot_irl.cli import main
    out = tmp_path_factory.mktemp("model") / "kp"
    assert main(["keypoints", "train", "--demos", "tag:plain", "--library", str(plain_lib), "--k", "4", "--size", "32",
                 "--steps", "4", "--batch", "4", "--out", str(out), "--quiet"]) == 0
    return out


def test_plain_recording_draws_no_features(plain_lib):
    from robot_irl.library import Library
    import sim
    ep = Library.open(plain_lib).select("tag:plain")[0]
    assert "plain" in ep.tags and ep.meta["extra"]["plain"] is True
    env = sim.make("robot_irl/Place-v0", markers=False, blobs=False, render_size=(64, 48))
    try:
        env.reset(seed=0)
        assert all(env.unwrapped.scene.feature_body(k.name) is None for k in env.unwrapped.keypoint_spec)
    finally:
        env.close()
    truth = ep.arrays("state")["keypoints_2d_cam0"]
    assert np.isfinite(truth).all()   # truth pixels are recorded even with nothing drawn


def test_train_writes_model_folder(model):
    cfg = json.loads((model / "config.json").read_text())
    assert cfg["kind"] == "learned-keypoints" and cfg["detector"]["k"] == 4 and cfg["detector"]["width"] == 32
    assert cfg["source_size"] == [64, 48] and cfg["demos"] == "tag:plain"
    assert (model / "detector.pt").exists() and not (model / "incomplete.json").exists()
    assert list((model / "tb").glob("events.*")) and (model / "plots" / "loss.png").exists()
    m = json.loads((model / "metrics.json").read_text())
    assert m["steps"] == 4 and m["frames"] > 8 and np.isfinite(m["loss_final"])


def test_extract_learned_stores_track(plain_lib, model, capsys):
    from robot_irl.cli import main
    from robot_irl.library import Library
    assert main(["extract", "tag:plain", "--library", str(plain_lib), "--detector", "learned", "--model", str(model),
                 "--table-z", "0.025", "--quiet"]) == 0
    ep = Library.open(plain_lib).select("tag:plain")[0]
    derived = ep.read_derived("keypoints")
    arrays, meta = derived.arrays, derived.meta
    T = ep.frame_count("cam0")
    assert arrays["uv"].shape == (T, 4, 2) and arrays["keypoints"].shape == (T, 4, 3)
    assert meta["names"] == ["lk0", "lk1", "lk2", "lk3"] and meta["detector"] == "learned"
    raw_uv = arrays["raw_uv"]
    assert np.isfinite(raw_uv).all() and (raw_uv >= -0.5).all() and (raw_uv[..., 0] <= 63.5).all()
    assert ((arrays["confidence"] >= 0) & (arrays["confidence"] <= 1)).all()
    # on the table plane: z of every lifted point is the plane's
    z = arrays["raw_keypoints"][..., 2]
    assert np.allclose(z[np.isfinite(z)], 0.025)
    assert meta["source_codes"][int(arrays["source"][0, 0])] == "learned"


def test_report_cli(plain_lib, model, tmp_path, capsys):
    from robot_irl.cli import main
    assert main(["keypoints", "report", "--model", str(model), "--demos", "tag:plain", "--library", str(plain_lib),
                 "--out", str(tmp_path), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["truth"] is True and len(rep["keypoints"]) == 4
    assert all(k["follows"] in ("ee", "ee_blob", "obj") for k in rep["keypoints"])
    assert (tmp_path / "keypoints.png").exists() and (tmp_path / "report.json").exists()
    page = (tmp_path / "report.html").read_text()
    assert "What each learned keypoint follows" in page and "data:image/png;base64," in page
    assert all(f"<td>{k['name']}</td>" in page for k in rep["keypoints"])


def test_model_of_another_k_or_size_is_refused(plain_lib, model):
    from robot_irl.keypoints.learned.detector import LearnedDetector
    with pytest.raises(InputError, match="K = 4 keypoints, 8 were asked"):
        LearnedDetector.load(model, k=8)
    det = LearnedDetector.load(model)
    with pytest.raises(InputError, match="frames are 80x60.*64x48"):
        det.detect([np.zeros((60, 80, 3), np.uint8)], origin="clip.mp4")


def test_too_few_frames_and_mixed_sizes():
    with pytest.raises(InputError, match="only 4 frames"):
        sequence_frames([np.zeros((48, 64, 3), np.uint8)] * 4, 32).check_trainable("q")
    mixed = [np.zeros((48, 64, 3), np.uint8)] * 5 + [np.zeros((60, 80, 3), np.uint8)] * 5
    with pytest.raises(InputError, match="mixed sizes: 64x48.*80x60"):
        sequence_frames(mixed, 32)


def test_cli_rejects_bad_inputs(plain_lib, model, tmp_path, capsys):
    from robot_irl.cli import main
    assert main(["keypoints", "train", "--demos", "nothing-matches-this", "--library", str(plain_lib),
                 "--out", str(tmp_path / "m")]) == 2
    assert "no episode matches" in capsys.readouterr().err
    assert main(["extract", "tag:plain", "--library", str(plain_lib), "--detector", "learned"]) == 2
    assert "needs --model" in capsys.readouterr().err
    assert main(["extract", "tag:plain", "--library", str(plain_lib), "--detector", "learned",
                 "--model", str(tmp_path)]) == 2
    assert "config.json" in capsys.readouterr().err
    assert main(["keypoints", "train", "--demos", "tag:plain", "--library", str(plain_lib), "--context", "9",
                 "--out", str(tmp_path / "m9")]) == 2
    assert "--context" in capsys.readouterr().err
    assert main(["keypoints", "train", "--demos", "tag:plain", "--library", str(plain_lib), "--sigma", "0",
                 "--out", str(tmp_path / "s0")]) == 2
    assert "--sigma" in capsys.readouterr().err


@pytest.mark.parametrize("context, seen_px", [(0, 19), (2, 67)])
def test_context_widens_what_a_heat_map_cell_sees(context, seen_px):
    """The input pixels that move the centre cell's logits span the receptive field the docs give."""
    import torch

    from robot_irl.keypoints.learned.model import DetectorConfig, KeypointNet
    torch.manual_seed(0)
    net = KeypointNet(DetectorConfig(k=2, width=128, height=128, context=context)).eval()
    x = torch.rand(1, 3, 128, 128, requires_grad=True)
    logits = net.keypointer(x)
    logits[0, :, 16, 16].sum().backward()        # the cell whose centre is input pixel ~65.5
    cols = np.flatnonzero(x.grad.abs().sum((0, 1, 2)).numpy() > 0)
    assert cols.max() - cols.min() + 1 == seen_px


def test_a_model_with_context_trains_and_loads(plain_lib, tmp_path):
    from robot_irl.cli import main
    from robot_irl.keypoints.learned.detector import LearnedDetector
    out = tmp_path / "ctx"
    assert main(["keypoints", "train", "--demos", "tag:plain", "--library", str(plain_lib), "--k", "3", "--size", "32",
                 "--steps", "2", "--batch", "2", "--context", "2", "--sigma", "0.03", "--out", str(out),
                 "--quiet"]) == 0
    det = LearnedDetector.load(out)
    assert det.config["detector"]["context"] == 2
    assert det.net.cfg.sigma == 0.03
    frames = np.zeros((2, 48, 64, 3), np.uint8)
    assert det.detect(frames).uv.shape == (2, 3, 2)


def test_members_are_lone_detectors_side_by_side(plain_lib, tmp_path, capsys):
    """``--members 2``: 2K keypoints, member m's weights are those of a lone detector trained with
    seed + m, and its keypoints are numbers m*K .. (m+1)*K - 1 of the whole."""
    import torch

    from robot_irl.cli import main
    from robot_irl.keypoints.learned.detector import LearnedDetector
    common = ["keypoints", "train", "--demos", "tag:plain", "--library", str(plain_lib), "--k", "3", "--size", "32",
              "--steps", "3", "--batch", "2", "--quiet"]
    assert main(common + ["--members", "2", "--seed", "5", "--out", str(tmp_path / "pair")]) == 0
    for seed in (5, 6):
        assert main(common + ["--seed", str(seed), "--out", str(tmp_path / f"lone{seed}")]) == 0
    pair = LearnedDetector.load(tmp_path / "pair", k=6)
    assert pair.k == 6 and pair.names == [f"lk{i}" for i in range(6)]
    assert json.loads((tmp_path / "pair" / "metrics.json").read_text())["members"] == 2
    frames = plain_frames(plain_lib)[:4]
    both = pair.detect(frames).uv
    for m, seed in enumerate((5, 6)):
        lone = LearnedDetector.load(tmp_path / f"lone{seed}")
        for name, value in lone.net.members[0].state_dict().items():
            assert torch.equal(pair.net.members[m].state_dict()[name], value), name
        assert np.allclose(both[:, 3 * m:3 * (m + 1)], lone.detect(frames).uv)
    with pytest.raises(InputError, match="K = 6 keypoints, 3 were asked.*--members"):
        LearnedDetector.load(tmp_path / "pair", k=3)
    assert main(common + ["--members", "0", "--out", str(tmp_path / "none")]) == 2
    assert "--members" in capsys.readouterr().err


def test_weights_saved_before_members_still_load(model, tmp_path):
    """A model folder from before ``members`` (one ``state``, no ``states``) loads as one member."""
    import shutil

    import torch

    from robot_irl.keypoints.learned.detector import LearnedDetector
    old = tmp_path / "old"
    shutil.copytree(model, old)
    blob = torch.load(old / "detector.pt", weights_only=True)
    config = json.loads((old / "config.json").read_text())
    for det in (config["detector"], blob["config"]):
        del det["members"]
    (old / "config.json").write_text(json.dumps(config))
    torch.save({"config": blob["config"], "state": blob["states"][0]}, old / "detector.pt")
    frames = [np.full((48, 64, 3), 90, np.uint8)]
    assert np.allclose(LearnedDetector.load(old).detect(frames).uv, LearnedDetector.load(model).detect(frames).uv)


def plain_frames(library) -> list[np.ndarray]:
    from robot_irl.library import Library
    return list(Library.open(library).select("tag:plain")[0].video_frames("cam0"))


def test_motion_crop_finds_what_moves_and_bad_crops_are_refused():
    from robot_irl.keypoints.learned.frames import Crop, motion_crop
    rng = np.random.default_rng(0)
    frames = []
    for t in range(20):      # a 6 px square sliding along x in rows 40-46, on a still noisy background
        f = np.full((60, 80, 3), 90, np.uint8) + rng.integers(0, 3, (60, 80, 3), dtype=np.uint8)
        f[40:46, 10 + t:16 + t] = 250
        frames.append(f)
    crop = motion_crop(frames, margin=0.0)
    assert 8 <= crop.x <= 11 and crop.x + crop.w >= 34 and 38 <= crop.y <= 40 and crop.y + crop.h <= 48, crop
    fs = sequence_frames(frames, 16, crop="auto")
    assert fs.crop == motion_crop(frames) and fs.images.shape[2] == 16 and fs.source_size == (80, 60)
    with pytest.raises(InputError, match="nothing moves"):
        motion_crop([frames[0]] * 5)
    with pytest.raises(InputError, match="X,Y,W,H"):
        Crop.parse("1,2")
    with pytest.raises(InputError, match="inside the 80x60 frames"):
        sequence_frames(frames, 16, crop="70,0,20,20")


def test_a_model_trained_on_a_crop_reports_whole_frame_pixels(plain_lib, tmp_path, capsys):
    from robot_irl.cli import main
    from robot_irl.keypoints.learned.detector import LearnedDetector
    from robot_irl.library import Library
    out = tmp_path / "kp"
    assert main(["keypoints", "train", "--demos", "tag:plain", "--library", str(plain_lib), "--k", "3", "--size", "16",
                 "--steps", "2", "--batch", "2", "--crop", "32,20,32,28", "--out", str(out), "--quiet"]) == 0
    assert "32,20,32,28" in capsys.readouterr().out
    det = LearnedDetector.load(out)
    assert json.loads((out / "config.json").read_text())["crop"] == [32, 20, 32, 28] and det.size == (16, 16)
    ep = Library.open(plain_lib).select("tag:plain")[0]
    uv = det.detect(ep.video_frames("cam0")).uv                 # whole 64x48 frames in, whole-frame pixels out
    assert (uv[..., 0] >= 31.5).all() and (uv[..., 0] <= 63.5).all() and (uv[..., 1] >= 19.5).all(), uv.min((0, 1))
    assert main(["keypoints", "train", "--demos", "tag:plain", "--library", str(plain_lib), "--crop", "1,2",
                 "--out", str(tmp_path / "bad"), "--quiet"]) == 2
    assert "X,Y,W,H" in capsys.readouterr().err


def test_linear_probe_recovers_a_map():
    rng = np.random.default_rng(0)
    x = [rng.uniform(0, 64, (30, 3, 2)) for _ in range(4)]
    A = rng.normal(size=(6, 4))
    y = [(xi.reshape(30, -1) @ A + 5.0).reshape(30, 2, 2) for xi in x]
    err = probe_errors(x[:3], y[:3], x[3:], y[3:], 64.0)
    assert err.shape == (30, 2) and np.median(err) < 0.05
    with pytest.raises(InputError, match="complete frames"):
        LinearProbe.fit(np.full((3, 6), np.nan), np.zeros((3, 4)))


def test_report_flags_background_and_names_what_moves():
    t = np.linspace(0, 1, 40)
    truth = [np.stack([np.c_[10 + 30 * t + s, 20 + 10 * t], np.c_[50 - 20 * t, 30 + 5 * np.sin(3 * t + s)]], 1)
             for s in (0.0, 1.0)]
    uv = [np.stack([tr[:, 1] + 0.2, np.full((40, 2), 7.0), tr[:, 0]], 1) for tr in truth]
    conf = [np.ones((40, 3))] * 2
    v = keypoint_report(uv, conf, 64, ["a", "b", "c"], truth, ["ee", "obj"])
    assert (v[0].follows, v[0].useful) == ("obj", True) and v[0].correlation > 0.99
    assert (v[2].follows, v[2].useful) == ("ee", True)
    assert not v[1].useful and "static" in v[1].reason
    rng = np.random.default_rng(1)
    noisy = [np.stack([tr[:, 0] + rng.normal(0, 3, (40, 2)), tr[:, 1], tr[:, 0]], 1) for tr in truth]
    assert "flicker" in keypoint_report(noisy, conf, 64, ["a", "b", "c"])[0].reason


def test_keep_subset_and_drop_flagged_needs_a_report(plain_lib, model, capsys):
    from robot_irl.cli import main
    from robot_irl.keypoints.learned.detector import LearnedDetector, extract_learned
    det = LearnedDetector.load(model)
    frames = [np.full((48, 64, 3), 128, np.uint8)] * 3
    track = extract_learned(det, frames, np.arange(3) * 0.1, keep=["lk1", "lk3"])
    assert track.names == ["lk1", "lk3"] and track.uv.shape == (3, 2, 2)
    with pytest.raises(InputError, match="subset of lk0, lk1, lk2, lk3"):
        extract_learned(det, frames, np.arange(3) * 0.1, keep=["lk9"])
    assert main(["extract", "tag:plain", "--library", str(plain_lib), "--detector", "learned", "--model", str(model),
                 "--drop-flagged", "--quiet"]) == 2
    assert "keypoints report --model" in capsys.readouterr().err


# --- the learner on learned keypoints (issue 18 item 4); more in test_learned_keypoints_irl.py ---

def _front_camera(size=(64, 48)):
    from sim.camera import get_camera
    return get_camera("front", size).model()


def test_observer_checks_camera_keypoints_and_detector(model):
    from robot_irl.keypoints.learned.observe import LearnedObserver
    from robot_irl.keypoints.learned.space import ImageSpace
    detector = model
    with pytest.raises(InputError, match="camera is 320x240, the detector's frames 64x48"):
        LearnedObserver(detector, ImageSpace.facing(_front_camera((320, 240))))
    with pytest.raises(InputError, match="keypoints to keep"):
        LearnedObserver(detector, ImageSpace.facing(_front_camera()), keep=["lk9"])
    obs = LearnedObserver(detector, ImageSpace.facing(_front_camera()), keep=["lk1", "lk3"])
    x = obs(np.zeros((3, 48, 64, 3), np.uint8))
    assert x.shape == (3, 2, 3) and np.isfinite(x).all()
    d = obs.to_dict()
    assert d["names"] == ["lk1", "lk3"] and d["k"] == 4 and d["source_size"] == [64, 48]
    with pytest.raises(InputError, match="now has K = 4.*made with K = 8"):
        LearnedObserver.from_dict({**d, "k": 8}, file="model.pt")
    with pytest.raises(InputError, match="frames are 80x60"):
        obs(np.zeros((1, 60, 80, 3), np.uint8), origin="goal.png")


def test_cli_learned_keypoints_end_to_end(plain_lib, model, tmp_path, capsys):
    """dynamics collect --detector -> dynamics train -> train --keypoints learned -> run --goal-image."""
    import cv2
    detector = model

    from robot_irl.cli import main
    from robot_irl.library import Library
    from robot_irl.models import LearnedDynamics
    from robot_irl.runs import RunDir
    data, dyn_dir, run_dir = tmp_path / "explore.npz", tmp_path / "dyn", tmp_path / "run"
    assert main(["dynamics", "collect", "--detector", str(detector), "--episodes", "3", "--rows", "3", "--extra", "0",
                 "--random-frac", "0", "--out", str(data), "--quiet"]) == 0
    arrays = np.load(data)
    assert arrays["x"].shape == (3, 3, 4, 3) and "frame_links" not in arrays
    assert json.loads(str(arrays["observation"]))["names"] == ["lk0", "lk1", "lk2", "lk3"]
    assert main(["dynamics", "train", "--data", str(data), "--out", str(dyn_dir), "--epochs", "2", "--json"]) == 0
    dyn = LearnedDynamics.load(dyn_dir / "model.pt")
    assert dyn.frames is None and dyn.observation["model"] == str(detector.resolve())
    capsys.readouterr()
    assert main(["train", "--demos", "tag:plain", "--library", str(plain_lib), "--keypoints", "learned",
                 "--dynamics", "learned", "--model", str(dyn_dir / "model.pt"), "--iters", "2", "--out", str(run_dir),
                 "--quiet", "--json"]) == 0
    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["demos"]["keypoints"] == "learned" and cfg["demos"]["keypoint_names"] == ["lk0", "lk1", "lk2", "lk3"]
    # t-SNE diagnostics take a run on learned keypoints unchanged
    assert main(["diagnose", str(run_dir), "--latent", "cost", "--goals", "3", "--perplexity", "10",
                 "--no-tensorboard"]) == 0
    assert RunDir(run_dir / "diagnostics" / "cost").metrics()["cost.n_points"] == 3 * 3 * 9   # demos x goals x steps
    ep = sorted(Library.open(plain_lib).select("tag:plain"), key=lambda e: e.meta["seed"])[1]
    goal_png = tmp_path / "goal.png"
    cv2.imwrite(str(goal_png), cv2.cvtColor(list(ep.video_frames("cam0"))[-1], cv2.COLOR_RGB2BGR))
    capsys.readouterr()
    start = ",".join(f"{v:.4f}" for v in ep.arrays("state")["joint_pos"][0])
    assert main(["run", "--run", str(run_dir), "--goal-image", str(goal_png), "--dry-run", "--json", "--sim-time",
                 "--arm-opt", f"start=[{start}]", "--preview", str(tmp_path / "p.gif")]) in (0, 1)
    shown = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert np.asarray(shown["goal_keypoints"]).shape == (4, 3) and np.asarray(shown["planned_keypoints"]).shape[1:] == (4, 3)
    # a real run lands its plans with the tool as the training demos ended it (their last joints, kept)
    ends = np.asarray(cfg["demos"]["demo_end_joints"])
    assert ends.shape == (len(cfg["demos"]["train_ids"]), 7)
    lib_ep = {e.id: e for e in Library.open(plain_lib).select("tag:plain")}
    np.testing.assert_allclose(ends[0], lib_ep[cfg["demos"]["train_ids"][0]].arrays("state")["joint_pos"][-1], atol=1e-6)
    runs = tmp_path / "runs"
    # the held point: the sim arm's own (its grasp, 12 cm down link 7), or the one given
    for extra, held, point in ((["--no-land"], False, None), ([], True, [0.0, 0.0, 0.12]),
                               (["--held-point", "0,0.01,0.2"], True, [0.0, 0.01, 0.2])):
        code = main(["run", "--run", str(run_dir), "--goal-image", str(goal_png), "--sim-time", "--arm-opt",
                     f"start=[{start}]", "--library", str(runs), "--steps", "20", "--json", *extra])
        out, err = capsys.readouterr()
        assert code in (0, 1), err
        shown = json.loads(out.strip().splitlines()[-1])
        hold = shown["tool_hold"]
        assert ("landing each plan" in err) == held and (hold is not None) == held
        if shown["episode"] is not None:        # (a run that starts at its goal sends nothing and keeps nothing)
            assert Library.open(runs).episode(shown["episode"]).info["extra"]["tool_hold"] == hold
        if held:
            assert hold["link"] == "lbr_iiwa_link_7" and hold["height_m"] is not None
            np.testing.assert_allclose(hold["held_point"], point, atol=1e-6)
            assert "tilted where a joint limit forbids it" in err
    assert main(["run", "--run", str(run_dir), "--goal-image", str(goal_png), "--sim-time", "--library", str(runs),
                 "--steps", "20", "--held-point", "0,0.12"]) == 2
    assert "--held-point" in capsys.readouterr().err
    # the mismatches: an image of another size, a goal point for learned keypoints, both goals, none
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), np.zeros((24, 32, 3), np.uint8))
    for argv, message in ((["--goal-image", str(small)], "frames are 32x24"),
                          (["--goal", "0.6,0,0.2"], "with a run on learned keypoints"),
                          (["--goal", "0.6,0,0.2", "--goal-image", str(goal_png)], "both given"),
                          ([], "no goal")):
        assert main(["run", "--run", str(run_dir), "--dry-run", "--sim-time", *argv]) == 2
        assert message in capsys.readouterr().err
    assert main(["train", "--demos", "tag:plain", "--library", str(plain_lib), "--keypoints", "learned",
                 "--out", str(tmp_path / "r2")]) == 2
    assert "--keypoints learned with --dynamics kinematic" in capsys.readouterr().err


def test_two_views_from_recording_to_goal_images(plain_lib, model, tmp_path, capsys):
    """Keypoints seen from two cameras: demos recorded with a second view, dynamics collected through
    a detector per camera, the learner on both, and a goal given as one image per camera."""
    import cv2

    from robot_irl.cli import main
    from robot_irl.keypoints.learned.observe import ViewsObserver, observer_from_dict
    from robot_irl.library import Library
    from robot_irl.record.sim import record_sim
    lib_path = tmp_path / "lib"
    record_sim(Library.open(lib_path, create=True), "robot_irl/Place-v0", episodes=2, seed=0, render_size=(64, 48),
               plain=True, views=("top",))
    ep = sorted(Library.open(lib_path).select("tag:plain"), key=lambda e: e.meta["seed"])[1]
    assert [ep.camera_model(c).name for c in ep.cameras] == ["front", "top"]
    assert ep.frame_count("cam1") == ep.frame_count("cam0")
    data, dyn_dir, run_dir = tmp_path / "explore.npz", tmp_path / "dyn", tmp_path / "run"
    assert main(["dynamics", "collect", "--detector", str(model), "--detector", str(model), "--camera", "front",
                 "--episodes", "2", "--rows", "3", "--extra", "0", "--out", str(data), "--quiet"]) == 2
    assert "one sim camera per --detector" in capsys.readouterr().err
    assert main(["dynamics", "collect", "--detector", str(model), "--detector", str(model), "--camera", "front,top",
                 "--episodes", "2", "--rows", "3", "--extra", "0", "--random-frac", "0", "--out", str(data),
                 "--quiet"]) == 0
    arrays = np.load(data)
    observation = json.loads(str(arrays["observation"]))
    assert arrays["x"].shape == (2, 3, 8, 3)
    assert list(arrays["names"]) == [f"{c}.lk{i}" for c in ("front", "top") for i in range(4)]
    observer = observer_from_dict(observation)
    assert isinstance(observer, ViewsObserver) and observer.cameras == ["front", "top"]
    front, top = list(ep.video_frames("cam0"))[-1], list(ep.video_frames("cam1"))[-1]
    both = observer({"front": front[None], "top": top[None]})[0]
    np.testing.assert_allclose(both[:4], observer.views[0](front[None])[0])   # the views side by side
    assert not np.allclose(both[:4], both[4:])                                # the same net, another camera
    with pytest.raises(InputError, match="no frames of camera 'top'"):
        observer({"front": front[None]})
    assert main(["dynamics", "train", "--data", str(data), "--out", str(dyn_dir), "--epochs", "2", "--json"]) == 0
    assert main(["train", "--demos", "tag:plain", "--library", str(lib_path), "--keypoints", "learned",
                 "--dynamics", "learned", "--model", str(dyn_dir / "model.pt"), "--iters", "2", "--out", str(run_dir),
                 "--quiet", "--json"]) == 0
    assert len(json.loads((run_dir / "config.json").read_text())["demos"]["keypoint_names"]) == 8
    pngs = {}
    for cam, frame in (("front", front), ("top", top)):
        pngs[cam] = tmp_path / f"{cam}.png"
        cv2.imwrite(str(pngs[cam]), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    capsys.readouterr()
    start = ",".join(f"{v:.4f}" for v in ep.arrays("state")["joint_pos"][0])
    assert main(["run", "--run", str(run_dir), "--goal-image", f"front={pngs['front']}", "--goal-image",
                 f"top={pngs['top']}", "--dry-run", "--json", "--sim-time", "--arm-opt", f"start=[{start}]"]) in (0, 1)
    shown = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    np.testing.assert_allclose(shown["goal_keypoints"], both, atol=1e-6)
    for argv, message in ((["--goal-image", str(pngs["front"])], "one image per camera"),
                          (["--goal-image", f"front={pngs['front']}", "--goal-image", f"side={pngs['top']}"],
                           "one image per camera")):
        assert main(["run", "--run", str(run_dir), "--dry-run", "--sim-time", *argv]) == 2
        assert message in capsys.readouterr().err
    # demos recorded without the second camera cannot be seen by a two-view model
    assert main(["train", "--demos", "tag:plain", "--library", str(plain_lib), "--keypoints", "learned",
                 "--dynamics", "learned", "--model", str(dyn_dir / "model.pt"), "--iters", "2",
                 "--out", str(tmp_path / "r2"), "--quiet"]) == 2
    assert "episode has no camera named ['top']" in capsys.readouterr().err
