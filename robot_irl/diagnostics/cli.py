"""`robot-irl diagnose`: t-SNE / UMAP / PCA maps of latents with trust measures, into a run folder.

Heavy imports (torch, openTSNE, matplotlib) happen inside the command so `robot-irl --help`
stays fast.
"""
from __future__ import annotations

import argparse
import json

METHOD_CHOICES = ("tsne", "sklearn-tsne", "umap", "pca")
LATENTS = ("keypoints", "clip", "cost", "dynamics")
LIBRARY_LATENTS = ("keypoints", "clip")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "diagnose", help="2-D map of latents with numbers that say how far to trust it",
        description="Embed latents (openTSNE by default, PCA init, 50 PCs first), measure trust "
                    "(trustworthiness, 10-NN kept, distance and centroid Spearman, 10-NN label accuracy), "
                    "and write PNG plots per label, metrics.json and a TensorBoard projector export "
                    "into the --out run folder.")
    p.add_argument("source", nargs="?", metavar="RUN|LIBRARY",
                   help="what to diagnose: a library folder (keypoints, clip; default $ROBOT_IRL_LIBRARY), "
                        "an IRL run (cost), a dynamics run or IRL run with learned dynamics (dynamics)")
    p.add_argument("--latent", choices=LATENTS,
                   help="keypoints = library keypoint trajectories, clip = CLIP keyframe embeddings, "
                        "cost = per-state cost features of planned trajectories, dynamics = hidden units")
    p.add_argument("--latents", metavar="FILE.npz",
                   help="instead of --latent: npz file with X [N, D] plus label arrays of length N (and optional thumbnails)")
    p.add_argument("--query", default="", help="library query selecting episodes (keypoints, clip)")
    p.add_argument("--every", type=int, default=1, help="keypoints: keep every N-th time step (default: 1)")
    p.add_argument("--no-extracted", action="store_true",
                   help="keypoints: use recorded ground truth even where keypoints were extracted from video")
    p.add_argument("--clip-model", help="clip: open_clip architecture or local-dir:PATH "
                                        "(default: the newest model `robot-irl clip train` saved in the library)")
    p.add_argument("--clip-pretrained", help="clip: weights for --clip-model (file, folder or cached tag)")
    p.add_argument("--clip-texts", action="store_true", help="clip: add one row per episode for its task text")
    p.add_argument("--goals", type=int, default=8, help="cost: goals planned per demo, own + perturbed (default: 8)")
    p.add_argument("--data", metavar="FILE.npz", help="dynamics: exploration data (default: the one the model was trained on)")
    p.add_argument("--no-thumbnails", action="store_true", help="no frame thumbnails in the projector (library latents)")
    p.add_argument("--x-key", default="X", help="--latents: array in the npz holding the latents (default: X)")
    p.add_argument("--labels", nargs="+", metavar="KEY",
                   help="--latents: npz arrays to colour by (default: every other 1-D array of length N); "
                        "float arrays are continuous, others are classes")
    p.add_argument("--thumbnails", metavar="KEY",
                   help="--latents: npz array of images [N, H, W(, C)] for the projector (default: 'thumbnails' if present)")
    p.add_argument("--out", metavar="RUN", help="run folder to write (created if needed; default: "
                                                 "<run>/diagnostics/<latent> for a run, runs/diagnose-<latent>-<time> otherwise)")
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
    p.add_argument("--json", action="store_true", help="print every figure as JSON (default: tables and a verdict)")
    p.set_defaults(func=run_diagnose)


def _collect(args: argparse.Namespace):
    """(Latents, how they were collected, default output folder) for the chosen source."""
    import datetime as dt
    from pathlib import Path

    from robot_irl.diagnostics.latents import collect
    from robot_irl.errors import InputError

    if (args.latents is None) == (args.latent is None):
        raise InputError("say what to diagnose", field="--latent",
                         expected="--latent keypoints|clip|cost|dynamics (with a run or library), or --latents FILE.npz")
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    if args.latents is not None:
        if args.source is not None:
            raise InputError(f"both a source ({args.source}) and --latents", field="--latents",
                             expected="one of them")
        latents = collect("npz", args.latents, x_key=args.x_key, labels=args.labels, thumbnails=args.thumbnails)
        return latents, {"collector": "npz", "source": args.latents, "x_key": args.x_key}, Path("runs") / f"diagnose-{stamp}"
    if args.latent in LIBRARY_LATENTS:
        from robot_irl.library import Library

        source = Library.open(args.source).path  # resolves the default library, checks it exists
        options = {"query": args.query or None, "thumbnails": not args.no_thumbnails}
        if args.latent == "keypoints":
            options.update(extracted=not args.no_extracted, every=args.every)
        else:
            options.update(model=args.clip_model, pretrained=args.clip_pretrained, texts=args.clip_texts)
        out = Path("runs") / f"diagnose-{args.latent}-{stamp}"
    else:
        if args.source is None:
            raise InputError(f"--latent {args.latent} needs a run folder", field="source",
                             expected="robot-irl diagnose RUN --latent " + args.latent)
        source = Path(args.source)
        options = {"n_goals": args.goals} if args.latent == "cost" else {"data": args.data}
        out = source / "diagnostics" / args.latent
    latents = collect(args.latent, source, **options)
    return latents, {"collector": args.latent, "source": str(source), **options}, out


def run_diagnose(args: argparse.Namespace) -> int:
    from robot_irl.runs import RunDir

    latents, how, default_out = _collect(args)   # input errors answer before sklearn/torch/matplotlib load
    from robot_irl.diagnostics.diagnose import diagnose
    from robot_irl.diagnostics.embed import EmbedConfig

    config = EmbedConfig(method=args.method, init=args.init, perplexity=args.perplexity,
                         n_neighbors=args.n_neighbors, pca_dims=args.pca_dims, seed=args.seed,
                         n_jobs=args.n_jobs)
    run = RunDir.create(args.out or default_out, {"latents": {**how, "labels": sorted(latents.labels),
                                                              "n_points": latents.n, "n_dims": int(latents.X.shape[1]),
                                                              "skipped": latents.skipped},
                                   "embedding": config.to_dict(), "compare_init": args.compare_init},
                        kind="diagnose")
    result = diagnose(latents, run, config, compare_init=args.compare_init, reference=not args.no_reference,
                      tensorboard=not args.no_tensorboard)
    if args.json:
        print(json.dumps({"metrics": result.metrics, "skipped": latents.skipped, "run": str(run.path)}, indent=1))
        return 0
    print(summary(latents, result.metrics, list(result.embeddings)))
    print(f"wrote {run.path}/metrics.json, {len(result.plots)} plot(s) in {run.plots_dir / latents.name}")
    if result.projector_tags:
        print(f"projector: tensorboard --logdir {run.tb_dir}   (then open the PROJECTOR tab)")
    return 0


def summary(latents, metrics: dict[str, float], maps: list[str]) -> str:
    """For people: what was left out, the trust measures per map, 10-NN label accuracy, a verdict."""
    from robot_irl.cliargs import format_table
    from robot_irl.diagnostics.latents import is_categorical
    from robot_irl.diagnostics.verdict import SKIP_LABELS, verdict

    lines = [f"{latents.name}: {latents.n} points, {int(latents.X.shape[1])} dimensions"]
    if latents.skipped:
        lines.append(f"left out {len(latents.skipped)} episode(s): "
                     + "; ".join(f"{k} ({v})" for k, v in latents.skipped.items()))
    cols = ("trust10", "knn_kept10", "spearman_pdist")
    lines.append(format_table(["map", *cols], [[m, *(metrics.get(f"{m}.{c}", float("nan")) for c in cols)]
                                               for m in maps]))
    labels = [lab for lab, v in latents.labels.items() if is_categorical(v) and lab not in SKIP_LABELS]
    if labels:
        lines.append("10-NN label accuracy")
        lines.append(format_table(["label", "latents", *maps],
                                  [[lab, metrics.get(f"original.knn_acc10.{lab}", float("nan")),
                                    *(metrics.get(f"{m}.knn_acc10.{lab}", float("nan")) for m in maps)]
                                   for lab in labels]))
    judged = [m for m in maps if m != "pca"] or maps
    lines.append("verdict:")
    for m in judged:
        lines.extend(f"  {sentence}" for sentence in verdict(metrics, m, labels))
    return "\n".join(lines)
