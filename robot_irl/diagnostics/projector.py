"""TensorBoard projector export: the latents, the 2-D maps, labels as metadata, thumbnails as sprites.

The projector lets a user hover a point and see its episode, step and frame, which a PNG cannot.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.tensorboard import SummaryWriter

SPRITE_MAX_PX = 8192  # the projector refuses sprite sheets larger than this on a side


def _sprite_images(thumbnails: np.ndarray) -> torch.Tensor:
    """``[N, H, W(, C)]`` images -> ``[N, C, s, s]`` floats in [0, 1] that fit one sprite sheet."""
    imgs = torch.as_tensor(np.asarray(thumbnails))
    if imgs.ndim == 3:
        imgs = imgs[..., None]
    imgs = imgs.permute(0, 3, 1, 2).float()
    if np.asarray(thumbnails).dtype.kind in "ui":
        imgs = imgs / 255.0
    n = imgs.shape[0]
    side = min(imgs.shape[2], imgs.shape[3], SPRITE_MAX_PX // math.ceil(math.sqrt(n)))
    if (imgs.shape[2], imgs.shape[3]) != (side, side):
        imgs = F.interpolate(imgs, size=(side, side), mode="area")
    return imgs.clamp(0.0, 1.0)


def export_projector(tb_dir: Path, latents: np.ndarray, embeddings: Mapping[str, np.ndarray],
                     labels: Mapping[str, np.ndarray], *, thumbnails: np.ndarray | None = None,
                     name: str = "latents", global_step: int = 0) -> list[str]:
    """Write one projector tensor for the latents and one per 2-D map; returns their tags.

    Metadata always has an ``index`` column first, so the file keeps a header row (the projector
    reads a single column as data without a header).
    """
    header = ["index", *labels]
    columns = [np.arange(latents.shape[0]), *labels.values()]
    metadata = [[str(v) for v in row] for row in zip(*columns)]
    sprite = _sprite_images(thumbnails) if thumbnails is not None else None
    tags = [name, *(f"{name}/{m}" for m in embeddings)]
    mats = [latents, *embeddings.values()]
    with SummaryWriter(log_dir=str(tb_dir)) as writer:
        for tag, mat in zip(tags, mats):
            writer.add_embedding(torch.as_tensor(np.asarray(mat, dtype=np.float32)), metadata=metadata,
                                 label_img=sprite, global_step=global_step, tag=tag,
                                 metadata_header=header)
    return tags
