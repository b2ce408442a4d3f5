"""Small open_clip architectures the project trains itself, registered by dict (no download).

open_clip only knows architectures from its bundled JSON files; a domain CLIP small enough to
train on two CPU cores in minutes is not among them, so we add ours to its registry at import.
The exported `local-dir:` folders carry the full config, so loading one never needs this module.
"""
from __future__ import annotations

import copy
from typing import Any

import open_clip
from open_clip import factory as _factory

_SMALL_TEXT = {"context_length": 16, "vocab_size": 49408, "width": 128, "heads": 4, "layers": 2}


def _resnet(image_size: int) -> dict[str, Any]:
    """A small ResNet image tower (open_clip's ModifiedResNet: 3-conv stem, one bottleneck per
    stage, attention pooling) with the small text tower: convolutions find a few-pixel coloured
    object from the first steps, where a ViT trained from scratch sat on the ln(batch) loss
    plateau for hundreds of steps."""
    return {"embed_dim": 128,
            "vision_cfg": {"image_size": image_size, "layers": [1, 1, 1, 1], "width": 32, "head_width": 64},
            "text_cfg": dict(_SMALL_TEXT)}


# 64 px ViT (3 layers x 128 wide, patch 8 -> 64 tokens) and a 2 x 128 text tower over
# 16 tokens: ~7 M parameters, most of them the 49k-word token embedding.
CUSTOM_CONFIGS: dict[str, dict[str, Any]] = {
    "robot-irl-clip-64": {
        "embed_dim": 128,
        "vision_cfg": {"image_size": 64, "layers": 3, "width": 128, "head_width": 32, "patch_size": 8},
        "text_cfg": dict(_SMALL_TEXT),
    },
    "robot-irl-clip-96": {
        "embed_dim": 256,
        "vision_cfg": {"image_size": 96, "layers": 4, "width": 192, "head_width": 32, "patch_size": 12},
        "text_cfg": {"context_length": 24, "vocab_size": 49408, "width": 192, "heads": 6, "layers": 3},
    },
    "robot-irl-rn-64": _resnet(64),
    "robot-irl-rn-96": _resnet(96),
}

DEFAULT_DOMAIN_MODEL = "robot-irl-rn-64"
# Library frames are first cut to the workspace (crop.py: the projected workspace box, wider than
# tall, with goal regions near its edges); a centre crop (open_clip's default) would cut those off,
# so our models see the whole cut, squashed.
CUSTOM_PREPROCESS: dict[str, Any] = {"resize_mode": "squash"}


def register_custom_configs() -> None:
    """Make our architectures known to open_clip.create_model / get_tokenizer (idempotent)."""
    for name, cfg in CUSTOM_CONFIGS.items():
        _factory._MODEL_CONFIGS.setdefault(name, copy.deepcopy(cfg))


def known_model_names() -> list[str]:
    register_custom_configs()
    return list(open_clip.list_models())


register_custom_configs()
