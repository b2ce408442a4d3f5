"""Benchmark of the diagnostics embedding wrapper against openTSNE and scikit-learn called directly.

    python scripts/bench_diagnostics.py            # 20,000 x 50 clustered points
    python scripts/bench_diagnostics.py --n 3000   # smaller

Same data, same seed, same thread count in one run. Embedding and metrics are timed separately;
the wrapper's embedding time should be at most 1.1 x openTSNE's. Last line: one JSON object.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
from openTSNE import TSNE as OpenTSNE
from sklearn.manifold import TSNE as SklearnTSNE

from robot_irl.diagnostics.embed import EmbedConfig, Embedder, default_n_jobs
from robot_irl.diagnostics.metrics import trust_measures
from robot_irl.diagnostics.synthetic import clustered_points


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000, help="points (default 20000)")
    ap.add_argument("--d", type=int, default=50, help="dimensions (default 50)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=1,
                    help="alternate openTSNE and wrapper fits this many times, keep each one's fastest "
                         "(a shared machine's load swings more than 10%%)")
    ap.add_argument("--skip-sklearn", action="store_true", help="leave out scikit-learn's TSNE (the slowest)")
    args = ap.parse_args()

    X, y = clustered_points(args.n, args.d, seed=args.seed)
    n_jobs = default_n_jobs(args.n)
    print(f"data: {args.n} x {args.d} clustered points, {np.unique(y).size} clusters, n_jobs={n_jobs}")

    maps: dict[str, np.ndarray] = {}
    times: dict[str, float] = {}
    # Warm-up outside the timings: openTSNE imports pynndescent (numba) on its first fit, ~5 s.
    OpenTSNE(n_jobs=1, random_state=0, n_iter=10, early_exaggeration_iter=10).fit(X[:200])
    times["opentsne"] = times["wrapper"] = float("inf")
    for _ in range(args.repeats):
        t = time.perf_counter()
        maps["opentsne"] = np.asarray(OpenTSNE(n_jobs=n_jobs, random_state=args.seed).fit(X))
        times["opentsne"] = min(times["opentsne"], time.perf_counter() - t)
        print(f"openTSNE direct        {time.perf_counter() - t:8.1f} s", flush=True)

        e = Embedder(EmbedConfig(seed=args.seed, n_jobs=n_jobs))
        t = time.perf_counter()
        maps["wrapper"] = e.fit(X)
        times["wrapper"] = min(times["wrapper"], time.perf_counter() - t)
        print(f"wrapper (tsne, pca)    {time.perf_counter() - t:8.1f} s  (reduce {e.timings['reduce_s']:.2f} s)",
              flush=True)

    if not args.skip_sklearn:
        t = time.perf_counter()
        maps["sklearn"] = SklearnTSNE(init="pca", learning_rate="auto", random_state=args.seed,
                                      n_jobs=n_jobs).fit_transform(X)
        times["sklearn"] = time.perf_counter() - t
        print(f"scikit-learn direct    {times['sklearn']:8.1f} s", flush=True)

    t = time.perf_counter()
    m = trust_measures(X, maps, {"cluster": y}, seed=args.seed)
    metrics_s = time.perf_counter() - t
    print(f"metrics (all maps)     {metrics_s:8.1f} s")
    print(f"{'map':10s} {'trust10':>8s} {'kept10':>8s} {'rho_dist':>9s} {'rho_cent':>9s} {'acc10':>7s}")
    for name in maps:
        print(f"{name:10s} {m[f'{name}.trust10']:8.3f} {m[f'{name}.knn_kept10']:8.3f} "
              f"{m[f'{name}.spearman_pdist']:9.3f} {m[f'{name}.centroid_spearman.cluster']:9.3f} "
              f"{m[f'{name}.knn_acc10.cluster']:7.3f}")
    out = {
        "n": args.n, "d": args.d, "n_jobs": n_jobs,
        "wrapper_s": round(times["wrapper"], 2), "opentsne_s": round(times["opentsne"], 2),
        "sklearn_s": round(times["sklearn"], 2) if "sklearn" in times else None,
        "overhead_ratio": round(times["wrapper"] / times["opentsne"], 3),
        "metrics_s": round(metrics_s, 2),
        "trust10": round(m["wrapper.trust10"], 4), "knn_kept10": round(m["wrapper.knn_kept10"], 4),
        "spearman_pdist": round(m["wrapper.spearman_pdist"], 4),
        "centroid_spearman": round(m["wrapper.centroid_spearman.cluster"], 4),
        "opentsne_trust10": round(m["opentsne.trust10"], 4),
        "opentsne_spearman_pdist": round(m["opentsne.spearman_pdist"], 4),
    }
    if "sklearn" in maps:
        out.update(sklearn_trust10=round(m["sklearn.trust10"], 4),
                   sklearn_spearman_pdist=round(m["sklearn.spearman_pdist"], 4))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
