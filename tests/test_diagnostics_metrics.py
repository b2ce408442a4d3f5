"""Trust measures against independent computations on small cases."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist, pdist
from scipy.stats import spearmanr
from sklearn.manifold import trustworthiness

from robot_irl.diagnostics.metrics import (
    knn_2d,
    knn_label_accuracy,
    sample_indices,
    spearman,
    trust_measures,
)
from robot_irl.errors import InputError


def _brute_knn(Z: np.ndarray, k: int) -> list[set[int]]:
    d = cdist(Z, Z)
    np.fill_diagonal(d, np.inf)
    return [set(np.argsort(row, kind="stable")[:k].tolist()) for row in d]


@pytest.fixture()
def case() -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(150, 12))
    X[:50] += 4.0
    X[50:100, 0] -= 5.0
    # One map that keeps the data's first two coordinates, one that scrambles half the points.
    Y_good = X[:, :2] + 0.05 * rng.normal(size=(150, 2))
    Y_bad = Y_good.copy()
    Y_bad[::2] = rng.normal(size=(75, 2)) * 3
    y = np.repeat(np.array(["a", "b", "c"]), 50)
    return X, {"good": Y_good, "bad": Y_bad}, y


@pytest.mark.parametrize("k", [5, 10])
def test_trustworthiness_matches_sklearn(case, k: int) -> None:
    X, maps, y = case
    m = trust_measures(X, maps, {"y": y}, k=k)
    for name, Y in maps.items():
        assert m[f"{name}.trust{k}"] == pytest.approx(trustworthiness(X, Y, n_neighbors=k), abs=1e-12)
    assert m[f"good.trust{k}"] > m[f"bad.trust{k}"]


def test_trustworthiness_matches_sklearn_across_row_chunks(case, monkeypatch) -> None:
    import robot_irl.diagnostics.metrics as metrics
    monkeypatch.setattr(metrics, "_CHUNK_ELEMENTS", 7 * 150 * 10)  # 7 rows per chunk, last one partial
    X, maps, _ = case
    m = metrics.trust_measures(X, maps)
    assert m["bad.trust10"] == pytest.approx(trustworthiness(X, maps["bad"], n_neighbors=10), abs=1e-12)


def test_knn_kept_matches_brute_force(case) -> None:
    X, maps, _ = case
    m = trust_measures(X, maps)
    orig = _brute_knn(X, 10)
    for name, Y in maps.items():
        emb = _brute_knn(Y, 10)
        expected = np.mean([len(a & b) / 10 for a, b in zip(orig, emb)])
        assert m[f"{name}.knn_kept10"] == pytest.approx(expected, abs=1e-12)


def test_spearman_pdist_matches_scipy_on_the_same_sample(case) -> None:
    X, maps, _ = case
    m = trust_measures(X, maps, n_sample=60, seed=4)
    idx = sample_indices(150, 60, 4)
    assert idx.size == 60 and np.unique(idx).size == 60
    for name, Y in maps.items():
        rho = spearmanr(pdist(X[idx]), pdist(Y[idx])).statistic
        assert m[f"{name}.spearman_pdist"] == pytest.approx(rho, abs=1e-12)


def test_spearman_with_ties_matches_scipy() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 5, 200).astype(float), rng.integers(0, 7, 200).astype(float)
    assert spearman(a, b) == pytest.approx(spearmanr(a, b).statistic, abs=1e-12)


def test_centroid_spearman_matches_scipy(case) -> None:
    X, maps, y = case
    y4 = y.copy()
    y4[:20] = "d"
    m = trust_measures(X, maps, {"y": y4})
    classes = np.unique(y4)
    for name, Y in maps.items():
        cx = np.stack([X[y4 == c].mean(axis=0) for c in classes])
        cy = np.stack([Y[y4 == c].mean(axis=0) for c in classes])
        rho = spearmanr(pdist(cx), pdist(cy)).statistic
        assert m[f"{name}.centroid_spearman.y"] == pytest.approx(rho, abs=1e-12)


def test_centroid_spearman_needs_three_classes_and_skips_continuous_labels(case) -> None:
    X, maps, _ = case
    m = trust_measures(X, maps, {"two": np.arange(150) % 2, "t": np.linspace(0, 1, 150)})
    assert not any("centroid_spearman" in key for key in m)
    assert "good.knn_acc10.two" in m and not any(key.endswith(".t") for key in m)


def _brute_label_accuracy(Z: np.ndarray, y: np.ndarray, k: int) -> float:
    d = cdist(Z, Z)
    np.fill_diagonal(d, np.inf)
    hits = 0
    for i in range(len(Z)):
        nn = np.argsort(d[i], kind="stable")[:k]
        counts: dict[str, int] = {}
        for j in nn:
            counts[y[j]] = counts.get(y[j], 0) + 1
        best = max(counts.values())
        pred = next(y[j] for j in nn if counts[y[j]] == best)  # ties: nearest tied label
        hits += pred == y[i]
    return hits / len(Z)


def test_knn_label_accuracy_matches_brute_force(case) -> None:
    X, maps, y = case
    rng = np.random.default_rng(1)
    noisy = np.where(rng.random(150) < 0.3, rng.choice(["a", "b", "c", "d"], 150), y)
    m = trust_measures(X, maps, {"y": noisy})
    assert m["original.knn_acc10.y"] == pytest.approx(_brute_label_accuracy(X, noisy, 10))
    for name, Y in maps.items():
        assert m[f"{name}.knn_acc10.y"] == pytest.approx(_brute_label_accuracy(Y, noisy, 10))


def test_knn_label_accuracy_tie_goes_to_nearest() -> None:
    y = np.array([0, 1, 0, 1])
    # Every row is a 1:1 tie, so the nearest neighbour decides: rows 1 and 2 right, 0 and 3 wrong.
    neighbours = np.array([[1, 2], [3, 0], [0, 1], [2, 1]])
    assert knn_label_accuracy(neighbours, y) == 0.5
    neighbours[0] = [2, 1]
    assert knn_label_accuracy(neighbours, y) == 0.75


def test_knn_2d_excludes_self_even_with_duplicates() -> None:
    Y = np.zeros((6, 2))
    Y[3:] = 1.0
    nn = knn_2d(Y, 2)
    assert nn.shape == (6, 2)
    for i, row in enumerate(nn):
        assert i not in row
        assert set(row) <= ({0, 1, 2} if i < 3 else {3, 4, 5})


def test_too_few_points_and_mismatched_maps_raise(case) -> None:
    X, maps, _ = case
    with pytest.raises(InputError, match="too few"):
        trust_measures(X[:11], {"m": maps["good"][:11]}, k=10)
    with pytest.raises(InputError, match="embeddings.m"):
        trust_measures(X, {"m": maps["good"][:100]})
