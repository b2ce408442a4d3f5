"""Train (or fine-tune) a CLIP on (frame, caption) pairs held in memory.

Why so small a trainer: the project's search must work with no downloaded weights, and a
7 M-parameter open_clip model trained from scratch on a few thousand library frames learns the
domain's words (verbs, shapes, colours, goals) in minutes on two CPU cores.
Batches never hold two pairs with the same key (by default the caption; callers pass the
episode variant): templated captions of one variant describe each other's frames, and ClipLoss
would push them apart as negatives.
"""
from __future__ import annotations

import copy
import math
import time
from collections import deque
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from open_clip import ClipLoss
from tqdm.auto import tqdm

from robot_irl.errors import InputError
from robot_irl.retrieval.encoders import ClipEncoder, load_encoder


@dataclass
class TrainConfig:
    epochs: int = 30
    max_seconds: float | None = None  # stop early after this much wall time
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup_steps: int = 20
    max_logit_scale: float = 100.0  # CLIP's clamp: beyond it training becomes unstable
    shift_px: int = 4  # random translation; no flips or colour jitter, they change the caption's truth
    seed: int = 0


@dataclass
class TrainResult:
    encoder: ClipEncoder
    history: list[dict[str, float]] = field(default_factory=list)
    stopped_by: str = "epochs"  # or "time"
    steps: int = 0
    seconds: float = 0.0
    pairs_per_s: float = 0.0
    path: Path | None = None
    step_losses: list[float] = field(default_factory=list)  # the (global) batch loss of every step
    workers: int = 1
    resumed_at_step: int = 0  # where a resumed run (train_ray) took up its checkpoint
    cpu_seconds: float = 0.0  # CPU time of the training loop, summed over workers
    pairs_seen: int = 0       # pairs trained on (summed over steps: the samples seen)


def distinct_key_batches(keys: Sequence[Hashable], batch_size: int, rng: np.random.Generator) -> Iterator[list[int]]:
    """Shuffled batches of indices in which no key repeats; items that would repeat a key wait
    for a later batch. Batches of one are dropped (a contrastive loss needs a negative)."""
    pending = deque(rng.permutation(len(keys)).tolist())
    while pending:
        batch: list[int] = []
        seen: set[Hashable] = set()
        deferred: list[int] = []
        while pending and len(batch) < batch_size:
            i = pending.popleft()
            if keys[i] in seen:
                deferred.append(i)
            else:
                batch.append(i)
                seen.add(keys[i])
        pending.extendleft(reversed(deferred))
        if len(batch) < 2:
            return
        yield batch


def shift_offsets(n: int, px: int, gen: torch.Generator) -> torch.Tensor | None:
    """Random translations for a batch of n images (None when px is 0). Drawn for the whole
    global batch even where workers train on parts of it, so every worker's generator stays in
    step with one process's."""
    return None if px <= 0 else torch.randint(0, 2 * px + 1, (n, 2), generator=gen)


def apply_shift(x: torch.Tensor, off: torch.Tensor | None, px: int) -> torch.Tensor:
    """Shift each image by its offset (replicating the border): per image, so a slice of a
    shifted batch equals the shift of the slice."""
    if off is None:
        return x
    _, _, h, w = x.shape
    padded = F.pad(x, (px, px, px, px), mode="replicate")
    return torch.stack([padded[i, :, a:a + h, b:b + w] for i, (a, b) in enumerate(off.tolist())])


@dataclass
class PairData:
    """The training pairs in the form every trainer (one process or Ray Train's workers) uses:
    frames resized once to the model's input and kept uint8 (6,000 64 px frames are 74 MB), the
    caption vocabulary tokenized once, and per frame the vocabulary rows of its captions."""

    pixels: torch.Tensor                 # uint8 [N, 3, S, S]
    tokens: torch.Tensor                 # [V, context] one row per distinct caption
    cap_ids: list[list[int]]             # per frame: rows of `tokens` that describe it
    keys: list[Hashable] | None          # per frame: what must not repeat within a batch
    mean: torch.Tensor                   # [1, 3, 1, 1] the model's normalisation
    std: torch.Tensor

    def __len__(self) -> int:
        return len(self.cap_ids)

    def normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        return (pixels.float() / 255.0 - self.mean) / self.std


def prepare_pairs(encoder: ClipEncoder, images: np.ndarray | Sequence[np.ndarray],
                  captions: Sequence[Sequence[str]], keys: Sequence[Hashable] | None = None) -> PairData:
    """Check the pairs and bring them to the model's input (see PairData)."""
    n = len(images)
    if n < 2 or len(captions) != n:
        raise InputError(f"{n} images and {len(captions)} caption lists", field="captions",
                         expected="at least 2 images and one non-empty caption list per image")
    if any(isinstance(c, str) or len(c) == 0 for c in captions):
        raise InputError("each image needs a list of captions", field="captions",
                         expected="e.g. [['place the red block on the shelf', ...], ...]")
    if keys is not None and len(keys) != n:
        raise InputError(f"{len(keys)} keys for {n} images", field="keys", expected="one key per image")
    pixels = torch.cat([encoder.resize(images[s:s + 256]) for s in range(0, n, 256)])
    vocab = sorted({c for cs in captions for c in cs})
    pos = {c: i for i, c in enumerate(vocab)}
    cfg = encoder.preprocess_cfg
    return PairData(pixels=pixels, tokens=encoder.tokenize(vocab), cap_ids=[[pos[c] for c in cs] for cs in captions],
                    keys=None if keys is None else list(keys),
                    mean=torch.tensor(cfg["mean"]).view(1, 3, 1, 1), std=torch.tensor(cfg["std"]).view(1, 3, 1, 1))


def epoch_plan(data: PairData, batch_size: int, rng: np.random.Generator) -> tuple[list[int], list[list[int]]]:
    """One epoch: the caption drawn for each frame and the batches (no key twice in a batch).
    Every trainer draws from ``rng`` in this order, so one seed gives one sequence of batches."""
    chosen = [ids[rng.integers(len(ids))] for ids in data.cap_ids]
    batch_keys = data.keys if data.keys is not None else chosen
    return chosen, list(distinct_key_batches(batch_keys, batch_size, rng))


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW with weight decay on matrices only (not on gains, biases or the logit scale)."""
    params_decay = [p for nm, p in model.named_parameters() if p.ndim >= 2 and "logit_scale" not in nm]
    params_other = [p for nm, p in model.named_parameters() if p.ndim < 2 or "logit_scale" in nm]
    return torch.optim.AdamW([{"params": params_decay, "weight_decay": cfg.weight_decay},
                              {"params": params_other, "weight_decay": 0.0}], lr=cfg.lr)


def lr_at(cfg: TrainConfig, step: int, total_steps: int, elapsed: float) -> float:
    """Linear warm-up, then cosine decay over the steps or the time bound, whichever runs out first."""
    frac = max(step / total_steps, elapsed / cfg.max_seconds if cfg.max_seconds else 0.0)
    return cfg.lr * min(1.0, (step + 1) / max(1, cfg.warmup_steps)) * 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))


def steps_per_epoch(n: int, batch_size: int) -> int:
    return max(1, math.ceil(n / batch_size))


def train_clip(encoder: ClipEncoder, images: np.ndarray | Sequence[np.ndarray], captions: Sequence[Sequence[str]],
               *, keys: Sequence[Hashable] | None = None, config: TrainConfig | None = None,
               out_dir: str | Path | None = None, progress: bool = True,
               info: dict[str, Any] | None = None) -> TrainResult:
    """Contrastive training of a copy of `encoder`'s model (the encoder passed in is unchanged).

    images: N RGB uint8 frames; captions: for each frame its valid captions (one is drawn per
    epoch); keys: per frame, what must not repeat within a batch (default: the drawn caption).
    With out_dir the result is saved there as a `local-dir:` folder and reloaded from it, so
    the returned encoder's model id is the one any later load of that folder reports.
    """
    cfg = config or TrainConfig()
    data = prepare_pairs(encoder, images, captions, keys)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = copy.deepcopy(encoder.model)
    opt = make_optimizer(model, cfg)
    loss_fn = ClipLoss()
    max_log_scale = math.log(cfg.max_logit_scale)
    total_steps = cfg.epochs * steps_per_epoch(len(data), cfg.batch_size)
    result = TrainResult(encoder=encoder)
    start, cpu_start = time.perf_counter(), time.process_time()
    step, pairs = 0, 0
    model.train()
    # a time-bounded run has no known step count: show steps and rate only
    bar = tqdm(total=None if cfg.max_seconds is not None else total_steps, desc="clip train", unit="step",
               disable=not progress, mininterval=5.0)
    try:
        for epoch in range(cfg.epochs):
            chosen, batches = epoch_plan(data, cfg.batch_size, rng)
            losses = []
            for batch in batches:
                elapsed = time.perf_counter() - start
                if cfg.max_seconds is not None and elapsed >= cfg.max_seconds:
                    result.stopped_by = "time"
                    break
                for g in opt.param_groups:
                    g["lr"] = lr_at(cfg, step, total_steps, elapsed)
                idx = torch.tensor(batch)
                x = data.normalise(apply_shift(data.pixels[idx].float(), shift_offsets(len(batch), cfg.shift_px, gen),
                                               cfg.shift_px))
                t = data.tokens[[chosen[i] for i in batch]]
                img_f, txt_f, scale = model(x, t)[:3]
                loss = loss_fn(img_f, txt_f, scale)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                with torch.no_grad():
                    model.logit_scale.clamp_(0, max_log_scale)
                losses.append(loss.item())
                step += 1
                pairs += len(batch)
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.3f}", epoch=epoch, refresh=False)
            result.step_losses += losses
            if losses:
                result.history.append({"epoch": epoch, "loss": float(np.mean(losses)),
                                       "seconds": time.perf_counter() - start,
                                       "logit_scale": float(model.logit_scale.detach().exp())})
            if result.stopped_by == "time":
                break
    finally:
        bar.close()
        model.eval()
    seconds = time.perf_counter() - start
    result.steps, result.seconds, result.cpu_seconds = step, seconds, time.process_time() - cpu_start
    result.pairs_seen = pairs
    result.pairs_per_s = pairs / max(seconds, 1e-9)
    return finish_training(result, encoder, model, cfg, len(data), out_dir, info)


def finish_training(result: TrainResult, encoder: ClipEncoder, model: torch.nn.Module, cfg: TrainConfig, n: int,
                    out_dir: str | Path | None, info: dict[str, Any] | None) -> TrainResult:
    """The trained model as an encoder with the starting one's preprocessing; with out_dir saved
    there as a `local-dir:` folder (with the training's settings and history) and reloaded."""
    trained = ClipEncoder(model.eval(), encoder.source, encoder.model_cfg, str(encoder.device), encoder.workspace_box)
    result.encoder = trained
    if out_dir is not None:
        meta = {"train_config": asdict(cfg), "history": result.history, "pairs": n,
                "pairs_per_s": result.pairs_per_s, "stopped_by": result.stopped_by, **(info or {})}
        result.path = trained.save_local_dir(out_dir, info=meta)
        result.encoder = load_encoder(f"local-dir:{result.path}")
    return result
