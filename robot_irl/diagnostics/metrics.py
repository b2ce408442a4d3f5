"""Numbers that say how far to trust a 2-D picture of a latent space.

Trustworthiness alone barely separates methods (0.98-0.99 for all of them on our data, random
init included), so every embedding gets four measures (issue 8):

* ``trust{k}``          trustworthiness: are the map's neighbours true neighbours? (local)
* ``knn_kept{k}``       fraction of each point's k nearest neighbours that the map keeps (local)
* ``spearman_pdist``    Spearman correlation of pairwise distances on a sample (global)
* ``centroid_spearman.<label>``  Spearman correlation of class-centroid distances (global)

and, per categorical label, ``knn_acc{k}.<label>``: leave-one-out k-NN label accuracy in the map,
against ``original.knn_acc{k}.<label>`` in the original space (how well labels separate).

The original space is searched exactly, in row chunks, so 20k points need no N x N matrix.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy.spatial.distance import pdist
from scipy.stats import rankdata
from sklearn.neighbors import KDTree

from robot_irl.diagnostics.latents import is_categorical
from robot_irl.errors import InputError

_CHUNK_ELEMENTS = 2 ** 24  # entries of the chunk x N x k comparison held at once (16 MB of bools)


def sample_indices(n: int, n_sample: int, seed: int) -> np.ndarray:
    """Rows used for the pairwise-distance correlation: all when ``n <= n_sample``."""
    if n <= n_sample:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=n_sample, replace=False))


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho as the Pearson correlation of average ranks."""
    ra, rb = rankdata(a), rankdata(b)
    ra -= ra.mean()
    rb -= rb.mean()
    denom = np.sqrt((ra @ ra) * (rb @ rb))
    return float(ra @ rb / denom) if denom > 0 else float("nan")


def knn_2d(Y: np.ndarray, k: int) -> np.ndarray:
    """Exact k nearest neighbours (self excluded) of low-dimensional points via a KD-tree."""
    n = Y.shape[0]
    idx = KDTree(Y).query(Y, k=k + 1, return_distance=False)
    is_self = idx == np.arange(n)[:, None]
    # When duplicates hide a point's own index, drop the farthest candidate instead.
    is_self[~is_self.any(axis=1), -1] = True
    return idx[~is_self].reshape(n, k)


def knn_label_accuracy(neighbours: np.ndarray, y: np.ndarray) -> float:
    """Leave-one-out majority vote of the neighbours' labels; ties go to the nearest tied label."""
    _, codes = np.unique(y, return_inverse=True)
    lab = codes[neighbours]                                     # [N, k]
    votes = (lab[:, :, None] == lab[:, None, :]).sum(axis=2)    # votes for each neighbour's label
    first_best = np.argmax(votes == votes.max(axis=1, keepdims=True), axis=1)
    pred = lab[np.arange(lab.shape[0]), first_best]
    return float(np.mean(pred == codes))


def _centroid_spearman(X: np.ndarray, Y: np.ndarray, y: np.ndarray) -> float | None:
    classes, codes = np.unique(y, return_inverse=True)
    if classes.size < 3:  # two centroids give one distance: nothing to correlate
        return None
    counts = np.bincount(codes).astype(float)[:, None]
    cx = np.zeros((classes.size, X.shape[1]))
    cy = np.zeros((classes.size, Y.shape[1]))
    np.add.at(cx, codes, X)
    np.add.at(cy, codes, Y)
    return spearman(pdist(cx / counts), pdist(cy / counts))


def trust_measures(X: np.ndarray, embeddings: Mapping[str, np.ndarray],
                   labels: Mapping[str, np.ndarray] | None = None, *, k: int = 10,
                   n_sample: int = 1000, seed: int = 0) -> dict[str, float]:
    """All measures for several maps of the same ``X`` in one pass over ``X``.

    Returns flat figures ``<map name>.<measure>`` plus ``original.knn_acc{k}.<label>``.
    """
    labels = dict(labels or {})
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    if n <= k + 1:
        raise InputError(f"{n} points are too few for {k}-nearest-neighbour measures", field="X",
                         expected=f"more than {k + 1} points")
    for name, Y in embeddings.items():
        if Y.shape[0] != n:
            raise InputError(f"map has {Y.shape[0]} points, latents have {n}", field=f"embeddings.{name}",
                             expected="one map point per latent row")

    emb_nn = {name: knn_2d(np.asarray(Y, dtype=np.float64), k) for name, Y in embeddings.items()}
    orig_nn = np.empty((n, k), dtype=np.int64)
    penalty = dict.fromkeys(embeddings, 0.0)
    sq = np.einsum("ij,ij->i", X, X)
    chunk = max(1, _CHUNK_ELEMENTS // (n * k))
    for r0 in range(0, n, chunk):
        rows = np.arange(r0, min(r0 + chunk, n))
        d2 = sq[rows, None] + sq[None, :] - 2.0 * (X[rows] @ X.T)
        d2[np.arange(rows.size), rows] = np.inf
        part = np.argpartition(d2, k - 1, axis=1)[:, :k]
        order = np.argsort(np.take_along_axis(d2, part, axis=1), axis=1, kind="stable")
        orig_nn[rows] = np.take_along_axis(part, order, axis=1)
        for name, nn in emb_nn.items():
            thr = np.take_along_axis(d2, nn[rows], axis=1)               # [c, k]
            rank = (d2[:, :, None] < thr[:, None, :]).sum(axis=1) + 1   # 1 = nearest
            penalty[name] += float(np.clip(rank - k, 0, None).sum())

    out: dict[str, float] = {}
    categorical = {lab: v for lab, v in labels.items() if is_categorical(v)}
    for lab, y in categorical.items():
        out[f"original.knn_acc{k}.{lab}"] = knn_label_accuracy(orig_nn, y)
    norm = 2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0))
    for name, Y in embeddings.items():
        nn = emb_nn[name]
        out[f"{name}.trust{k}"] = 1.0 - norm * penalty[name]
        kept = (nn[:, :, None] == orig_nn[:, None, :]).any(axis=2).sum()
        out[f"{name}.knn_kept{k}"] = float(kept) / (n * k)
        for lab, y in categorical.items():
            out[f"{name}.knn_acc{k}.{lab}"] = knn_label_accuracy(nn, y)
    out.update(global_measures(X, embeddings, labels, n_sample=n_sample, seed=seed))
    return out


def global_measures(X: np.ndarray, embeddings: Mapping[str, np.ndarray],
                    labels: Mapping[str, np.ndarray] | None = None, *, n_sample: int = 1000,
                    seed: int = 0) -> dict[str, float]:
    """The global-structure measures alone (``<map>.spearman_pdist`` over a sample of ``n_sample``
    points, ``<map>.centroid_spearman.<label>`` per categorical label): what initialisation changes.
    Why apart from :func:`trust_measures`: they need no neighbour ranks over all ``n``² pairs, so on
    20k points they take a second rather than most of a minute."""
    X = np.asarray(X, dtype=np.float64)
    sample = sample_indices(X.shape[0], n_sample, seed)
    d_orig = pdist(X[sample])
    categorical = {lab: v for lab, v in dict(labels or {}).items() if is_categorical(v)}
    out: dict[str, float] = {}
    for name, Y in embeddings.items():
        Y = np.asarray(Y, dtype=np.float64)
        out[f"{name}.spearman_pdist"] = spearman(d_orig, pdist(Y[sample]))
        for lab, y in categorical.items():
            rho = _centroid_spearman(X, Y, y)
            if rho is not None:
                out[f"{name}.centroid_spearman.{lab}"] = rho
    return out
