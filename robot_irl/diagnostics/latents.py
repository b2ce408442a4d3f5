"""What gets diagnosed: a latent matrix with per-row labels, and the collectors that produce it.

Every stage that has a latent space (library keypoints, CLIP embeddings, dynamics hidden
features, cost features) plugs in by writing a *collector*: a function that reads its own
artefacts and returns :class:`Latents`. The embedding, trust measures, plots and projector
export only ever see :class:`Latents`, so they know nothing of the stage that made them.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robot_irl.errors import InputError, UnknownNameError


def is_categorical(values: np.ndarray) -> bool:
    """Floats are continuous (coloured by a colour map); everything else names classes.

    Collectors that want a continuous colouring of an integer quantity (a time step) pass floats.
    """
    return values.dtype.kind != "f"


def check_arrays(X: np.ndarray, labels: Mapping[str, np.ndarray], thumbnails: np.ndarray | None,
                 *, file: str | Path | None = None) -> None:
    """Raise :class:`InputError` naming the field at fault; shared by the dataclass and loaders."""
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise InputError(f"latents have shape {X.shape}", file=file, field="X",
                         expected="a non-empty 2-D array [N points, D features]")
    if X.dtype.kind not in "fiub":
        raise InputError(f"latents have dtype {X.dtype}", file=file, field="X", expected="numbers")
    bad = ~np.isfinite(X).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise InputError(f"{rows.size} of {X.shape[0]} rows hold NaN or inf (first rows: {rows[:5].tolist()})",
                         file=file, field="X",
                         expected="finite latents; drop or impute rows with missing values before diagnosing")
    n = X.shape[0]
    for name, values in labels.items():
        if values.ndim != 1 or values.shape[0] != n:
            raise InputError(f"label has shape {values.shape} but the latents have {n} rows", file=file,
                             field=f"labels.{name}", expected=f"one value per latent row, shape ({n},)")
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            raise InputError("label holds NaN or inf", file=file, field=f"labels.{name}",
                             expected="finite values (use a string class such as 'unknown' for missing)")
    if thumbnails is not None:
        ok_shape = thumbnails.ndim in (3, 4) and thumbnails.shape[0] == n
        if not ok_shape or (thumbnails.ndim == 4 and thumbnails.shape[3] not in (1, 3)):
            raise InputError(f"thumbnails have shape {thumbnails.shape}", file=file, field="thumbnails",
                             expected=f"[{n}, H, W] or [{n}, H, W, 1|3] images, one per latent row")


@dataclass(frozen=True)
class Latents:
    """Points to embed: ``X [N, D]``, labels ``name -> [N]`` and optional thumbnails ``[N, H, W(, C)]``.

    ``name`` says which latent space this is (``dynamics``, ``clip``, ...); it titles plots and
    the projector tag. ``skipped`` names what a collector left out and why, for the reader. Validated on construction so errors point at the collector's output.
    """

    X: np.ndarray
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    thumbnails: np.ndarray | None = None
    name: str = "latents"
    skipped: dict[str, str] = field(default_factory=dict)   # item (episode id) left out -> why

    def __post_init__(self) -> None:
        object.__setattr__(self, "X", np.asarray(self.X))
        object.__setattr__(self, "labels", {str(k): np.asarray(v) for k, v in self.labels.items()})
        if self.thumbnails is not None:
            object.__setattr__(self, "thumbnails", np.asarray(self.thumbnails))
        check_arrays(self.X, self.labels, self.thumbnails)

    @property
    def n(self) -> int:
        return int(self.X.shape[0])


Collector = Callable[..., Latents]
_COLLECTORS: dict[str, Collector] = {}
# The project's own collectors; each module registers its collectors when imported.
_BUILTIN_MODULES = ("robot_irl.diagnostics.collectors", "robot_irl.diagnostics.clip",
                    "robot_irl.diagnostics.run_latents")


def _load_builtin() -> None:
    import importlib

    for module in _BUILTIN_MODULES:
        importlib.import_module(module)


def register_collector(name: str, fn: Collector) -> None:
    """Make ``fn(source, **options) -> Latents`` available to :func:`collect` under ``name``."""
    _COLLECTORS[name] = fn


def collector_names() -> list[str]:
    _load_builtin()
    return sorted(_COLLECTORS)


def collect(name: str, source: str | Path, **options: Any) -> Latents:
    """Run the collector registered as ``name`` on ``source`` (a file, run folder or library)."""
    _load_builtin()
    if name not in _COLLECTORS:
        raise UnknownNameError("latent", name, _COLLECTORS)
    return _COLLECTORS[name](source, **options)


def load_npz(path: str | Path, *, x_key: str = "X", labels: Sequence[str] | None = None,
             thumbnails: str | None = None) -> Latents:
    """Read latents from an ``.npz`` file: ``x_key`` holds ``[N, D]``, other keys hold labels.

    ``labels=None`` takes every other 1-D array of length N; ``thumbnails=None`` takes the key
    ``thumbnails`` when present.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("latent file does not exist", file=path, expected="an .npz file")
    try:
        data = np.load(path, allow_pickle=False)
        arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read as .npz ({e})", file=path, expected="a file written by numpy.savez") from None
    if x_key not in arrays:
        raise UnknownNameError("latent array", x_key, arrays, file=path)
    X = arrays.pop(x_key)
    thumb_key = thumbnails if thumbnails is not None else ("thumbnails" if "thumbnails" in arrays else None)
    if thumb_key is not None and thumb_key not in arrays:
        raise UnknownNameError("thumbnail array", thumb_key, arrays, file=path)
    thumbs = arrays.pop(thumb_key) if thumb_key is not None else None
    if labels is None:
        n = X.shape[0] if X.ndim else -1
        label_arrays = {k: v for k, v in arrays.items() if v.ndim == 1 and v.shape[0] == n}
    else:
        for key in labels:
            if key not in arrays:
                raise UnknownNameError("label", key, arrays, file=path)
        label_arrays = {k: arrays[k] for k in labels}
    check_arrays(X, label_arrays, thumbs, file=path)
    return Latents(X=X, labels=label_arrays, thumbnails=thumbs, name=path.stem)


register_collector("npz", load_npz)
