"""The domain CLIP trainer: learns, stops on time, exports a loadable local-dir: folder."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from robot_irl.errors import InputError
from robot_irl.retrieval.captions import CaptionFacts, captions
from robot_irl.retrieval.encoders import load_encoder
from robot_irl.retrieval.train import TrainConfig, train_clip

COLOURS = {"red": (220, 30, 30), "blue": (30, 30, 220)}


def scene(f: CaptionFacts, rng: np.random.Generator) -> np.ndarray:
    im = np.full((48, 64, 3), 200, np.uint8)
    x = (14 if f.goal == "left" else 50) + int(rng.integers(-3, 4))
    y = 24 + int(rng.integers(-5, 6))
    c = COLOURS[f.colour]
    if f.shape == "cube":
        cv2.rectangle(im, (x - 7, y - 7), (x + 7, y + 7), c, -1)
    else:
        cv2.circle(im, (x, y), 8, c, -1)
    return im


@pytest.fixture(scope="module")
def pairs():
    rng = np.random.default_rng(0)
    variants = [CaptionFacts("push", s, c, g) for s in ("cube", "ball") for c in COLOURS for g in ("left", "right")]
    facts = [variants[i % len(variants)] for i in range(48)]
    return np.stack([scene(f, rng) for f in facts]), [captions(f) for f in facts], [f.key() for f in facts]


@pytest.mark.slow
def test_training_lowers_the_loss_and_exports(pairs, tmp_path):
    images, caps, keys = pairs
    start = load_encoder("robot-irl-clip-64", seed=0)
    before = start.encode_images(images[:4])
    cfg = TrainConfig(epochs=3, batch_size=8, lr=2e-3, warmup_steps=2, seed=0)
    res = train_clip(start, images, caps, keys=keys, config=cfg, out_dir=tmp_path / "m", progress=False)
    losses = [h["loss"] for h in res.history]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert all(h["logit_scale"] <= 100.0 + 1e-3 for h in res.history)
    np.testing.assert_array_equal(start.encode_images(images[:4]), before)  # input encoder untouched
    assert res.encoder.model_id != start.model_id and res.pairs_per_s > 0
    again = load_encoder(f"local-dir:{tmp_path / 'm'}")
    assert again.model_id == res.encoder.model_id
    assert again.preprocess_cfg["resize_mode"] == "squash"
    np.testing.assert_array_equal(again.encode_texts(caps[0]), res.encoder.encode_texts(caps[0]))


def test_time_bound_and_bad_input(pairs):
    images, caps, keys = pairs
    enc = load_encoder("robot-irl-clip-64")
    res = train_clip(enc, images, caps, keys=keys, config=TrainConfig(epochs=50, max_seconds=0.0), progress=False)
    assert res.stopped_by == "time" and res.history == []
    with pytest.raises(InputError, match="caption list"):
        train_clip(enc, images, caps[:3], progress=False)
    with pytest.raises(InputError, match="list of captions"):
        train_clip(enc, images[:2], ["a", "b"], progress=False)
