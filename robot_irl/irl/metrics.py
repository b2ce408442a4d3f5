"""Evaluation figures, in centimetres as the paper reports them, with missing keypoints masked.

- IRL loss: per demo, the sum over rows of squared keypoint error, averaged over the K*3
  coordinates (missing entries left out of the sum); then the mean over demos.
- final error: mean keypoint distance at the last row.
- per-step error: mean keypoint distance at every row; its mean over rows is the path error.
"""
from __future__ import annotations

import numpy as np
import torch

CM = 100.0


def irl_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-demo loss: ``pred/target [B, T, D]`` (already scaled), ``mask [B, T, D]`` (1 = observed)."""
    err = torch.where(mask, pred - torch.nan_to_num(target), torch.zeros_like(pred))
    return err.square().sum((1, 2)) / pred.shape[-1]


def trajectory_metrics(pred: np.ndarray, demo: np.ndarray) -> dict[str, float | list[float]]:
    """``pred, demo [B, T, K, 3]`` metres (demo may hold NaN)."""
    pred = np.asarray(pred, dtype=np.float64) * CM
    demo = np.asarray(demo, dtype=np.float64) * CM
    B, T, K, _ = demo.shape
    sq = (pred - demo) ** 2  # NaN where missing
    loss = np.nansum(sq.reshape(B, T, K * 3), axis=1).mean(-1)
    dist = np.linalg.norm(pred - demo, axis=-1)  # [B, T, K], NaN where missing
    with np.errstate(invalid="ignore"):
        per_step = np.nanmean(dist, axis=(0, 2))
        final = np.nanmean(dist[:, -1])
    return {"irl_loss": float(loss.mean()), "final_err_cm": float(final), "path_err_cm": float(np.nanmean(per_step)),
            "per_step_err_cm": [float(v) for v in per_step]}
