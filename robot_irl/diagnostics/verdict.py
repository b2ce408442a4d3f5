"""What a person should conclude from a diagnosis: a few sentences from its trust measures.

Why: `diagnose` measured well but printed ~30 raw figures, and a reader had to know what
trustworthiness 0.99 or a 10-NN accuracy of 0.55 means for *this* map. The thresholds below are the
usual reading of these measures (trustworthiness: van der Maaten's 0.9 for "neighbourhoods are
real"; Spearman of pairwise distances: 0.7 for "far means far"); each sentence carries its figures.
"""
from __future__ import annotations

from collections.abc import Mapping

LOCAL_GOOD, LOCAL_FAIR = 0.9, 0.8          # trustworthiness
GLOBAL_GOOD, GLOBAL_FAIR = 0.7, 0.4        # Spearman of pairwise distances, map vs latents
SEPARATE, MOSTLY = 0.9, 0.7                # 10-NN label accuracy in the map
LOST = 0.1                                 # map accuracy this far below the latents' own: the map mixes groups
SKIP_LABELS = ("episode",)                 # one class per episode: not a grouping a reader asks about


def _f(x: float) -> str:
    return f"{x:.2f}"


def verdict(metrics: Mapping[str, float], map_name: str, labels: list[str], *, k: int = 10,
            prefix: str = "") -> list[str]:
    """Sentences about the map ``map_name`` (e.g. ``tsne``) from flat figures as ``diagnose``
    writes them (``<prefix><map>.trust10``, ...); ``labels`` are the class labels measured."""
    m = {key[len(prefix):]: v for key, v in metrics.items() if key.startswith(prefix)}
    out = []
    trust, kept = m.get(f"{map_name}.trust{k}"), m.get(f"{map_name}.knn_kept{k}")
    if trust is not None:
        figures = f"trust{k} {_f(trust)}" + (f", {k}-NN kept {_f(kept)}" if kept is not None else "")
        if trust >= LOCAL_GOOD:
            out.append(f"the {map_name} map keeps local structure: {figures}")
        elif trust >= LOCAL_FAIR:
            out.append(f"the {map_name} map partly keeps local structure ({figures}): read neighbourhoods with care")
        else:
            out.append(f"the {map_name} map does not keep local structure ({figures}): do not read neighbours off it")
    rho = m.get(f"{map_name}.spearman_pdist")
    if rho is not None:
        if rho >= GLOBAL_GOOD:
            out.append(f"distances across the map follow the latents (Spearman {_f(rho)})")
        elif rho >= GLOBAL_FAIR:
            out.append(f"distances across the map follow the latents only roughly (Spearman {_f(rho)})")
        else:
            out.append(f"distances between far-apart groups mean little (Spearman {_f(rho)}): "
                       "compare with the PCA map before reading them")
    for label in labels:
        acc, own = m.get(f"{map_name}.knn_acc{k}.{label}"), m.get(f"original.knn_acc{k}.{label}")
        if label in SKIP_LABELS or acc is None:
            continue
        figures = f"{k}-NN accuracy {_f(acc)} in the map" + (f", {_f(own)} in the latents" if own is not None else "")
        word = "separate" if acc >= SEPARATE else "mostly separate" if acc >= MOSTLY else "do not separate"
        line = f"{label} groups {word} ({figures})"
        if own is not None and own - acc > LOST:
            line += ": the map mixes groups the latents keep apart"
        out.append(line)
    return out
