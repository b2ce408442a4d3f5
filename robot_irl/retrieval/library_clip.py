"""One call from a demo library to a trained, indexed domain CLIP, with the figures that say
whether it learnt anything; and example queries with contact sheets to look at.

Why one call: the quickstart (and `scripts/eval_search.py`) need "train for N seconds, then tell
me how good search is" without wiring frames, captions, held-out splits and indexes by hand.
Every episode is decoded once: its training frames, keyframes and a probe frame are resized to
the model's input size and kept as uint8 arrays, so the random-init baseline, the trained model
and the stored embeddings all reuse them.

Honest evaluation: text queries use only the "heldout" caption templates (sentence frames never
trained on); image queries are frames of episodes left out of training, searched against all
other episodes. A hit is an episode of the queried variant (task, shape, colour, goal). Each
held-out episode gives PROBES evenly spaced frames as image queries (the middle one among them,
reported on its own too): one frame per episode made the figure swing by 1/48 per frame and
depend on whether the middle of a motion happens to hide the object behind the gripper.

``held_per_variant=2`` (what scripts/eval_search.py uses) measures only on what the model has not
seen: the two newest episodes of every variant with at least three are held out; text queries
search an index of held-out episodes only, and each held-out episode's probe frames search the
other held-out episodes (the match is the other held-out episode of its variant). Beside the
model: two non-learned baselines on the same crop and pixels (colour histogram and raw-pixel
nearest neighbour, ``pixel_baselines``). With 1 (the default, the quickstart's), the index is
every episode, ~90 % of them training episodes.
"""
from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from robot_irl.errors import InputError
from robot_irl.retrieval.captions import CaptionFacts, captions
from robot_irl.retrieval.crop import Box, crop_frames, episode_rect, parse_box
from robot_irl.retrieval.encoders import ClipEncoder, load_encoder
from robot_irl.retrieval.index import EmbeddingIndex
from robot_irl.retrieval.library_index import (CAMERA, episode_facts, frames_at, iter_frames, keyframes,
                                               library_encoder, library_index, new_model_dir, phases,
                                               store_embeddings)
from robot_irl.retrieval.models import DEFAULT_DOMAIN_MODEL
from robot_irl.retrieval.search import Searcher, search_vector
from robot_irl.retrieval.sheet import write_contact_sheet
from robot_irl.retrieval.train import TrainConfig, train_clip

if TYPE_CHECKING:
    from robot_irl.library import Episode, Library

PROBES = 5  # image queries per held-out episode: frames at (i + 0.5) / PROBES of its length


@dataclass
class EpisodeFrames:
    """What one decode of an episode yields, at the model's input size (uint8 [N, S, S, 3])."""

    episode_id: str
    facts: CaptionFacts
    keyframes: np.ndarray  # frame indices
    keyframe_pixels: np.ndarray
    train_pixels: np.ndarray
    train_phases: list[str | None]
    probes: np.ndarray  # PROBES evenly spaced frames: the image queries when the episode is held out
    probe_middle: int  # which of the probes is the episode's middle frame

    @property
    def key(self) -> tuple[Any, ...]:
        return self.facts.key()


def read_episode(ep: "Episode", encoder: ClipEncoder, frames_per_episode: int = 12,
                 camera: str = CAMERA) -> EpisodeFrames | None:
    """Decode the episode once and keep its keyframes, training frames and probe frames, cut to
    the workspace (see crop.py) and resized to the encoder's input size; None for an episode
    without frames."""
    n = ep.frame_count(camera)
    if n == 0:
        return None
    kf = keyframes(ep, camera)
    tr = np.unique(np.linspace(0, n - 1, min(n, frames_per_episode)).round().astype(int))
    mid = n // 2
    spaced = np.minimum(((np.arange(PROBES) + 0.5) * n / PROBES).astype(int), n - 1)
    probes = sorted(set(spaced.tolist()) | {mid})  # an odd PROBES already holds the middle frame
    want = sorted(set(kf.tolist()) | set(tr.tolist()) | set(probes))
    pixels = crop_frames(frames_at(ep, camera, want), episode_rect(ep, camera, encoder.workspace_box))
    small = encoder.resize(pixels).permute(0, 2, 3, 1).contiguous().numpy()
    row = {f: i for i, f in enumerate(want)}
    return EpisodeFrames(
        episode_id=ep.id, facts=episode_facts(ep), keyframes=kf,
        keyframe_pixels=small[[row[f] for f in kf.tolist()]], train_pixels=small[[row[f] for f in tr.tolist()]],
        train_phases=phases(ep, ep.timestamps(camera)[tr]), probes=small[[row[f] for f in probes]],
        probe_middle=probes.index(mid))


def embed_keyframes(encoder: ClipEncoder, episodes: Sequence[EpisodeFrames]) -> list[np.ndarray]:
    """Keyframe vectors per episode, encoded as one stream of batches."""
    allpix = np.concatenate([e.keyframe_pixels for e in episodes])
    vecs = encoder.encode_images(allpix)
    cuts = np.cumsum([len(e.keyframe_pixels) for e in episodes])[:-1]
    return np.split(vecs, cuts)


def keyframe_index(encoder: ClipEncoder, episodes: Sequence[EpisodeFrames],
                   vectors: Sequence[np.ndarray]) -> EmbeddingIndex:
    """An in-memory exact index of keyframe rows (nothing written to the library)."""
    idx = EmbeddingIndex(encoder.model_id, encoder.embed_dim, backend="exact")
    for e, v in zip(episodes, vectors):
        idx.add(v, e.episode_id, e.keyframes, kinds="keyframe")
    return idx


def chance_recall(n_total: int, n_match: int, k: int) -> float:
    """P(at least one of k draws without replacement from n_total lands in the n_match)."""
    k = min(k, n_total)
    return 1.0 - math.comb(n_total - n_match, k) / math.comb(n_total, k)


def retrieval_figures(encoder: ClipEncoder, index: EmbeddingIndex, episodes: Sequence[EpisodeFrames],
                      held: set[str], k_text: int = 5, held_only: bool = False) -> dict[str, Any]:
    """text→episode recall@k_text over held-out caption templates (one query per variant and
    template) and image→episode recall@1 (each probe frame of each held-out episode against the
    other episodes; `image_recall1_middle` for the middle frames alone), with chance levels for
    the same variant counts. ``held_only``: queries and index restricted to the held-out episodes."""
    if held_only:
        episodes = [e for e in episodes if e.episode_id in held]
        allowed = {e.episode_id for e in episodes}
        index_filter = lambda eid: eid in allowed  # noqa: E731
    else:
        index_filter = None
    key_of = {e.episode_id: e.key for e in episodes}
    count: dict[tuple[Any, ...], int] = {}
    for k in key_of.values():
        count[k] = count.get(k, 0) + 1
    n = len(episodes)
    facts = {e.key: e.facts.variant() for e in episodes}
    queries = [(key, q) for key in sorted(facts, key=repr) for q in captions(facts[key], "heldout")]
    text_hits, text_chance = [], []
    for (key, _), v in zip(queries, encoder.encode_texts([q for _, q in queries])):
        hits = search_vector(index, v, k_text, episodes=index_filter)
        text_hits.append(any(key_of[h.episode_id] == key for h in hits))
        text_chance.append(chance_recall(n, count[key], k_text))
    probes = [e for e in episodes if e.episode_id in held]
    img_hits, img_chance, middle_hits = [], [], []
    if probes and n > 1:
        pv = np.split(encoder.encode_images(np.concatenate([e.probes for e in probes])),
                      np.cumsum([len(e.probes) for e in probes])[:-1])
        for e, vs in zip(probes, pv):
            for i, v in enumerate(vs):
                hits = search_vector(index, v, 1, episodes=lambda eid, me=e.episode_id: eid != me and eid in key_of)
                hit = bool(hits) and key_of[hits[0].episode_id] == e.key
                img_hits.append(hit)
                img_chance.append((count[e.key] - 1) / (n - 1))
                if i == e.probe_middle:
                    middle_hits.append(hit)
    mean = lambda xs: float(np.mean(xs)) if xs else None  # noqa: E731
    return {"text_recall5": mean(text_hits), "chance_text_recall5": mean(text_chance),
            "image_recall1": mean(img_hits), "image_recall1_middle": mean(middle_hits),
            "chance_image_recall1": mean(img_chance),
            "text_queries": len(text_hits), "image_queries": len(img_hits)}


def pixel_baselines(episodes: Sequence[EpisodeFrames], held: set[str], held_only: bool = False) -> dict[str, Any]:
    """Non-learned image→episode recall@1 with the same probes, index rows (keyframes), crop and
    pixels as the model: colour histogram (8 bins per channel, joint, L1 distance) and raw pixels
    (16x16 block means, mean-centred, cosine)."""
    pool = [e for e in episodes if e.episode_id in held] if held_only else list(episodes)
    probes = [e for e in pool if e.episode_id in held]
    if not probes or len(pool) < 2:
        return {"hist_image_recall1": None, "pixel_image_recall1": None}

    def hist(px: np.ndarray) -> np.ndarray:
        b = (px.astype(np.int64) // 32).reshape(len(px), -1, 3)
        codes = b[..., 0] * 64 + b[..., 1] * 8 + b[..., 2]
        h = np.stack([np.bincount(c, minlength=512) for c in codes]).astype(float)
        return h / h.sum(1, keepdims=True)

    def small(px: np.ndarray) -> np.ndarray:
        n, S = len(px), px.shape[1]
        g = S // 16
        v = px[:, :g * 16, :g * 16].astype(float).reshape(n, 16, g, 16, g, 3).mean((2, 4)).reshape(n, -1)
        v -= v.mean(1, keepdims=True)
        return v / np.linalg.norm(v, axis=1, keepdims=True).clip(min=1e-9)

    rows_ep = np.concatenate([[i] * len(e.keyframe_pixels) for i, e in enumerate(pool)])
    out = {}
    for name, feat, dist in (("hist", hist, lambda q, R: np.abs(R - q).sum(1)),
                             ("pixel", small, lambda q, R: -(R @ q))):
        R = feat(np.concatenate([e.keyframe_pixels for e in pool]))
        hits = []
        for i, e in enumerate(pool):
            if e.episode_id not in held:
                continue
            for q in feat(e.probes):
                d = dist(q, R)
                d[rows_ep == i] = np.inf           # not the query's own episode
                hits.append(pool[int(rows_ep[int(np.argmin(d))])].key == e.key)
        out[f"{name}_image_recall1"] = float(np.mean(hits))
    return out


def _held_out(lib: "Library", frames: Sequence[EpisodeFrames], heldout_query: str | None,
              per_variant: int = 1) -> set[str]:
    """Episodes kept out of training: those `heldout_query` selects, else the newest `per_variant`
    episodes of every variant that has more (so training still sees every variant)."""
    if heldout_query is not None:
        return {ep.id for ep in lib.select(heldout_query)} & {e.episode_id for e in frames}
    by_key: dict[tuple[Any, ...], list[str]] = {}
    for e in frames:  # lib.select returns oldest first
        by_key.setdefault(e.key, []).append(e.episode_id)
    return {i for ids in by_key.values() if len(ids) > per_variant for i in ids[-per_variant:]}


def train_library_clip(lib: "Library", *, seconds: float, query: str | None = None,
                       heldout_query: str | None = None, seed: int = 0, out_dir: str | Path | None = None,
                       arch: str = DEFAULT_DOMAIN_MODEL, pretrained: str | None = None, epochs: int | None = None,
                       frames_per_episode: int = 12, batch_size: int = 64, lr: float = 1e-3,
                       warmup_steps: int = 20, threads: int | None = 1, workspace_box: Box | None | str = "model",
                       held_per_variant: int = 1, progress: bool = False, workers: int = 1,
                       ray_address: str | None = None, resume: bool = False) -> dict[str, Any]:
    """Train the project's small CLIP on the selected episodes' frames + captions for at most
    `seconds` of training (math.inf with `epochs` for an epoch bound only), save it as the
    library's model (newest under <library>/models/clip unless out_dir), store its embeddings for
    every library episode and index them; return the figures (trained vs the starting model vs
    chance) and the model folder. See the module docstring for how the figures are measured.

    arch: open_clip architecture or local-dir:PATH; pretrained: weights to fine-tune from. The
    `random_*` figures are the starting model's: random init unless fine-tuning (`baseline` says).
    workspace_box: the base-frame box frames are cut to (crop.py), None for whole frames; "model"
    keeps the starting model's (WORKSPACE_BOX for a new one). Saved with the trained model.
    held_per_variant: episodes held out per variant; 2 or more measures on held-out episodes only
    (see the module docstring).
    threads: torch intra-op threads during the call (restored after). 1 by default: on shared,
    loaded cores OpenMP spin-waiting made 2 threads ~9x slower than 1 (8.6 vs 78 pairs/s at load
    average 7.7 on 2 cores); None leaves torch's setting. With workers, each worker's threads.
    workers: more than 1 trains data-parallel on Ray Train (train_ray.py; the same global batches,
    ``batch_size`` pairs each, split across the workers), on a local Ray runtime or the cluster at
    ``ray_address``; ``resume`` continues an interrupted run with the same settings from its
    newest checkpoint. 1 is the single-process trainer and imports no Ray.
    """
    import torch

    if not seconds > 0:
        raise InputError(f"seconds={seconds}", field="seconds", expected="a training time bound > 0")
    if math.isinf(seconds) and epochs is None:
        raise InputError("no bound on training", field="epochs", expected="a finite `seconds` or `epochs`")
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        cfg = TrainConfig(epochs=100_000 if epochs is None else epochs,
                          max_seconds=None if math.isinf(seconds) else float(seconds),
                          batch_size=batch_size, lr=lr, warmup_steps=warmup_steps, seed=seed)
        return _train_library_clip(lib, cfg, query, heldout_query, out_dir, arch, pretrained, frames_per_episode,
                                   workspace_box, progress, held_per_variant,
                                   _Workers(workers, ray_address, resume, threads or 1))
    finally:
        torch.set_num_threads(before)


@dataclass
class _Workers:
    """Where the training runs: one process, or Ray Train workers."""

    n: int = 1
    address: str | None = None
    resume: bool = False
    threads: int = 1


def _train_library_clip(lib: "Library", cfg: TrainConfig, query: str | None, heldout_query: str | None,
                        out_dir: str | Path | None, arch: str, pretrained: str | None, frames_per_episode: int,
                        workspace_box: Box | None | str, progress: bool, held_per_variant: int = 1,
                        workers: _Workers | None = None) -> dict[str, Any]:
    from tqdm.auto import tqdm

    episodes = lib.select(query or "")
    if not episodes:
        raise InputError("no episodes selected", file=lib.path, field="query",
                         expected="a query that selects recorded episodes (robot-irl record ...)")
    start = load_encoder(arch, pretrained, seed=cfg.seed)
    if workspace_box != "model":
        start.workspace_box = None if workspace_box is None else parse_box(workspace_box)
    baseline = "random init" if start.source.kind == "random" else "start weights"
    frames = [f for ep in tqdm(episodes, desc="read frames", unit="ep", disable=not progress)
              if (f := read_episode(ep, start, frames_per_episode)) is not None]
    if not frames:
        raise InputError("selected episodes have no frames", field=f"cameras.{CAMERA}", expected="recorded video")
    held = _held_out(lib, frames, heldout_query, held_per_variant)
    held_only = held_per_variant >= 2
    train = [f for f in frames if f.episode_id not in held]
    if not train:
        raise InputError("every selected episode is held out", field="heldout_query",
                         expected="a held-out query that leaves episodes to train on")

    random_vecs = embed_keyframes(start, frames)
    random_fig = retrieval_figures(start, keyframe_index(start, frames, random_vecs), frames, held, held_only=held_only)
    base = pixel_baselines(frames, held, held_only)

    images, caps, keys = [], [], []
    for f in train:
        for px, ph in zip(f.train_pixels, f.train_phases):
            images.append(px)
            caps.append(captions(CaptionFacts(f.facts.task, f.facts.shape, f.facts.colour, f.facts.goal, ph,
                                              f.facts.task_text), "train"))
            keys.append(f.key)
    info = {"library": str(lib.path), "query": query or "", "heldout": sorted(held), "episodes": len(train),
            "start": start.model_id}
    workers = workers or _Workers()
    arch_name = start.source.arch
    if workers.n > 1:
        from robot_irl.retrieval.train import prepare_pairs
        from robot_irl.retrieval.train_ray import staging_dir, train_clip_ray

        data = prepare_pairs(start, np.stack(images), caps, keys)   # checked before Ray starts
        settings = {"train": sorted(f.episode_id for f in train), "start": start.model_id, "arch": start.source.arch,
                    "box": start.workspace_box, "frames_per_episode": frames_per_episode, "config": asdict(cfg),
                    "workers": workers.n}
        res = train_clip_ray(start, data, config=cfg, workers=workers.n, storage=staging_dir(lib.path, settings),
                             resume=workers.resume, address=workers.address, threads=workers.threads,
                             out_dir=Path(out_dir) if out_dir is not None else lambda: new_model_dir(lib, arch_name),
                             progress=progress, info=info)
    else:
        out = Path(out_dir) if out_dir is not None else new_model_dir(lib, start.source.arch)
        res = train_clip(start, np.stack(images), caps, keys=keys, config=cfg, out_dir=out, progress=progress,
                         info=info)
    enc = res.encoder

    vecs = embed_keyframes(enc, frames)
    fig = retrieval_figures(enc, keyframe_index(enc, frames, vecs), frames, held, held_only=held_only)
    for f, v in zip(frames, vecs):  # store what we computed; library_index embeds the rest
        store_embeddings(lib.episode(f.episode_id), enc, f.keyframes, v)
    index, _ = library_index(lib, enc, progress=progress)
    return {
        "model_dir": str(res.path), "model_id": enc.model_id, "arch": start.source.arch, "baseline": baseline,
        "episodes": len(frames), "train_episodes": len(train), "heldout_episodes": len(held),
        "variants": len({f.key for f in frames}), "pairs": len(images), "steps": res.steps,
        "epochs": len(res.history), "train_seconds": res.seconds, "pairs_per_s": res.pairs_per_s,
        "pairs_seen": res.pairs_seen, "train_cpu_seconds": res.cpu_seconds,
        "cpu_s_per_pair": res.cpu_seconds / max(res.pairs_seen, 1),
        "stopped_by": res.stopped_by, "workers": res.workers, "resumed_at_step": res.resumed_at_step, "final_loss": res.history[-1]["loss"] if res.history else None,
        "text_recall5": fig["text_recall5"], "random_text_recall5": random_fig["text_recall5"],
        "chance_text_recall5": fig["chance_text_recall5"],
        "image_recall1": fig["image_recall1"], "random_image_recall1": random_fig["image_recall1"],
        "image_recall1_middle": fig["image_recall1_middle"],
        "chance_image_recall1": fig["chance_image_recall1"],
        "text_queries": fig["text_queries"], "image_queries": fig["image_queries"],
        **base, "baseline_image_recall1": max((v for v in base.values() if v is not None), default=None),
        "protocol": "held-out episodes only" if held_only else "held-out queries, index of all episodes",
        "index_rows": len(index), "index_kind": index.ann_info.kind,
    }


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "query"


def example_queries(lib: "Library", queries: Sequence[str], k: int = 5, sheet_dir: str | Path = ".", *,
                    model: str | None = None) -> list[dict[str, Any]]:
    """Search the library with each text query (newest trained model unless `model`), write one
    contact sheet PNG per query into sheet_dir, and return per query its ranked hits (episode id,
    score, best frame, task text, variant) and the sheet path."""
    if isinstance(queries, str) or not queries:
        raise InputError("no queries", field="queries", expected='a list of texts, e.g. ["place the red cube"]')
    enc = library_encoder(lib, model)
    index, _ = library_index(lib, enc)
    searcher = Searcher(enc, index)
    sheet_root = Path(sheet_dir)
    sheet_root.mkdir(parents=True, exist_ok=True)
    out = []
    for i, q in enumerate(queries):
        hits = searcher.search(q, k=k)
        sheet = write_contact_sheet(sheet_root / f"{i:02d}-{_slug(q)}.png", hits, list(iter_frames(lib, hits)),
                                    title=q) if hits else None
        rows = []
        for h in hits:
            ep = lib.episode(h.episode_id)
            rows.append({**h.to_dict(), "task": ep.task, "variant": ep.variant})
        out.append({"query": q, "sheet": None if sheet is None else str(sheet), "hits": rows})
    return out
