"""Episode search: a text and/or image query in, ranked episodes with their best frame out.

The index ranks rows (keyframes, task texts); an episode scores as its best row, and its best
keyframe is what a person is shown. Rows are fetched in growing batches until k distinct
episodes are found, so an episode with many similar keyframes cannot crowd out the rest.
"""
from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robot_irl.errors import InputError
from robot_irl.retrieval.crop import Rect, crop_frames
from robot_irl.retrieval.encoders import ClipEncoder, read_image
from robot_irl.retrieval.index import KINDS, EmbeddingIndex

EpisodeFilter = Collection[str] | Callable[[str], bool] | None


@dataclass(frozen=True)
class EpisodeHit:
    rank: int
    episode_id: str
    score: float  # cosine similarity of the best row
    frame: int  # frame index of the best keyframe (-1 when only a text row matched)
    time: float | None  # its timestamp in seconds, when the index has one
    kind: str  # kind of the best row: keyframe | text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def row_mask(index: EmbeddingIndex, episodes: EpisodeFilter = None,
             kinds: Sequence[str] = ("keyframe",)) -> np.ndarray:
    """bool [N]: rows of the wanted kinds in the wanted episodes."""
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise InputError(f"row kinds {list(kinds)}", field="kinds", expected="a non-empty subset of " + ", ".join(KINDS))
    mask = np.isin(index.kinds, [KINDS.index(k) for k in kinds])
    if episodes is not None:
        names = index.episodes()
        keep = np.array([episodes(e) for e in names] if callable(episodes) else
                        [e in set(episodes) for e in names], dtype=bool)
        mask &= keep[index.episode_codes()] if len(names) else False
    return mask


def search_vector(index: EmbeddingIndex, query: np.ndarray, k: int = 10, *, episodes: EpisodeFilter = None,
                  kinds: Sequence[str] = ("keyframe",)) -> list[EpisodeHit]:
    """Top-k episodes for one query embedding."""
    if k < 1:
        raise InputError(f"k={k}", field="k", expected="k >= 1")
    mask = row_mask(index, episodes, kinds)
    allowed = int(mask.sum())
    codes = index.episode_codes()
    fetch = min(allowed, max(4 * k, 32))
    while True:
        scores, rows = index.search(query, max(fetch, 1), mask=mask)
        best: dict[int, tuple[float, int]] = {}
        for s, r in zip(scores[0], rows[0]):
            if r < 0:
                continue
            c = int(codes[r])
            if c not in best:
                best[c] = (float(s), int(r))
        if len(best) >= k or fetch >= allowed:
            break
        fetch = min(allowed, fetch * 4)
    hits = sorted(best.items(), key=lambda kv: -kv[1][0])[:k]
    kf = KINDS.index("keyframe")
    out = []
    for rank, (code, (score, row)) in enumerate(hits, 1):
        frame_row = row if index.kinds[row] == kf else _best_keyframe(index, code, query)
        t = float(index.times[frame_row]) if frame_row >= 0 else float("nan")
        out.append(EpisodeHit(rank=rank, episode_id=index.episode_name(code), score=score,
                              frame=int(index.frames[frame_row]) if frame_row >= 0 else -1,
                              time=None if np.isnan(t) else t, kind=KINDS[index.kinds[row]]))
    return out


def _best_keyframe(index: EmbeddingIndex, code: int, query: np.ndarray) -> int:
    rows = np.flatnonzero((index.episode_codes() == code) & (index.kinds == KINDS.index("keyframe")))
    if len(rows) == 0:
        return -1
    sims = index.vectors[rows].astype(np.float32) @ np.asarray(query, np.float32).reshape(-1)
    return int(rows[int(np.argmax(sims))])


class Searcher:
    """An encoder and an index made by the same model."""

    def __init__(self, encoder: ClipEncoder, index: EmbeddingIndex,
                 image_crop: Callable[[np.ndarray], Rect | None] | None = None) -> None:
        """image_crop: the workspace rectangle for a query image (see crop.py), so a query frame
        is cut like the library's keyframes were; None keeps query images whole."""
        index.check_model(encoder.model_id)
        self.encoder = encoder
        self.index = index
        self.image_crop = image_crop

    def embed_query(self, text: str | None = None, image: np.ndarray | str | Path | None = None) -> np.ndarray:
        """One normalised query vector; text and image together average their embeddings."""
        parts = []
        if text is not None:
            if not isinstance(text, str) or not text.strip():
                raise InputError("empty query text", field="query", expected="a description such as 'place the red block on the shelf'")
            parts.append(self.encoder.encode_texts([text])[0])
        if image is not None:
            img = read_image(image) if isinstance(image, (str, Path)) else image
            if self.image_crop is not None:
                img = crop_frames([img], self.image_crop(img))[0]
            parts.append(self.encoder.encode_images([img])[0])
        if not parts:
            raise InputError("no query", field="query", expected="a text, an image, or both")
        q = np.sum(parts, axis=0)
        return q / np.linalg.norm(q)

    def search(self, text: str | None = None, image: np.ndarray | str | Path | None = None, *, k: int = 10,
               episodes: EpisodeFilter = None, kinds: Sequence[str] = ("keyframe",)) -> list[EpisodeHit]:
        return search_vector(self.index, self.embed_query(text, image), k, episodes=episodes, kinds=kinds)
