"""Small media helpers for reports: frames → animated GIF, frames → contact strip."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image


def write_gif(frames: Iterable[np.ndarray], path: str | Path, fps: float = 10.0, max_width: int = 320,
              every: int = 1) -> Path:
    """Write RGB uint8 frames as a looping GIF, downscaled to ``max_width`` (reports stay small)."""
    images = []
    for i, f in enumerate(frames):
        if i % every:
            continue
        img = Image.fromarray(np.asarray(f, dtype=np.uint8))
        if img.width > max_width:
            img = img.resize((max_width, round(img.height * max_width / img.width)))
        images.append(img.convert("P", palette=Image.Palette.ADAPTIVE))
    if not images:
        raise ValueError("no frames to write")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 * every / fps), loop=0)
    return path
