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


def _shift(x: torch.Tensor, px: int, gen: torch.Generator) -> torch.Tensor:
    if px <= 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (px, px, px, px), mode="replicate")
    off = torch.randint(0, 2 * px + 1, (n, 2), generator=gen)
    return torch.stack([padded[i, :, a:a + h, b:b + w] for i, (a, b) in enumerate(off.tolist())])


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
    n = len(images)
    if n < 2 or len(captions) != n:
        raise InputError(f"{n} images and {len(captions)} caption lists", field="captions",
                         expected="at least 2 images and one non-empty caption list per image")
    if any(isinstance(c, str) or len(c) == 0 for c in captions):
        raise InputError("each image needs a list of captions", field="captions",
                         expected="e.g. [['place the red block on the shelf', ...], ...]")
    if keys is not None and len(keys) != n:
        raise InputError(f"{len(keys)} keys for {n} images", field="keys", expected="one key per image")
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = copy.deepcopy(encoder.model)

    # resize once to the model's input size and keep uint8: 6,000 64 px frames are 74 MB
    pixels = torch.cat([encoder.resize(images[s:s + 256]) for s in range(0, n, 256)])
    vocab = sorted({c for cs in captions for c in cs})
    tokens = encoder.tokenize(vocab)
    pos = {c: i for i, c in enumerate(vocab)}
    cap_ids = [[pos[c] for c in cs] for cs in captions]

    params_decay = [p for nm, p in model.named_parameters() if p.ndim >= 2 and "logit_scale" not in nm]
    params_other = [p for nm, p in model.named_parameters() if p.ndim < 2 or "logit_scale" in nm]
    opt = torch.optim.AdamW([{"params": params_decay, "weight_decay": cfg.weight_decay},
                             {"params": params_other, "weight_decay": 0.0}], lr=cfg.lr)
    loss_fn = ClipLoss()
    max_log_scale = math.log(cfg.max_logit_scale)
    steps_per_epoch = max(1, math.ceil(n / cfg.batch_size))
    total_steps = cfg.epochs * steps_per_epoch
    result = TrainResult(encoder=encoder)
    start = time.perf_counter()
    step, pairs = 0, 0
    model.train()
    # a time-bounded run has no known step count: show steps and rate only
    bar = tqdm(total=None if cfg.max_seconds is not None else total_steps, desc="clip train", unit="step",
               disable=not progress, mininterval=5.0)
    try:
        for epoch in range(cfg.epochs):
            chosen = [ids[rng.integers(len(ids))] for ids in cap_ids]
            batch_keys = list(keys) if keys is not None else chosen
            losses = []
            for batch in distinct_key_batches(batch_keys, cfg.batch_size, rng):
                elapsed = time.perf_counter() - start
                if cfg.max_seconds is not None and elapsed >= cfg.max_seconds:
                    result.stopped_by = "time"
                    break
                frac = max(step / total_steps, elapsed / cfg.max_seconds if cfg.max_seconds else 0.0)
                lr = cfg.lr * min(1.0, (step + 1) / max(1, cfg.warmup_steps)) * 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))
                for g in opt.param_groups:
                    g["lr"] = lr
                idx = torch.tensor(batch)
                x = encoder.normalise(_shift(pixels[idx].float(), cfg.shift_px, gen))
                t = tokens[[chosen[i] for i in batch]]
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
    result.steps, result.seconds = step, seconds
    result.pairs_per_s = pairs / max(seconds, 1e-9)
    trained = ClipEncoder(model, encoder.source, encoder.model_cfg, str(encoder.device), encoder.workspace_box)
    result.encoder = trained
    if out_dir is not None:
        meta = {"train_config": asdict(cfg), "history": result.history, "pairs": n,
                "pairs_per_s": result.pairs_per_s, "stopped_by": result.stopped_by, **(info or {})}
        result.path = trained.save_local_dir(out_dir, info=meta)
        result.encoder = load_encoder(f"local-dir:{result.path}")
    return result
