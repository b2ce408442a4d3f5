"""Acceptance figures for CLIP search over a sim library (issue 7).

Builds a sim library of 480 episodes (10 per variant, rendered 320x240) over 48 variants (task
Place/Push/Reach x shape x colour x goal region), holds out the two newest episodes per variant
(``--held-per-variant``), trains the project's own CLIP on frames of the rest (captions from the
"train" templates), then measures on the held-out episodes only, for the trained and a random-init
model, with two non-learned baselines (colour histogram, raw-pixel kNN on the same crop) and
chance beside them:
  text -> episode recall@5: queries are "heldout" captions (sentence frames never trained on),
      searched in an index of the held-out episodes; a hit is any of the top 5 being of the
      queried variant;
  image -> episode recall@1: the queries are 5 evenly spaced frames of each held-out episode
      (the middle frame's figure printed too), the index the other held-out episodes; a hit is
      the top episode being the other held-out episode of its variant.
``--held-per-variant 1`` gives the old protocol (one held out, index of all episodes).
Seeds (``--seeds``, evalkit.py): each seed trains its own model (initialisation, frame sampling);
0-2 are development seeds, report seeds (100+) are run only to report. The library is recorded from
``--library-seed`` (default: 0 for development seeds, the first seed for report seeds), so a report
run's episodes, held out and trained on alike, are scenes nobody looked at while the recipe (crop box,
architecture, captions) was chosen on the development library. Mean and worst over the seeds are printed.
Training is bounded by epochs (``--epochs``, 25 = what 16 min reached on a quiet machine) so that a busy
machine changes the time it takes, not the figure; ``--minutes`` adds a time bound.
Last line: one JSON object (per-seed figures, text_recall5_min, image_recall1_min, seeds, data).

    nice -n 10 .venv/bin/python scripts/eval_search.py    # ~21 min on 2 quiet cores: 3 recording, 16 training
    .venv/bin/python scripts/eval_search.py --per-variant 2 --minutes 1  # smoke run (figures low)
    .venv/bin/python scripts/eval_search.py --query variant.color=red --batch-size 12 --minutes 3
        # 12 variants (colour red), for iterating on the recipe in ~4 min
The work is robot_irl.retrieval.train_library_clip (held out: the newest episode of each variant).

``--workers 1,2`` compares data-parallel training (Ray Train, issue 17) with one process: every seed
is trained once per worker count on the same library and held-out episodes, with the same batches
(the same samples seen); the mean recall of each count and its difference from the first count
(per-seed spread beside it) are printed, and whether it is within 0.05. The acceptance comparison
(the lead schedules it: ~3-4 CPU-hours, see notes/scale.md):

    nice -n 10 .venv/bin/python scripts/eval_search.py --seeds 100-103 --workers 1,2
    .venv/bin/python scripts/eval_search.py --per-variant 3 --render 64 48 --query variant.color=red \
        --batch-size 12 --epochs 1 --seeds 0 --workers 1,2 --library /tmp/evs-smoke   # smoke run, ~3 min
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evalkit import DEV_SEEDS, mean_worst, parse_seeds, seed_kind  # noqa: E402
from robot_irl.library import Library  # noqa: E402
from robot_irl.retrieval.library_clip import train_library_clip  # noqa: E402

TASKS = ("robot_irl/Place-v0", "robot_irl/Push-v0", "robot_irl/Reach-v0")
SHAPES = ("cube", "cylinder")
COLORS = ("red", "green", "blue", "yellow")
GOALS = ("left", "right")


def build_library(path: Path, per_variant: int, render: tuple[int, int], library_seed: int = 0) -> Library:
    """The 48-variant sim library at ``path`` (reused when complete). Variant i's episodes are recorded
    from seed 1000 i + 100000 library_seed: library seed 0 is the development library."""
    from tqdm.auto import tqdm

    from robot_irl.record.sim import record_sim

    lib = Library.open(path, create=True)
    variants = list(itertools.product(TASKS, SHAPES, COLORS, GOALS))
    if lib.ids():
        if len(lib.ids()) < per_variant * len(variants):
            raise SystemExit(f"{path} holds {len(lib.ids())} episodes, fewer than {per_variant} x {len(variants)} "
                             "variants (an interrupted build?): remove it or pass another --library")
        return lib
    for i, (env, shape, color, goal) in enumerate(tqdm(variants, desc="record variants", unit="variant")):
        record_sim(lib, env, episodes=per_variant, seed=1000 * i + 100_000 * library_seed, render_size=render,
                   variant={"shape": shape, "color": color, "goal_region": goal})
    return lib


WITHIN = 0.05   # issue 17: N workers reach one worker's held-out recall within this, for the same samples seen


def _train_seed(lib: Library, args: argparse.Namespace, seed: int, workers: int, label: bool) -> dict:
    """Train one seed's model with ``workers`` processes and print its figures."""
    seconds = math.inf if args.minutes is None else 60 * args.minutes
    fig = train_library_clip(lib, seconds=seconds, epochs=args.epochs, seed=seed, arch=args.arch, query=args.query,
                             frames_per_episode=args.frames_per_episode, batch_size=args.batch_size,
                             lr=args.lr, warmup_steps=args.warmup, threads=args.threads,
                             held_per_variant=args.held_per_variant, progress=True, workers=workers)
    who = f"seed {seed}" + (f", {workers} worker(s)" if label else "")
    print(f"{who}: trained {fig['steps']} steps ({fig['epochs']} epochs) on {fig['pairs']} pairs of "
          f"{fig['train_episodes']} episodes in {fig['train_seconds']:.0f} s ({fig['pairs_per_s']:.0f} pairs/s), "
          f"final loss {fig['final_loss']:.3f}; {fig['heldout_episodes']} episodes held out", flush=True)
    print(f"{'':>12} {'text R@5':>9} {'image R@1':>10}")
    print(f"{'trained':>12} {fig['text_recall5']:9.3f} {fig['image_recall1']:10.3f}")
    print(f"{'random init':>12} {fig['random_text_recall5']:9.3f} {fig['random_image_recall1']:10.3f}")
    for name in ("hist", "pixel"):
        v = fig.get(f"{name}_image_recall1")
        print(f"{name + ' kNN':>12} {'':>9} {'-' if v is None else f'{v:10.3f}'}")
    print(f"{'chance':>12} {fig['chance_text_recall5']:9.3f} {fig['chance_image_recall1']:10.3f}")
    print(f"protocol: {fig['protocol']}")
    print(f"{fig['text_queries']} text queries, {fig['image_queries']} image queries; image R@1 on the middle "
          f"frames alone {fig['image_recall1_middle']:.3f}", flush=True)
    return fig


def _compare_workers(runs: dict[int, dict[int, dict]], counts: list[int], seeds: list[int]) -> dict:
    """Mean held-out recall of each worker count against the first count's, over the same seeds:
    the difference of means, the per-seed (paired) differences' spread, and whether it is within
    WITHIN. The same seed trains on the same batches either way (train_ray.py), so a seed pairs
    the two runs; the spread says how much one seed's difference is rounding drift and held-out noise."""
    import numpy as np

    out: dict = {}
    base = runs[counts[0]]
    for w in counts[1:]:
        for key in ("text_recall5", "image_recall1"):
            diffs = np.array([runs[w][s][key] - base[s][key] for s in seeds])
            d = float(diffs.mean())
            sd = float(diffs.std(ddof=1)) if len(diffs) > 1 else None
            out.update({f"diff_{key}_w{w}_w{counts[0]}": d, f"diff_{key}_w{w}_w{counts[0]}_sd": sd,
                        f"within_{key}_w{w}_w{counts[0]}": abs(d) <= WITHIN})
            print(f"{key}: {w} workers - {counts[0]}: mean difference {d:+.3f} over {len(seeds)} seed(s)"
                  + (f" (per-seed sd {sd:.3f})" if sd is not None else "")
                  + f", within {WITHIN}: {abs(d) <= WITHIN}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--library", type=Path, default=None,
                    help="library folder, reused when it already holds the episodes "
                         "(default /tmp/robot-irl-eval-search-<per-variant>x<W>x<H>)")
    ap.add_argument("--per-variant", type=int, default=10, help="episodes per variant (48 variants)")
    ap.add_argument("--render", type=int, nargs=2, default=(320, 240), metavar=("W", "H"),
                    help="render size; the workspace crop of a 320x240 frame is 163x112 px, enough for the "
                         "96 px model to see a cylinder's round top")
    ap.add_argument("--arch", default="robot-irl-rn-64")
    ap.add_argument("--epochs", type=int, default=25, help="training bound in epochs over the training pairs")
    ap.add_argument("--minutes", type=float, default=None, help="an added training time bound (default none)")
    ap.add_argument("--library-seed", type=int, default=None,
                    help="seed the library is recorded from (default 0 for development seeds, else the first seed)")
    ap.add_argument("--batch-size", type=int, default=48, help="<= variants: each batch then holds one frame per variant")
    ap.add_argument("--frames-per-episode", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1: on loaded shared cores 2 threads ran ~9x slower)")
    ap.add_argument("--seeds", default=DEV_SEEDS.split("-")[0],
                    help=f"training seeds, e.g. {DEV_SEEDS} (development) or 100-101 (report only)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=20, help="warmup steps")
    ap.add_argument("--held-per-variant", type=int, default=2,
                    help="episodes held out per variant; >= 2 measures on held-out episodes only")
    ap.add_argument("--query", default=None,
                    help="train and evaluate on the episodes this library query selects (fast iteration, e.g. "
                         "'variant.color=red': 12 variants)")
    ap.add_argument("--workers", default="1",
                    help="training processes (Ray Train data-parallel above 1): one count, or a comparison such as "
                         "'1,2' — every seed trained once per count, on the same library, held-out set and samples "
                         "seen; mean recall per count and its difference from the first count")
    args = ap.parse_args()
    try:
        counts = [int(w) for w in args.workers.split(",")]
    except ValueError:
        ap.error(f"--workers {args.workers!r}: expected worker counts such as 2 or 1,2")
    if not counts or min(counts) < 1 or len(set(counts)) != len(counts):
        ap.error(f"--workers {args.workers!r}: expected distinct counts >= 1")

    t0 = time.perf_counter()
    seeds = parse_seeds(args.seeds)
    library_seed = args.library_seed if args.library_seed is not None else (0 if seed_kind(seeds) == "dev" else seeds[0])
    suffix = "" if library_seed == 0 else f"-lib{library_seed}"
    path = args.library or Path(f"/tmp/robot-irl-eval-search-{args.per_variant}x{args.render[0]}x{args.render[1]}{suffix}")
    lib = build_library(path, args.per_variant, tuple(args.render), library_seed)
    print(f"library {lib.path}: {len(lib.ids())} episodes ({time.perf_counter() - t0:.0f} s)", flush=True)
    runs = {w: {seed: _train_seed(lib, args, seed, w, len(counts) > 1) for seed in seeds} for w in counts}
    out: dict = {}
    for w, per in runs.items():
        prefix = "" if len(counts) == 1 else f"w{w}_"
        for key in ("text_recall5", "image_recall1"):
            out[prefix + key], out[f"{prefix}{key}_min"] = mean_worst([per[s][key] for s in seeds],
                                                                      higher_is_better=True)
        print(f"{'' if len(counts) == 1 else f'{w} worker(s), '}over seeds {seeds} ({seed_kind(seeds)}): text R@5 mean "
              f"{out[prefix + 'text_recall5']:.3f}, worst {out[prefix + 'text_recall5_min']:.3f}; image R@1 mean "
              f"{out[prefix + 'image_recall1']:.3f}, worst {out[prefix + 'image_recall1_min']:.3f}")
        for s in seeds:
            out.update({f"{prefix}seed{s}_{k}": v for k, v in per[s].items()})
    first = runs[counts[0]][seeds[0]]
    out["baseline_image_recall1"] = first["baseline_image_recall1"]  # non-learned: the same every seed
    if len(counts) == 1:
        out["image_recall1_min_over_baseline"] = (None if out["baseline_image_recall1"] is None
                                                  else out["image_recall1_min"] - out["baseline_image_recall1"])
        print(f"non-learned baseline image R@1 {out['baseline_image_recall1']}")
    else:
        out.update(_compare_workers(runs, counts, seeds))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
