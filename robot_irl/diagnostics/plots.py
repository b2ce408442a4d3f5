"""Scatter plots of 2-D maps, one PNG per label, maps side by side with their trust measures.

Putting the PCA reference (and the random-init map, when compared) next to the main map, each
titled with its measures, is what keeps a reader from over-trusting one pretty picture.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

from robot_irl.diagnostics.latents import is_categorical  # noqa: E402

_MAX_LEGEND = 20  # more classes than this are drawn with a colour map, without a legend


def _title(name: str, metrics: Mapping[str, float], label: str | None) -> str:
    parts = [name]
    for key, short in (("trust10", "T"), ("knn_kept10", "kept"), ("spearman_pdist", "ρ_dist")):
        if f"{name}.{key}" in metrics:
            parts.append(f"{short} {metrics[f'{name}.{key}']:.2f}")
    if label is not None and f"{name}.centroid_spearman.{label}" in metrics:
        parts.append(f"ρ_cent {metrics[f'{name}.centroid_spearman.{label}']:.2f}")
    if label is not None and f"{name}.knn_acc10.{label}" in metrics:
        parts.append(f"acc {metrics[f'{name}.knn_acc10.{label}']:.2f}")
    return parts[0] + "\n" + ", ".join(parts[1:])


def _draw(ax, Y: np.ndarray, values: np.ndarray | None, size: float):
    if values is None:
        ax.scatter(Y[:, 0], Y[:, 1], s=size, c="tab:blue", linewidths=0)
        return None
    if not is_categorical(values):
        return ax.scatter(Y[:, 0], Y[:, 1], s=size, c=values, cmap="viridis", linewidths=0)
    classes, codes = np.unique(values, return_inverse=True)
    if classes.size > _MAX_LEGEND:
        return ax.scatter(Y[:, 0], Y[:, 1], s=size, c=codes, cmap="turbo", linewidths=0)
    cmap = plt.get_cmap("tab10" if classes.size <= 10 else "tab20")
    for i, cls in enumerate(classes):
        m = codes == i
        ax.scatter(Y[m, 0], Y[m, 1], s=size, color=cmap(i), label=str(cls), linewidths=0)
    return None


def scatter_plots(embeddings: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray],
                  metrics: Mapping[str, float], out_dir: Path, *, title: str = "") -> list[Path]:
    """Write ``<out_dir>/<label>.png`` for every label (``points.png`` when there are none)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    n = next(iter(embeddings.values())).shape[0]
    size = float(np.clip(3e3 / n, 0.5, 20.0))
    written = []
    items: list[tuple[str | None, np.ndarray | None]] = list(labels.items()) or [(None, None)]
    for label, values in items:
        fig, axes = plt.subplots(1, len(embeddings), figsize=(4.5 * len(embeddings), 4.8), squeeze=False)
        mappable = None
        for ax, (name, Y) in zip(axes[0], embeddings.items()):
            mappable = _draw(ax, Y, values, size) or mappable
            ax.set_title(_title(name, metrics, label), fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        if values is not None and mappable is None:
            handles, names = axes[0][-1].get_legend_handles_labels()
            # outside the maps (right of the last one): a legend inside covered the data
            axes[0][-1].legend(handles, names, loc="center left", bbox_to_anchor=(1.02, 0.5), title=label,
                               markerscale=max(1.0, 6.0 / size ** 0.5), fontsize=8)
        elif mappable is not None:
            fig.colorbar(mappable, ax=axes[0].tolist(), label=label)
        fig.suptitle(f"{title} coloured by {label}" if label else title, fontsize=10)
        path = out_dir / (re.sub(r"[^\w.-]", "_", label or "points") + ".png")
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        written.append(path)
    return written
