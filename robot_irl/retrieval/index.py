"""Embedding index: normalised fp16 vectors + row metadata, exact or approximate inner-product search.

Rows are frames (keyframes) or task texts of episodes, each with the model id that embedded it.
The fp16 matrix is the source of truth (it is what gets saved); an approximate structure (faiss
IVF or HNSW) is derived from it once the index outgrows exact search, and rebuilt when it has
grown well past the size it was tuned for. Exact search is a torch fp16 matrix-vector product:
at 20k x 512 it answers a single query in about 0.5 ms on two idle cores, faster than faiss Flat.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import torch

from robot_irl.core.io import atomic_write_json
from robot_irl.errors import InputError

KINDS = ("keyframe", "text")
BACKENDS = ("auto", "exact", "ivf", "hnsw")
EXACT_MAX = 20_000  # rows: above this the automatic index switches to IVF
FORMAT_VERSION = 1
_REBUILD_GROWTH = 4.0  # rebuild an ANN structure when the index is this many times its build size


class ModelMismatchError(InputError):
    """Vectors from one model compared with another's: the scores would be meaningless."""


@dataclass
class AnnInfo:
    """What the approximate structure is and how it was tuned (None kind = exact search)."""

    kind: str = "exact"
    built_for: int = 0  # row count at build time
    nlist: int = 0
    nprobe: int = 0
    ef_search: int = 0
    tune_recall10: float = 1.0
    params: dict[str, Any] = field(default_factory=dict)


def _normalise(x: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2:
        raise InputError(f"{what} has shape {x.shape}", field=what, expected="[N, D] vectors")
    if not np.isfinite(x).all():
        raise InputError(f"{what} contains NaN/inf", field=what, expected="finite embeddings")
    n = np.linalg.norm(x, axis=1, keepdims=True)
    if (n == 0).any():
        raise InputError(f"{what} contains an all-zero vector", field=what, expected="non-zero embeddings")
    return x / n


class EmbeddingIndex:
    """Vectors of one model, searchable by inner product (= cosine, they are normalised)."""

    def __init__(self, model_id: str, dim: int, *, backend: str = "auto", exact_max: int = EXACT_MAX,
                 target_recall: float = 0.95, seed: int = 0) -> None:
        if backend not in BACKENDS:
            raise InputError(f"unknown index backend '{backend}'", field="backend", expected=" | ".join(BACKENDS))
        self.model_id = model_id
        self.dim = int(dim)
        self.backend = backend
        self.exact_max = int(exact_max)
        self.target_recall = float(target_recall)
        self.seed = seed
        self._vec = np.empty((0, self.dim), np.float16)
        self._n = 0
        self._episode_codes = np.empty(0, np.int32)
        self._frames = np.empty(0, np.int32)
        self._times = np.empty(0, np.float64)
        self._kinds = np.empty(0, np.int8)
        self._episode_names: list[str] = []
        self._episode_lookup: dict[str, int] = {}
        self._ann: faiss.Index | None = None
        self.ann_info = AnnInfo()

    # ---- contents --------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._n

    @property
    def vectors(self) -> np.ndarray:
        """fp16 [N, D] view (read-only by convention)."""
        return self._vec[: self._n]

    @property
    def episode_ids(self) -> np.ndarray:
        return np.asarray(self._episode_names, dtype=object)[self._episode_codes[: self._n]]

    def episode_codes(self) -> np.ndarray:
        return self._episode_codes[: self._n]

    def episode_name(self, code: int) -> str:
        return self._episode_names[code]

    @property
    def frames(self) -> np.ndarray:
        return self._frames[: self._n]

    @property
    def times(self) -> np.ndarray:
        return self._times[: self._n]

    @property
    def kinds(self) -> np.ndarray:
        """int8 codes into KINDS."""
        return self._kinds[: self._n]

    def episodes(self) -> list[str]:
        return list(self._episode_names)

    def check_model(self, model_id: str) -> None:
        if model_id != self.model_id:
            raise ModelMismatchError(
                f"index was built with model {self.model_id}, the query encoder is {model_id}",
                field="model_id", expected="the same model for index and queries (rebuild the index after a model change)")

    def add(self, vectors: np.ndarray, episode_ids: Sequence[str] | str, frames: Sequence[int] | np.ndarray,
            *, times: Sequence[float] | np.ndarray | None = None, kinds: Sequence[str] | str = "keyframe",
            model_id: str | None = None) -> None:
        """Append rows; they become searchable at once (the ANN structure is updated or rebuilt)."""
        if model_id is not None:
            self.check_model(model_id)
        x = np.asarray(vectors)
        x = x[None] if x.ndim == 1 else x
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise InputError(f"vectors have shape {x.shape}, the index is {self.dim}-d", field="vectors",
                             expected=f"[N, {self.dim}] embeddings from model {self.model_id}")
        m = len(x)
        eps = [episode_ids] * m if isinstance(episode_ids, str) else list(episode_ids)
        kl = [kinds] * m if isinstance(kinds, str) else list(kinds)
        fr = np.asarray(frames, dtype=np.int64).reshape(-1)
        tm = np.full(m, np.nan) if times is None else np.asarray(times, dtype=np.float64).reshape(-1)
        if not (len(eps) == len(kl) == len(fr) == len(tm) == m):
            raise InputError("metadata lengths differ from the number of vectors", field="add",
                             expected=f"{m} episode ids, frames, times and kinds")
        bad = sorted({k for k in kl if k not in KINDS})
        if bad:
            raise InputError(f"unknown row kind {bad[0]!r}", field="kinds", expected=" | ".join(KINDS))
        codes = np.array([self._code(e) for e in eps], dtype=np.int32)
        self._grow(self._n + m)
        first = self._n
        for c in range(0, m, 65536):  # normalise chunk by chunk: no fp32 copy of a large batch
            self._vec[first + c:first + min(m, c + 65536)] = _normalise(x[c:c + 65536], "vectors")
        rows = slice(first, first + m)
        self._episode_codes[rows] = codes
        self._frames[rows] = fr
        self._times[rows] = tm
        self._kinds[rows] = np.array([KINDS.index(k) for k in kl], dtype=np.int8)
        self._n += m
        self._refresh_ann(first_new=first)

    def _code(self, episode: str) -> int:
        if not isinstance(episode, str) or not episode:
            raise InputError(f"bad episode id {episode!r}", field="episode_ids", expected="non-empty strings")
        code = self._episode_lookup.get(episode)
        if code is None:
            code = self._episode_lookup[episode] = len(self._episode_names)
            self._episode_names.append(episode)
        return code

    def _grow(self, need: int) -> None:
        cap = len(self._vec)
        if need <= cap:
            return
        cap = max(need, int(cap * 1.5), 1024)
        for name in ("_vec", "_episode_codes", "_frames", "_times", "_kinds"):
            old = getattr(self, name)
            new = np.empty((cap,) + old.shape[1:], old.dtype)
            new[: self._n] = old[: self._n]
            setattr(self, name, new)

    # ---- approximate structure -------------------------------------------------------------
    def _wanted_kind(self) -> str:
        if self.backend == "auto":
            return "exact" if self._n <= self.exact_max else "ivf"
        return self.backend

    def _refresh_ann(self, first_new: int) -> None:
        kind = self._wanted_kind()
        info = self.ann_info
        if kind == "exact":
            self._ann, self.ann_info = None, AnnInfo()
        elif (self._ann is None or info.kind != kind
              or self._n > _REBUILD_GROWTH * max(info.built_for, 1)):
            self.rebuild()
        else:
            _add_chunked(self._ann, self.vectors[first_new:])

    def rebuild(self, kind: str | None = None) -> None:
        """(Re)build and tune the approximate structure over all rows."""
        kind = kind or self._wanted_kind()
        if kind == "exact":
            self._ann, self.ann_info = None, AnnInfo()
            return
        if self._n < 2:
            raise InputError("too few rows for an approximate index", field="backend",
                             expected="exact search for indexes under a few hundred rows")
        rng = np.random.default_rng(self.seed)
        if kind == "ivf":
            self._ann, self.ann_info = _build_ivf(self.vectors, rng)
        elif kind == "hnsw":
            self._ann, self.ann_info = _build_hnsw(self.vectors)
        else:
            raise InputError(f"unknown index backend '{kind}'", field="backend", expected=" | ".join(BACKENDS))
        self._tune(rng)

    def _tune_queries(self, rng: np.random.Generator, n: int = 200) -> np.ndarray:
        """Queries to tune nprobe/efSearch on: stored text rows when there are enough (real
        cross-modal queries), else stored rows with noise (cosine ~0.7 to their source)."""
        texts = np.flatnonzero(self.kinds == KINDS.index("text"))
        if len(texts) >= n:
            return self.vectors[rng.choice(texts, n, replace=False)].astype(np.float32)
        rows = self.vectors[rng.choice(self._n, min(n, self._n), replace=False)].astype(np.float32)
        noisy = rows + rng.standard_normal(rows.shape, dtype=np.float32) / math.sqrt(self.dim)
        return _normalise(noisy, "queries")

    def _tune(self, rng: np.random.Generator, k: int = 10) -> None:
        """Smallest nprobe (IVF) or efSearch (HNSW) whose recall@k against exact search reaches
        target_recall on tuning queries."""
        q = self._tune_queries(rng)
        k = min(k, self._n)
        truth = _exact_topk(self.vectors, q, k)[1]
        info = self.ann_info
        if info.kind == "ivf":
            steps = [p for p in (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512) if p <= info.nlist]
            setter = lambda v: setattr(faiss.extract_index_ivf(self._ann), "nprobe", v)  # noqa: E731
        else:
            steps = [max(k, e) for e in (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)]
            setter = lambda v: setattr(self._ann.hnsw, "efSearch", v)  # noqa: E731
        recall = 0.0
        for v in steps:
            setter(v)
            recall = _recall(self._ann.search(q, k)[1], truth)
            if recall >= self.target_recall:
                break
        if info.kind == "ivf":
            info.nprobe = v
        else:
            info.ef_search = v
        info.tune_recall10 = recall

    # ---- search ----------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int, *, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k rows per query: (scores float32 [Q, k], rows int64 [Q, k]); -1 rows pad when
        fewer than k rows qualify. mask: bool [N], rows allowed (None = all)."""
        if self._n == 0:
            raise InputError("the index is empty", field="index", expected="embeddings of at least one episode")
        if k < 1:
            raise InputError(f"k={k}", field="k", expected="k >= 1")
        q = _normalise(queries, "queries")
        if q.shape[1] != self.dim:
            raise InputError(f"queries are {q.shape[1]}-d, the index is {self.dim}-d", field="queries",
                             expected=f"embeddings from model {self.model_id}")
        allowed = self._n if mask is None else int(np.count_nonzero(mask[: self._n]))
        if allowed == 0:
            return np.full((len(q), k), -np.inf, np.float32), np.full((len(q), k), -1, np.int64)
        if mask is not None and allowed <= self.exact_max:
            rows = np.flatnonzero(mask[: self._n])
            s, r = _exact_topk(self.vectors[rows], q, min(k, allowed))
            return _pad(s, np.where(r >= 0, rows[np.maximum(r, 0)], -1), k)
        if self._ann is None:
            s, r = _exact_topk(self.vectors, q, min(k, self._n), mask=mask)
            return _pad(s, r, k)
        return self._ann_search(q, k, mask, allowed)

    def _ann_search(self, q: np.ndarray, k: int, mask: np.ndarray | None, allowed: int) -> tuple[np.ndarray, np.ndarray]:
        info = self.ann_info
        # scale the probe budget by the fraction filtered out so the candidates stay as many
        boost = 1.0 if mask is None else self._n / allowed
        if info.kind == "ivf":
            params = faiss.SearchParametersIVF(nprobe=min(info.nlist, math.ceil(info.nprobe * boost)))
        else:
            params = faiss.SearchParametersHNSW(efSearch=max(k, math.ceil(info.ef_search * boost)))
        if mask is not None:
            bitmap = np.packbits(mask[: self._n].astype(np.uint8), bitorder="little")
            sel = faiss.IDSelectorBitmap(self._n, faiss.swig_ptr(bitmap))
            params.sel = sel
        s, r = self._ann.search(q, k, params=params)
        s = np.where(r >= 0, s, -np.inf).astype(np.float32)
        return s, r.astype(np.int64)

    # ---- persistence -----------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """A folder: vectors.npy (fp16), meta.npz, ann.faiss (when approximate), index.json last
        (it names the row count, so a half-written folder is detected on load)."""
        d = Path(path)
        d.mkdir(parents=True, exist_ok=True)
        _atomic_np(d / "vectors.npy", lambda f: np.save(f, self.vectors))
        _atomic_np(d / "meta.npz", lambda f: np.savez(
            f, episode_codes=self.episode_codes(), frames=self.frames, times=self.times, kinds=self.kinds,
            episode_names=np.array(self._episode_names, dtype=str)))
        if self._ann is not None:
            _atomic_np(d / "ann.faiss", lambda f: f.write(faiss.serialize_index(self._ann).tobytes()))
        elif (d / "ann.faiss").exists():
            (d / "ann.faiss").unlink()
        info = self.ann_info
        atomic_write_json(d / "index.json", {
            "format": FORMAT_VERSION, "model_id": self.model_id, "dim": self.dim, "count": self._n,
            "backend": self.backend, "exact_max": self.exact_max, "target_recall": self.target_recall,
            "seed": self.seed, "kinds": list(KINDS),
            "ann": {"kind": info.kind, "built_for": info.built_for, "nlist": info.nlist, "nprobe": info.nprobe,
                    "ef_search": info.ef_search, "tune_recall10": info.tune_recall10, "params": info.params},
        })
        return d

    @classmethod
    def load(cls, path: str | Path, *, model_id: str | None = None) -> "EmbeddingIndex":
        """Open a saved index; with model_id, refuse one made by another model."""
        d = Path(path)
        head_path = d / "index.json"
        expected = "an index folder written by robot-irl (index.json, vectors.npy, meta.npz)"
        if not head_path.is_file():
            raise InputError("no index here", file=d, expected=expected)
        try:
            head = json.loads(head_path.read_text())
            count, dim = int(head["count"]), int(head["dim"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise InputError(f"unreadable index header ({e})", file=head_path, expected=expected) from None
        if head.get("format") != FORMAT_VERSION:
            raise InputError(f"index format {head.get('format')}", file=head_path, field="format",
                             expected=f"format {FORMAT_VERSION} (rebuild the index)")
        idx = cls(head["model_id"], dim, backend=head["backend"], exact_max=head["exact_max"],
                  target_recall=head["target_recall"], seed=head["seed"])
        if model_id is not None:
            idx.check_model(model_id)
        try:
            vec = np.load(d / "vectors.npy", mmap_mode=None)
            meta = np.load(d / "meta.npz")
            arrays = {k: meta[k] for k in ("episode_codes", "frames", "times", "kinds", "episode_names")}
        except (OSError, ValueError, KeyError, EOFError) as e:
            raise InputError(f"corrupt index data ({e})", file=d, expected=expected) from None
        if vec.shape != (count, dim) or vec.dtype != np.float16 or any(len(arrays[k]) != count for k in
                                                                         ("episode_codes", "frames", "times", "kinds")):
            raise InputError(f"index data do not match index.json (count {count}, dim {dim})", file=d,
                             expected="a complete index folder (rebuild it)")
        idx._vec, idx._n = np.ascontiguousarray(vec), count
        idx._episode_codes = arrays["episode_codes"].astype(np.int32)
        idx._frames = arrays["frames"].astype(np.int32)
        idx._times = arrays["times"].astype(np.float64)
        idx._kinds = arrays["kinds"].astype(np.int8)
        idx._episode_names = [str(s) for s in arrays["episode_names"]]
        idx._episode_lookup = {e: i for i, e in enumerate(idx._episode_names)}
        ann = head.get("ann", {})
        ann_path = d / "ann.faiss"
        if ann.get("kind", "exact") != "exact" and ann_path.is_file():
            index = faiss.deserialize_index(np.fromfile(ann_path, dtype=np.uint8))
            if index.ntotal == count:
                idx._ann = index
                idx.ann_info = AnnInfo(**ann)
                if idx.ann_info.kind == "ivf":
                    faiss.extract_index_ivf(index).nprobe = idx.ann_info.nprobe
                else:
                    index.hnsw.efSearch = idx.ann_info.ef_search
                return idx
        if idx._wanted_kind() != "exact" and count:
            idx.rebuild()
        return idx


# ---- helpers -------------------------------------------------------------------------------
def _atomic_np(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _add_chunked(index: faiss.Index, vec16: np.ndarray, chunk: int = 65536) -> None:
    for s in range(0, len(vec16), chunk):
        index.add(vec16[s:s + chunk].astype(np.float32))


def _pad(s: np.ndarray, r: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    if s.shape[1] == k:
        return s, r
    extra = k - s.shape[1]
    return (np.pad(s, ((0, 0), (0, extra)), constant_values=-np.inf),
            np.pad(r, ((0, 0), (0, extra)), constant_values=-1))


def _exact_topk(vec16: np.ndarray, q: np.ndarray, k: int, *, mask: np.ndarray | None = None,
                block: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by inner product. One query: a single fp16 matrix-vector product (memory
    bound, so half the bytes is twice the speed). Several: fp32 GEMM block by block, since
    CPU fp16 GEMM is slow and a full fp32 copy of a large index would not fit."""
    n = len(vec16)
    k = min(k, n)
    v = torch.from_numpy(vec16)
    qt = torch.from_numpy(np.ascontiguousarray(q, dtype=np.float32))
    keep = None if mask is None else torch.from_numpy(np.ascontiguousarray(mask[:n], dtype=bool))
    if len(q) == 1 and n <= 4 * block:
        scores = (v @ qt[0].half()).float()[None]
        if keep is not None:
            scores[:, ~keep] = -torch.inf
        s, r = torch.topk(scores, k, dim=1)
    else:
        best_s = torch.full((len(q), k), -torch.inf)
        best_r = torch.full((len(q), k), -1, dtype=torch.int64)
        for start in range(0, n, block):
            sc = qt @ v[start:start + block].float().T
            if keep is not None:
                sc[:, ~keep[start:start + block]] = -torch.inf
            s, r = torch.topk(sc, min(k, sc.shape[1]), dim=1)
            cat_s, cat_r = torch.cat([best_s, s], 1), torch.cat([best_r, r + start], 1)
            best_s, pos = torch.topk(cat_s, k, dim=1)
            best_r = torch.gather(cat_r, 1, pos)
        s, r = best_s, best_r
    r = torch.where(torch.isfinite(s), r, torch.full_like(r, -1))
    return s.numpy().astype(np.float32), r.numpy().astype(np.int64)


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    hits = [len(set(f[f >= 0]) & set(t[t >= 0])) / max(1, int((t >= 0).sum())) for f, t in zip(found, truth)]
    return float(np.mean(hits))


def _build_ivf(vec16: np.ndarray, rng: np.random.Generator) -> tuple[faiss.Index, AnnInfo]:
    """IVF, nlist ~ 4 sqrt(N), lists stored as fp16 (half the memory of IVFFlat, the same
    ranking to fp16 precision). The coarse quantizer is an HNSW graph over the centroids: with
    thousands of lists, assigning a million rows (and each query) against every centroid would
    cost more than scanning the probed lists. k-means sees 40 points per list, 10 iterations."""
    n, d = vec16.shape
    nlist = max(1, min(int(round(4 * math.sqrt(n))), n // 39 or 1))
    index = faiss.index_factory(d, f"IVF{nlist}_HNSW32,SQfp16", faiss.METRIC_INNER_PRODUCT)
    ivf = faiss.extract_index_ivf(index)
    ivf.cp.seed = int(rng.integers(2**31))
    ivf.cp.niter = 10
    ivf.cp.max_points_per_centroid = 40
    ntrain = min(n, nlist * 40)
    train_rows = np.sort(rng.choice(n, ntrain, replace=False))
    index.train(vec16[train_rows].astype(np.float32))
    faiss.downcast_index(ivf.quantizer).hnsw.efSearch = 64
    _add_chunked(index, vec16)
    ivf.nprobe = 1
    return index, AnnInfo(kind="ivf", built_for=n, nlist=nlist,
                          params={"factory": f"IVF{nlist}_HNSW32,SQfp16", "ntrain": ntrain})


def _build_hnsw(vec16: np.ndarray, m: int = 32, ef_construction: int = 80) -> tuple[faiss.Index, AnnInfo]:
    n, d = vec16.shape
    index = faiss.IndexHNSWFlat(d, m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = ef_construction
    _add_chunked(index, vec16)
    return index, AnnInfo(kind="hnsw", built_for=n, params={"M": m, "ef_construction": ef_construction})
