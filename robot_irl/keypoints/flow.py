"""Lucas–Kanade optical flow that bridges frames where a detector misses.

Every detection re-seeds its keypoint's points (a marker's four corners, a blob's centre), so
flow never drifts for long: it only carries a keypoint across a gap, for at most ``max_gap``
frames. Each step is checked forward–backward per point: a point tracked to the new frame and
back must land within ``fb_max`` pixels of where it started. A marker's corners that fail drop
out and the two or more that pass move its quad rigidly (a similarity); with fewer, or a blob's
point failing, the keypoint is a miss (an occluder or a blur streak would otherwise drag it off
and add an outlier). The pipeline then checks the carried marker against its printed pattern.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from robot_irl.keypoints.detectors import Detection, quad_centre
from robot_irl.keypoints.track import SRC_FLOW


@dataclass
class _Seed:
    points: np.ndarray        # [P, 2] float32
    confidence: float
    age: int                  # frames since the last detection
    radius: float | None
    is_quad: bool


class FlowBridge:
    """Carry keypoints across missed frames. Call :meth:`step` once per frame, in order."""

    def __init__(self, *, max_gap: int = 15, fb_max: float = 0.7, win: int = 21, levels: int = 3,
                 decay: float = 0.9) -> None:
        self.max_gap, self.fb_max, self.win, self.levels, self.decay = max_gap, fb_max, win, levels, decay
        self._prev: np.ndarray | None = None
        self._seeds: dict[str, _Seed] = {}
        self.rejected = 0     # forward–backward failures (would-be outliers)
        self._criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01)

    def live(self, name: str) -> bool:
        return name in self._seeds

    def drop(self, name: str) -> None:
        """End ``name``'s bridge (what it carries no longer looks like the marker)."""
        self._seeds.pop(name, None)

    def move(self, name: str, points: np.ndarray) -> None:
        """Carry on from corrected points (e.g. the marker's pattern aligned where flow left it)."""
        seed = self._seeds[name]
        self._seeds[name] = _Seed(np.asarray(points, np.float32).reshape(-1, 2), seed.confidence, seed.age,
                                  seed.radius, seed.is_quad)

    def points(self, name: str) -> np.ndarray:
        """Where ``name``'s points were last seen or carried ([P, 2] pixels)."""
        return self._seeds[name].points.astype(np.float64)

    def step(self, gray: np.ndarray, detections: dict[str, Detection], wanted: tuple[str, ...]) -> dict[str, Detection]:
        """Re-seed from this frame's detections and return flow estimates for the ``wanted``
        keypoints that were not detected but are still within reach of a recent one."""
        out: dict[str, Detection] = {}
        if self._prev is not None:
            for name in wanted:
                if name in detections or name not in self._seeds:
                    continue
                d = self._track(name, self._prev, gray)
                if d is not None:
                    out[name] = d
        for name, d in detections.items():
            pts = d.corners if d.corners is not None else d.uv[None]
            self._seeds[name] = _Seed(np.asarray(pts, np.float32).reshape(-1, 2), d.confidence, 0, d.radius,
                                      d.corners is not None)
        for name in [n for n in self._seeds if n not in detections and n not in out]:
            del self._seeds[name]
        self._prev = gray
        return out

    def _track(self, name: str, prev: np.ndarray, cur: np.ndarray) -> Detection | None:
        seed = self._seeds[name]
        if seed.age >= self.max_gap:
            return None
        win = self.win if seed.radius is None else max(self.win, int(2.5 * seed.radius) | 1)
        p0 = seed.points.reshape(-1, 1, 2)
        p1, st1, _ = cv2.calcOpticalFlowPyrLK(prev, cur, p0, None, winSize=(win, win), maxLevel=self.levels,
                                              criteria=self._criteria)
        if p1 is None:
            self.rejected += 1
            return None
        p0b, st2, _ = cv2.calcOpticalFlowPyrLK(cur, prev, p1, None, winSize=(win, win), maxLevel=self.levels,
                                               criteria=self._criteria)
        if p0b is None:
            self.rejected += 1
            return None
        fb_each = np.linalg.norm((p0b - p0).reshape(-1, 2), axis=1)
        good = st1.ravel().astype(bool) & st2.ravel().astype(bool) & (fb_each <= self.fb_max)
        if good.all():
            pts = p1.reshape(-1, 2).astype(np.float64)
        elif seed.is_quad and good.sum() >= 2:
            # a corner that fails (blur streak, occluder) drops out; the others move the quad rigidly
            M, _ = cv2.estimateAffinePartial2D(p0.reshape(-1, 2)[good], p1.reshape(-1, 2)[good])
            if M is None:
                self.rejected += 1
                return None
            pts = (p0.reshape(-1, 2).astype(np.float64) @ M[:, :2].T) + M[:, 2]
        else:
            self.rejected += 1
            return None
        fb = float(fb_each[good].max())
        h, w = cur.shape[:2]
        if not ((pts >= 0).all() and (pts[:, 0] < w).all() and (pts[:, 1] < h).all()):
            return None
        conf = seed.confidence * self.decay * float(np.exp(-fb / self.fb_max))
        self._seeds[name] = _Seed(pts.astype(np.float32), conf, seed.age + 1, seed.radius, seed.is_quad)
        if seed.is_quad:
            return Detection(quad_centre(pts), conf, SRC_FLOW, corners=pts)
        return Detection(pts[0], conf, SRC_FLOW, radius=seed.radius)
