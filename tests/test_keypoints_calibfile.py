"""Intrinsics from someone else's OpenCV calibration file, scaled to the video's size; and the
shared real video's 3D track in the camera frame (skipped without ../shared/realvideo)."""
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from robot_irl.cli import main
from robot_irl.errors import InputError
from robot_irl.keypoints import KeypointTrack
from robot_irl.keypoints.calibfile import load_intrinsics

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "realvideo"
K = np.array([[1078.2, 0, 684.9], [0, 1073.1, 408.7], [0, 0, 1]])
D = np.array([0.16, -0.94, 0.004, 0.006, 2.28])


def write_fs(path, **nodes):
    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    for k, v in nodes.items():
        fs.write(k, v)
    fs.release()
    return path


def test_scaled_to_the_video_from_a_given_or_stored_size(tmp_path):
    m, rec = load_intrinsics(write_fs(tmp_path / "c.yml", K=K, D=D), (640, 360), (1280, 720))
    assert m.size == (640, 360) and rec["size_from"] == "given" and rec["frame"] == "camera"
    assert np.allclose(m.K[[0, 1], [0, 1]], K[[0, 1], [0, 1]] / 2)
    assert np.allclose(m.K[:2, 2], (K[:2, 2] + 0.5) / 2 - 0.5) and np.allclose(m.dist, D)
    m2, rec2 = load_intrinsics(write_fs(tmp_path / "c.json", camera_matrix=K, dist_coeffs=D, image_width=1280,
                                        image_height=720), (640, 360))
    assert rec2["size_from"] == "file" and np.allclose(m2.K, m.K)
    fits = K.copy()
    fits[:2, 2] = [321.0, 178.0]
    assert load_intrinsics(write_fs(tmp_path / "f.yml", K=fits), (640, 360))[1]["size_from"].startswith("principal")


@pytest.mark.parametrize("content, match", [
    (None, "not found"),
    ("%YAML:1.0\n---\nK: [1, 2\n", "cannot (parse|open) calibration"),
    ("%YAML:1.0\n---\nfoo: 1\n", "field 'K': no camera matrix"),
    ("SIZE_UNKNOWN", "field 'image size'.*does not fit the 640x360 video.*--calib-size"),
    ("ASPECT", "another aspect ratio"),
])
def test_bad_calibrations_are_named(tmp_path, content, match):
    f = tmp_path / "cal.yml"
    size = None
    if content == "SIZE_UNKNOWN":
        write_fs(f, K=K, D=D)
    elif content == "ASPECT":
        write_fs(f, K=K, D=D)
        size = (1280, 960)
    elif content is not None:
        f.write_text(content)
    with pytest.raises(InputError, match=match):
        load_intrinsics(f, (640, 360), size)


@pytest.mark.skipif(not (REAL / "apriltag_motor.mp4").is_file(), reason=f"no shared real video at {REAL}")
def test_real_video_3d_in_the_camera_frame_is_continuous(tmp_path, capsys):
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps({"keypoints": [{"name": "tag", "feature": {
        "kind": "marker", "id": 23, "dictionary": "DICT_APRILTAG_16h5", "size": 0.025}}]}))
    args = ["extract", str(REAL / "apriltag_motor.mp4"), "--spec", str(spec), "--calib",
            str(REAL / "apriltag_motor_calib.yml"), "--out", str(tmp_path / "k.npz"), "--quiet"]
    assert main(args) == 2 and "--calib-size" in capsys.readouterr().err and not (tmp_path / "k.npz").exists()
    assert main(args + ["--calib-size", "1280x720"]) == 0
    t = KeypointTrack.load_npz(tmp_path / "k.npz")
    assert t.meta["xyz_frame"].startswith("camera") and t.meta["calibration"]["scale"] == [0.5, 0.5]
    jumps = np.linalg.norm(np.diff(t.xyz[:, 0], axis=0), axis=1)
    assert np.isfinite(jumps).all() and jumps.max() < 0.02          # no jump > 2 cm between frames
    assert 0.2 < np.median(t.xyz[:, 0, 2]) < 0.6                      # a 25 mm tag a hand's length away


def test_world_frame_from_a_reference_marker_with_a_moving_camera():
    from robot_irl.core.spec import KeypointSpec, Marker
    from robot_irl.keypoints import ExtractConfig, extract_video
    from robot_irl.keypoints.geometry import make_T, marker_T_link, transform
    from robot_irl.keypoints.synthetic import background, camera_640x480, draw_marker
    cam = camera_640x480()                                # intrinsics only: T_base_cam is the identity
    spec = KeypointSpec.from_dict({"keypoints": [
        {"name": "ref", "body": "world", "feature": {"kind": "marker", "id": 0, "dictionary": "DICT_4X4_50",
                                                     "size": 0.06}},
        {"name": "tag", "feature": {"kind": "marker", "id": 1, "dictionary": "DICT_4X4_50", "size": 0.04}}]})
    frames, truth = [], []
    for t in range(8):
        # the camera moves; the reference lies still; the tag moves in the world
        T_cam_world = make_T(cv2.Rodrigues(np.array([np.pi + 0.3 + 0.02 * t, 0.05 * t, 0.0]))[0],
                             [-0.05 + 0.01 * t, 0.02, 0.45])
        T_world_tag = make_T(cv2.Rodrigues(np.array([0.1, -0.1 * t, 0.0]))[0], [0.12, 0.01 * t, 0.02])
        img = background(cam.size, 0)
        draw_marker(img, cam.K, T_cam_world, Marker(0, 0.06))
        draw_marker(img, cam.K, T_cam_world @ T_world_tag, Marker(1, 0.04))
        frames.append(img)
        truth.append(transform(marker_T_link(spec.get("ref")), T_world_tag[:3, 3]))   # world = the ref's link frame
    track = extract_video(frames, np.arange(8) / 30.0, spec, cam, config=ExtractConfig(corner_fit="edges"),
                          progress=False)
    assert track.meta["xyz_frame"].startswith("world") and track.meta["world_frames_missing"] == 0
    err = np.linalg.norm(track.xyz[:, 1] - np.array(truth), axis=1)
    assert np.median(err) < 0.005 and err.max() < 0.01, err
    assert np.abs(track.xyz[:, 0]).max() < 0.003                       # the reference is the origin


def test_approximate_intrinsics_from_a_field_of_view_only_on_request(tmp_path, capsys):
    from robot_irl.core.spec import Marker
    from robot_irl.keypoints.calibfile import approximate_intrinsics
    from robot_irl.keypoints.geometry import make_T
    from robot_irl.keypoints.synthetic import background, camera_640x480, draw_marker
    cam = camera_640x480()
    fov = float(np.degrees(2 * np.arctan(cam.size[0] / 2 / cam.K[0, 0])))
    approx, rec = approximate_intrinsics(cam.size, fov)
    assert np.allclose(approx.K[0, 0], cam.K[0, 0]) and rec["approximate"] is True
    for bad in (5.0, 175.0, float("nan")):
        with pytest.raises(InputError, match="field '--fov'.*horizontal field of view"):
            approximate_intrinsics(cam.size, bad)
    video = tmp_path / "tag.mkv"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"FFV1"), 30.0, cam.size)
    for t in range(4):
        img = background(cam.size, 0)
        draw_marker(img, cam.K, make_T(cv2.Rodrigues(np.array([np.pi, 0.0, 0.0]))[0], [0.01 * t, 0, 0.4]),
                    Marker(5, 0.05))
        w.write(img)
    w.release()
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps({"keypoints": [{"name": "tag", "feature": {
        "kind": "marker", "id": 5, "dictionary": "DICT_4X4_50", "size": 0.05}}]}))
    base = ["extract", str(video), "--spec", str(spec), "--out", str(tmp_path / "k.npz"), "--quiet"]
    for extra, msg in ((["--fov", "5"], "field '--fov'"), (["--fov", "70", "--calib", str(spec)], "--calib and --fov"),
                       (["--calib-size", "640x480"], "field '--calib-size'.*--calib F")):
        capsys.readouterr()
        assert main(base + extra) == 2 and re.search(msg, capsys.readouterr().err), extra
    assert not (tmp_path / "k.npz").exists()
    assert main(base) == 0 and np.isnan(KeypointTrack.load_npz(tmp_path / "k.npz").xyz).all()   # no silent 3D
    assert main(base + ["--fov", f"{fov:.4f}"]) == 0
    t = KeypointTrack.load_npz(tmp_path / "k.npz")
    assert t.meta["calibration"]["approximate"] is True and "--fov" in t.meta["xyz_frame"]
    assert np.abs(t.xyz[:, 0, 2] - 0.4).max() < 0.01


def test_world_frame_from_a_marker_board_seen_in_part():
    """Two markers of one board on body ``world``: the frame comes from whichever are detected."""
    from robot_irl.core.spec import KeypointSpec, Marker
    from robot_irl.keypoints import ExtractConfig, extract_video
    from robot_irl.keypoints.geometry import make_T, marker_T_link
    from robot_irl.keypoints.synthetic import background, camera_640x480, draw_marker
    cam = camera_640x480()
    spec = KeypointSpec.from_dict({"keypoints": [
        {"name": "b0", "body": "world", "offset": [0, 0, 0],
         "feature": {"kind": "marker", "id": 0, "dictionary": "DICT_4X4_50", "size": 0.05}},
        {"name": "b1", "body": "world", "offset": [0.08, 0, 0],
         "feature": {"kind": "marker", "id": 2, "dictionary": "DICT_4X4_50", "size": 0.05}},
        {"name": "tag", "feature": {"kind": "marker", "id": 1, "dictionary": "DICT_4X4_50", "size": 0.04}}]})
    frames, truth = [], []
    for t in range(6):
        # world = the board's link frame; each marker sits on it as its spec entry says
        T_cam_world = make_T(cv2.Rodrigues(np.array([np.pi + 0.25, 0.04 * t, 0.0]))[0], [-0.06, 0.03, 0.5])
        T_world_tag = make_T(cv2.Rodrigues(np.array([0.1, -0.1 * t, 0.0]))[0], [0.04, 0.1 + 0.01 * t, 0.03])
        img = background(cam.size, 0)
        if t % 3 != 1:                                 # the board's first marker covered in some frames
            draw_marker(img, cam.K, T_cam_world @ marker_T_link(spec.get("b0")), Marker(0, 0.05))
        draw_marker(img, cam.K, T_cam_world @ marker_T_link(spec.get("b1")), Marker(2, 0.05))
        draw_marker(img, cam.K, T_cam_world @ T_world_tag, Marker(1, 0.04))
        frames.append(img)
        truth.append(T_world_tag[:3, 3])
    track = extract_video(frames, np.arange(6) / 30.0, spec, cam,
                          config=ExtractConfig(corner_fit="edges", flow_max_gap=0), progress=False)
    assert track.meta["xyz_frame"].startswith("world") and track.meta["world_frames_missing"] == 0
    err = np.linalg.norm(track.xyz[:, 2] - np.array(truth), axis=1)
    assert np.median(err) < 0.005 and err.max() < 0.01, err
    assert np.abs(track.xyz[:, 1] - [0.08, 0, 0]).max() < 0.005


def test_world_frame_from_a_charuco_board_through_the_cli(tmp_path, capsys):
    """A ChArUco board lies still, the camera moves, a tag moves: 3D in the board's frame."""
    from robot_irl.core.spec import Marker
    from robot_irl.keypoints.calibrate import BoardSpec
    from robot_irl.keypoints.geometry import make_T
    from robot_irl.keypoints.synthetic import camera_640x480, charuco_view, draw_marker
    cam = camera_640x480()
    board = BoardSpec(7, 5, 0.04, 0.03, "DICT_4X4_50")            # markers 0..16; the tag is id 30
    fov = float(np.degrees(2 * np.arctan(cam.size[0] / 2 / cam.K[0, 0])))
    video, truth = tmp_path / "scene.mkv", []
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"FFV1"), 30.0, cam.size)
    for t in range(6):
        T_cam_board = make_T(cv2.Rodrigues(np.array([0.35 + 0.02 * t, 0.05 * t, 0.0]))[0],
                             [-0.08 + 0.005 * t, -0.1, 0.55])
        # the tag beside the board, 3 cm above it (the board's z points into it), facing the camera
        # (its own z out of its face), turning and moving along the board's x
        R = cv2.Rodrigues(np.array([np.pi, 0.0, 0.0]))[0] @ cv2.Rodrigues(np.array([0.0, 0.0, 0.1 * t]))[0]
        T_board_tag = make_T(R, [-0.06 - 0.01 * t, 0.1, -0.03])
        img = charuco_view(board.board(), cam.K, T_cam_board, cam.size, seed=t)
        draw_marker(img, cam.K, T_cam_board @ T_board_tag, Marker(30, 0.04))
        w.write(img)
        truth.append(T_board_tag[:3, 3])
    w.release()
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps({"keypoints": [{"name": "tag", "feature": {
        "kind": "marker", "id": 30, "dictionary": "DICT_4X4_50", "size": 0.04}}]}))
    base = ["extract", str(video), "--spec", str(spec), "--out", str(tmp_path / "k.npz"), "--quiet",
            "--corner-fit", "edges"]
    for extra, msg in ((["--world-board", "7x5:0.04"], "field '--world-board'.*COLSxROWS"),
                       (["--world-board", "7x5:0.04:0.03:DICT_9X9_1"], "DICT_9X9_1"),
                       (["--world-board", "7x5:0.04:0.03"], "field 'world_board'.*--calib F or --fov")):
        capsys.readouterr()
        assert main(base + extra) == 2 and re.search(msg, capsys.readouterr().err), extra
    assert not (tmp_path / "k.npz").exists()
    assert main(base + ["--world-board", "7x5:0.04:0.03", "--fov", f"{fov:.5f}"]) == 0
    t = KeypointTrack.load_npz(tmp_path / "k.npz")
    assert "ChArUco board" in t.meta["xyz_frame"] and t.meta["world_frames_missing"] == 0
    err = np.linalg.norm(t.xyz[:, 0] - np.array(truth), axis=1)
    assert np.median(err) < 0.005 and err.max() < 0.01, err


def test_world_board_with_table_heights_is_refused():
    """Table heights are in the robot's base frame; a board's camera has none: both is an error,
    not table heights silently dropped."""
    from robot_irl.core.spec import Blob, KeypointDef, KeypointSpec
    from robot_irl.keypoints.calibrate import BoardSpec
    from robot_irl.keypoints.pipeline import _Lifter, table_heights
    from robot_irl.keypoints.synthetic import camera_640x480

    spec = KeypointSpec((KeypointDef("ball", "ball", "base", (0.0, 0.0, 0.0), Blob("red")),))
    with pytest.raises(InputError, match="field 'table_z'"):
        _Lifter(spec, camera_640x480(), table_heights(spec, 0.0), world_board=BoardSpec(7, 5, 0.04, 0.03, "DICT_4X4_50"))
