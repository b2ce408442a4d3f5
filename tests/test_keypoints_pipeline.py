"""extract_video end to end on synthetic videos: detection, flow bridging, 3D, files, errors, CLI."""
import argparse
import json

import cv2
import numpy as np
import pytest

from robot_irl.core.camera import look_at
from robot_irl.core.spec import Blob, KeypointDef, KeypointSpec, Marker
from robot_irl.errors import InputError
from robot_irl.keypoints import ExtractConfig, KeypointTrack, NoDetectionsError, extract_video, table_heights
from robot_irl.keypoints.cli import register
from robot_irl.keypoints.geometry import make_T, marker_T_link, transform
from robot_irl.keypoints.synthetic import background, camera_640x480, draw_marker, draw_sphere

CAM = camera_640x480(T_base_cam=look_at(np.array([0.5, -0.6, 0.45]), np.array([0.5, 0.0, 0.05])))
BOX = KeypointDef("box", "box", "base", (0.0, -0.026, 0.0), Marker(1, 0.04), normal=(0, -1, 0), up=(0, 0, 1))
BALL = KeypointDef("ball", "ball", "base", feature=Blob("red", 0.012))
SPEC = KeypointSpec((BOX, BALL))


def scene(T=24, occlude=(), seed=0):
    """Frames (BGR), timestamps and 3D truth of a box marker and a ball moving on the table."""
    frames, truth = [], []
    T_cam_base = CAM.T_cam_base
    for t in range(T):
        img = background(CAM.size, seed)
        T_base_box = make_T(cv2.Rodrigues(np.array([0, 0, 0.01 * t]))[0], [0.45 + 0.004 * t, 0.0, 0.025])
        T_cam_marker = T_cam_base @ T_base_box @ marker_T_link(BOX)
        draw_marker(img, CAM.K, T_cam_marker, BOX.feature)
        ball = np.array([0.58 - 0.003 * t, 0.05, 0.012])
        draw_sphere(img, CAM.K, transform(T_cam_base, ball), BALL.feature)
        if t in occlude:  # a bar across the marker's middle: ArUco fails, its corners stay visible
            c = CAM.project(transform(T_base_box, BOX.offset))
            cv2.rectangle(img, (int(c[0]) - 4, int(c[1]) - 14), (int(c[0]) + 4, int(c[1]) + 14), (90, 90, 90), -1)
        frames.append(img)
        truth.append([transform(T_base_box, BOX.offset), ball])
    return frames, np.arange(T) * 0.1, np.array(truth)


def write(frames, path, fps=10):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), fps, (frames[0].shape[1], frames[0].shape[0]))
    for f in frames:
        w.write(f)
    w.release()
    return path


def test_video_file_to_3d_keypoints_with_preview(tmp_path):
    frames, ts, truth = scene()
    cfg = ExtractConfig(corner_fit="edges", plane_heights=table_heights(SPEC, 0.0))  # edges: unbiased when anti-aliased
    track = extract_video(write(frames, tmp_path / "v.mkv"), ts, SPEC, CAM, preview=tmp_path / "p.mp4",
                          config=cfg, progress=False)
    assert (track.status == 1).all() and track.names == ["box", "ball"]
    err = np.linalg.norm(track.xyz - truth, axis=2)
    assert np.median(err[:, 0]) < 0.003 and np.median(err[:, 1]) < 0.002
    uv_truth = CAM.project(truth)
    assert np.median(np.linalg.norm(track.uv - uv_truth, axis=2)) < 0.3
    assert track.meta["config"]["detector"] == "auto" and track.meta["versions"]["opencv"] == cv2.__version__
    cap = cv2.VideoCapture(str(tmp_path / "p.mp4"))
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == len(frames)


def test_flow_bridges_missed_detections_without_outliers():
    frames, ts, truth = scene(occlude=range(8, 13))
    uv_truth = CAM.project(truth)
    with pytest.warns(UserWarning, match="never seen: ball"):  # aruco only: the blob is not looked for
        plain = extract_video(frames, ts, SPEC, CAM, detector="aruco", progress=False)
    flow = extract_video(frames, ts, SPEC, CAM, detector="auto", progress=False)
    assert (plain.status[8:13, 0] == 0).all()
    assert (flow.status[8:13, 0] == 2).all() and (flow.source[8:13, 0] == 3).all()
    assert np.linalg.norm(flow.uv[8:13, 0] - uv_truth[8:13, 0], axis=1).max() < 1.0
    assert np.linalg.norm(flow.xyz[8:13, 0] - truth[8:13, 0], axis=1).max() < 0.01
    assert (flow.confidence[8:13, 0] < flow.confidence[7, 0]).all()


def test_flow_mode_detects_sparsely_and_tracks_between():
    frames, ts, truth = scene(T=12)
    track = extract_video(frames, ts, SPEC, CAM, detector="flow", progress=False)
    assert (track.status[::10, 0] == 1).all() and (track.status[1:10, 0] == 2).all()
    assert np.linalg.norm(track.uv[:, 0] - CAM.project(truth[:, 0]), axis=1).max() < 1.0


def test_never_seen_keypoint_is_reported_not_filled(tmp_path):
    spec = KeypointSpec((BOX, KeypointDef("ghost", "ghost", "base", feature=Marker(9, 0.04))))
    frames, ts, _ = scene(T=5)
    with pytest.warns(UserWarning, match="ghost"):
        track = extract_video(frames, ts, spec, None, progress=False)
    assert track.meta["missing_all"] == ["ghost"] and np.isnan(track.uv[:, 1]).all()
    assert np.isnan(track.xyz).all()  # no camera: 2D only
    for path in (tmp_path / "k.npz", tmp_path / "k.parquet"):
        track.save_parquet(path) if path.suffix == ".parquet" else track.save_npz(path)
    back = KeypointTrack.load_npz(tmp_path / "k.npz")
    assert back.names == track.names and np.array_equal(back.status, track.status)
    import pyarrow.parquet as pq
    assert pq.read_table(tmp_path / "k.parquet").num_rows == 2 * len(track)


def test_bad_inputs_give_clear_errors(tmp_path):
    frames, ts, _ = scene(T=3)
    bad = tmp_path / "bad.mkv"
    bad.write_bytes(b"not a video at all")
    with pytest.raises(InputError, match="bad.mkv"):
        extract_video(bad, None, SPEC, progress=False)
    with pytest.raises(InputError, match="nope.mp4.*missing"):
        extract_video(tmp_path / "nope.mp4", None, SPEC, progress=False)
    with pytest.raises(InputError, match="no frames"):
        extract_video(iter([]), np.zeros(0), SPEC, progress=False)
    with pytest.raises(NoDetectionsError, match="marker DICT_4X4_50#1"):
        extract_video([background(CAM.size)] * 3, ts, SPEC, progress=False)
    with pytest.raises(InputError, match="calibrated camera"):
        extract_video(frames, ts, SPEC, None, config=ExtractConfig(want_3d=True), progress=False)
    with pytest.raises(InputError, match="more frames"):
        extract_video(frames, ts[:2], SPEC, progress=False)
    with pytest.raises(InputError, match="3 frames but 4 timestamps"):
        extract_video(frames, np.arange(4.0), SPEC, progress=False)
    with pytest.raises(InputError, match="non-decreasing"):
        extract_video(frames, np.array([0.0, 0.1, 0.05]), SPEC, progress=False)
    with pytest.raises(InputError, match="blob"):
        extract_video(frames, ts, KeypointSpec((BOX,)), detector="blob", progress=False)


def parser():
    p = argparse.ArgumentParser()
    register(p.add_subparsers())
    return p


def test_cli_extract_video_file(tmp_path, capsys):
    frames, ts, truth = scene(T=15)
    video = write(frames, tmp_path / "clip.mkv")
    (tmp_path / "spec.json").write_text(json.dumps(SPEC.to_dict()))
    (tmp_path / "cam.json").write_text(json.dumps(CAM.to_dict()))
    args = parser().parse_args(["extract", str(video), "--spec", str(tmp_path / "spec.json"), "--camera-file",
                                str(tmp_path / "cam.json"), "--table-z", "0.0", "--corner-fit", "edges", "--quiet"])
    assert args.func(args) == 0
    track = KeypointTrack.load_npz(tmp_path / "clip.keypoints.npz")
    assert np.nanmedian(np.linalg.norm(track.xyz - truth, axis=2)) < 0.003
    assert track.velocity is not None and "cleaning" in track.meta
    assert "clip.keypoints.npz" in capsys.readouterr().out


def _library_with_clip(path, frames, ts):
    """A library holding the synthetic clip as one camera episode."""
    from robot_irl.library import Library
    lib = Library.open(path, create=True)
    with lib.writer(task="push", source="camera", fps=10, keypoint_spec=SPEC) as w:
        w.add_camera("cam0", CAM.size, codec="ffv1", model=CAM)
        for f, t in zip(frames, ts):
            w.write_frame("cam0", cv2.cvtColor(f, cv2.COLOR_BGR2RGB), float(t))
        w.commit(success=True)
    return lib


def test_cli_extract_writes_library_derived_data(tmp_path):
    frames, ts, truth = scene(T=15)
    lib = _library_with_clip(tmp_path / "lib", frames, ts)
    ep = lib.select()[0]
    args = parser().parse_args(["extract", ep.id, "--library", str(tmp_path / "lib"), "--table-z", "0", "--quiet"])
    assert args.func(args) == 0
    d = lib.episode(ep.id).read_derived("keypoints")
    assert d.arrays["keypoints"].shape == (15, 2, 3) and d.meta["names"] == ["box", "ball"]
    assert np.nanmedian(np.linalg.norm(d.arrays["keypoints"] - truth, axis=2)) < 0.005
    assert {"raw_keypoints", "velocity", "status"} <= set(d.arrays)


def test_cli_calibrate_writes_json(tmp_path):
    from robot_irl.keypoints.calibrate import BoardSpec
    from test_keypoints_calibrate import board_frames
    cam = camera_640x480()
    video = write(list(board_frames(8, BoardSpec(), cam)), tmp_path / "board.mkv")
    args = parser().parse_args(["calibrate", str(video), "-o", str(tmp_path / "cam.json")])
    assert args.func(args) == 0
    d = json.loads((tmp_path / "cam.json").read_text())
    assert abs(d["K"][0][0] / cam.K[0, 0] - 1) < 0.02 and d["rms_px"] < 0.5 and d["views"] == 8


def test_cli_calibrate_stores_intrinsics_in_episode_meta(tmp_path):
    from robot_irl.keypoints.calibrate import BoardSpec
    from robot_irl.library import Library
    from test_keypoints_calibrate import board_frames
    cam = camera_640x480()
    video = write(list(board_frames(8, BoardSpec(), cam)), tmp_path / "board.mkv")
    frames, ts, _ = scene(T=3)
    lib = _library_with_clip(tmp_path / "lib", frames, ts)
    ep_id = lib.select()[0].id
    args = parser().parse_args(["calibrate", str(video), "--episode", ep_id, "--library", str(tmp_path / "lib")])
    assert args.func(args) == 0
    ep = Library.open(tmp_path / "lib").episode(ep_id)
    model, rec = ep.camera_model("cam0"), ep.calibration("cam0")
    assert abs(model.K[0, 0] / cam.K[0, 0] - 1) < 0.02 and model.dist.shape == (5,)
    assert np.allclose(model.T_base_cam, CAM.T_base_cam)  # intrinsics only: the camera pose is kept
    assert rec["rms_px"] < 0.5 and rec["views"] == 8 and rec["source"] == str(video)
    with pytest.raises(InputError, match="nothing to calibrate"):
        args = parser().parse_args(["calibrate", "--episode", ep_id, "--library", str(tmp_path / "lib")])
        args.func(args)


def test_window_search_finds_the_same_markers_as_full_frames():
    frames, ts, _ = scene(T=12, occlude=(5, 6))
    tracks = [extract_video(frames, ts, SPEC, CAM, config=ExtractConfig(roi_search=roi), progress=False)
              for roi in (False, True)]
    assert (tracks[0].status == tracks[1].status).all()
    # one threshold window instead of three can start the corner fit from other contour
    # corners; it converges to the same place within hundredths of a pixel
    assert np.array_equal(np.isnan(tracks[0].uv), np.isnan(tracks[1].uv))
    assert np.nanmax(np.abs(tracks[0].uv - tracks[1].uv)) < 0.05
