"""CLIP encoders over open_clip: any architecture, weights resolved offline, embeddings as numpy.

Images go through a batched tensor pipeline that follows the model's own preprocessing config
(size, mean/std, interpolation, resize mode), so frames straight from a recorder never take a
round trip through PIL. Every encoder carries a model id (architecture + digest of its weights):
vectors are only comparable when their ids match, and the index refuses the rest.
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
import pickle
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from robot_irl.core.io import atomic_write_bytes, atomic_write_json
from robot_irl.errors import InputError
from robot_irl.retrieval.crop import WORKSPACE_BOX, Box, parse_box
from robot_irl.retrieval.models import CUSTOM_CONFIGS, CUSTOM_PREPROCESS
from robot_irl.retrieval.weights import CONFIG_FILE, WEIGHTS_FILE, WeightsSource, hub_offline, resolve

_INTERP = {"bicubic": InterpolationMode.BICUBIC, "bilinear": InterpolationMode.BILINEAR,
           "nearest": InterpolationMode.NEAREST}


@contextmanager
def _quiet_root_warnings() -> Iterator[None]:
    """open_clip logs 'initialized randomly' etc. on the root logger; we say it ourselves."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


def weights_digest(model: torch.nn.Module) -> str:
    """SHA-256 over the state dict (names + raw bytes): the same weights give the same id
    whether they came from a .pt, a .safetensors or a local-dir: folder."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()[:16]


def read_image(path: str | Path) -> np.ndarray:
    """An RGB uint8 [H, W, 3] image from disk, or an InputError naming the file."""
    import cv2

    p = Path(path)
    if not p.is_file():
        raise InputError("image not found", file=p, expected="an existing PNG/JPEG file")
    bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError("unreadable image", file=p, expected="a PNG/JPEG image OpenCV can decode")
    return np.ascontiguousarray(bgr[:, :, ::-1])


class ClipEncoder:
    """An open_clip model in eval mode with its tokenizer and preprocessing.

    workspace_box: the base-frame box library frames are cut to before resizing (crop.py), None
    for whole frames. It belongs to the model's preprocessing, like mean/std: a model trained on
    crops of one box must embed crops of that box, so it is saved with the model and restored."""

    def __init__(self, model: torch.nn.Module, source: WeightsSource, model_cfg: dict[str, Any],
                 device: str = "cpu", workspace_box: Box | None = WORKSPACE_BOX) -> None:
        self.model = model.eval()
        self.workspace_box = workspace_box
        self.source = source
        self.model_cfg = model_cfg
        self.device = torch.device(device)
        self.tokenizer = open_clip.get_tokenizer(source.model_name)
        self.preprocess_cfg: dict[str, Any] = dict(open_clip.get_model_preprocess_cfg(model))
        self.model_id = f"{source.arch}/{weights_digest(model)}"

    @property
    def embed_dim(self) -> int:
        return int(self.model_cfg["embed_dim"])

    @property
    def image_size(self) -> tuple[int, int]:
        s = self.preprocess_cfg["size"]
        return (s, s) if isinstance(s, int) else (int(s[0]), int(s[1]))

    # ---- preprocessing -------------------------------------------------------------------
    def preprocess(self, images: Sequence[np.ndarray] | np.ndarray) -> torch.Tensor:
        """uint8 RGB images (a list of [H,W,3], sizes may differ, or one [N,H,W,3] array) →
        normalised float tensor [N,3,S,S] as the model expects."""
        return self.normalise(self.resize(images))

    def normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 (or 0-255 float) [N,3,S,S] → the model's normalised input."""
        mean = torch.tensor(self.preprocess_cfg["mean"]).view(1, 3, 1, 1)
        std = torch.tensor(self.preprocess_cfg["std"]).view(1, 3, 1, 1)
        return (pixels.float() / 255.0 - mean) / std

    def resize(self, images: Sequence[np.ndarray] | np.ndarray) -> torch.Tensor:
        """uint8 RGB images → uint8 [N,3,S,S] at the model's input size and resize mode. Images of
        one shape are resized as one batch."""
        if isinstance(images, np.ndarray) and images.ndim == 3:
            images = images[None]
        if len(images) == 0:
            raise InputError("no images to encode", field="images", expected="at least one RGB image")
        out: list[torch.Tensor | None] = [None] * len(images)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, im in enumerate(images):
            a = np.asarray(im)
            if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
                raise InputError(f"image {i} has shape {a.shape} dtype {a.dtype}", field="images",
                                 expected="RGB uint8 arrays [H, W, 3]")
            groups.setdefault(a.shape, []).append(i)
        for idx in groups.values():
            batch = torch.from_numpy(np.stack([np.asarray(images[i]) for i in idx])).permute(0, 3, 1, 2)
            for j, t in zip(idx, self._resize(batch)):
                out[j] = t
        return torch.stack(out)  # type: ignore[arg-type]

    def _resize(self, batch: torch.Tensor) -> torch.Tensor:
        th, tw = self.image_size
        h, w = batch.shape[-2:]
        interp = _INTERP.get(self.preprocess_cfg.get("interpolation", "bicubic"), InterpolationMode.BICUBIC)
        mode = self.preprocess_cfg.get("resize_mode", "shortest")
        if (h, w) == (th, tw):
            return batch
        if mode == "squash":
            return TF.resize(batch, [th, tw], interpolation=interp, antialias=True)
        if mode == "longest":
            scale = min(th / h, tw / w)
            nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
            r = TF.resize(batch, [nh, nw], interpolation=interp, antialias=True)
            top, left = (th - nh) // 2, (tw - nw) // 2
            fill = int(self.preprocess_cfg.get("fill_color", 0))
            return F.pad(r, (left, tw - nw - left, top, th - nh - top), value=fill)
        scale = max(th / h, tw / w)  # "shortest": cover the target, then centre-crop
        nh, nw = max(th, round(h * scale)), max(tw, round(w * scale))
        return TF.center_crop(TF.resize(batch, [nh, nw], interpolation=interp, antialias=True), [th, tw])

    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        if isinstance(texts, str) or len(texts) == 0 or not all(isinstance(t, str) for t in texts):
            raise InputError("texts must be a non-empty list of strings", field="texts",
                             expected="e.g. ['place the red block on the shelf']")
        return self.tokenizer(list(texts))

    # ---- encoding ------------------------------------------------------------------------
    @torch.inference_mode()
    def encode_images(self, images: Sequence[np.ndarray] | np.ndarray, batch_size: int = 128) -> np.ndarray:
        """L2-normalised float32 embeddings [N, D]."""
        chunks = []
        for s in range(0, len(images), batch_size):
            x = self.preprocess(images[s:s + batch_size]).to(self.device)
            chunks.append(F.normalize(self.model.encode_image(x).float(), dim=-1).cpu())
        if not chunks:
            raise InputError("no images to encode", field="images", expected="at least one RGB image")
        return torch.cat(chunks).numpy()

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str], batch_size: int = 512) -> np.ndarray:
        """L2-normalised float32 embeddings [N, D]."""
        tokens = self.tokenize(texts)
        chunks = [F.normalize(self.model.encode_text(tokens[s:s + batch_size].to(self.device)).float(), dim=-1).cpu()
                  for s in range(0, len(tokens), batch_size)]
        return torch.cat(chunks).numpy()

    # ---- export --------------------------------------------------------------------------
    def save_local_dir(self, path: str | Path, info: dict[str, Any] | None = None) -> Path:
        """Write an open_clip `local-dir:` folder (config with preprocessing + safetensors weights),
        loadable by open_clip.create_model('local-dir:PATH') and by load_encoder."""
        from safetensors.torch import save

        d = Path(path)
        d.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        atomic_write_bytes(d / WEIGHTS_FILE, save(state))
        pre = {k: v for k, v in self.preprocess_cfg.items() if k != "size"}
        atomic_write_json(d / CONFIG_FILE, {
            "model_cfg": self.model_cfg,
            "preprocess_cfg": pre,
            "robot_irl": {"arch": self.source.arch, "model_id": self.model_id,
                          "workspace_box": None if self.workspace_box is None else [list(r) for r in self.workspace_box],
                          **(info or {})},
        })
        return d


def _checkpoint_error(e: Exception, src: WeightsSource) -> InputError:
    """Say whether the file is not a checkpoint at all or a checkpoint of another architecture."""
    text = " ".join(str(e).split())
    unreadable = (isinstance(e, (pickle.UnpicklingError, EOFError, zipfile.BadZipFile))
                  or type(e).__name__ == "SafetensorError"
                  or "PytorchStreamReader" in text or "central directory" in text)
    if unreadable:
        return InputError("corrupt or not a checkpoint (neither a readable torch pickle nor safetensors)",
                          file=src.path, expected="an open_clip checkpoint (.safetensors/.pt/.bin)")
    return InputError(f"weights do not fit architecture {src.arch} ({type(e).__name__}: {text[:300]})",
                      file=src.path, expected=f"a checkpoint saved from {src.arch} (or pass the matching --model)")


def load_encoder(model: str, pretrained: str | Path | None = None, *, seed: int = 0,
                 device: str = "cpu") -> ClipEncoder:
    """An encoder for `model` with weights from `pretrained` (see weights.resolve); random init
    (seeded, for wiring tests and training from scratch) when pretrained is None."""
    src = resolve(model, pretrained)
    box: Box | None = WORKSPACE_BOX
    if src.kind == "local-dir":
        cfg_path = src.path.parent / CONFIG_FILE  # type: ignore[union-attr]
        cfg = json.loads(cfg_path.read_text())
        model_cfg = cfg["model_cfg"]
        ours = cfg.get("robot_irl", {})
        if "workspace_box" in ours:  # exports from before the box was saved used the default
            raw = ours["workspace_box"]
            box = None if raw is None else parse_box(raw, file=cfg_path, field="robot_irl.workspace_box")
    else:
        model_cfg = open_clip.get_model_config(src.model_name)
    try:
        with hub_offline(), _quiet_root_warnings(), torch.random.fork_rng():
            torch.manual_seed(seed)
            net = open_clip.create_model(
                src.model_name,
                pretrained=str(src.path) if src.kind in ("file", "cache") else None,
                force_preprocess_cfg={**CUSTOM_PREPROCESS, **src.preprocess} if src.arch in CUSTOM_CONFIGS
                else (src.preprocess or None),
                device=device)
    except Exception as e:  # torch/safetensors/pickle each raise their own types for a bad file
        if src.path is None:
            raise
        raise _checkpoint_error(e, src) from None
    return ClipEncoder(net, src, copy.deepcopy(model_cfg), device, box)
