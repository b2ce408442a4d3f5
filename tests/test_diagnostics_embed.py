"""Embedding wrapper: methods, seeds, PCA pre-reduction, placing new points."""
from __future__ import annotations

import numpy as np
import pytest

from robot_irl.diagnostics.embed import EmbedConfig, Embedder, fit_inits
from robot_irl.diagnostics.synthetic import clustered_points
from robot_irl.errors import InputError, UnknownNameError


@pytest.fixture(scope="module")
def points() -> tuple[np.ndarray, np.ndarray]:
    return clustered_points(300, 60, n_groups=2, per_group=3, seed=1)


def test_tsne_is_deterministic_for_a_seed(points) -> None:
    X = points[0][:150]
    a = Embedder(EmbedConfig(seed=5, n_jobs=1)).fit(X)
    b = Embedder(EmbedConfig(seed=5, n_jobs=1)).fit(X)
    c = Embedder(EmbedConfig(seed=6, n_jobs=1, init="random")).fit(X)
    assert a.shape == (150, 2)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_reduces_to_pca_dims_first_and_keeps_low_dimensional_input(points) -> None:
    X = points[0]
    e = Embedder(EmbedConfig(pca_dims=50))
    assert e.reduce(X).shape == (300, 50)
    assert e.reduce(X[:5]).shape == (5, 50)  # the fitted projection is reused for new points
    np.testing.assert_array_equal(Embedder(EmbedConfig(pca_dims=60)).reduce(X), X)


def test_tsne_transform_places_new_points_in_their_clusters(points) -> None:
    X, y = points
    e = Embedder(EmbedConfig(seed=0))
    Y = e.fit(X[:250])
    Y_new = e.transform(X[250:])
    assert Y_new.shape == (50, 2)
    nearest = np.argmin(((Y_new[:, None, :] - Y[None, :, :]) ** 2).sum(-1), axis=1)
    assert np.mean(y[:250][nearest] == y[250:]) >= 0.9


def test_pca_method_transform_matches_fit(points) -> None:
    X = points[0]
    e = Embedder(EmbedConfig(method="pca"))
    Y = e.fit(X)
    np.testing.assert_allclose(e.transform(X[:10]), Y[:10], atol=1e-9)
    assert set(e.timings) == {"reduce_s", "embed_s"}


def test_sklearn_tsne_runs_but_cannot_transform(points) -> None:
    X = points[0][:120]
    e = Embedder(EmbedConfig(method="sklearn-tsne", seed=0, n_jobs=1))
    Y = e.fit(X)
    np.testing.assert_array_equal(Y, Embedder(EmbedConfig(method="sklearn-tsne", seed=0, n_jobs=1)).fit(X))
    with pytest.raises(InputError, match="cannot place new points"):
        e.transform(X[:3])


def test_transform_before_fit_raises(points) -> None:
    with pytest.raises(InputError, match="before fit"):
        Embedder().transform(points[0][:3])


@pytest.mark.slow
def test_umap_with_pca_init_is_seeded_and_transforms(points) -> None:
    X, y = points
    e = Embedder(EmbedConfig(method="umap", seed=0))
    Y = e.fit(X[:250])
    np.testing.assert_array_equal(Y, Embedder(EmbedConfig(method="umap", seed=0)).fit(X[:250]))
    assert e.transform(X[250:]).shape == (50, 2)


def test_fit_inits_shares_the_graph_and_returns_both(points) -> None:
    X = points[0][:150]
    out = fit_inits(X, EmbedConfig(seed=0, n_jobs=1))
    assert list(out) == ["tsne_pca", "tsne_random"]
    (a, ta), (b, tb) = out["tsne_pca"], out["tsne_random"]
    assert ta["shared_s"] == tb["shared_s"] and not np.allclose(a, b)
    # Same graph, same start: the shared path reproduces a plain fit exactly.
    np.testing.assert_array_equal(a, Embedder(EmbedConfig(seed=0, n_jobs=1)).fit(X))
    with pytest.raises(InputError, match="no initialisation"):
        fit_inits(X, EmbedConfig(method="pca"))


def test_config_rejects_unknown_names_and_bad_numbers() -> None:
    with pytest.raises(UnknownNameError, match="tsne"):
        EmbedConfig(method="isomap")
    with pytest.raises(UnknownNameError, match="random"):
        EmbedConfig(init="spectral")
    with pytest.raises(InputError, match="perplexity"):
        EmbedConfig(perplexity=0)
    with pytest.raises(InputError, match="n_jobs"):
        EmbedConfig(n_jobs=0)
