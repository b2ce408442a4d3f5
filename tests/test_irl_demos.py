import numpy as np
import pytest

from robot_irl.errors import InputError
from robot_irl.irl import DemoSet, load_keypoint_file


def _line(T=5, K=1):
    kp = np.zeros((1, T, K, 3))
    kp[0, :, :, 0] = np.arange(T)[:, None]
    return kp


def test_resample_uses_timestamps_not_indices():
    kp = _line(3)
    ds = DemoSet(kp, np.array([0.0, 1.0, 4.0]))   # x = 0, 1, 2 at t = 0, 1, 4
    r = ds.resample(5)                              # t = 0, 1, 2, 3, 4
    assert np.allclose(r[0, :, 0, 0], [0, 1, 4 / 3, 5 / 3, 2])


def test_missing_samples_stay_missing_and_goal_uses_last_observed():
    kp = _line(5)
    kp[0, 2] = np.nan
    kp[0, 4] = np.nan
    ds = DemoSet(kp, np.arange(5.0))
    assert np.isnan(ds.resample(5)[0, 2]).all()
    assert ds.goal_keypoints()[0, 0, 0] == 3.0


def test_demo_refused_beyond_missing_fraction():
    kp = _line(5)
    kp[0, 1:4] = np.nan
    ds = DemoSet(kp, np.arange(5.0), names=["pick3"])
    with pytest.raises(InputError, match="pick3.*60%"):
        ds.check_missing(0.5)
    ds.check_missing(0.7)


def test_keypoint_missing_throughout_is_clear_error():
    kp = _line(4)
    kp[:] = np.nan
    with pytest.raises(InputError, match="missing"):
        DemoSet(kp, np.arange(4.0)).goal_keypoints()


def test_bad_shapes_and_timestamps():
    with pytest.raises(InputError, match="keypoints"):
        DemoSet(np.zeros((3, 4, 3)), np.arange(4.0))
    with pytest.raises(InputError, match="increasing"):
        DemoSet(_line(3), np.array([0.0, 0.0, 1.0]))
    with pytest.raises(InputError, match="empty"):
        DemoSet(_line(3), np.arange(3.0)).subset([])


def test_load_keypoint_file(tmp_path):
    p = tmp_path / "d.npz"
    np.savez(p, keypoints=np.zeros((2, 4, 2, 3)), q0=np.zeros(7))
    ds = load_keypoint_file(p)
    assert len(ds) == 2 and ds.q0.shape == (2, 7)
    np.savez(tmp_path / "bad.npz", kp=np.zeros(3))
    with pytest.raises(InputError, match="keypoints"):
        load_keypoint_file(tmp_path / "bad.npz")


def test_demo_end_joints_must_be_one_row_per_demo():
    with pytest.raises(InputError, match="q_end"):
        DemoSet(_line(3), np.arange(3.0), q_end=np.zeros((2, 7)))
    assert DemoSet(_line(3), np.arange(3.0), q_end=np.zeros((1, 7))).q_end.shape == (1, 7)
