"""What learned keypoints mean: a linear probe to known points, and a per-keypoint report.

The probe answers "do the learned keypoints carry where the arm and the object are?": a linear map
(with bias, lightly ridge-regularised) from all K learned (u, v) to the true pixels of chosen
points, fitted on training episodes and scored on held-out ones. The report answers "what does
each keypoint follow?": its best correlation with a tracked point where truth exists, how much it
moves over an episode, how much it jitters frame to frame, and a verdict; a keypoint that follows
nothing (sits on the background, or flickers) is flagged so it can be dropped before learning.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from robot_irl.errors import InputError

MIN_CORRELATION = 0.6     # below: a keypoint follows no tracked point
MIN_MOTION_FRAC = 0.005   # std over an episode below 0.5 % of the width: it sits still (background)
MAX_JITTER = 0.5          # std of the second difference over the std of the position above this: flicker


@dataclass
class LinearProbe:
    """``W [F + 1, M]``: features (flattened keypoints, then 1) to targets."""

    W: np.ndarray

    @classmethod
    def fit(cls, X: np.ndarray, Y: np.ndarray, ridge: float = 1e-5) -> "LinearProbe":
        ok = np.isfinite(X).all(1) & np.isfinite(Y).all(1)
        if ok.sum() < X.shape[1] + 1:
            raise InputError(f"{int(ok.sum())} complete frames for {X.shape[1]} features", field="frames",
                             expected="more training frames than probe features")
        Xb = np.c_[X[ok], np.ones(ok.sum())]
        A = Xb.T @ Xb + ridge * len(Xb) * np.diag(np.r_[np.ones(X.shape[1]), 0.0])
        return cls(np.linalg.solve(A, Xb.T @ Y[ok]))

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.c_[X, np.ones(len(X))] @ self.W


def probe_errors(train_x: list[np.ndarray], train_y: list[np.ndarray], test_x: list[np.ndarray],
                 test_y: list[np.ndarray], scale: float) -> np.ndarray:
    """Per-frame, per-point pixel errors ``[N, J]`` on the test episodes of a probe fitted on the
    training ones. ``*_x``: ``[T, K, 2]`` keypoints per episode; ``*_y``: ``[T, J, 2]`` truth.
    Features are divided by ``scale`` (the image width) so the ridge term is size-free."""
    X = np.concatenate([x.reshape(len(x), -1) for x in train_x]) / scale
    Y = np.concatenate([y.reshape(len(y), -1) for y in train_y])
    probe = LinearProbe.fit(X, Y)
    Xt = np.concatenate([x.reshape(len(x), -1) for x in test_x]) / scale
    Yt = np.concatenate([y.reshape(len(y), -1) for y in test_y])
    diff = (probe.predict(Xt) - Yt).reshape(len(Yt), -1, 2)
    return np.linalg.norm(diff, axis=-1)


@dataclass
class KeypointVerdict:
    """One learned keypoint: what it follows (``follows``, ``correlation``; None without truth),
    its motion (std over an episode, px), jitter (roughness ratio), confidence, and ``useful``."""

    name: str
    follows: str | None
    correlation: float | None
    motion_px: float
    jitter: float
    confidence: float
    useful: bool
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or a[ok].std() < 1e-9 or b[ok].std() < 1e-9:
        return 0.0
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def keypoint_report(uv: list[np.ndarray], confidence: list[np.ndarray], width: int, names: list[str],
                    truth: list[np.ndarray] | None = None, truth_names: list[str] | None = None) -> list[KeypointVerdict]:
    """Verdicts for each learned keypoint over episodes ``uv [T, K, 2]`` (with ``confidence [T, K]``);
    ``truth [T, J, 2]`` (pixels of tracked points, e.g. the sim's) where it exists.

    Correlation of keypoint k with point j: the mean over u and v of the Pearson correlation of
    their within-episode deviations (each episode's mean removed, so a keypoint is not credited for
    episodes merely starting in different places)."""
    K = uv[0].shape[1]
    centred = lambda arrs: np.concatenate([a - np.nanmean(a, axis=0, keepdims=True) for a in arrs])
    du = centred(uv)
    motion = np.median([np.nanstd(a, axis=0).mean(-1) for a in uv], axis=0)       # [K]
    jitter = []   # white noise gives about 2.4, smooth motion about 0
    for k in range(K):
        r = [np.nanstd(np.diff(a[:, k], 2, axis=0), axis=0).mean() / max(np.nanstd(a[:, k], axis=0).mean(), 1e-9)
             for a in uv if len(a) > 3]
        jitter.append(float(np.median(r)) if r else 0.0)
    conf = np.nanmean(np.concatenate(confidence), axis=0)
    dt = centred(truth) if truth is not None else None
    out = []
    for k in range(K):
        follows, corr = None, None
        if dt is not None:
            scores = [0.5 * (_corr(du[:, k, 0], dt[:, j, 0]) + _corr(du[:, k, 1], dt[:, j, 1]))
                      for j in range(dt.shape[1])]
            j = int(np.argmax(scores))
            follows, corr = (truth_names[j] if truth_names else str(j)), float(scores[j])
        if motion[k] < MIN_MOTION_FRAC * width:
            useful, reason = False, "static (background)"
        elif corr is not None and corr < MIN_CORRELATION:
            useful, reason = False, f"follows nothing tracked (best r = {corr:.2f})"
        elif jitter[k] > MAX_JITTER:
            useful, reason = False, "flicker"
        else:
            useful, reason = True, "follows " + (follows if follows else "moving scene part")
        out.append(KeypointVerdict(names[k], follows, corr, float(motion[k]), jitter[k], float(conf[k]), useful,
                                   reason))
    return out
