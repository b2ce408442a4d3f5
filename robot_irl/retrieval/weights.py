"""Where an encoder's weights come from, resolved offline, with a message that says what to fetch.

robot-irl never downloads weights at run time. A pretrained tag is looked up in the local
Hugging Face cache with the hub client forced offline (an uncached tag otherwise spends ~47 s in
hub retries before failing; offline it fails in ~0.1 s). Weights given as a bare file carry no
preprocessing, so for a tag we hand open_clip the tag's mean/std ourselves (open_clip #1068);
`local-dir:` folders carry theirs in open_clip_config.json.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import open_clip

from robot_irl.errors import InputError, UnknownNameError
from robot_irl.retrieval.models import known_model_names

LOCAL_DIR = "local-dir:"
CONFIG_FILE = "open_clip_config.json"
WEIGHTS_FILE = "open_clip_model.safetensors"
_PREPROCESS_KEYS = ("mean", "std", "interpolation", "resize_mode")


@dataclass(frozen=True)
class WeightsSource:
    """A resolved (architecture, weights) pair, before any tensor is read."""

    kind: str  # "random" | "file" | "cache" | "local-dir"
    model_name: str  # what open_clip.create_model receives
    arch: str  # readable architecture name, the first half of the encoder's model id
    path: Path | None = None
    preprocess: dict[str, Any] = field(default_factory=dict)


@contextmanager
def hub_offline() -> Iterator[None]:
    """Force huggingface_hub offline for the duration (it reads HF_HUB_OFFLINE once at import)."""
    old_env = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        from huggingface_hub import constants
    except ImportError:  # no hub client: nothing can reach the hub anyway
        constants = None
    old_const = getattr(constants, "HF_HUB_OFFLINE", None)
    if constants is not None:
        constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        if constants is not None:
            constants.HF_HUB_OFFLINE = old_const
        if old_env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = old_env


def resolve(model: str, pretrained: str | Path | None = None) -> WeightsSource:
    """Turn (model, pretrained) into a WeightsSource, or raise an error naming what is wrong.

    model: an open_clip architecture name (``ViT-B-32``, ``robot-irl-clip-64``) or
    ``local-dir:/path`` (config + weights + preprocessing in one folder).
    pretrained: None (random init, for wiring tests), a weights file, a folder (as local-dir),
    or an open_clip pretrained tag found in the local cache.
    """
    if model.startswith(LOCAL_DIR):
        if pretrained is not None:
            raise InputError("a local-dir: model carries its own weights", field="pretrained",
                             expected="no --pretrained with a local-dir: model")
        return _local_dir(Path(model[len(LOCAL_DIR):]))
    names = known_model_names()
    arch = model.replace("/", "-")
    if arch not in names:
        raise UnknownNameError("open_clip model", model, names)
    if pretrained is None:
        return WeightsSource("random", arch, arch)
    p = Path(pretrained)
    if p.is_dir():
        return _local_dir(p)
    if p.is_file():
        return WeightsSource("file", arch, arch, path=p)
    tag = str(pretrained)
    tags = open_clip.list_pretrained_tags_by_model(arch)
    if not open_clip.pretrained.is_pretrained_cfg(arch, tag):
        if os.sep in tag or tag.endswith((".pt", ".pth", ".bin", ".safetensors")):
            raise InputError("weights file not found", file=p,
                             expected="an existing open_clip checkpoint (.safetensors/.pt/.bin)")
        raise UnknownNameError(f"pretrained tag for {arch}", tag, tags)
    cfg = open_clip.get_pretrained_cfg(arch, tag)
    path = _cached_tag_file(arch, tag, cfg)
    pre = {k: cfg[k] for k in _PREPROCESS_KEYS if k in cfg}
    return WeightsSource("cache", arch, arch, path=path, preprocess=pre)


def _local_dir(d: Path) -> WeightsSource:
    expected = f"a folder with {CONFIG_FILE} and {WEIGHTS_FILE} (written by robot-irl clip train or open_clip)"
    cfg_path = d / CONFIG_FILE
    if not d.is_dir():
        raise InputError("local-dir: folder not found", file=d, expected=expected)
    if not cfg_path.is_file():
        raise InputError(f"missing {CONFIG_FILE}", file=d, expected=expected)
    try:
        cfg = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"invalid JSON ({e})", file=cfg_path, expected="an open_clip config") from None
    if not isinstance(cfg, dict) or not isinstance(cfg.get("model_cfg"), dict):
        raise InputError("no model_cfg object", file=cfg_path, field="model_cfg",
                         expected="an open_clip model config (embed_dim, vision_cfg, text_cfg)")
    weights = d / WEIGHTS_FILE
    if not weights.is_file():
        raise InputError(f"missing {WEIGHTS_FILE}", file=d, expected=expected)
    arch = str(cfg.get("robot_irl", {}).get("arch") or d.resolve().name)
    return WeightsSource("local-dir", LOCAL_DIR + str(d), arch, path=weights,
                         preprocess=dict(cfg.get("preprocess_cfg", {})))


def _cached_tag_file(arch: str, tag: str, cfg: dict[str, Any]) -> Path:
    """The tag's weights from the local HF cache, never from the network."""
    hub = cfg.get("hf_hub", "")
    if not hub:
        raise InputError(f"pretrained tag '{tag}' of {arch} has no hub location", field="pretrained",
                         expected="a weights file path or a local-dir: folder")
    repo, filename = os.path.split(hub)  # open_clip's convention: "org/repo/" or "org/repo/file"
    try:
        with hub_offline():
            got = open_clip.pretrained.download_pretrained(cfg)
    except Exception:  # the hub client raises a zoo of types; all mean "not in the cache"
        got = ""
    if got and Path(got).is_file():
        return Path(got)
    from huggingface_hub import constants
    fname = filename or "open_clip_model.safetensors (or open_clip_pytorch_model.bin)"
    raise InputError(
        f"pretrained weights {arch}:{tag} are not on this machine, and robot-irl does not download "
        f"at run time. On a machine with internet run: huggingface-cli download {repo} "
        f"{filename or 'open_clip_model.safetensors'} --local-dir {arch}-{tag}  then pass the file "
        f"with --pretrained {arch}-{tag}/<file>, or copy the Hugging Face cache to "
        f"{constants.HF_HUB_CACHE} (repo {repo}, file {fname})",
        field="pretrained", expected="cached weights, a weights file or a local-dir: folder")
