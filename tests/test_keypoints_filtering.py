"""Offline cleaning (Hampel, PCHIP, Savitzky–Golay) and the online Kalman filter."""
import numpy as np
import pytest

from robot_irl.errors import InputError
from robot_irl.keypoints.filtering import KalmanCV, clean, hampel
from robot_irl.keypoints.track import DETECTED, INTERPOLATED, MISSING, KeypointTrack


def circle_track(T=80, dt=0.1, noise=0.0, seed=0):
    ts = np.arange(T) * dt
    tr = KeypointTrack.empty(["a", "never"], ts)
    w = 0.8
    tr.xyz[:, 0] = np.stack([0.5 + 0.1 * np.cos(w * ts), 0.1 * np.sin(w * ts), np.full(T, 0.05)], 1)
    tr.uv[:, 0] = 300 + 1000 * tr.xyz[:, 0, :2]
    truth = tr.xyz[:, 0].copy()
    rng = np.random.default_rng(seed)
    tr.xyz[:, 0] += rng.normal(0, noise, (T, 3))
    tr.status[:, 0], tr.confidence[:, 0] = DETECTED, 0.9
    vel = np.stack([-0.1 * w * np.sin(w * ts), 0.1 * w * np.cos(w * ts), np.zeros(T)], 1)
    return tr, vel, truth


def test_hampel_flags_spikes_only():
    x = np.stack([np.sin(np.linspace(0, 3, 50)), np.zeros(50)], 1)
    x[[10, 30]] += 5.0
    x[20] = np.nan
    assert np.flatnonzero(hampel(x, floor=0.1)).tolist() == [10, 30]


def test_clean_rejects_outliers_fills_short_gaps_only_and_smooths():
    tr, vel, truth = circle_track(noise=0.002)
    tr.xyz[25, 0] += [0.2, 0, 0]                         # outlier
    tr.uv[25, 0] += [200, 0]
    for a, b in ((40, 44), (55, 70)):                    # short gap (4) and long gap (15)
        tr.xyz[a:b, 0], tr.uv[a:b, 0], tr.status[a:b, 0] = np.nan, np.nan, MISSING
    out = clean(tr, max_gap=6, window=9)
    assert out.status[25, 0] == INTERPOLATED and np.linalg.norm(out.xyz[25, 0] - truth[25]) < 0.01
    assert (out.status[40:44, 0] == INTERPOLATED).all()
    assert np.abs(out.xyz[40:44, 0] - truth[40:44]).max() < 0.01
    assert (out.status[55:70, 0] == MISSING).all() and np.isnan(out.xyz[55:70, 0]).all()
    assert (out.status[:, 1] == MISSING).all() and np.isnan(out.xyz[:, 1]).all()   # never seen: not filled
    ok = np.isfinite(out.xyz[:, 0, 0]) & (out.status[:, 0] == DETECTED)
    raw_err = np.linalg.norm(tr.xyz[ok, 0] - truth[ok], axis=1).mean()
    assert np.linalg.norm(out.xyz[ok, 0] - truth[ok], axis=1).mean() < 0.7 * raw_err
    v_ok = np.isfinite(out.velocity[:, 0, 0])
    assert np.abs(out.velocity[v_ok, 0] - vel[v_ok]).mean() < 0.01
    assert out.meta["cleaning"]["outliers_rejected"] >= 1


def test_clean_refuses_uneven_timestamps():
    tr, _, _ = circle_track(T=20)
    tr.timestamps[10:] += 0.05
    with pytest.raises(InputError, match="evenly"):
        clean(tr)


def test_kalman_tracks_constant_velocity_through_misses():
    kf = KalmanCV(dim=3, dt=0.1, accel_std=0.05, meas_std=0.002)
    rng = np.random.default_rng(0)
    v = np.array([0.1, -0.05, 0.02])
    for t in range(60):
        z = np.array([0.5, 0.0, 0.1]) + v * t * 0.1 + rng.normal(0, 0.002, 3)
        p, vel = kf.update(None if 40 <= t < 46 else z)
    truth = np.array([0.5, 0.0, 0.1]) + v * 59 * 0.1
    assert np.linalg.norm(p - truth) < 0.005 and np.linalg.norm(vel - v) < 0.02
    assert np.isnan(KalmanCV().update(None)[0]).all()


def test_kalman_fields_are_copies_not_aliases():
    kf = KalmanCV(dim=2, dt=0.1)
    F = kf.kf.transitionMatrix.copy()
    src = np.eye(4)
    kf.kf.transitionMatrix = src.copy()
    src[0, 0] = 99.0
    assert kf.kf.transitionMatrix[0, 0] == 1.0
    kf._set_dt(0.1)
    assert np.allclose(kf.kf.transitionMatrix, F)
