"""Cleaning keypoint tracks: offline (outliers, gaps, smoothing, velocities) and online (Kalman).

Offline, in this order, per keypoint and on both ``uv`` and ``xyz``:
1. robust outlier rejection — a Hampel filter: a sample further than ``k_mad`` scaled MADs from
   the running median of its neighbours becomes missing;
2. PCHIP gap fill by timestamp over interior gaps of at most ``max_gap`` frames (shape-preserving,
   no overshoot), marked ``interpolated``; longer gaps and the ends stay missing;
3. Savitzky–Golay smoothing over each contiguous run, whose first derivative gives velocities.
Keypoints missing everywhere stay missing.
"""
from __future__ import annotations

import cv2
import numpy as np
from scipy.interpolate import PchipInterpolator
from scipy.ndimage import median_filter
from scipy.signal import savgol_filter

from robot_irl.errors import InputError
from robot_irl.keypoints.track import INTERPOLATED, MISSING, SRC_FILTER, SRC_NONE, KeypointTrack


def hampel(x: np.ndarray, window: int = 7, k_mad: float = 4.0, floor: float = 0.0) -> np.ndarray:
    """Boolean mask of outliers in ``x [T, D]`` (NaN rows ignored): distance to the running
    median over ``window`` samples above ``k_mad`` robust sigmas (or ``floor``, whichever is larger)."""
    T = len(x)
    out = np.zeros(T, bool)
    ok = np.isfinite(x).all(axis=1)
    if ok.sum() < 3:
        return out
    y = x[ok]
    med = median_filter(y, size=(window, 1), mode="nearest")
    dev = np.linalg.norm(y - med, axis=1)
    mad = median_filter(dev, size=window, mode="nearest")
    bad = dev > np.maximum(k_mad * 1.4826 * mad, floor)
    out[np.flatnonzero(ok)[bad]] = True
    return out


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each run of True."""
    d = np.diff(np.r_[0, mask.astype(np.int8), 0])
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


def clean(track: KeypointTrack, *, max_gap: int = 10, window: int = 9, polyorder: int = 2, hampel_window: int = 7,
          k_mad: float = 4.0, uv_floor_px: float = 2.0, xyz_floor_m: float = 0.01) -> KeypointTrack:
    """Offline cleaning (see module doc). Returns a new track with ``velocity`` (m/s) set where
    3D exists. Savitzky–Golay assumes near-uniform sampling; timestamps jittering more than 10 %
    of the median step are rejected (resample first)."""
    if window % 2 == 0 or window <= polyorder:
        raise InputError(f"window {window}, polyorder {polyorder}", field="window", expected="odd window > polyorder")
    out = track.copy()
    ts = out.timestamps
    T = len(ts)
    dt = float(np.median(np.diff(ts))) if T > 1 else 1.0
    if T > 2 and np.abs(np.diff(ts) - dt).max() > 0.1 * dt:
        raise InputError("timestamps are not evenly spaced", field="timestamps",
                         expected="a near-constant frame interval (resample by timestamp before cleaning)")
    velocity = np.full(out.xyz.shape, np.nan)
    rejected = 0
    for k in range(len(out.names)):
        seen = out.status[:, k] != MISSING
        if not seen.any():
            continue
        bad = hampel(out.uv[:, k], hampel_window, k_mad, uv_floor_px)
        if np.isfinite(out.xyz[:, k]).any():
            bad |= hampel(out.xyz[:, k], hampel_window, k_mad, xyz_floor_m)
        bad &= seen
        rejected += int(bad.sum())
        out.uv[bad, k] = np.nan
        out.xyz[bad, k] = np.nan
        out.status[bad, k], out.source[bad, k], out.confidence[bad, k] = MISSING, SRC_NONE, 0.0
        for arr in (out.uv, out.xyz):
            filled = _fill(ts, arr[:, k], max_gap)
            new = np.isfinite(filled).all(1) & ~np.isfinite(arr[:, k]).all(1)
            arr[:, k] = filled
            if arr is out.uv:
                newly = new & (out.status[:, k] == MISSING)
                out.status[newly, k], out.source[newly, k] = INTERPOLATED, SRC_FILTER
                out.confidence[newly, k] = 0.5 * _neighbour_conf(out.confidence[:, k], newly)[newly]
        out.uv[:, k], _ = _smooth(out.uv[:, k], window, polyorder, dt)
        out.xyz[:, k], velocity[:, k] = _smooth(out.xyz[:, k], window, polyorder, dt)
    out.velocity = velocity
    out.meta = {**out.meta, "cleaning": {"max_gap": max_gap, "window": window, "polyorder": polyorder,
                                         "hampel_window": hampel_window, "k_mad": k_mad, "outliers_rejected": rejected},
                "counts": out.counts()}
    return out


def _neighbour_conf(conf: np.ndarray, filled: np.ndarray) -> np.ndarray:
    """Per filled frame, the lower confidence of the two samples bounding its gap."""
    res = np.zeros_like(conf)
    for a, b in _runs(filled):
        res[a:b] = min(conf[a - 1] if a > 0 else 0.0, conf[b] if b < len(conf) else 0.0)
    return res


def _fill(ts: np.ndarray, x: np.ndarray, max_gap: int) -> np.ndarray:
    ok = np.isfinite(x).all(axis=1)
    if ok.sum() < 2 or ok.all():
        return x
    out = x.copy()
    interp = PchipInterpolator(ts[ok], x[ok], axis=0, extrapolate=False)
    for a, b in _runs(~ok):
        if a == 0 or b == len(x) or b - a > max_gap:
            continue
        out[a:b] = interp(ts[a:b])
    return out


def _smooth(x: np.ndarray, window: int, polyorder: int, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """Savitzky–Golay position and first derivative per contiguous run; runs shorter than the
    window keep their values and get a finite-difference derivative."""
    pos, vel = x.copy(), np.full_like(x, np.nan)
    for a, b in _runs(np.isfinite(x).all(axis=1)):
        seg = x[a:b]
        if b - a >= window:
            pos[a:b] = savgol_filter(seg, window, polyorder, axis=0, mode="interp")
            vel[a:b] = savgol_filter(seg, window, polyorder, deriv=1, delta=dt, axis=0, mode="interp")
        elif b - a >= 2:
            vel[a:b] = np.gradient(seg, dt, axis=0)
    return pos, vel


class KalmanCV:
    """Online constant-velocity Kalman filter for one keypoint in ``dim`` dimensions.

    ``update(z)`` with a measurement, or ``update(None)`` for a missed frame (predict only).
    Built on ``cv2.KalmanFilter``; every matrix is assigned as a fresh copy because OpenCV 5
    aliases numpy arrays assigned to its fields (mutating the source would change the filter).
    """

    def __init__(self, dim: int = 3, dt: float = 0.1, accel_std: float = 1.0, meas_std: float = 0.005) -> None:
        self.dim, self.dt = dim, dt
        self.kf = cv2.KalmanFilter(2 * dim, dim, 0, cv2.CV_64F)
        self.accel_std, self.meas_std = accel_std, meas_std
        self.kf.measurementMatrix = np.hstack([np.eye(dim), np.zeros((dim, dim))]).copy()
        self.kf.measurementNoiseCov = (np.eye(dim) * meas_std ** 2).copy()
        self._set_dt(dt)
        self.initialised = False

    def _set_dt(self, dt: float) -> None:
        d = self.dim
        F = np.eye(2 * d)
        F[:d, d:] = np.eye(d) * dt
        G = np.vstack([np.eye(d) * 0.5 * dt ** 2, np.eye(d) * dt])
        self.kf.transitionMatrix = F.copy()
        self.kf.processNoiseCov = (G @ G.T * self.accel_std ** 2).copy()
        self.dt = dt

    def update(self, z: np.ndarray | None, dt: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Position and velocity estimate after this frame (NaN until the first measurement)."""
        if dt is not None and dt != self.dt:
            self._set_dt(dt)
        d = self.dim
        meas = z is not None and bool(np.all(np.isfinite(z)))
        if not self.initialised:
            if not meas:
                return np.full(d, np.nan), np.full(d, np.nan)
            self.kf.statePost = np.r_[np.asarray(z, np.float64), np.zeros(d)].reshape(-1, 1).copy()
            self.kf.errorCovPost = np.diag(np.r_[np.full(d, self.meas_std ** 2), np.full(d, 1.0)]).copy()
            self.initialised = True
            return np.asarray(z, np.float64).copy(), np.zeros(d)
        self.kf.predict()
        if meas:
            self.kf.correct(np.asarray(z, np.float64).reshape(-1, 1).copy())
            x = self.kf.statePost
        else:
            x = self.kf.statePre
            self.kf.statePost = x.copy()
            self.kf.errorCovPost = self.kf.errorCovPre.copy()
        x = np.asarray(x).ravel().copy()
        return x[:d], x[d:]
