"""2-D embeddings of latents: openTSNE by default, scikit-learn t-SNE, UMAP and PCA as options.

Why these choices (issue 8): random initialisation loses global structure (Kobak & Linderman
2021), so every non-linear method starts from PCA unless asked otherwise; data are reduced to 50
principal components first (denoises and speeds up the neighbour search); openTSNE is the default
because it is FFT-accelerated and can place new points into an existing map (``transform``).
Everything is seeded, so the same input and seed give the same picture.
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.decomposition import PCA

from robot_irl.errors import InputError, UnknownNameError

METHODS = ("tsne", "sklearn-tsne", "umap", "pca")
INITS = ("pca", "random")


def default_n_jobs(n_points: int) -> int:
    """All cores this process may use (openTSNE defaults to one), but one below 2,000 points.

    On small sets the per-iteration thread barriers cost more than they save, badly so on a
    loaded machine (measured: 150 points, 2 threads took twice as long as one).
    """
    if n_points < 2000:
        return 1
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@dataclass(frozen=True)
class EmbedConfig:
    """Everything that determines an embedding; stored in the run's config.json."""

    method: str = "tsne"
    init: str = "pca"
    perplexity: float = 30.0
    n_neighbors: int = 15          # UMAP only
    pca_dims: int = 50
    seed: int = 0
    n_jobs: int | None = None      # None: default_n_jobs(number of points)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise UnknownNameError("method", self.method, METHODS)
        if self.init not in INITS:
            raise UnknownNameError("init", self.init, INITS)
        if self.perplexity <= 0:
            raise InputError(f"perplexity is {self.perplexity}", field="perplexity", expected="a positive number")
        if self.pca_dims < 2:
            raise InputError(f"pca_dims is {self.pca_dims}", field="pca_dims", expected="at least 2")
        if self.n_jobs is not None and self.n_jobs < 1:
            raise InputError(f"n_jobs is {self.n_jobs}", field="n_jobs", expected="at least 1")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def threads(self, n_points: int) -> int:
        return self.n_jobs if self.n_jobs is not None else default_n_jobs(n_points)

    @property
    def label(self) -> str:
        """Short name used as a metrics prefix and plot title: ``tsne_pca``, ``umap_random``, ``pca``."""
        return "pca" if self.method == "pca" else f"{self.method}_{self.init}"


def check_size(n: int, config: EmbedConfig) -> None:
    """Fail early, with the numbers, when there are too few points for the method's neighbourhoods."""
    if config.method in ("tsne", "sklearn-tsne"):
        need = int(3 * config.perplexity) + 1
        if n < need:
            raise InputError(f"{n} points are too few for t-SNE with perplexity {config.perplexity:g}",
                             field="perplexity",
                             expected=f"at least {need} points (3 x perplexity + 1), "
                                      f"or perplexity <= {max((n - 1) / 3, 0):.1f}")
    elif config.method == "umap":
        if n <= config.n_neighbors:
            raise InputError(f"{n} points are too few for UMAP with n_neighbors {config.n_neighbors}",
                             field="n_neighbors", expected=f"more than {config.n_neighbors} points")
    elif n < 3:
        raise InputError(f"{n} points are too few for PCA", field="X", expected="at least 3 points")


class Embedder:
    """Fits one 2-D map and places new points into it.

    ``timings`` holds the seconds spent reducing (``reduce_s``) and embedding (``embed_s``).
    """

    def __init__(self, config: EmbedConfig | None = None) -> None:
        self.config = config or EmbedConfig()
        self.timings: dict[str, float] = {}
        self._pca: PCA | None = None
        self._model: Any = None

    def reduce(self, X: np.ndarray) -> np.ndarray:
        """Project onto the first ``pca_dims`` principal components (fitted on the first call)."""
        X = np.asarray(X, dtype=np.float64)
        if self._pca is None:
            if X.shape[1] <= self.config.pca_dims:
                return X
            self._pca = PCA(n_components=min(self.config.pca_dims, X.shape[0]), random_state=self.config.seed)
            return self._pca.fit_transform(X)
        return self._pca.transform(X)

    def fit(self, X: np.ndarray) -> np.ndarray:
        """Embed ``X [N, D]`` into ``[N, 2]``."""
        check_size(X.shape[0], self.config)
        t0 = time.perf_counter()
        Xr = self.reduce(X)
        t1 = time.perf_counter()
        Y = self._fit_reduced(Xr)
        self.timings = {"reduce_s": t1 - t0, "embed_s": time.perf_counter() - t1}
        return Y

    def transform(self, X_new: np.ndarray) -> np.ndarray:
        """Place new points into the fitted map without moving the old ones."""
        if self._model is None:
            raise InputError("transform() called before fit()", field="X_new", expected="a fitted Embedder")
        if self.config.method == "sklearn-tsne":
            raise InputError("scikit-learn's t-SNE cannot place new points", field="method",
                             expected="method 'tsne' (openTSNE), 'umap' or 'pca'")
        X_new = np.asarray(X_new, dtype=np.float64)
        return np.asarray(self._model.transform(self.reduce(X_new)))

    def _fit_reduced(self, Xr: np.ndarray) -> np.ndarray:
        c = self.config
        if c.method == "tsne":
            affinities = opentsne_affinities(Xr, c)
            self._model = opentsne(c, Xr.shape[0]).fit(Xr, affinities=affinities, initialization=c.init)
            return np.asarray(self._model)
        if c.method == "sklearn-tsne":
            from sklearn.manifold import TSNE
            self._model = TSNE(n_components=2, perplexity=c.perplexity, init=c.init, learning_rate="auto",
                               random_state=c.seed, n_jobs=c.threads(Xr.shape[0]))
            return self._model.fit_transform(Xr)
        if c.method == "umap":
            import umap  # imported here: numba compilation makes the import slow
            # A seeded UMAP runs single-threaded; saying so avoids umap's warning.
            self._model = umap.UMAP(n_components=2, n_neighbors=c.n_neighbors, init=c.init,
                                    random_state=c.seed, n_jobs=1)
            return self._model.fit_transform(Xr)
        self._model = PCA(n_components=2, random_state=c.seed)
        return self._model.fit_transform(Xr)


def opentsne(config: EmbedConfig, n_points: int):
    """The openTSNE estimator with this config's parameters."""
    from openTSNE import TSNE
    return TSNE(n_components=2, perplexity=config.perplexity, initialization=config.init,
                n_jobs=config.threads(n_points), random_state=config.seed)


def opentsne_affinities(Xr: np.ndarray, config: EmbedConfig):
    """The affinities ``openTSNE.TSNE.fit`` would build itself; built once when comparing inits."""
    from openTSNE.affinity import MultiscaleMixture
    return MultiscaleMixture(Xr, config.perplexity, method="auto", n_jobs=config.threads(Xr.shape[0]),
                             random_state=config.seed)


def fit_inits(X: np.ndarray, config: EmbedConfig,
              inits: tuple[str, ...] = INITS) -> dict[str, tuple[np.ndarray, dict[str, float]]]:
    """Embed with each initialisation, sharing everything but the start (side-by-side comparison).

    For openTSNE the neighbour graph is computed once, so the maps differ only by where the
    optimisation started. Returns ``label -> (Y, timings)``.
    """
    if config.method == "pca":
        raise InputError("PCA has no initialisation to compare", field="method",
                         expected="'tsne', 'sklearn-tsne' or 'umap' when comparing initialisations")
    check_size(X.shape[0], config)
    out: dict[str, tuple[np.ndarray, dict[str, float]]] = {}
    if config.method != "tsne":
        for init in inits:
            e = Embedder(_replace(config, init=init))
            out[e.config.label] = (e.fit(X), e.timings)
        return out
    base = Embedder(config)
    t0 = time.perf_counter()
    Xr = base.reduce(X)
    affinities = opentsne_affinities(Xr, config)
    shared_s = time.perf_counter() - t0
    for init in inits:
        c = _replace(config, init=init)
        t = time.perf_counter()
        Y = np.asarray(opentsne(c, Xr.shape[0]).fit(Xr, affinities=affinities, initialization=init))
        out[c.label] = (Y, {"shared_s": shared_s, "embed_s": time.perf_counter() - t})
    return out


def _replace(config: EmbedConfig, **changes: Any) -> EmbedConfig:
    return EmbedConfig(**{**config.to_dict(), **changes})
