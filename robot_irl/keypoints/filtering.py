"""Cleaning keypoint tracks by their own timestamps, never making them worse than the detector.

Offline, per keypoint (``clean``), on the frames' own times (jitter, dropped frames and repeated
timestamps are all fine: nothing assumes an even frame interval):
1. *Segments.* Observed samples (detected or tracked) split into segments at every missing frame
   and at every time step longer than ``1.5 x`` the median frame interval (a dropped frame). A
   sample is only ever judged against samples of its own segment, so a correct detection right
   after a gap is never thrown away because of a neighbour across the gap.
2. *Outliers.* A sample is dropped only when it disagrees, by more than ``max(floor, k_mad x`` the
   segment's robust residual scale``)``, with *every* motion fit that its own segment offers: a
   quadratic through the samples on both sides of it (leaving it out) and the constant-velocity
   fits from the samples just before and just after it (each side needs 3 samples). A correct
   sample at a sudden change of motion agrees with one side and is kept; a spike agrees with
   neither. Worst first, one at a time, so one spike does not condemn its neighbours; the fits
   are trimmed of their two least consistent samples, so wrong samples at least 5 frames apart
   are all found. Only interpolation judges: a sample with fewer than two samples of its segment
   on either side (the first and last two of a segment, every sample of a segment shorter than
   5) is kept, since extrapolating a hand's motion past a gap misses by pixels.
   A 3D outlier (e.g. a flipped marker pose) with a consistent pixel loses its 3D only.
3. *Gap fill.* An interior gap is filled (status ``interpolated``, source ``filter``) by a cubic
   Hermite curve through the boundary samples with each side's own velocity, only when the motion
   model predicts it: gap <= ``max_gap_s`` seconds (and <= ``max_gap`` frames) and the predicted
   error ``max(mismatch, bend, speed_err x speed_before x gap_s) <= fill_tol_px``: ``mismatch`` is
   the distance between the two sides' constant-velocity predictions at the gap's middle (zero
   for constant acceleration), ``bend = |v_after - v_before| x gap_s / 8`` how far the fill bends
   from a straight line (a change of motion inside the gap could put the marker anywhere within
   it), ``speed_before`` the speed on the gap's left. Else the gap stays missing. Each gap's
   decision is in ``meta["cleaning"]["gaps"]``.
4. *Smoothing.* A local quadratic fit by time over ``window`` samples per contiguous run gives
   positions and velocities (m/s for ``xyz``); a position moves at most ``shift_sigmas`` times
   the track's own measurement noise (``measurement_noise``: told apart from a random walk, so
   a shaking camera's true motion is not taken for noise) and at most ``max_shift_px`` away
   from its sample, so fast or irregular motion is never smoothed into a bias. Keypoints never seen stay missing.
Samples sharing one timestamp (a repeated frame) are cleaned as one and get the same values.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from robot_irl.errors import InputError
from robot_irl.keypoints.track import INTERPOLATED, MISSING, SRC_FILTER, SRC_NONE, KeypointTrack

MIN_JUDGED = 5      # a segment shorter than this has no motion fit to judge a sample by
SIDE = 3            # samples in a one-sided constant-velocity fit
SAME_TIME_S = 1e-6  # timestamps closer than this are one instant (a repeated frame)


@dataclass(frozen=True)
class CleanConfig:
    """Settings of :func:`clean` (see the module doc for what each one decides)."""

    max_gap_s: float = 0.5       # longest gap (s, boundary sample to boundary sample) ever filled
    max_gap: int = 15            # ... and in frames
    fill_tol_px: float = 3.0     # largest predicted error of a filled pixel position
    fill_tol_m: float = 0.01     # ... of a filled 3D position
    speed_err: float = 0.05      # relative error of a one-sided speed estimate (predicted error term)
    window: int = 7              # samples in the local smoothing fit (odd)
    polyorder: int = 2
    shift_sigmas: float = 2.0    # smoothing moves a value at most this many noise sigmas (per axis) ...
    max_shift_px: float = 0.5    # ... and at most this far (pixels) ...
    max_shift_m: float = 0.01    # ... or metres
    k_mad: float = 5.0           # outlier threshold in robust residual scales ...
    uv_floor_px: float = 6.0     # ... but never below this many pixels
    xyz_floor_m: float = 0.01    # ... or metres

    def __post_init__(self) -> None:
        if self.window % 2 == 0 or self.window <= self.polyorder:
            raise InputError(f"window {self.window}, polyorder {self.polyorder}", field="window",
                             expected="an odd window larger than polyorder")
        for name in ("max_gap_s", "fill_tol_px", "fill_tol_m", "k_mad", "uv_floor_px", "xyz_floor_m"):
            if not getattr(self, name) > 0:
                raise InputError(f"{name} = {getattr(self, name)}", field=name, expected="a positive number")


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each run of True."""
    d = np.diff(np.r_[0, mask.astype(np.int8), 0])
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


def _fit(t: np.ndarray, x: np.ndarray, t0: float, deg: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares polynomial of ``x [n, D]`` in time, evaluated at ``t0``: (position, velocity)."""
    u = (t - t0) / scale
    A = np.vander(u, min(deg, len(u) - 1) + 1, increasing=True)
    c = np.linalg.lstsq(A, x, rcond=None)[0]
    vel = c[1] / scale if len(c) > 1 else np.zeros(x.shape[1])
    return c[0], vel


def segments(t: np.ndarray, ok: np.ndarray, dt: float) -> list[np.ndarray]:
    """Indices of observed samples, split at every missing sample and every time step > 1.5 dt."""
    idx = np.flatnonzero(ok)
    if not len(idx):
        return []
    cut = np.flatnonzero((np.diff(idx) > 1) | (np.diff(t[idx]) > 1.5 * dt)) + 1
    return np.split(idx, cut)


def _trimmed_prediction(t: np.ndarray, x: np.ndarray, t0: float, deg: int, keep: int, dt: float) -> np.ndarray:
    """Polynomial fit of degree ``deg`` at ``t0``, refitted without the sample that least agrees
    with the others (largest leave-one-out residual) while more than ``keep`` remain: one or two
    wrong neighbours do not bend the fit a sample is judged by."""
    idx = np.arange(len(t))
    while len(idx) > keep:
        idx = np.delete(idx, int(np.argmax(_deleted_residuals(t[idx], x[idx], deg, dt))))
    return _fit(t[idx], x[idx], t0, deg, dt)[0]


def _deleted_residuals(t: np.ndarray, x: np.ndarray, deg: int, dt: float) -> np.ndarray:
    """Per sample, its distance from the least-squares polynomial of the other samples
    (residual / (1 - leverage)): an end sample cannot hide by pulling the fit to itself."""
    u = (t - t[0]) / dt
    A = np.vander(u, min(deg, len(u) - 1) + 1, increasing=True)
    pinv = np.linalg.pinv(A)
    lev = np.einsum("ij,ji->i", A, pinv)
    res = np.linalg.norm(x - A @ (pinv @ x), axis=1)
    return res / np.maximum(1.0 - lev, 1e-9)


def _score(t: np.ndarray, x: np.ndarray, seg: np.ndarray, alive: np.ndarray, i: int, dt: float) -> float:
    """Smallest disagreement of sample ``seg[i]`` with the motion fits of its own segment: a
    quadratic through up to SIDE+1 samples on each side and a constant-velocity fit over SIDE+1
    samples on each side, each trimmed of its least consistent samples. A sample with fewer than
    two samples on either side is not judged (0): extrapolating a hand's motion past a gap's
    edge misses by pixels even where the detection is exact."""
    live = np.flatnonzero(alive)
    before, after = live[live < i][-(SIDE + 1):], live[live > i][:SIDE + 1]
    if len(before) < 2 or len(after) < 2:
        return 0.0
    near = np.r_[before, after]
    best = float(np.linalg.norm(x[seg[i]] - _trimmed_prediction(t[seg[near]], x[seg[near]], t[seg[i]], 2,
                                                                 max(4, len(near) - 2), dt)))
    for side in (before, after):
        if len(side) >= SIDE:
            p = _trimmed_prediction(t[seg[side]], x[seg[side]], t[seg[i]], 1, SIDE, dt)
            best = min(best, float(np.linalg.norm(x[seg[i]] - p)))
    return best


def outliers(t: np.ndarray, x: np.ndarray, ok: np.ndarray, dt: float, floor: float, k_mad: float) -> np.ndarray:
    """Mask of samples of ``x [n, D]`` (observed where ``ok``) that disagree with every motion fit
    of their own segment (see the module doc)."""
    bad = np.zeros(len(x), bool)
    for seg in segments(t, ok, dt):
        n = len(seg)
        if n < MIN_JUDGED:
            continue
        alive = np.ones(n, bool)
        scores = np.array([_score(t, x, seg, alive, i, dt) for i in range(n)])
        thr = max(floor, k_mad * 1.4826 * float(np.median(scores)))
        while alive.sum() > MIN_JUDGED:
            cand = np.where(alive, scores, -1.0)
            j = int(np.argmax(cand))
            if cand[j] <= thr:
                break
            alive[j] = False
            bad[seg[j]] = True
            for i in range(max(0, j - 2 * SIDE - 1), min(n, j + 2 * SIDE + 2)):
                if alive[i]:
                    scores[i] = _score(t, x, seg, alive, i, dt)
    return bad


def _side_velocity(t: np.ndarray, x: np.ndarray, ok: np.ndarray, at: int, step: int, horizon: float,
                   dt: float) -> np.ndarray | None:
    """Velocity at boundary sample ``at`` from up to SIDE observed samples on its side (``step``
    -1: before, +1: after) within ``horizon`` seconds; None with fewer than two."""
    idx = np.flatnonzero(ok[:at + 1])[::-1][:SIDE] if step < 0 else np.flatnonzero(ok[at:])[:SIDE] + at
    idx = idx[np.abs(t[idx] - t[at]) <= horizon]
    if len(idx) < 2:
        return None
    return _fit(t[idx], x[idx], t[at], 1, dt)[1]


def _hermite(t: np.ndarray, t0: float, t1: float, x0, v0, x1, v1) -> np.ndarray:
    T = t1 - t0
    s = ((t - t0) / T)[:, None]
    return ((2 * s ** 3 - 3 * s ** 2 + 1) * x0 + (s ** 3 - 2 * s ** 2 + s) * T * v0
            + (-2 * s ** 3 + 3 * s ** 2) * x1 + (s ** 3 - s ** 2) * T * v1)


def _gap_prediction(t: np.ndarray, x: np.ndarray, ok: np.ndarray, a: int, b: int, cfg: CleanConfig, dt: float):
    """(predicted error, speed before, left velocity, right velocity) for the gap ``[a, b)``
    bounded by samples ``a-1`` and ``b``; error inf when a side has no velocity."""
    l, r = a - 1, b
    T = t[r] - t[l]
    vl = _side_velocity(t, x, ok, l, -1, cfg.max_gap_s, dt)
    vr = _side_velocity(t, x, ok, r, +1, cfg.max_gap_s, dt)
    if vl is None or vr is None or T <= 0:
        return np.inf, float("nan"), vl, vr
    mismatch = float(np.linalg.norm((x[l] + vl * T / 2) - (x[r] - vr * T / 2)))
    speed = float(np.linalg.norm(vl))
    bend = float(np.linalg.norm(vr - vl)) * T / 8
    return max(mismatch, bend, cfg.speed_err * speed * T), speed, vl, vr


def measurement_noise(x: np.ndarray) -> float:
    """Per-axis variance ``r`` of a track's measurement noise (independent from frame to frame),
    the track seen as a random walk ``q`` (a handheld camera's shake, whatever of a hand's motion
    is not smooth) plus that noise. From the second differences ``d2`` of consecutive samples
    (a constant velocity cancels): ``var d2 = 6r + 2q``
    and their lag-1 covariance ``-4r - q``, so ``r = -cov - var/2``. Smooth acceleration adds
    to both and only lowers ``r`` (less smoothing, never a bias); ``d2`` is centred by its median
    and winsorised at 5 robust sigmas. NaN with fewer than 5 usable pairs."""
    ok = np.isfinite(x).all(axis=1)
    trip = ok[2:] & ok[1:-1] & ok[:-2]
    d2 = np.diff(x, 2, axis=0)
    pair = trip[1:] & trip[:-1]
    if pair.sum() < 5:
        return float("nan")
    both = d2[trip]
    med = np.median(both, axis=0)
    lim = 5 * 1.4826 * np.median(np.abs(both - med), axis=0) + 1e-12
    d2 = np.clip(np.where(trip[:, None], d2, med) - med, -lim, lim)
    var = float(np.mean(d2[trip] ** 2))
    cov = float(np.mean(d2[1:][pair] * d2[:-1][pair]))
    return max(0.0, -cov - var / 2)


def _smooth(t: np.ndarray, x: np.ndarray, window: int, deg: int, dt: float, shift_sigmas: float,
            max_shift: float) -> tuple[np.ndarray, np.ndarray]:
    """Local polynomial fit by time over ``window`` samples per contiguous run: positions and
    first derivatives; runs too short to fit keep their values (time-difference velocity). A
    position moves at most ``shift_sigmas`` sigmas of the track's measurement noise
    (:func:`measurement_noise`), and at most ``max_shift``, from its sample: where the motion is too
    quick or irregular for the fit (a hand's jerk, a phone's uneven frame times, a shaking
    camera) smoothing would bias it, and it may never move a sample further from the detection
    than the detector's own noise. (Capped by a noise estimate that counted a shaking camera's
    random walk as noise, the fit smoothed away the camera's true motion: jitter at rest against
    truth 0.45-0.6x the raw detector's, against 0.24-0.26x unsmoothed; dev seeds 0-2.)"""
    pos, vel = x.copy(), np.full_like(x, np.nan)
    h = window // 2
    r = measurement_noise(x)
    cap = min(shift_sigmas * np.sqrt(r), max_shift) if np.isfinite(r) else 0.0
    for a, b in _runs(np.isfinite(x).all(axis=1)):
        n = b - a
        if n > deg + 1:
            w = min(window, n)
            for i in range(n):
                lo = min(max(i - h, 0), n - w)
                pos[a + i], vel[a + i] = _fit(t[a + lo:a + lo + w], x[a + lo:a + lo + w], t[a + i], deg, dt)
        elif n >= 2:
            vel[a:b] = np.gradient(x[a:b], t[a:b], axis=0)
    return x + np.clip(pos - x, -cap, cap), vel


def _instants(ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first frame of each instant, instant of each frame): frames with one timestamp are one."""
    new = np.r_[True, np.diff(ts) > SAME_TIME_S]
    return np.flatnonzero(new), np.cumsum(new) - 1


def clean(track: KeypointTrack, config: CleanConfig | None = None, **overrides) -> KeypointTrack:
    """Offline cleaning (see module doc). Returns a new track with ``velocity`` (m/s) where 3D
    exists; ``overrides`` replace fields of ``config`` (``clean(track, max_gap=6)``)."""
    cfg = config or CleanConfig()
    if overrides:
        unknown = set(overrides) - set(CleanConfig.__dataclass_fields__)
        if unknown:
            raise InputError(f"unknown cleaning setting(s) {sorted(unknown)}", field="clean",
                             expected="one of: " + ", ".join(CleanConfig.__dataclass_fields__))
        cfg = CleanConfig(**{**cfg.__dict__, **overrides})
    out = track.copy()
    ts = np.asarray(out.timestamps, np.float64)
    if len(ts) > 1 and (not np.isfinite(ts).all() or (np.diff(ts) < -SAME_TIME_S).any()):
        bad = int(np.flatnonzero(~np.isfinite(ts) | np.r_[False, np.diff(ts) < -SAME_TIME_S])[0])
        raise InputError(f"timestamp of frame {bad} is not finite or goes back in time", field="timestamps",
                         expected="finite, non-decreasing times (s), one per frame")
    first, inst = _instants(ts)
    t = ts[first]
    dt = float(np.median(np.diff(t))) if len(t) > 1 else 1.0
    velocity = np.full(out.xyz.shape, np.nan)
    stats = {"outliers_rejected": 0, "xyz_outliers_rejected": 0, "gaps_filled": 0, "gaps_left_missing": 0}
    gaps: list[dict] = []
    for k, name in enumerate(out.names):
        obs_f = (out.status[:, k] != MISSING) & np.isfinite(out.uv[:, k]).all(1)
        if not obs_f.any():
            continue
        # one representative frame per instant: its first observed frame, else its first frame
        rep = first.copy()
        for f in np.flatnonzero(obs_f)[::-1]:
            rep[inst[f]] = f
        uv, xyz = out.uv[rep, k].copy(), out.xyz[rep, k].copy()
        status, source, conf = out.status[rep, k].copy(), out.source[rep, k].copy(), out.confidence[rep, k].copy()
        ok = (status != MISSING) & np.isfinite(uv).all(1)
        bad = outliers(t, uv, ok, dt, cfg.uv_floor_px, cfg.k_mad)
        ok3 = ok & ~bad & np.isfinite(xyz).all(1)
        bad3 = outliers(t, xyz, ok3, dt, cfg.xyz_floor_m, cfg.k_mad) if ok3.sum() >= MIN_JUDGED else np.zeros_like(ok)
        stats["outliers_rejected"] += int(bad.sum())
        stats["xyz_outliers_rejected"] += int(bad3.sum())
        uv[bad], xyz[bad | bad3] = np.nan, np.nan
        status[bad], source[bad], conf[bad] = MISSING, SRC_NONE, 0.0
        ok &= ~bad
        ok3 = ok & np.isfinite(xyz).all(1)
        for a, b in _runs(~ok):
            if a == 0 or b == len(ok):
                continue
            err, speed, vl, vr = _gap_prediction(t, uv, ok, a, b, cfg, dt)
            span = float(t[b] - t[a - 1])
            fill = err <= cfg.fill_tol_px and span <= cfg.max_gap_s and b - a <= cfg.max_gap
            gaps.append({"keypoint": name, "frame": int(rep[a]), "frames": int(b - a), "gap_s": round(span, 4),
                         "speed_before_px_s": None if np.isnan(speed) else round(speed, 2),
                         "predicted_err_px": None if np.isinf(err) else round(float(err), 3), "filled": bool(fill)})
            stats["gaps_filled" if fill else "gaps_left_missing"] += 1
            if not fill:
                continue
            uv[a:b] = _hermite(t[a:b], t[a - 1], t[b], uv[a - 1], vl, uv[b], vr)
            status[a:b], source[a:b] = INTERPOLATED, SRC_FILTER
            conf[a:b] = 0.5 * min(conf[a - 1], conf[b]) * (1.0 - err / (2 * cfg.fill_tol_px))
            if ok3[a - 1] and ok3[b] and not ok3[a:b].any():
                err3, _, wl, wr = _gap_prediction(t, xyz, ok3, a, b, cfg, dt)
                if err3 <= cfg.fill_tol_m:
                    xyz[a:b] = _hermite(t[a:b], t[a - 1], t[b], xyz[a - 1], wl, xyz[b], wr)
        uv, _ = _smooth(t, uv, cfg.window, cfg.polyorder, dt, cfg.shift_sigmas, cfg.max_shift_px)
        xyz, vel = _smooth(t, xyz, cfg.window, cfg.polyorder, dt, cfg.shift_sigmas, cfg.max_shift_m)
        # back to frames: every frame of an instant gets the instant's values
        out.uv[:, k], out.xyz[:, k], velocity[:, k] = uv[inst], xyz[inst], vel[inst]
        out.status[:, k], out.source[:, k], out.confidence[:, k] = status[inst], source[inst], conf[inst]
    out.velocity = velocity
    out.meta = {**out.meta, "cleaning": {**cfg.__dict__, **stats, "repeated_timestamps": int(len(ts) - len(t)),
                                         "median_dt_s": dt, "gaps": gaps},
                "counts": out.counts()}
    return out


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
