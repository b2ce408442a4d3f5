"""Index: exact and approximate search against brute force, filters, growth, persistence, errors."""
from __future__ import annotations

import numpy as np
import pytest

from robot_irl.errors import InputError
from robot_irl.retrieval.index import EmbeddingIndex, ModelMismatchError

D = 64


def clustered(n: int, seed: int, clusters: int = 50) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((clusters, D)).astype(np.float32)
    x = c[rng.integers(0, clusters, n)] + 0.8 * rng.standard_normal((n, D)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute(x: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-(q @ x.T), axis=1)[:, :k]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


def make(x: np.ndarray, **kw) -> EmbeddingIndex:
    idx = EmbeddingIndex("model-a", D, **kw)
    idx.add(x, [f"ep{i // 10}" for i in range(len(x))], np.arange(len(x)) % 10)
    return idx


def data(n: int, nq: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n rows and nq fresh queries from the same mixture."""
    x = clustered(n + nq, seed)
    return x[:n], x[n:]


def test_exact_matches_brute_force():
    x, q = data(3000, 40, 0)
    idx = make(x)
    assert idx.ann_info.kind == "exact"
    _, rows = idx.search(q, 10)
    assert recall(rows, brute(x, q, 10)) >= 0.99  # fp16 storage may swap near-ties
    _, one = idx.search(q[0], 10)
    assert one.shape == (1, 10) and recall(one, brute(x, q[:1], 10)) >= 0.9


@pytest.mark.parametrize("backend", ["auto", "hnsw"])
def test_approximate_recall_against_exact(backend):
    x, q = data(6000, 100, 2)
    idx = make(x, backend=backend, exact_max=1000)
    assert idx.ann_info.kind == ("ivf" if backend == "auto" else "hnsw")
    if backend == "auto":
        assert idx.ann_info.nlist == min(round(4 * np.sqrt(6000)), 6000 // 39)  # k-means needs 39 rows a list
    assert idx.ann_info.tune_recall10 >= 0.95
    _, rows = idx.search(q, 10)
    assert recall(rows, brute(x, q, 10)) >= 0.9


def test_incremental_add_switches_to_ivf_and_keeps_finding_new_rows():
    x = clustered(2400, 4)
    idx = EmbeddingIndex("model-a", D, exact_max=1000)
    idx.add(x[:800], "first", np.arange(800))
    assert idx.ann_info.kind == "exact"
    idx.add(x[800:1600], "second", np.arange(800))
    assert idx.ann_info.kind == "ivf" and idx.ann_info.built_for == 1600
    idx.add(x[1600:], "third", np.arange(800))  # below the growth limit: added, not rebuilt
    assert idx.ann_info.built_for == 1600 and len(idx) == 2400
    _, rows = idx.search(x[2000], 1)
    assert rows[0, 0] == 2000 and idx.episode_ids[rows[0, 0]] == "third"


def test_mask_restricts_rows_on_every_backend():
    x, q = data(3000, 10, 5)
    mask = np.zeros(3000, bool)
    mask[::7] = True
    for kw in ({}, {"exact_max": 500}):
        idx = make(x, **kw)
        for m in (mask, ~mask):
            _, rows = idx.search(q, 5, mask=m)
            assert m[rows[rows >= 0]].all()
    _, rows = make(x).search(q, 5, mask=np.zeros(3000, bool))
    assert (rows == -1).all()


def test_save_load_roundtrip_and_model_check(tmp_path):
    x, q = data(3000, 20, 7)
    for kw in ({}, {"exact_max": 1000}):
        idx = make(x, **kw)
        idx.add(x[:2], "text-ep", [-1, -1], kinds="text", times=[np.nan, np.nan])
        path = idx.save(tmp_path / str(len(kw)))
        back = EmbeddingIndex.load(path, model_id="model-a")
        assert len(back) == len(idx) and back.ann_info.kind == idx.ann_info.kind
        np.testing.assert_array_equal(back.search(q, 10)[1], idx.search(q, 10)[1])
        assert back.episode_ids[-1] == "text-ep" and back.kinds[-1] == 1 and back.frames[5] == 5
        with pytest.raises(ModelMismatchError, match="built with model model-a.*model-b"):
            EmbeddingIndex.load(path, model_id="model-b")
    with pytest.raises(ModelMismatchError):
        idx.add(x[:1], "ep", [0], model_id="model-b")


def test_bad_inputs(tmp_path):
    idx = EmbeddingIndex("model-a", D)
    with pytest.raises(InputError, match="index is empty"):
        idx.search(np.ones(D), 3)
    with pytest.raises(InputError, match="64-d"):
        idx.add(np.ones((2, 32)), "ep", [0, 1])
    with pytest.raises(InputError, match="all-zero"):
        idx.add(np.zeros((1, D)), "ep", [0])
    with pytest.raises(InputError, match="metadata lengths"):
        idx.add(np.ones((2, D)), "ep", [0])
    with pytest.raises(InputError, match="unknown row kind"):
        idx.add(np.ones((1, D)), "ep", [0], kinds="audio")
    with pytest.raises(InputError, match="unknown index backend"):
        EmbeddingIndex("m", D, backend="annoy")
    with pytest.raises(InputError, match="no index here"):
        EmbeddingIndex.load(tmp_path / "nothing")
    idx.add(np.ones((3, D)), "ep", [0, 1, 2])
    path = idx.save(tmp_path / "ix")
    (path / "vectors.npy").write_bytes(b"garbage")
    with pytest.raises(InputError, match="corrupt index data"):
        EmbeddingIndex.load(path)
