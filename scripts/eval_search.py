"""Acceptance figures for CLIP search over a sim library (issue 7).

Builds a sim library of >= 300 episodes over 48 variants (task Place/Push/Reach x shape x colour x
goal region), holds out one episode per variant, trains the project's own CLIP on frames of the
rest (captions from the "train" templates), then measures, for the trained and a random-init
model, with chance beside them:
  text -> episode recall@5: queries are "heldout" captions (sentence frames never trained on);
      a hit is any of the top 5 episodes being of the queried variant;
  image -> episode recall@1: the query is a frame of a held-out episode, the index all other
      episodes; a hit is the top episode being of the same variant.
Last line: one JSON object.

    nice -n 10 .venv/bin/python scripts/eval_search.py                 # ~20 min on 2 cores
    .venv/bin/python scripts/eval_search.py --per-variant 2 --minutes 1  # smoke run (figures low)
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import time
from pathlib import Path

import numpy as np

from robot_irl.library import Library
from robot_irl.retrieval.captions import captions
from robot_irl.retrieval.encoders import ClipEncoder, load_encoder
from robot_irl.retrieval.library_index import CAMERA, episode_facts, library_index, training_pairs
from robot_irl.retrieval.search import search_vector
from robot_irl.retrieval.train import TrainConfig, train_clip

TASKS = ("robot_irl/Place-v0", "robot_irl/Push-v0", "robot_irl/Reach-v0")
SHAPES = ("cube", "cylinder")
COLORS = ("red", "green", "blue", "yellow")
GOALS = ("left", "right")


def build_library(path: Path, per_variant: int, render: tuple[int, int]) -> Library:
    from tqdm.auto import tqdm

    from robot_irl.record.sim import record_sim

    lib = Library.open(path, create=True)
    variants = list(itertools.product(TASKS, SHAPES, COLORS, GOALS))
    if len(lib.ids()) >= per_variant * len(variants):
        return lib
    for i, (env, shape, color, goal) in enumerate(tqdm(variants, desc="record variants", unit="variant")):
        record_sim(lib, env, episodes=per_variant, seed=1000 * i, render_size=render,
                   variant={"shape": shape, "color": color, "goal_region": goal})
    return lib


def variant_key(ep) -> tuple:
    return episode_facts(ep).key()


def chance_recall(n_total: int, n_match: int, k: int) -> float:
    """P(at least one of k random draws without replacement matches)."""
    return 1.0 - math.comb(n_total - n_match, k) / math.comb(n_total, k)


def evaluate(lib: Library, enc: ClipEncoder, held: dict[str, tuple]) -> dict[str, float]:
    index, _ = library_index(lib, enc)
    key_of = {eid: variant_key(lib.episode(eid)) for eid in index.episodes()}
    # text -> episode recall@5 over held-out caption frames, one query per variant and template
    text_hits, queries = [], []
    for key in sorted(set(key_of.values())):
        ep = next(e for e in index.episodes() if key_of[e] == key)
        for q in captions(episode_facts(lib.episode(ep)).variant(), "heldout"):
            queries.append((key, q))
    qv = enc.encode_texts([q for _, q in queries])
    for (key, _), v in zip(queries, qv):
        hits = search_vector(index, v, 5)
        text_hits.append(any(key_of[h.episode_id] == key for h in hits))
    # image -> episode recall@1: a middle frame of each held-out episode, itself excluded
    img_hits = []
    for eid, key in held.items():
        ep = lib.episode(eid)
        frame = ep.frame(CAMERA, ep.frame_count(CAMERA) // 2)
        others = set(index.episodes()) - {eid}
        hits = search_vector(index, enc.encode_images([frame])[0], 1, episodes=others)
        img_hits.append(key_of[hits[0].episode_id] == key)
    return {"text_recall5": float(np.mean(text_hits)), "image_recall1": float(np.mean(img_hits)),
            "text_queries": len(text_hits), "image_queries": len(img_hits)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--library", type=Path, default=Path("/tmp/robot-irl-eval-search"),
                    help="library folder (reused when it already holds enough episodes)")
    ap.add_argument("--per-variant", type=int, default=7, help="episodes per variant (48 variants)")
    ap.add_argument("--render", type=int, nargs=2, default=(160, 120), metavar=("W", "H"))
    ap.add_argument("--arch", default="robot-irl-clip-96")
    ap.add_argument("--minutes", type=float, default=9.0, help="training time bound")
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=48)
    ap.add_argument("--frames-per-episode", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    t0 = time.perf_counter()
    lib = build_library(args.library, args.per_variant, tuple(args.render))
    episodes = lib.select("")
    by_variant: dict[tuple, list] = {}
    for ep in episodes:
        by_variant.setdefault(variant_key(ep), []).append(ep)
    held = {eps[-1].id: key for key, eps in by_variant.items()}
    train_eps = [ep for ep in episodes if ep.id not in held]
    print(f"library {lib.path}: {len(episodes)} episodes, {len(by_variant)} variants, "
          f"{len(held)} held out ({time.perf_counter() - t0:.0f} s)", flush=True)

    random_enc = load_encoder(args.arch, seed=args.seed)
    random_fig = evaluate(lib, random_enc, held)
    print(f"random init: text R@5 {random_fig['text_recall5']:.3f}  image R@1 {random_fig['image_recall1']:.3f}", flush=True)

    pairs = training_pairs(train_eps, random_enc, frames_per_episode=args.frames_per_episode, progress=True)
    cfg = TrainConfig(epochs=args.epochs, max_seconds=60 * args.minutes, batch_size=args.batch_size, seed=args.seed)
    out = lib.path / "models" / "clip" / f"eval-{args.arch}"
    t1 = time.perf_counter()
    res = train_clip(random_enc, pairs.images, pairs.captions, keys=pairs.keys, config=cfg, out_dir=out,
                     info={"eval": "scripts/eval_search.py"})
    train_s = time.perf_counter() - t1
    print(f"trained {len(res.history)} epochs on {len(pairs.images)} pairs in {train_s:.0f} s "
          f"({res.pairs_per_s:.0f} pairs/s), final loss {res.history[-1]['loss']:.3f}", flush=True)
    fig = evaluate(lib, res.encoder, held)

    n = len(episodes)
    per = np.mean([len(v) for v in by_variant.values()])
    chance_t = chance_recall(n, int(round(per)), 5)
    chance_i = (per - 1) / (n - 1)
    print(f"{'':>12} {'text R@5':>9} {'image R@1':>10}")
    print(f"{'trained':>12} {fig['text_recall5']:9.3f} {fig['image_recall1']:10.3f}")
    print(f"{'random init':>12} {random_fig['text_recall5']:9.3f} {random_fig['image_recall1']:10.3f}")
    print(f"{'chance':>12} {chance_t:9.3f} {chance_i:10.3f}")
    print(json.dumps({
        "text_recall5": fig["text_recall5"], "image_recall1": fig["image_recall1"],
        "random_text_recall5": random_fig["text_recall5"], "random_image_recall1": random_fig["image_recall1"],
        "chance_text_recall5": chance_t, "chance_image_recall1": chance_i,
        "episodes": n, "variants": len(by_variant), "text_queries": fig["text_queries"],
        "image_queries": fig["image_queries"], "train_pairs": len(pairs.images), "train_s": train_s,
        "epochs": len(res.history), "pairs_per_s": res.pairs_per_s, "arch": args.arch,
        "model": str(res.path), "total_s": time.perf_counter() - t0}))


if __name__ == "__main__":
    main()
