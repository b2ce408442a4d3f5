"""The one-call API on a tiny sim library: train_library_clip (bounded time, saved model, stored
embeddings, figures with baseline and chance) and example_queries (ranked hits + contact sheets)."""
from __future__ import annotations

import cv2
import pytest

from robot_irl.errors import InputError
from robot_irl.library import Library
from robot_irl.retrieval import example_queries, train_library_clip
from robot_irl.retrieval.encoders import load_encoder
from robot_irl.retrieval.library_clip import PROBES, chance_recall
from robot_irl.retrieval.library_index import derived_name, latest_model

COLOURS = ("red", "blue")


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    from robot_irl.record.sim import record_sim

    lib = Library.open(tmp_path_factory.mktemp("quick") / "library", create=True)
    for i, colour in enumerate(COLOURS):  # 2 variants x 2 episodes
        record_sim(lib, "robot_irl/Reach-v0", episodes=2, seed=10 * i, render_size=(64, 48),
                   variant={"color": colour, "shape": "cube", "goal_region": "left"})
    return lib


def test_chance_recall():
    assert chance_recall(10, 2, 1) == pytest.approx(0.2)
    assert chance_recall(10, 2, 5) == pytest.approx(1 - 28 / 126)  # 1 - C(8,5)/C(10,5)
    assert chance_recall(4, 1, 5) == 1.0


@pytest.mark.slow
def test_train_library_clip_then_example_queries(lib, tmp_path):
    fig = train_library_clip(lib, seconds=1.5, seed=0)
    assert fig["stopped_by"] == "time" and 1.5 <= fig["train_seconds"] < 10
    assert fig["steps"] > 0 and fig["pairs_per_s"] > 0 and fig["final_loss"] is not None
    # newest episode of each variant held out: 2 train, 2 held out, 12 frames each for training
    assert (fig["episodes"], fig["train_episodes"], fig["heldout_episodes"], fig["variants"]) == (4, 2, 2, 2)
    assert fig["pairs"] == 2 * 12 and fig["image_queries"] == 2 * PROBES  # PROBES frames per held-out episode
    assert 0.0 <= fig["image_recall1_middle"] <= 1.0
    assert fig["chance_image_recall1"] == pytest.approx(1 / 3)  # 1 other episode of the variant among 3
    for name in ("text_recall5", "random_text_recall5", "image_recall1", "random_image_recall1"):
        assert 0.0 <= fig[name] <= 1.0
    assert fig["text_queries"] > 0

    enc = load_encoder(f"local-dir:{fig['model_dir']}")  # saved as the library's model
    assert enc.model_id == fig["model_id"] and str(latest_model(lib)) == fig["model_dir"]
    assert all(derived_name(enc.model_id) in lib.episode(e).derived() for e in lib.ids())
    assert fig["index_rows"] > 4 and fig["index_kind"] == "exact"

    out = example_queries(lib, ["reach to the left above the red cube", "the blue cube"], k=3,
                          sheet_dir=tmp_path / "sheets")
    assert [o["query"] for o in out] == ["reach to the left above the red cube", "the blue cube"]
    for o in out:
        scores = [h["score"] for h in o["hits"]]
        assert len(scores) == 3 and scores == sorted(scores, reverse=True)
        assert [h["rank"] for h in o["hits"]] == [1, 2, 3]
        assert all(h["episode_id"] in lib.ids() and h["variant"]["color"] in COLOURS for h in o["hits"])
        assert cv2.imread(o["sheet"]) is not None
    assert out[0]["sheet"] != out[1]["sheet"]


def test_bad_calls(lib, tmp_path):
    with pytest.raises(InputError, match="seconds"):
        train_library_clip(lib, seconds=0)
    with pytest.raises(InputError, match="no episodes selected"):
        train_library_clip(lib, seconds=1, query="task:nothing-like-this")
    with pytest.raises(InputError, match="every selected episode is held out"):
        train_library_clip(lib, seconds=1, heldout_query="")
    with pytest.raises(InputError, match="no queries"):
        example_queries(lib, "red cube", 3, tmp_path)
    empty = Library.open(tmp_path / "empty", create=True)
    with pytest.raises(InputError, match="no CLIP model"):
        example_queries(empty, ["red cube"], 3, tmp_path)


def test_probe_frames_are_evenly_spaced_and_hold_the_middle_frame(lib):
    import numpy as np

    from robot_irl.retrieval.crop import crop_frames, episode_rect
    from robot_irl.retrieval.library_clip import read_episode
    from robot_irl.retrieval.library_index import CAMERA, frames_at

    enc = load_encoder("robot-irl-rn-64", seed=0)
    ep = lib.episode(lib.ids()[0])
    n = ep.frame_count(CAMERA)
    got = read_episode(ep, enc)
    assert got.probes.shape == (PROBES, *enc.image_size, 3)
    for i, f in enumerate([int((i + 0.5) * n / PROBES) for i in range(PROBES)]):
        want = enc.resize(crop_frames(frames_at(ep, CAMERA, [f]), episode_rect(ep, CAMERA)))
        assert np.array_equal(got.probes[i], want.permute(0, 2, 3, 1).numpy()[0])
    assert [int((i + 0.5) * n / PROBES) for i in range(PROBES)][got.probe_middle] == n // 2
