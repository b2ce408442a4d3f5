"""Offline cleaning by timestamps (outliers on their own side of gaps, predictable fills only,
local-fit smoothing) and the online Kalman filter. Synthetic tracks with known truth."""
import numpy as np
import pytest

from robot_irl.errors import InputError
from robot_irl.keypoints.filtering import CleanConfig, KalmanCV, clean, outliers, segments
from robot_irl.keypoints.track import DETECTED, INTERPOLATED, MISSING, TRACKED, KeypointTrack


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


def hand_track(ts, seed=0, noise=0.3):
    """Pixel track of a marker moved by hand: fast, accelerating, with rests; truth and noisy copy."""
    rng = np.random.default_rng(seed)
    truth = np.stack([320 + 120 * np.sin(2.1 * ts) + 40 * np.sin(5.3 * ts + 1),
                      240 + 80 * np.cos(1.7 * ts) * np.clip(np.sin(0.9 * ts) + 0.3, 0, None)], 1)
    tr = KeypointTrack.empty(["m"], ts)
    tr.uv[:, 0] = truth + rng.normal(0, noise, truth.shape)
    tr.status[:, 0], tr.confidence[:, 0] = DETECTED, 0.9
    return tr, truth


def live_times(T, rate=30.0, seed=0, drop=(), repeat=()):
    """Clock timestamps of a live camera: jitter, dropped frames (absent) and repeated stamps."""
    rng = np.random.default_rng(seed)
    ts = np.arange(T) / rate + rng.normal(0, 0.15 / rate, T)
    ts = np.sort(ts)
    keep = np.setdiff1d(np.arange(T), list(drop))
    ts = ts[keep]
    for i in repeat:
        ts[i] = ts[i - 1]
    return ts


def test_clean_rejects_outliers_fills_short_predictable_gaps_only_and_smooths():
    tr, vel, truth = circle_track(noise=0.002)
    tr.xyz[25, 0] += [0.2, 0, 0]                         # outlier
    tr.uv[25, 0] += [200, 0]
    for a, b in ((40, 44), (55, 70)):                    # short gap (4) and long gap (15 frames, 1.5 s)
        tr.xyz[a:b, 0], tr.uv[a:b, 0], tr.status[a:b, 0] = np.nan, np.nan, MISSING
    out = clean(tr, max_gap=6, max_gap_s=1.0)                   # 10 Hz: a 4-frame gap spans 0.5 s
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
    c = out.meta["cleaning"]
    assert c["outliers_rejected"] == 1 and c["gaps_filled"] == 2 and c["gaps_left_missing"] == 1
    assert {g["frames"]: g["filled"] for g in c["gaps"]} == {1: True, 4: True, 15: False}


def test_live_camera_timestamps_jitter_dropped_and_repeated_frames_clean_without_error():
    ts = live_times(150, drop=(40, 41, 90), repeat=(60, 100))
    tr, truth = hand_track(ts)
    tr.uv[100, 0] = tr.uv[99, 0]                          # a repeated frame repeats the image too
    out = clean(tr)
    assert (out.status[:, 0] == DETECTED).all()
    assert np.allclose(out.uv[100, 0], out.uv[99, 0]) and np.allclose(out.uv[60, 0], out.uv[59, 0])
    assert out.meta["cleaning"]["repeated_timestamps"] == 2
    err = np.linalg.norm(out.uv[:, 0] - truth, axis=1)
    assert np.median(err) < 0.5, np.median(err)
    with pytest.raises(InputError, match="frame 5"):
        bad = tr.copy()
        bad.timestamps[5] = bad.timestamps[3]
        clean(bad)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_correct_detection_is_never_dropped_even_beside_gaps_and_spikes(seed):
    rng = np.random.default_rng(seed)
    ts = live_times(300, seed=seed, drop=(50, 51, 52))
    tr, truth = hand_track(ts, seed=seed)
    miss = np.zeros(len(ts), bool)
    for a in rng.choice(len(ts) - 20, 12, replace=False):        # gaps of 1..12 frames
        miss[a:a + rng.integers(1, 13)] = True
    tr.uv[miss, 0], tr.status[miss, 0] = np.nan, MISSING
    judged = np.concatenate([s[2:-2] for s in segments(ts, ~miss, 1 / 30) if len(s) >= 7])
    spikes = np.unique(rng.choice(judged[judged % 5 == 2], 8, replace=False))  # wrong samples 5+ frames apart
    # (a segment's first and last two samples, and segments < 5 samples, are not judged)
    tr.uv[spikes, 0] += rng.choice([-1, 1], (8, 2)) * rng.uniform(12, 60, (8, 2))
    tr.status[spikes[:3], 0] = TRACKED                            # flow drift counts as well
    out = clean(tr)
    correct = (tr.status[:, 0] != MISSING) & (np.linalg.norm(tr.uv[:, 0] - truth, axis=1) <= 1.0)
    assert (out.status[correct, 0] != MISSING).all(), np.flatnonzero(correct & (out.status[:, 0] == MISSING))
    assert not np.isin(out.status[spikes, 0], (DETECTED, TRACKED)).any()
    filled = out.status[:, 0] == INTERPOLATED
    assert filled.any()
    assert np.linalg.norm(out.uv[filled, 0] - truth[filled], axis=1).max() <= 3.0


def test_a_detection_after_a_gap_is_judged_by_its_own_side_only():
    ts = np.arange(60) / 30.0
    uv = np.zeros((60, 2))
    uv[:, 0] = np.where(np.arange(60) < 30, 100.0, 100.0 + 15.0 * (np.arange(60) - 30))  # starts moving in the gap
    tr = KeypointTrack.empty(["m"], ts)
    tr.uv[:, 0], tr.status[:, 0], tr.confidence[:, 0] = uv, DETECTED, 1.0
    tr.uv[28:33, 0], tr.status[28:33, 0] = np.nan, MISSING
    out = clean(tr)
    assert (out.status[33:, 0] == DETECTED).all() and (out.status[:28, 0] == DETECTED).all()
    assert (out.status[28:33, 0] == MISSING).all()               # the motion changed in the gap: not predictable
    g = out.meta["cleaning"]["gaps"][0]
    assert not g["filled"] and g["predicted_err_px"] > 2.0


def test_fast_motion_gap_is_left_missing_slow_one_filled():
    ts = np.arange(240) / 30.0
    _, fast = hand_track(ts)
    truth = np.where((ts < 4.0)[:, None], np.stack([100 + 25 * ts, 200 + 6 * ts ** 2], 1), fast)  # a slow glide first
    tr = KeypointTrack.empty(["m"], ts)
    tr.uv[:, 0], tr.status[:, 0], tr.confidence[:, 0] = truth, DETECTED, 0.9
    speed = np.linalg.norm(np.gradient(truth, ts, axis=0), axis=1)
    f = int(np.argmax(speed[150:-20])) + 150
    for c in (f, 60):
        tr.uv[c - 4:c + 4, 0], tr.status[c - 4:c + 4, 0] = np.nan, MISSING
    out = clean(tr)
    assert (out.status[f - 4:f + 4, 0] == MISSING).all()
    assert (out.status[56:64, 0] == INTERPOLATED).all()
    assert np.linalg.norm(out.uv[56:64, 0] - truth[56:64], axis=1).max() < 1.0
    g = {x["frame"]: x for x in out.meta["cleaning"]["gaps"]}
    assert g[56]["filled"] and not g[f - 4]["filled"] and g[f - 4]["predicted_err_px"] > 3.0


def test_smoothing_halves_jitter_at_rest():
    ts = live_times(120)
    tr = KeypointTrack.empty(["m"], ts)
    tr.uv[:, 0] = np.array([200.0, 150.0]) + np.random.default_rng(3).normal(0, 0.4, (120, 2))
    tr.status[:, 0], tr.confidence[:, 0] = DETECTED, 1.0
    out = clean(tr)
    jitter = lambda x: np.linalg.norm(np.diff(x, axis=0), axis=1).mean()  # noqa: E731
    assert jitter(out.uv[:, 0]) < 0.5 * jitter(tr.uv[:, 0])


def test_outliers_need_a_segment_to_judge_by():
    t = np.arange(4) / 30.0
    x = np.array([[0.0, 0], [0, 0], [50, 50], [0, 0]])
    assert not outliers(t, x, np.ones(4, bool), 1 / 30, 3.0, 5.0).any()


def test_bad_settings_are_refused():
    tr, _, _ = circle_track(T=20)
    with pytest.raises(InputError, match="window"):
        clean(tr, window=8)
    with pytest.raises(InputError, match="unknown cleaning"):
        clean(tr, max_gapp=3)
    with pytest.raises(InputError, match="fill_tol_px"):
        CleanConfig(fill_tol_px=0)


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
