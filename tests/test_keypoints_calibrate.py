"""ChArUco calibration on synthetic board views with a known camera."""
import cv2
import numpy as np
import pytest

from robot_irl.errors import InputError
from robot_irl.keypoints.calibrate import BoardSpec, calibrate_charuco
from robot_irl.keypoints.geometry import make_T
from robot_irl.keypoints.synthetic import background, camera_640x480, charuco_view


def board_frames(n, board, cam, seed=0):
    rng = np.random.default_rng(seed)
    cb = board.board()
    ctr = np.array([board.squares_x * board.square / 2, board.squares_y * board.square / 2, 0])
    for i in range(n):
        R = cv2.Rodrigues(np.deg2rad([rng.uniform(-35, 35), rng.uniform(-35, 35), rng.uniform(-20, 20)]))[0]
        t = np.array([rng.uniform(-0.05, 0.05), rng.uniform(-0.04, 0.04), rng.uniform(0.3, 0.45)]) - R @ ctr
        yield charuco_view(cb, cam.K, make_T(R, t), cam.size, seed=i)


def test_charuco_recovers_intrinsics():
    cam, board = camera_640x480(), BoardSpec()
    cal = calibrate_charuco(list(board_frames(16, board, cam)), board)
    K = cal.camera.K
    assert abs(K[0, 0] / cam.K[0, 0] - 1) < 0.01 and abs(K[1, 1] / cam.K[1, 1] - 1) < 0.01
    assert np.abs(K[:2, 2] - cam.K[:2, 2]).max() < 2.0
    assert cal.rms < 0.3 and cal.views == 16 and cal.camera.size == (640, 480)
    d = cal.to_dict()
    assert d["rms_px"] == cal.rms and len(d["K"]) == 3


def test_calibration_without_board_says_what_is_expected():
    frames = [background((320, 240), i) for i in range(5)]
    with pytest.raises(InputError, match="ChArUco"):
        calibrate_charuco(frames)


def skewed(frame, px):
    """A rolling shutter during a fast hand move: rows read later are shifted further."""
    out = frame.copy()
    for y in range(frame.shape[0]):
        out[y] = np.roll(frame[y], int(round(px * y / frame.shape[0])), axis=0)
    return out


def test_handheld_board_video_drops_skewed_views_and_reports_coverage(tmp_path, capsys):
    import json

    from robot_irl.cli import main
    cam, board = camera_640x480(), BoardSpec()
    k = np.full((1, 21), 1 / 21)
    frames = []
    for i, f in enumerate(board_frames(16, board, cam)):
        frames.append(cv2.filter2D(f, -1, k) if i in (3, 9) else skewed(f, 14) if i in (2, 5, 11) else f)
    video = tmp_path / "board.mkv"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"FFV1"), 30.0, cam.size)
    for f in frames:
        w.write(f)
    w.release()
    assert main(["calibrate", str(video), "-o", str(tmp_path / "cam.json")]) == 0
    out, err = capsys.readouterr()
    assert "3 dropped as outliers (blur, skew)" in out and "image coverage 33%" in out
    assert "move it into the corners" in err                       # the views stay near the centre
    cal = json.loads((tmp_path / "cam.json").read_text())
    K = np.array(cal["K"])
    # with the skewed views fx was 1.7 % off and cx 7.6 px; without them:
    assert abs(K[0, 0] / cam.K[0, 0] - 1) < 0.005 and np.abs(K[:2, 2] - cam.K[:2, 2]).max() < 2.0
    # 16 frames: 2 too blurred to detect, 3 skewed views dropped, 11 used
    assert cal["views"] == 11 and cal["views_rejected"] == 3 and cal["max_tilt_deg"] > 30
