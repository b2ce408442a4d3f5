"""One diagnosis: embed latents, measure trust, write plots, metrics and a projector export.

The entry point for the CLI and for stages that diagnose during training: give it
:class:`Latents` from any collector and a run folder.
"""
from __future__ import annotations

import io
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robot_irl.core.io import atomic_write_bytes
from robot_irl.diagnostics.embed import EmbedConfig, Embedder, check_size, fit_inits
from robot_irl.diagnostics.latents import Latents
from robot_irl.diagnostics.metrics import trust_measures
from robot_irl.diagnostics.plots import scatter_plots
from robot_irl.diagnostics.projector import export_projector
from robot_irl.runs import RunDir


@dataclass(frozen=True)
class Diagnosis:
    """The maps (``name -> [N, 2]``), flat figures as written to metrics.json, and files written."""

    embeddings: dict[str, np.ndarray]
    metrics: dict[str, float]
    plots: list[Path]
    projector_tags: list[str]


def embed_all(latents: Latents, config: EmbedConfig, *, compare_init: bool = False,
              reference: bool = True) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """The maps to show: the PCA reference first, then the method (with both inits if asked)."""
    check_size(latents.n, config)
    maps: dict[str, np.ndarray] = {}
    times: dict[str, float] = {}
    if reference and config.method != "pca":
        ref = Embedder(EmbedConfig(method="pca", seed=config.seed, pca_dims=config.pca_dims))
        maps["pca"] = ref.fit(latents.X)
        times["pca.embed_s"] = ref.timings["reduce_s"] + ref.timings["embed_s"]
    if compare_init:
        for name, (Y, t) in fit_inits(latents.X, config).items():
            maps[name] = Y
            times.update({f"{name}.{k}": v for k, v in t.items()})
    else:
        e = Embedder(config)
        maps[config.label] = e.fit(latents.X)
        times.update({f"{config.label}.{k}": v for k, v in e.timings.items()})
    return maps, times


def diagnose(latents: Latents, run: RunDir, config: EmbedConfig | None = None, *, compare_init: bool = False,
             reference: bool = True, tensorboard: bool = True, k: int = 10, n_sample: int = 1000,
             global_step: int = 0) -> Diagnosis:
    """Embed ``latents``, write ``plots/<name>/*.png``, ``<name>_maps.npz``, metrics and projector files.

    Metrics are merged into the run's metrics.json under ``<name>.``-prefixed keys so several
    latents can share one run folder.
    """
    config = config or EmbedConfig()
    maps, times = embed_all(latents, config, compare_init=compare_init, reference=reference)
    t0 = time.perf_counter()
    figures = trust_measures(latents.X, maps, latents.labels, k=k, n_sample=n_sample, seed=config.seed)
    figures.update(times)
    figures["metrics_s"] = time.perf_counter() - t0
    figures["n_points"] = float(latents.n)
    figures["n_dims"] = float(latents.X.shape[1])
    plots = scatter_plots(maps, latents.labels, figures, run.plots_dir / latents.name,
                          title=f"{latents.name} ({latents.n} points)")
    atomic_write_bytes(run.path / f"{latents.name}_maps.npz", _npz_bytes(maps))
    tags: list[str] = []
    if tensorboard:
        reduced = Embedder(config).reduce(latents.X)
        tags = export_projector(run.tb_dir, reduced, maps, latents.labels, thumbnails=latents.thumbnails,
                                name=latents.name, global_step=global_step)
    run.update_metrics(**{f"{latents.name}.{key}": v for key, v in figures.items()})
    return Diagnosis(embeddings=maps, metrics=figures, plots=plots, projector_tags=tags)


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    b = io.BytesIO()
    np.savez_compressed(b, **arrays)
    return b.getvalue()
