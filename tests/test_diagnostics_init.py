"""PCA initialisation keeps global structure better than random initialisation (issue 8 acceptance).

Full default openTSNE runs (no shortened optimisation: that would change what is claimed), but one
neighbour graph per data set serves every run: PCA init once (given the graph nothing random is
left in it) and random init from each of three seeds, averaged; and only the global measures the
claim is about are computed (``global_measures``: no all-pairs neighbour ranks).
"""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from robot_irl.diagnostics.embed import EmbedConfig, Embedder, opentsne, opentsne_affinities
from robot_irl.diagnostics.metrics import global_measures
from robot_irl.diagnostics.synthetic import clustered_points

SEEDS = (0, 1, 2)


def _assert_pca_beats_random(m: dict[str, float]) -> None:
    assert m["tsne_pca.spearman_pdist"] > m["tsne_random.spearman_pdist"], m
    assert m["tsne_pca.centroid_spearman.y"] > m["tsne_random.centroid_spearman.y"], m


def _one_graph_figures(X: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """One neighbour graph; PCA init once (given the graph it has nothing random left), random init
    from each seed; random init's figures averaged over the seeds."""
    config = EmbedConfig(seed=SEEDS[0])
    Xr = Embedder(config).reduce(X)
    affinities = opentsne_affinities(Xr, config)
    maps = {"tsne_pca": opentsne(config, len(Xr)).fit(Xr, affinities=affinities, initialization="pca")}
    for seed in SEEDS:
        c = EmbedConfig(seed=seed, init="random")
        maps[f"random{seed}"] = opentsne(c, len(Xr)).fit(Xr, affinities=affinities, initialization="random")
    figures = global_measures(X, {k: np.asarray(v) for k, v in maps.items()}, {"y": y}, seed=SEEDS[0])
    out = {k: v for k, v in figures.items() if k.startswith("tsne_pca.")}
    for key in ("spearman_pdist", "centroid_spearman.y"):
        out[f"tsne_random.{key}"] = float(np.mean([figures[f"random{s}.{key}"] for s in SEEDS]))
    return out


@pytest.mark.slow
def test_pca_init_beats_random_on_digits() -> None:
    digits = load_digits()
    _assert_pca_beats_random(_one_graph_figures(digits.data, digits.target))


@pytest.mark.slow
@pytest.mark.timeout(1800)  # four full 20k-point openTSNE runs on one graph
def test_pca_init_beats_random_on_20k_clusters() -> None:
    X, y = clustered_points(20000, 50, seed=0)
    _assert_pca_beats_random(_one_graph_figures(X, y))
