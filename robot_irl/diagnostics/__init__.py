"""Diagnostics of learned latent spaces: 2-D maps plus the numbers that say how far to trust them.

Plug-in point for other stages: write a collector returning :class:`Latents` and register it
with :func:`register_collector`; :func:`diagnose` does the rest.
"""
from robot_irl.diagnostics.diagnose import Diagnosis, diagnose, embed_all
from robot_irl.diagnostics.embed import METHODS, EmbedConfig, Embedder, fit_inits
from robot_irl.diagnostics.latents import Latents, collect, collector_names, load_npz, register_collector
from robot_irl.diagnostics.metrics import trust_measures

__all__ = [
    "METHODS", "Diagnosis", "EmbedConfig", "Embedder", "Latents", "collect", "collector_names", "diagnose",
    "embed_all", "fit_inits", "load_npz", "register_collector", "trust_measures",
]
