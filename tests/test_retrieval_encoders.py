"""Encoders: weights from a file, a local-dir: folder or the cache; clear errors otherwise."""
from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
import torch

from robot_irl.errors import InputError, UnknownNameError
from robot_irl.retrieval.encoders import load_encoder, read_image

ARCH = "robot-irl-clip-64"
TEXTS = ["place the red cube to the left", "push the blue cylinder to the right"]


@pytest.fixture(scope="module")
def enc():
    return load_encoder(ARCH, seed=3)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, (4, 72, 96, 3), dtype=np.uint8)


def test_checkpoint_by_path_and_local_dir_gives_identical_embeddings(enc, images, tmp_path):
    torch.save(enc.model.state_dict(), tmp_path / "weights.pt")
    enc.save_local_dir(tmp_path / "export")
    by_path = load_encoder(ARCH, tmp_path / "weights.pt")
    by_dir = load_encoder(f"local-dir:{tmp_path / 'export'}")
    by_folder_arg = load_encoder(ARCH, tmp_path / "export")
    ref_i, ref_t = enc.encode_images(images), enc.encode_texts(TEXTS)
    for other in (by_path, by_dir, by_folder_arg):
        assert other.model_id == enc.model_id
        np.testing.assert_array_equal(other.encode_images(images), ref_i)
        np.testing.assert_array_equal(other.encode_texts(TEXTS), ref_t)
    assert np.allclose(np.linalg.norm(ref_i, axis=1), 1, atol=1e-5)
    assert load_encoder(ARCH, seed=4).model_id != enc.model_id


def test_local_dir_restores_preprocessing(enc, images, tmp_path):
    enc2 = load_encoder(ARCH, seed=3)
    enc2.preprocess_cfg.update(mean=(0.1, 0.2, 0.3), std=(0.5, 0.6, 0.7))
    torch.save(enc2.model.state_dict(), tmp_path / "bare.pt")
    enc2.save_local_dir(tmp_path / "export")
    back = load_encoder(f"local-dir:{tmp_path / 'export'}")
    assert tuple(back.preprocess_cfg["mean"]) == (0.1, 0.2, 0.3)
    assert tuple(back.preprocess_cfg["std"]) == (0.5, 0.6, 0.7)
    np.testing.assert_allclose(back.encode_images(images), enc2.encode_images(images), atol=1e-6)
    bare = load_encoder(ARCH, tmp_path / "bare.pt")  # a bare file carries no preprocessing
    assert tuple(bare.preprocess_cfg["mean"]) != (0.1, 0.2, 0.3)


def test_preprocess_any_frame_size(enc):
    frames = [np.zeros((48, 64, 3), np.uint8), np.full((240, 320, 3), 255, np.uint8)]
    x = enc.preprocess(frames)
    assert x.shape == (2, 3, 64, 64)
    assert x[0].mean() < x[1].mean()


def test_unknown_model_and_tag():
    with pytest.raises(UnknownNameError, match="unknown open_clip model 'ViT-Nope'.*ViT-B-32"):
        load_encoder("ViT-Nope")
    with pytest.raises(UnknownNameError, match="pretrained tag for ViT-B-32.*laion2b_s34b_b79k"):
        load_encoder("ViT-B-32", "not_a_tag")
    with pytest.raises(InputError, match="weights file not found"):
        load_encoder(ARCH, "/nonexistent/weights.safetensors")


def test_uncached_tag_fails_fast_with_download_instructions(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    t = time.perf_counter()
    with pytest.raises(InputError) as e:
        load_encoder("ViT-B-32", "laion2b_s34b_b79k")
    assert time.perf_counter() - t < 3.0
    msg = str(e.value)
    assert "huggingface-cli download laion/CLIP-ViT-B-32-laion2B-s34B-b79K" in msg
    assert "--pretrained" in msg and "empty-cache" in msg


def test_cached_tag_is_found_offline_with_its_preprocessing(tmp_path, monkeypatch):
    """A tag whose weights sit in the HF cache resolves to that file, mean/std from the tag."""
    from huggingface_hub import constants

    from robot_irl.retrieval.weights import resolve

    repo = tmp_path / "hub" / "models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K"
    snap = repo / "snapshots" / ("a" * 40)
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    (snap / "open_clip_model.safetensors").write_bytes(b"stand-in")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    src = resolve("ViT-B-32", "laion2b_s34b_b79k")
    assert src.kind == "cache" and src.path.read_bytes() == b"stand-in"
    assert tuple(src.preprocess["mean"]) == pytest.approx((0.48145466, 0.4578275, 0.40821073))


def test_corrupt_and_mismatched_checkpoints(enc, tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint" * 8)
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    for f in ("junk.pt", "junk.safetensors"):
        with pytest.raises(InputError, match="corrupt or not a checkpoint") as e:
            load_encoder(ARCH, tmp_path / f)
        assert f in str(e.value)
    torch.save(enc.model.state_dict(), tmp_path / "small.pt")
    with pytest.raises(InputError, match="do not fit architecture robot-irl-clip-96"):
        load_encoder("robot-irl-clip-96", tmp_path / "small.pt")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "open_clip_config.json").write_text("{not json")
    with pytest.raises(InputError, match="invalid JSON"):
        load_encoder(f"local-dir:{tmp_path / 'half'}")


def test_unreadable_image(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(InputError, match="unreadable image") as e:
        read_image(tmp_path / "broken.png")
    assert "broken.png" in str(e.value)
    with pytest.raises(InputError, match="image not found"):
        read_image(tmp_path / "missing.png")
    ok = np.zeros((5, 7, 3), np.uint8)
    ok[..., 0] = 255  # red in RGB
    cv2.imwrite(str(tmp_path / "red.png"), ok[:, :, ::-1])
    assert read_image(tmp_path / "red.png")[0, 0].tolist() == [255, 0, 0]


def test_bad_encoder_inputs(enc):
    with pytest.raises(InputError, match="RGB uint8"):
        enc.encode_images([np.zeros((8, 8), np.uint8)])
    with pytest.raises(InputError, match="non-empty list of strings"):
        enc.encode_texts("a bare string")


def test_workspace_box_is_saved_with_the_model(tmp_path):
    import json

    from robot_irl.retrieval.crop import WORKSPACE_BOX

    enc = load_encoder(ARCH, seed=3)
    assert enc.workspace_box == WORKSPACE_BOX  # a new model crops to the sim workspace
    for box in (((0.2, 0.9), (-0.2, 0.3), (0.0, 0.5)), None):
        enc.workspace_box = box
        enc.save_local_dir(tmp_path / str(box is None))
        assert load_encoder(f"local-dir:{tmp_path / str(box is None)}").workspace_box == box
    cfg_path = tmp_path / "False" / "open_clip_config.json"
    cfg = json.loads(cfg_path.read_text())
    del cfg["robot_irl"]["workspace_box"]  # an export from before the box was saved
    cfg_path.write_text(json.dumps(cfg))
    assert load_encoder(f"local-dir:{tmp_path / 'False'}").workspace_box == WORKSPACE_BOX
    for bad in ([[0.8, 0.3], [-0.1, 0.2], [0, 0.3]], "table", [[0.3, 0.8], [0, 0.2]]):
        cfg["robot_irl"]["workspace_box"] = bad
        cfg_path.write_text(json.dumps(cfg))
        with pytest.raises(InputError, match="robot_irl.workspace_box") as e:
            load_encoder(f"local-dir:{tmp_path / 'False'}")
        assert str(cfg_path) in str(e.value) and "x0 < x1" in str(e.value)
