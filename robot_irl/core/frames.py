"""Rigid transforms between frames (4x4 homogeneous, ``p_a = T_a_b · p_b``), shared by every stage
that moves points between the camera, world (reference marker) and robot base frames.

Why in ``core``: extraction (``keypoints``) and learning (``irl``) both move points between frames,
and ``keypoints`` imports ``irl``; the one transform they share lives below both."""
from __future__ import annotations

import numpy as np


def transform(T: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Apply a 4×4 transform ``T`` to points ``p [..., 3]``."""
    T = np.asarray(T, np.float64)
    return np.asarray(p, np.float64) @ T[:3, :3].T + T[:3, 3]
