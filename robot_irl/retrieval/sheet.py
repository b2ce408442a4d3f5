"""Contact sheets: the hits of a search as one PNG a person can look at."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from robot_irl.core.io import atomic_write_bytes
from robot_irl.errors import InputError
from robot_irl.retrieval.search import EpisodeHit


def _fit(img: np.ndarray, size: int) -> np.ndarray:
    h, w = img.shape[:2]
    s = size / max(h, w)
    small = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    cell = np.full((size, size, 3), 40, np.uint8)
    y, x = (size - small.shape[0]) // 2, (size - small.shape[1]) // 2
    cell[y:y + small.shape[0], x:x + small.shape[1]] = small
    return cell


def contact_sheet(hits: Sequence[EpisodeHit], frames: Sequence[np.ndarray | None], *, thumb: int = 160,
                  cols: int = 5, title: str | None = None) -> np.ndarray:
    """RGB uint8 grid: each hit's frame with rank, episode id and score beneath it."""
    if len(hits) != len(frames):
        raise InputError(f"{len(hits)} hits but {len(frames)} frames", field="frames", expected="one frame (or None) per hit")
    if not hits:
        raise InputError("no hits to draw", field="hits", expected="at least one search result")
    cols = max(1, min(cols, len(hits)))
    rows = -(-len(hits) // cols)
    label_h, title_h, font = 34, (26 if title else 0), cv2.FONT_HERSHEY_SIMPLEX
    sheet = np.full((title_h + rows * (thumb + label_h), cols * thumb, 3), 255, np.uint8)
    if title:
        cv2.putText(sheet, title[:cols * thumb // 8], (6, 18), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    for i, (hit, frame) in enumerate(zip(hits, frames)):
        r, c = divmod(i, cols)
        y, x = title_h + r * (thumb + label_h), c * thumb
        if frame is None:
            cell = np.full((thumb, thumb, 3), 90, np.uint8)
            cv2.putText(cell, "no frame", (8, thumb // 2), font, 0.45, (230, 230, 230), 1, cv2.LINE_AA)
        else:
            a = np.asarray(frame)
            if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
                raise InputError(f"frame {i} has shape {a.shape} dtype {a.dtype}", field="frames",
                                 expected="RGB uint8 [H, W, 3]")
            cell = _fit(a, thumb)
        sheet[y:y + thumb, x:x + thumb] = cell
        name = hit.episode_id if len(hit.episode_id) <= thumb // 7 else "..." + hit.episode_id[-(thumb // 7 - 3):]
        cv2.putText(sheet, f"{hit.rank}. {name}", (x + 3, y + thumb + 13), font, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(sheet, f"{hit.score:.3f}  frame {hit.frame}", (x + 3, y + thumb + 28), font, 0.36,
                    (60, 60, 60), 1, cv2.LINE_AA)
    return sheet


def write_contact_sheet(path: str | Path, hits: Sequence[EpisodeHit], frames: Sequence[np.ndarray | None],
                        **kw) -> Path:
    """contact_sheet() written as a PNG (atomically)."""
    img = contact_sheet(hits, frames, **kw)
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(img[:, :, ::-1]))
    if not ok:
        raise InputError("PNG encoding failed", file=path, expected="a writable .png path")
    atomic_write_bytes(path, buf.tobytes())
    return Path(path)
