"""`robot-irl diagnose`: t-SNE / UMAP / PCA maps of latents with trust measures, into a run folder.

Heavy imports (torch, openTSNE, matplotlib) happen inside the command so `robot-irl --help`
stays fast.
"""
from __future__ import annotations

import argparse

METHOD_CHOICES = ("tsne", "sklearn-tsne", "umap", "pca")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "diagnose", help="2-D map of latents with numbers that say how far to trust it",
        description="Embed latents (openTSNE by default, PCA init, 50 PCs first), measure trust "
                    "(trustworthiness, 10-NN kept, distance and centroid Spearman, 10-NN label accuracy), "
                    "and write PNG plots per label, metrics.json and a TensorBoard projector export "
                    "into the --out run folder.")
    p.add_argument("--latents", required=True, metavar="FILE.npz",
                   help="npz file: array X [N, D] plus label arrays of length N (and optional thumbnails)")
    p.add_argument("--x-key", default="X", help="array in the npz holding the latents (default: X)")
    p.add_argument("--labels", nargs="+", metavar="KEY",
                   help="npz arrays to colour by (default: every other 1-D array of length N); "
                        "float arrays are continuous, others are classes")
    p.add_argument("--thumbnails", metavar="KEY",
                   help="npz array of images [N, H, W(, C)] for the projector (default: 'thumbnails' if present)")
    p.add_argument("--out", required=True, metavar="RUN", help="run folder to write (created if needed)")
    p.add_argument("--method", choices=METHOD_CHOICES, default="tsne",
                   help="tsne = openTSNE (default); sklearn-tsne; umap; pca")
    p.add_argument("--init", choices=("pca", "random"), default="pca", help="initialisation (default: pca)")
    p.add_argument("--compare-init", action="store_true",
                   help="embed with PCA and random init side by side (shared neighbour graph)")
    p.add_argument("--perplexity", type=float, default=30.0, help="t-SNE perplexity (default: 30)")
    p.add_argument("--n-neighbors", type=int, default=15, help="UMAP neighbours (default: 15)")
    p.add_argument("--pca-dims", type=int, default=50, help="reduce to this many PCs first (default: 50)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--n-jobs", type=int, help="threads (default: all cores this process may use; 1 below 2,000 points)")
    p.add_argument("--no-reference", action="store_true", help="skip the PCA reference map")
    p.add_argument("--no-tensorboard", action="store_true", help="skip the TensorBoard projector export")
    p.set_defaults(func=run_diagnose)


def run_diagnose(args: argparse.Namespace) -> int:
    from robot_irl.diagnostics.diagnose import diagnose
    from robot_irl.diagnostics.embed import EmbedConfig
    from robot_irl.diagnostics.latents import collect
    from robot_irl.runs import RunDir

    config = EmbedConfig(method=args.method, init=args.init, perplexity=args.perplexity,
                         n_neighbors=args.n_neighbors, pca_dims=args.pca_dims, seed=args.seed,
                         n_jobs=args.n_jobs)
    latents = collect("npz", args.latents, x_key=args.x_key, labels=args.labels, thumbnails=args.thumbnails)
    run = RunDir.create(args.out, {"latents": {"collector": "npz", "source": args.latents, "x_key": args.x_key,
                                               "labels": sorted(latents.labels), "n_points": latents.n,
                                               "n_dims": int(latents.X.shape[1])},
                                   "embedding": config.to_dict(), "compare_init": args.compare_init},
                        kind="diagnose")
    result = diagnose(latents, run, config, compare_init=args.compare_init, reference=not args.no_reference,
                      tensorboard=not args.no_tensorboard)
    for key in sorted(result.metrics):
        if not key.endswith("_s"):
            print(f"{key:48s} {result.metrics[key]:.3f}")
    print(f"wrote {run.path}/metrics.json, {len(result.plots)} plot(s) in {run.plots_dir / latents.name}"
          + (f", projector in {run.tb_dir}" if result.projector_tags else ""))
    return 0
