"""Episode search over an index, contact sheets, and the encoder/index model check."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from robot_irl.errors import InputError
from robot_irl.retrieval.index import EmbeddingIndex, ModelMismatchError
from robot_irl.retrieval.search import EpisodeHit, Searcher, search_vector
from robot_irl.retrieval.sheet import write_contact_sheet

D = 16


@pytest.fixture()
def index():
    """5 episodes x 6 keyframes around their own direction, plus one text row each."""
    rng = np.random.default_rng(0)
    idx = EmbeddingIndex("m", D)
    dirs = np.eye(D, dtype=np.float32)[:5]
    for e in range(5):
        frames = dirs[e] + 0.3 * rng.standard_normal((6, D)).astype(np.float32)
        idx.add(frames, f"ep{e}", np.arange(0, 60, 10), times=np.arange(6) * 0.5)
        idx.add(dirs[e] + 0.05, f"ep{e}", [-1], kinds="text")
    return idx, dirs


def test_ranks_episodes_not_frames(index):
    idx, dirs = index
    q = dirs[2] + 0.2 * dirs[4]
    hits = search_vector(idx, q, k=3)
    assert [h.episode_id for h in hits][:2] == ["ep2", "ep4"]
    assert len({h.episode_id for h in hits}) == 3 and [h.rank for h in hits] == [1, 2, 3]
    best = hits[0]
    rows = np.flatnonzero((idx.episode_ids == "ep2") & (idx.kinds == 0))
    sims = idx.vectors[rows].astype(np.float32) @ (q / np.linalg.norm(q))
    assert best.frame == idx.frames[rows[np.argmax(sims)]] and best.kind == "keyframe"
    assert best.time == pytest.approx(idx.times[rows[np.argmax(sims)]])
    assert best.score == pytest.approx(sims.max(), abs=2e-3)


def test_filters_kinds_and_k_beyond_size(index):
    idx, dirs = index
    assert [h.episode_id for h in search_vector(idx, dirs[2], k=5, episodes={"ep0", "ep1"})] in (["ep0", "ep1"], ["ep1", "ep0"])
    assert all(h.episode_id != "ep2" for h in search_vector(idx, dirs[2], k=5, episodes=lambda e: e != "ep2"))
    hits = search_vector(idx, dirs[3], k=50, kinds=("text",))
    assert len(hits) == 5 and hits[0].episode_id == "ep3" and hits[0].kind == "text"
    assert hits[0].frame in idx.frames[(idx.episode_ids == "ep3") & (idx.kinds == 0)]  # best keyframe shown
    assert search_vector(idx, dirs[0], k=3, episodes=set()) == []
    with pytest.raises(InputError, match="row kinds"):
        search_vector(idx, dirs[0], kinds=("audio",))


def test_contact_sheet(tmp_path):
    hits = [EpisodeHit(i + 1, f"episode-{i}", 0.9 - i / 10, i, 0.1 * i, "keyframe") for i in range(7)]
    frames = [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(6)] + [None]
    path = write_contact_sheet(tmp_path / "sheet.png", hits, frames, thumb=100, cols=4, title="red cube")
    img = cv2.imread(str(path))
    assert img.shape == (26 + 2 * (100 + 34), 400, 3)
    with pytest.raises(InputError, match="one frame"):
        write_contact_sheet(tmp_path / "x.png", hits, frames[:2])


def test_searcher_refuses_index_of_other_model(index):
    from robot_irl.retrieval.encoders import load_encoder

    enc = load_encoder("robot-irl-clip-64")
    with pytest.raises(ModelMismatchError, match="rebuild the index"):
        Searcher(enc, index[0])
    idx = EmbeddingIndex(enc.model_id, enc.embed_dim)
    with pytest.raises(InputError, match="index is empty"):
        Searcher(enc, idx).search("red cube")
    idx.add(enc.encode_texts(["red cube", "blue cylinder"]), ["a", "b"], [0, 0])
    s = Searcher(enc, idx)
    assert s.search("red cube", k=1)[0].episode_id == "a"
    with pytest.raises(InputError, match="no query"):
        s.search()
