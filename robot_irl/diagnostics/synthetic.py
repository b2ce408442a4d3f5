"""Clustered points with known global structure, for the benchmark and the init-comparison tests.

Clusters sit in super-clusters, so centroid distances vary a lot and a map can be checked for
keeping them (with independent random centres all distances would be about equal).
"""
from __future__ import annotations

import numpy as np


def clustered_points(n: int = 20000, d: int = 50, *, n_groups: int = 4, per_group: int = 5,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``X [n, d]`` and cluster ids ``[n]``.

    Per coordinate, group centres have std 8.5, clusters 3.5 around their group, points 1 around
    their cluster: in 50-D groups lie ~85 apart, clusters of a group ~35, points of a cluster ~10.
    """
    rng = np.random.default_rng(seed)
    groups = rng.normal(scale=8.5, size=(n_groups, 1, d))
    centres = (groups + rng.normal(scale=3.5, size=(n_groups, per_group, d))).reshape(-1, d)
    y = rng.integers(0, centres.shape[0], size=n)
    return centres[y] + rng.normal(size=(n, d)), y
