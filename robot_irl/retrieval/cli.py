"""`robot-irl clip train` and `robot-irl search`: CLIP over the demo library.

Heavy imports (torch, open_clip, faiss) happen inside the commands so `robot-irl --help` stays fast.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from robot_irl.cliargs import add_library_arg, existing_file, format_table, positive_float
from robot_irl.core.cluster import LOCAL, add_ray_option


def register(sub: argparse._SubParsersAction) -> None:
    clip = sub.add_parser("clip", help="train the project's own CLIP on library frames",
                          description="Domain CLIP models for `robot-irl search`.")
    clip_sub = clip.add_subparsers(dest="clip_command", metavar="ACTION", required=True)
    tr = clip_sub.add_parser(
        "train", help="train a CLIP on library frames + captions from episode meta",
        description="Train (from scratch, or fine-tune with --pretrained) an open_clip model on frames of the "
                    "selected episodes paired with captions made from their meta (task, object, colour, goal, "
                    "motion phase). Saved in the library as an open_clip local-dir: folder; `robot-irl search` "
                    "uses the newest one; every library episode is embedded and indexed with it. Prints "
                    "text->episode recall@5 on held-out caption templates and image->episode recall@1 for frames "
                    "of held-out episodes, for the trained model, the starting (random-init) model and chance.")
    tr.add_argument("query", nargs="*", help="library query selecting the episodes (default: all)")
    add_library_arg(tr)
    tr.add_argument("--model", default=None,
                    help="open_clip architecture or local-dir:PATH (default: robot-irl-rn-64, 12 M parameters, 64 px ResNet image tower)")
    tr.add_argument("--pretrained", default=None, help="start from these weights (file, folder or cached tag)")
    tr.add_argument("--epochs", type=int, default=30)
    tr.add_argument("--minutes", type=positive_float, default=None, help="stop after this much training time (> 0)")
    tr.add_argument("--batch-size", type=int, default=64)
    tr.add_argument("--lr", type=float, default=1e-3)
    tr.add_argument("--frames-per-episode", type=int, default=12)
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--heldout", default=None, metavar="QUERY",
                    help="library query of episodes kept out of training for the figures (default: the newest "
                         "episode of each variant that has at least two)")
    tr.add_argument("--threads", type=int, default=1,
                    help="torch threads while training (default 1: on loaded shared cores 2 threads ran ~9x slower)")
    crop = tr.add_mutually_exclusive_group()
    crop.add_argument("--workspace", type=float, nargs=6, default=None, metavar=("X0", "X1", "Y0", "Y1", "Z0", "Z1"),
                      help="cut frames to this box (metres, robot base frame) seen through each episode's camera "
                           "model before resizing; saved with the model, so search crops the same way (default: "
                           "the starting model's box, for a new model the sim workspace 0.3 0.8 -0.1 0.25 0 0.35)")
    crop.add_argument("--whole-frames", action="store_true", help="no workspace crop")
    tr.add_argument("--json-out", type=Path, default=None, help="also write the figures as JSON here")
    tr.add_argument("--out", type=Path, default=None,
                    help="output folder (default: <library>/models/clip/<UTC time>-<model>)")
    tr.add_argument("--quiet", action="store_true", help="no progress bars")
    tr.add_argument("--workers", type=int, default=1,
                    help="train data-parallel with this many Ray Train workers (DDP: gloo on CPU, NCCL on GPUs; "
                         "the same global batches of --batch-size pairs, split across the workers, each "
                         "contrasting against the whole global batch). Default 1: one process, no Ray")
    tr.add_argument("--ray", nargs="?", const=LOCAL, default=None, metavar="ADDRESS",
                    help="with --workers: train on the Ray cluster at ADDRESS (host:port from `ray start --head`; "
                         "every node must see the library at the same path); without ADDRESS, or without --ray, a "
                         "local Ray runtime sized to this machine")
    tr.add_argument("--resume", action="store_true",
                    help="with --workers: continue an interrupted run with the same settings from its newest "
                         "checkpoint (kept under <library>/staging/ until the model is saved)")
    tr.set_defaults(func=_train)

    em = clip_sub.add_parser(
        "embed", help="embed library episodes for search (in this process, or as Ray tasks with --ray)",
        description="Embed the selected episodes' keyframes and task texts with the model (default: the newest "
                    "`clip train` made), store them with each episode, and bring the search index up to date. "
                    "Episodes that already hold this model's embeddings are skipped (--force redoes them). With "
                    "--ray each episode is a Ray task and the driver alone writes to the library; the embeddings "
                    "are the same as without it.")
    em.add_argument("query", nargs="*", help="library query selecting the episodes (default: all)")
    add_library_arg(em)
    em.add_argument("--model", default=None,
                    help="open_clip architecture or local-dir:PATH (default: the newest model `clip train` made)")
    em.add_argument("--pretrained", default=None, help="weights for --model (file, folder or cached tag)")
    em.add_argument("--seed", type=int, default=0, help="initialisation seed for an --model architecture without weights")
    em.add_argument("--force", action="store_true", help="embed episodes that already hold this model's embeddings")
    em.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1)")
    em.add_argument("--index", choices=("auto", "exact", "ivf", "hnsw"), default="auto",
                    help="index kind for a new index (default auto: exact up to 20k rows, then IVF)")
    em.add_argument("--json", action="store_true", help="print JSON for scripts")
    em.add_argument("--quiet", action="store_true", help="no progress bars")
    add_ray_option(em)
    em.set_defaults(func=_embed)

    se = sub.add_parser(
        "search", help="find demos by text and/or image",
        description="Rank library episodes by CLIP similarity to a text and/or an image; the index is kept up to "
                    "date on every call (new episodes are embedded and added).")
    se.add_argument("text", nargs="?", default=None, help='e.g. "place the red cube on the left"')
    se.add_argument("--image", type=existing_file, default=None, help="query image (PNG/JPEG); with text, both count")
    se.add_argument("--k", type=int, default=10, help="episodes to return (default 10)")
    se.add_argument("--filter", default=None, metavar="QUERY",
                    help='only episodes this library query selects, e.g. "source:sim -success:false"')
    se.add_argument("--sheet", type=Path, default=None, help="write a contact sheet PNG of the hits")
    se.add_argument("--json", action="store_true", help="print JSON for scripts")
    se.add_argument("--kinds", default="keyframe", help="rows to match: keyframe, text or keyframe,text")
    se.add_argument("--model", default=None,
                    help="open_clip architecture or local-dir:PATH (default: the newest model `clip train` made)")
    se.add_argument("--pretrained", default=None, help="weights for --model (file, folder or cached tag)")
    se.add_argument("--index", choices=("auto", "exact", "ivf", "hnsw"), default="auto",
                    help="index kind for a new index (default auto: exact up to 20k rows, then IVF)")
    add_library_arg(se)
    se.set_defaults(func=_search)


def _fmt(x: float | None) -> str:
    return "      n/a" if x is None else f"{x:9.3f}"


def _workspace_box(args):
    from robot_irl.retrieval.crop import parse_box

    if args.whole_frames:
        return None
    return "model" if args.workspace is None else parse_box(args.workspace, field="--workspace")


def _check_train_args(args) -> None:
    """Checks that answer before torch or Ray load."""
    from robot_irl.errors import InputError

    if args.workers < 1:
        raise InputError(f"--workers {args.workers}", field="--workers", expected="1 or more")
    if args.batch_size < 2 * args.workers:
        raise InputError(f"--batch-size {args.batch_size} for {args.workers} workers", field="--batch-size",
                         expected=f"at least 2 pairs per worker ({2 * args.workers})")
    if args.threads < 1:
        raise InputError(f"--threads {args.threads}", field="--threads", expected="1 or more")
    if args.workers == 1:
        for flag, given in (("--ray", args.ray is not None), ("--resume", args.resume)):
            if given:
                print(f"note: {flag} does nothing with one worker (the single-process trainer); ignored",
                      file=sys.stderr)


def _train(args) -> int:
    import math

    _check_train_args(args)
    from robot_irl.library import Library
    from robot_irl.retrieval.library_clip import train_library_clip
    from robot_irl.retrieval.models import DEFAULT_DOMAIN_MODEL

    lib = Library.open(args.library)
    query = " ".join(args.query)
    fig = train_library_clip(
        lib, seconds=math.inf if args.minutes is None else 60 * args.minutes, epochs=args.epochs, query=query,
        heldout_query=args.heldout, seed=args.seed, out_dir=args.out, arch=args.model or DEFAULT_DOMAIN_MODEL,
        pretrained=args.pretrained, frames_per_episode=args.frames_per_episode, batch_size=args.batch_size,
        lr=args.lr, threads=args.threads, workspace_box=_workspace_box(args), progress=not args.quiet,
        workers=args.workers, ray_address=args.ray, resume=args.resume)
    loss = float("nan") if fig["final_loss"] is None else fig["final_loss"]
    if fig["workers"] > 1:
        print(f"{fig['workers']} Ray Train workers, global batch {args.batch_size} pairs"
              + (f"; resumed at step {fig['resumed_at_step']}" if fig["resumed_at_step"] else ""))
    print(f"trained on {fig['pairs']} frames of {fig['train_episodes']} episodes ({fig['heldout_episodes']} held out, "
          f"{fig['variants']} variants): {fig['steps']} steps, {fig['epochs']} epochs ({fig['stopped_by']}), "
          f"{fig['pairs_per_s']:.0f} pairs/s ({fig['cpu_s_per_pair'] * 1000:.1f} CPU-ms per pair), final loss {loss:.3f}")
    print(f"{'':>13} {'text R@5':>9} {'image R@1':>9}   (held-out captions; held-out episodes' frames)")
    print(f"{'trained':>13} {_fmt(fig['text_recall5'])} {_fmt(fig['image_recall1'])}")
    print(f"{fig['baseline']:>13} {_fmt(fig['random_text_recall5'])} {_fmt(fig['random_image_recall1'])}")
    print(f"{'chance':>13} {_fmt(fig['chance_text_recall5'])} {_fmt(fig['chance_image_recall1'])}")
    for note in chance_notes(fig):
        print(f"note: {note}")
    print(f"model {fig['model_id']} saved to {fig['model_dir']}; index {fig['index_rows']} rows ({fig['index_kind']})")
    print(f'next: robot-irl search "{lib.select(query)[0].task}" --library {lib.path}')
    if args.json_out is not None:
        from robot_irl.core.io import atomic_write_json

        atomic_write_json(args.json_out, fig)
    return 0


def chance_notes(fig: dict) -> list[str]:
    """Why a row can read oddly: with few episodes, chance is high (5 random picks out of 12 nearly
    always include a match), and an untrained model is not a random ranking: it puts the same few
    episodes first for every query, so it can score below chance."""
    notes = []
    for what, k, key in (("text", "5", "text_recall5"), ("image", "1", "image_recall1")):
        chance, start = fig.get(f"chance_{key}"), fig.get(f"random_{key}")
        if chance is None:
            continue
        if start is not None and chance > start:
            notes.append(f"{what} R@{k}: chance ({chance:.3f}) is above the {fig['baseline']} model ({start:.3f}): "
                         f"an untrained model ranks the same few episodes first for every query, which does worse "
                         f"than random picks")
        if chance >= 0.5:
            notes.append(f"{what} R@{k}: chance is {chance:.3f} with {fig['episodes']} "
                         f"episodes, so figures near 1 say little; record more episodes per variant for a sharper test")
    return notes


def _embed(args) -> int:
    from robot_irl.errors import InputError
    from robot_irl.library import Library

    if args.threads < 1:
        raise InputError(f"--threads {args.threads}", field="--threads", expected="1 or more")
    lib = Library.open(args.library)
    query = " ".join(args.query)
    if not lib.select(query):
        raise InputError(f"no episode matches {query!r}" if query else "the library has no episodes", file=lib.path,
                         field="query", expected="a query that selects recorded episodes (robot-irl record ...)")
    from robot_irl.retrieval.embed_batch import embed_library   # torch (and with --ray, Ray) from here on

    s = embed_library(lib, query, model=args.model, pretrained=args.pretrained, seed=args.seed, ray=args.ray,
                      force=args.force, threads=args.threads, index_backend=args.index,
                      progress=not (args.quiet or args.json))
    if args.json:
        json.dump(s.to_dict(), sys.stdout, indent=2)
        print()
    else:
        print(format_table(["model", "selected", "embedded", "skipped", "no video", "failed", "index rows"],
                           [[s.model_id, s.selected, len(s.embedded), len(s.skipped), len(s.no_video), len(s.failed),
                             "not updated" if s.index_rows is None else s.index_rows]]))
        if s.skipped:
            print(f"note: {len(s.skipped)} episode(s) already held this model's embeddings (--force redoes them)")
        if s.not_indexed:
            print(f"note: index not updated: {len(s.not_indexed)} library episode(s) have no embeddings for this model "
                  f"yet (e.g. {s.not_indexed[0]}); embed them (clip embed without a query) or `search` will")
    if s.failed:   # each was printed as it failed
        print(f"embedded {len(s.embedded)} of {len(s.embedded) + len(s.failed)}; {len(s.failed)} failed: "
              + ", ".join(s.failed), file=sys.stderr)
    return 1 if s.failed else 0


def _search(args) -> int:
    from robot_irl.errors import InputError
    from robot_irl.library import Library

    if args.text is None and args.image is None:
        raise InputError("nothing to search for", field="query", expected='a text ("place the red cube") and/or --image')
    lib = Library.open(args.library)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    episodes = None if args.filter is None else {r["id"] for r in lib.rows(args.filter)}
    # torch loads from here on: the checks above answer in well under a second
    from robot_irl.retrieval.library_index import iter_frames, library_crop, library_encoder, library_index
    from robot_irl.retrieval.search import Searcher
    from robot_irl.retrieval.sheet import write_contact_sheet

    enc = library_encoder(lib, args.model, args.pretrained)
    index, rep = library_index(lib, enc, backend=args.index, progress=not args.json)
    crop = library_crop(lib, enc.workspace_box) if args.image is not None else None
    hits = Searcher(enc, index, crop).search(args.text, args.image, k=args.k, episodes=episodes, kinds=kinds)
    if args.sheet is not None and hits:
        write_contact_sheet(args.sheet, hits, list(iter_frames(lib, hits)),
                            title=args.text or f"image {args.image.name}")
    if args.json:
        json.dump({"query": args.text, "image": None if args.image is None else str(args.image),
                   "model_id": enc.model_id, "filter": args.filter, "index": index.ann_info.kind,
                   "rows": len(index), "embedded_now": rep.embedded, "sheet": None if args.sheet is None else str(args.sheet),
                   "hits": [h.to_dict() for h in hits]}, sys.stdout, indent=2)
        print()
        return 0
    if rep.embedded:
        print(f"embedded {rep.embedded} new episodes; index has {len(index)} rows ({index.ann_info.kind})")
    if not hits:
        print("no episodes match" + ("" if args.filter is None else f" the filter {args.filter!r}"))
    for h in hits:
        when = "" if h.time is None else f" t={h.time:.2f}s"
        print(f"{h.rank:>3}. {h.score:.3f}  {h.episode_id}  frame {h.frame}{when}")
    if args.sheet is not None and hits:
        print(f"contact sheet: {args.sheet}")
    return 0
