"""Demonstrations as the learner sees them: keypoint trajectories batched into one tensor.

A :class:`DemoSet` holds ``keypoints [N, T, K, 3]`` (metres, robot base frame, NaN = missing),
``timestamps [N, T]``, the start joint state ``q0 [N, n]`` and goal keypoints ``goals [N, K, 3]``.
Demos of different lengths or rates are resampled *by timestamp* to the learner's number of rows;
missing samples stay NaN and are masked out of every loss. A demo is refused (with the reason)
only when one of its keypoints is missing in more than ``max_missing_fraction`` of its frames.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from robot_irl.errors import InputError


@dataclass
class DemoSet:
    keypoints: np.ndarray                  # [N, T, K, 3]
    timestamps: np.ndarray                 # [N, T] seconds
    q0: np.ndarray | None = None           # [N, n] start joint state, or None (then solved by IK)
    goals: np.ndarray | None = None        # [N, K, 3]; default: the last observed row of each keypoint
    names: list[str] = field(default_factory=list)   # demo names (for messages and reports)
    source: str = ""                       # where they came from (file or library query), for configs
    q_end: np.ndarray | None = None        # [N, n] the joints each demo ended with (recorded demos), or None

    def __post_init__(self) -> None:
        k = np.asarray(self.keypoints, dtype=np.float64)
        if k.ndim != 4 or k.shape[-1] != 3 or k.shape[1] < 2:
            raise InputError(f"keypoints have shape {k.shape}", file=self.source or None, field="keypoints",
                             expected="[N, T, K, 3] with T >= 2")
        self.keypoints = k
        ts = np.asarray(self.timestamps, dtype=np.float64)
        if ts.ndim == 1:
            ts = np.broadcast_to(ts, k.shape[:2]).copy()
        if ts.shape != k.shape[:2]:
            raise InputError(f"timestamps have shape {ts.shape}", file=self.source or None, field="timestamps",
                             expected=f"[T] or [N, T] = {list(k.shape[:2])}")
        if np.any(np.diff(ts, axis=1) <= 0):
            raise InputError("timestamps are not strictly increasing", file=self.source or None,
                             field="timestamps", expected="increasing times per demo")
        self.timestamps = ts
        if self.q0 is not None:
            q = np.asarray(self.q0, dtype=np.float64)
            q = np.broadcast_to(q, (len(k), q.shape[-1])).copy() if q.ndim == 1 else q
            if q.shape[0] != len(k):
                raise InputError(f"q0 has {q.shape[0]} rows for {len(k)} demos", file=self.source or None,
                                 field="q0", expected="[n] or [N, n]")
            self.q0 = q
        if self.q_end is not None:
            q = np.asarray(self.q_end, dtype=np.float64)
            if q.ndim != 2 or q.shape[0] != len(k):
                raise InputError(f"q_end has shape {list(q.shape)} for {len(k)} demos", file=self.source or None,
                                 field="q_end", expected="[N, n]: the joints each demo ended with")
            self.q_end = q
        if self.goals is not None:
            g = np.asarray(self.goals, dtype=np.float64)
            if g.shape != (len(k), k.shape[2], 3):
                raise InputError(f"goals have shape {g.shape}", file=self.source or None, field="goals",
                                 expected=f"[N, K, 3] = {[len(k), k.shape[2], 3]}")
            self.goals = g
        if not self.names:
            self.names = [f"demo{i}" for i in range(len(k))]

    def __len__(self) -> int:
        return self.keypoints.shape[0]

    @property
    def n_keypoints(self) -> int:
        return self.keypoints.shape[2]

    def subset(self, idx: list[int] | np.ndarray) -> "DemoSet":
        idx = [int(i) for i in idx]
        bad = [i for i in idx if not 0 <= i < len(self)]
        if bad:
            raise InputError(f"demo indices {bad} out of range", file=self.source or None, field="indices",
                             expected=f"0..{len(self) - 1}")
        if not idx:
            raise InputError("empty demo selection", file=self.source or None, field="indices",
                             expected="at least one demo")
        return replace(self, keypoints=self.keypoints[idx], timestamps=self.timestamps[idx],
                       q0=None if self.q0 is None else self.q0[idx],
                       q_end=None if self.q_end is None else self.q_end[idx],
                       goals=None if self.goals is None else self.goals[idx], names=[self.names[i] for i in idx])

    def by_names(self, names: list[str], what: str = "demos") -> "DemoSet":
        """The demos named ``names`` (library episode ids), in that order; refuses when one is missing,
        so a changed library or file cannot silently change an evaluation's test set."""
        pos = {n: i for i, n in enumerate(self.names)}
        missing = [n for n in names if n not in pos]
        if missing:
            raise InputError(f"{what} {missing} are no longer in the demo source", file=self.source or None,
                             field=what, expected=f"the demos the run was trained and tested on ({len(names)} named)")
        return self.subset([pos[n] for n in names])

    def check_missing(self, max_missing_fraction: float) -> None:
        """Refuse a demo in which a keypoint is missing in more than the stated fraction of frames."""
        miss = np.isnan(self.keypoints).any(-1).mean(1)  # [N, K]
        bad = np.argwhere(miss > max_missing_fraction)
        if len(bad):
            n, k = bad[0]
            raise InputError(f"demo '{self.names[n]}': keypoint {k} is missing in {miss[n, k]:.0%} of frames, "
                             f"more than the allowed {max_missing_fraction:.0%}", file=self.source or None,
                             field="keypoints", expected="each keypoint observed in enough frames "
                             "(raise max_missing_fraction to accept it)")
        start_missing = np.isnan(self.keypoints[:, 0]).any(-1).any(-1)
        if self.q0 is None and start_missing.any():
            n = int(np.argmax(start_missing))
            raise InputError(f"demo '{self.names[n]}' has no start keypoints and no q0", file=self.source or None,
                             field="q0", expected="q0 in the demo file, or every keypoint visible in the first frame")

    def goal_keypoints(self) -> np.ndarray:
        """Goals ``[N, K, 3]``: given ones, else each keypoint's last observed position."""
        if self.goals is not None:
            return self.goals
        out = np.empty(self.keypoints.shape[:1] + self.keypoints.shape[2:])
        for n in range(len(self)):
            for k in range(self.n_keypoints):
                valid = np.flatnonzero(~np.isnan(self.keypoints[n, :, k]).any(-1))
                if not len(valid):
                    raise InputError(f"demo '{self.names[n]}': keypoint {k} is missing throughout",
                                     file=self.source or None, field="keypoints", expected="observed at least once")
                out[n, k] = self.keypoints[n, valid[-1], k]
        return out

    def resample(self, rows: int) -> np.ndarray:
        """Keypoints ``[N, rows, K, 3]`` at ``rows`` evenly spaced times from each demo's first to last
        timestamp (linear interpolation; a sample next to a missing one stays missing)."""
        N, T, K, _ = self.keypoints.shape
        if rows == T and np.allclose(np.diff(self.timestamps, 2, axis=1) if T > 2 else 0, 0):
            return self.keypoints.copy()
        out = np.empty((N, rows, K, 3))
        for n in range(N):
            ts = self.timestamps[n]
            tq = np.linspace(ts[0], ts[-1], rows)
            i = np.clip(np.searchsorted(ts, tq, side="right") - 1, 0, T - 2)
            w = ((tq - ts[i]) / (ts[i + 1] - ts[i]))[:, None, None]
            a, b = self.keypoints[n, i], self.keypoints[n, i + 1]
            v = a * (1 - w) + b * w
            v = np.where((w <= 1e-12) & ~np.isnan(a), a, v)
            v = np.where((w >= 1 - 1e-12) & ~np.isnan(b), b, v)
            out[n] = v
        return out


def load_keypoint_file(path: str | Path) -> DemoSet:
    """A plain keypoint file (.npz): ``keypoints [N, T, K, 3]`` required; optional ``timestamps``
    ([T] or [N, T], seconds; default 0..T-1), ``goals [N, K, 3]``, ``q0`` ([n] or [N, n])."""
    p = Path(path)
    if not p.is_file():
        raise InputError("demo file not found", file=p, field="demos", expected="a .npz keypoint file")
    try:
        data = np.load(p, allow_pickle=False)
    except Exception as e:
        raise InputError(f"cannot read ({type(e).__name__})", file=p, field="demos", expected="a .npz file") from None
    if "keypoints" not in data:
        raise InputError(f"no 'keypoints' array (has {sorted(data.files)})", file=p, field="keypoints",
                         expected="keypoints [N, T, K, 3]")
    kp = data["keypoints"]
    if kp.ndim == 3:
        kp = kp[None]
    ts: Any = data["timestamps"] if "timestamps" in data else np.arange(kp.shape[1], dtype=float)
    names = [str(s) for s in data["names"]] if "names" in data else []
    return DemoSet(kp, ts, q0=data["q0"] if "q0" in data else None, goals=data["goals"] if "goals" in data else None,
                   names=names, source=str(p))
