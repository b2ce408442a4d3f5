"""Diagnostics of learned latent spaces: 2-D maps plus the numbers that say how far to trust them.

Plug-in point for other stages: write a collector returning :class:`Latents` and register it
with :func:`register_collector`; :func:`diagnose` does the rest.

Names are imported on first use: importing the package (as ``robot-irl --help`` does through the
CLI module) must not pull in torch, openTSNE and matplotlib.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Diagnosis": "diagnose", "diagnose": "diagnose", "embed_all": "diagnose",
    "METHODS": "embed", "EmbedConfig": "embed", "Embedder": "embed", "fit_inits": "embed",
    "Latents": "latents", "collect": "latents", "collector_names": "latents", "load_npz": "latents",
    "register_collector": "latents",
    "trust_measures": "metrics",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value
