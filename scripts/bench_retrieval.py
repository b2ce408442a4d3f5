"""Benchmark the retrieval index and the CLIP encoders.

For 100k and 1M synthetic 512-d unit vectors, clustered (a Gaussian mixture, like image
embeddings of many episodes) and unclustered (uniform on the sphere, which flatters no index):
build time of the automatic index, p50/p99 single-query latency, recall@10 against exact numpy
search, and numpy's own latency, all in the same run. With ``--library PATH`` (a library with a
trained CLIP, e.g. the one scripts/eval_search.py builds) a third set beside them: the real CLIP
keyframe embeddings of that library's frames, grown to the same sizes by jittered copies (each a
stored vector + Gaussian noise the size of the median nearest-neighbour distance, renormalised),
queries drawn the same way. Then encoder throughput (images/s,
texts/s) for the domain model and ViT-B-32 (random init: speed does not depend on weights).
Last line: one JSON object.

    nice -n 10 .venv/bin/python scripts/bench_retrieval.py            # 100k + 1M (heavy: ~5 GB)
    .venv/bin/python scripts/bench_retrieval.py --quick               # 20k + 100k
    nice -n 10 .venv/bin/python scripts/bench_retrieval.py --library LIB --sets clustered,real   # the real set beside the headline
"""
from __future__ import annotations

import argparse
import gc
import json
import time

import numpy as np

from robot_irl.retrieval.index import EmbeddingIndex

DIM = 512
TIE = 1e-3   # cosine: about the score error of float16 storage at these dimensions


def make_data(n: int, clustered: bool, rng: np.random.Generator, n_clusters: int = 2000,
              spread: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """n unit vectors and 200 fresh queries from the same distribution (float32). Clustered:
    centres ~ N(0, I), points = centre + spread * N(0, I), i.e. cosine ~0.5 inside a cluster."""
    centres = rng.standard_normal((n_clusters, DIM), dtype=np.float32) if clustered else None

    def draw(m: int) -> np.ndarray:
        out = np.empty((m, DIM), np.float32)
        for s in range(0, m, 100_000):
            e = min(m, s + 100_000)
            x = rng.standard_normal((e - s, DIM), dtype=np.float32)
            if clustered:
                x *= spread
                x += centres[rng.integers(0, n_clusters, e - s)]
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            out[s:e] = x
        return out

    return draw(n), draw(200)


def numpy_topk(x: np.ndarray, q: np.ndarray, k: int, block: int = 131072) -> np.ndarray:
    """Exact top-k rows by inner product, blockwise to bound memory."""
    best_s = np.full((len(q), k), -np.inf, np.float32)
    best_r = np.full((len(q), k), -1, np.int64)
    for s in range(0, len(x), block):
        sc = q @ x[s:s + block].T
        part = np.argpartition(-sc, k - 1, axis=1)[:, :k]
        cs = np.concatenate([best_s, np.take_along_axis(sc, part, 1)], 1)
        cr = np.concatenate([best_r, part + s], 1)
        o = np.argsort(-cs, 1)[:, :k]
        best_s, best_r = np.take_along_axis(cs, o, 1), np.take_along_axis(cr, o, 1)
    return best_r


def percentiles(ts: list[float]) -> tuple[float, float]:
    a = np.array(ts) * 1e3
    return float(np.percentile(a, 50)), float(np.percentile(a, 99))


def real_data(base: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n jittered copies of the real embeddings ``base`` and 200 queries made the same way."""
    b = base.astype(np.float32)
    sample = b[rng.choice(len(b), min(len(b), 500), replace=False)]
    d = np.sqrt(np.clip(2 - 2 * sample @ b.T, 0, None))
    d[d < 1e-6] = np.inf                                   # itself (and exact duplicates)
    sigma = float(np.median(d.min(1))) / np.sqrt(b.shape[1])   # a copy lies about as far as a real neighbour

    def draw(m: int) -> np.ndarray:
        out = np.empty((m, b.shape[1]), np.float32)
        for s in range(0, m, 100_000):
            e = min(m, s + 100_000)
            x = b[rng.integers(0, len(b), e - s)] + sigma * rng.standard_normal((e - s, b.shape[1]), dtype=np.float32)
            out[s:e] = x / np.linalg.norm(x, axis=1, keepdims=True)
        return out

    return draw(n), draw(200)


def library_vectors(path: str) -> np.ndarray:
    """Keyframe embeddings of every episode of a library under its newest CLIP model."""
    from robot_irl.library import Library
    from robot_irl.retrieval.library_index import library_encoder, library_index

    lib = Library.open(path)
    index, _ = library_index(lib, library_encoder(lib))
    from robot_irl.retrieval.index import KINDS

    if not len(index):
        raise SystemExit(f"--library {path}: no embeddings (train a CLIP on it first: robot-irl clip train)")
    return np.asarray(index.vectors[index.kinds == KINDS.index("keyframe")], np.float32)


def bench_index(n: int, clustered: bool | str, seed: int, numpy_queries: int,
                real: np.ndarray | None = None) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    x, q = real_data(real, n, rng) if clustered == "real" else make_data(n, bool(clustered), rng)
    dim = x.shape[1]
    truth = numpy_topk(x, q, 10)
    kth = np.einsum("qd,qkd->qk", q, x[truth])[:, -1]     # each query's exact 10th score (truth is sorted)
    np_times = []
    for i in range(numpy_queries):  # the baseline: one query, full scan, argpartition
        t = time.perf_counter()
        sc = x @ q[i]
        np.argpartition(-sc, 9)[:10]
        np_times.append(time.perf_counter() - t)
    idx = EmbeddingIndex("bench", dim)
    t = time.perf_counter()
    idx.add(x, "ep", np.arange(n))  # past the exact threshold: builds and tunes IVF
    build_s = time.perf_counter() - t
    gc.collect()
    idx.search(q[0], 10)  # warm up
    times, found = [], []
    for i in range(len(q)):
        t = time.perf_counter()
        _, r = idx.search(q[i], 10)
        times.append(time.perf_counter() - t)
        found.append(r[0])
    recall = float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)]))
    # ties: a returned row whose exact score is within TIE of the exact 10th counts (near-duplicate
    # rows, e.g. an episode's keyframes, differ by less than the index's float16 storage resolves)
    recall_ties = float(np.mean([np.mean(x[f[f >= 0]] @ q[i] >= kth[i] - TIE) if (f >= 0).any() else 0.0
                                 for i, f in enumerate(found)]))
    del x
    p50, p99 = percentiles(times)
    np50, np99 = percentiles(np_times)
    info = idx.ann_info
    return {"n": n, "clustered": clustered, "backend": info.kind, "nlist": info.nlist, "nprobe": info.nprobe,
            "build_s": build_s, "p50_ms": p50, "p99_ms": p99, "recall10": recall, "recall10_ties": recall_ties,
            "numpy_p50_ms": np50, "numpy_p99_ms": np99, "tune_recall10": info.tune_recall10}


def bench_encoders(quick: bool) -> dict[str, float]:
    from robot_irl.retrieval.encoders import load_encoder

    out: dict[str, float] = {}
    rng = np.random.default_rng(0)
    for name, n_img in (("robot-irl-clip-64", 256), ("ViT-B-32", 16 if quick else 32)):
        enc = load_encoder(name)
        s = enc.image_size[0]
        imgs = rng.integers(0, 256, (n_img, s, s, 3), dtype=np.uint8)
        texts = [f"place the red block number {i} on the shelf" for i in range(256)]
        enc.encode_images(imgs[:4])
        t = time.perf_counter()
        enc.encode_images(imgs, batch_size=64)
        out[f"{name}_images_per_s"] = n_img / (time.perf_counter() - t)
        t = time.perf_counter()
        enc.encode_texts(texts)
        out[f"{name}_texts_per_s"] = len(texts) / (time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="20k and 100k vectors instead of 100k and 1M")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--library", help="also a set from this library's real CLIP keyframe embeddings (jittered copies)")
    ap.add_argument("--sets", default="clustered,unclustered,real",
                    help="which vector sets to time (real only with --library), e.g. clustered,real")
    args = ap.parse_args()
    wanted = set(args.sets.split(","))
    if not wanted <= {"clustered", "unclustered", "real"} or "clustered" not in wanted:
        ap.error(f"--sets {args.sets}: expected a comma list of clustered (always: the headline), unclustered, real")
    small, large = (20_000, 100_000) if args.quick else (100_000, 1_000_000)
    real = library_vectors(args.library) if args.library else None
    if real is not None:
        print(f"real set: {len(real)} keyframe embeddings ({real.shape[1]}-d) from {args.library}")
    rows = []
    for n in (small, large):
        kinds = {"clustered": True, "unclustered": False, "real": "real"}
        for clustered in [kinds[k] for k in ("clustered", "unclustered", "real") if k in wanted
                          and (k != "real" or real is not None)]:
            r = bench_index(n, clustered, args.seed, numpy_queries=20 if n >= 1_000_000 else 50, real=real)
            rows.append(r)
            label = {True: "clustered  ", False: "unclustered", "real": "real CLIP  "}[clustered]
            print(f"{n:>8} {label} {r['backend']:>5} "
                  f"nlist {r['nlist']:>5} nprobe {r['nprobe']:>4}  build {r['build_s']:7.1f} s  "
                  f"p50 {r['p50_ms']:7.3f} ms  p99 {r['p99_ms']:7.3f} ms  recall@10 {r['recall10']:.3f} "
                  f"(ties {r['recall10_ties']:.3f})  |  "
                  f"numpy p50 {r['numpy_p50_ms']:8.2f} ms  p99 {r['numpy_p99_ms']:8.2f} ms", flush=True)
            gc.collect()
    enc = bench_encoders(args.quick)
    for k, v in enc.items():
        print(f"{k}: {v:.1f}")
    big_c = next(r for r in rows if r["n"] == large and r["clustered"] is True)
    big_u = next((r for r in rows if r["n"] == large and r["clustered"] is False), None)
    small_c = next(r for r in rows if r["n"] == small and r["clustered"] is True)
    tag = "1m" if large == 1_000_000 else "100k"
    summary = {
        "quick": args.quick,
        f"p50_ms_{tag}": big_c["p50_ms"], f"p99_ms_{tag}": big_c["p99_ms"],
        f"recall10_{tag}": big_c["recall10"], f"recall10_ties_{tag}": big_c["recall10_ties"],
        f"numpy_p50_ms_{tag}": big_c["numpy_p50_ms"],
        f"build_s_{tag}": big_c["build_s"],
        "p50_ms_small": small_c["p50_ms"], "recall10_small": small_c["recall10"], "n_small": small,
        **{k: round(v, 1) for k, v in enc.items()},
    }
    if big_u is not None:
        summary.update({f"unclustered_p50_ms_{tag}": big_u["p50_ms"], f"unclustered_recall10_{tag}": big_u["recall10"],
                        f"unclustered_numpy_p50_ms_{tag}": big_u["numpy_p50_ms"]})
    if real is not None and "real" in wanted:
        big_r = next(r for r in rows if r["n"] == large and r["clustered"] == "real")
        summary.update({f"real_p50_ms_{tag}": big_r["p50_ms"], f"real_p99_ms_{tag}": big_r["p99_ms"],
                        f"real_recall10_{tag}": big_r["recall10"], f"real_recall10_ties_{tag}": big_r["recall10_ties"],
                        f"real_numpy_p50_ms_{tag}": big_r["numpy_p50_ms"],
                        "real_source_vectors": len(real), "data": f"synthetic + real ({args.library})"})
    else:
        summary["data"] = "synthetic"
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
