"""One contrastive step over a global batch split across data-parallel workers
(torch.distributed), with the loss and gradient of that global batch as one process computes them.

Why each piece:
- ``gather_features``: CLIP's loss compares every image with every caption of the batch, so a
  worker that contrasted only its own shard would see 1/N of the negatives. Every worker gathers
  all workers' features (open_clip's ``gather_features`` without gradient for the others' parts)
  and puts its own tensor back in its slot, so the gradient flows through its own features;
  shards may differ in size by one (a global batch not divisible by the workers).
- scaling: each worker's loss is the global loss, but carries the gradient only through its own
  shard; DDP *averages* gradients over workers, so the loss is multiplied by N before backward.
  The logit scale sees every logit on every worker (its gradient is already the whole batch's on
  each), so its averaged gradient is divided by N again. The result is the global batch's
  gradient, not 1/N of it (open_clip accepts that factor; Adam nearly hides it, the test does not).
- ``GlobalBatchNorm2d``: the ResNet image tower normalises with batch statistics; per-worker
  statistics would make N workers a different model from one process on the same batch.
  torch's SyncBatchNorm runs only on GPUs, so this one sums the moments with an autograd-aware
  all_reduce (any backend: gloo on CPU, NCCL on GPU).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


def shard_sizes(n: int, world: int) -> list[int]:
    """How many of a global batch of n pairs each worker takes (contiguous, in rank order)."""
    return [len(p) for p in np.array_split(np.arange(n), world)]


def shard(n: int, world: int, rank: int) -> slice:
    """This rank's contiguous part of a global batch of n pairs."""
    sizes = shard_sizes(n, world)
    start = sum(sizes[:rank])
    return slice(start, start + sizes[rank])


def gather_features(local: torch.Tensor, sizes: list[int], rank: int) -> torch.Tensor:
    """All workers' features in rank order; only this worker's part carries gradient."""
    world = len(sizes)
    if world == 1:
        return local
    biggest = max(sizes)
    padded = F.pad(local.detach(), (0, 0, 0, biggest - len(local))).contiguous()
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    return torch.cat([local if r == rank else parts[r][:sizes[r]] for r in range(world)])


def global_clip_loss(img_f: torch.Tensor, txt_f: torch.Tensor, logit_scale: torch.Tensor,
                     sizes: list[int], rank: int) -> torch.Tensor:
    """open_clip's ClipLoss over the whole global batch (image→text and text→image cross-entropy)."""
    all_img = gather_features(img_f, sizes, rank)
    all_txt = gather_features(txt_f, sizes, rank)
    logits = logit_scale * all_img @ all_txt.T
    labels = torch.arange(len(logits), device=logits.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


class _SumOverWorkers(torch.autograd.Function):
    """all_reduce(SUM) whose backward is all_reduce(SUM) of the gradients: each worker's output
    is the sum of all workers' inputs, so each input's gradient is the sum of every output's."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:   # type: ignore[override]
        out = x.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:   # type: ignore[override]
        out = grad.contiguous().clone()
        dist.all_reduce(out)
        return out


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics (and running estimates) are the global batch's."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        c = x.shape[1]
        count = torch.tensor([x.shape[0] * x.shape[2] * x.shape[3]], dtype=x.dtype, device=x.device)
        moments = torch.cat([x.sum((0, 2, 3)), (x * x).sum((0, 2, 3)), count])
        total = _SumOverWorkers.apply(moments)
        n = total[-1]
        mean = total[:c] / n
        var = (total[c:2 * c] / n - mean * mean).clamp_min(0)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * n / max(float(n) - 1, 1.0), alpha=m)
        y = (x - mean.view(1, c, 1, 1)) * torch.rsqrt(var.view(1, c, 1, 1) + self.eps)
        return y * self.weight.view(1, c, 1, 1) + self.bias.view(1, c, 1, 1) if self.affine else y


def global_batchnorm(module: nn.Module) -> nn.Module:
    """Turn every BatchNorm2d in ``module`` into a GlobalBatchNorm2d (same parameters and
    buffers, so state dicts load either way)."""
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm2d:
            g = GlobalBatchNorm2d(child.num_features, child.eps, child.momentum, child.affine,
                                  child.track_running_stats)
            g.load_state_dict(child.state_dict())
            g.train(child.training)
            setattr(module, name, g)
        else:
            global_batchnorm(child)
    return module


def global_step(model: nn.Module, core: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor,
                t: torch.Tensor, sizes: list[int], rank: int, max_logit_scale: float) -> float:
    """One optimiser step on the global batch whose shard ``rank`` holds (``x`` images, ``t``
    tokens); ``model`` is the DDP wrapper (or the model itself for one process), ``core`` the
    model inside it. Returns the global batch's loss."""
    world = len(sizes)
    img_f, txt_f, scale = model(x, t)[:3]
    loss = global_clip_loss(img_f, txt_f, scale, sizes, rank)
    opt.zero_grad(set_to_none=True)
    (loss * world).backward()              # DDP averages: see the module docstring
    if world > 1 and core.logit_scale.grad is not None:
        core.logit_scale.grad.div_(world)
    opt.step()
    with torch.no_grad():
        core.logit_scale.clamp_(0, math.log(max_logit_scale))
    return float(loss.detach())
