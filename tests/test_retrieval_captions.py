"""Captions from episode facts, and batches without duplicate keys."""
from __future__ import annotations

import numpy as np
import pytest

from robot_irl.errors import InputError
from robot_irl.retrieval.captions import CaptionFacts, captions
from robot_irl.retrieval.train import distinct_key_batches

FACTS = [CaptionFacts(t, s, c, g, p) for t in ("place", "push", "reach") for s in ("cube", "cylinder")
         for c in ("red", "blue") for g in ("left", "shelf") for p in (None, "carry")]


def test_heldout_captions_are_new_sentences_over_the_same_words():
    train = {c for f in FACTS for c in captions(f, "train")}
    held = {c for f in FACTS for c in captions(f, "heldout")}
    assert train and held and not (train & held)
    words = lambda cs: {w.strip(",:") for c in cs for w in c.split()}  # noqa: E731
    content = {"place", "push", "reach", "placed", "pushed", "reached", "cube", "cylinder", "red", "blue", "left",
               "shelf", "carrying"}
    assert content <= words(train) and content <= words(held)


def test_every_caption_names_all_known_facts():
    f = CaptionFacts("place", "cube", "red", "shelf", "carry", task_text="put the red cube on the shelf")
    for split in ("train", "heldout"):
        for c in captions(f, split):
            if c != f.task_text:
                assert "red cube" in c and "shelf" in c, c
    assert "put the red cube on the shelf" in captions(f)
    assert captions(CaptionFacts("reach", goal="left"))[0] == "reach to the left"
    assert captions(CaptionFacts("wipe"), "heldout") == ["the arm wipes"]
    # what happened to the object, in both splits (different sentence frames)
    assert "the red cube is pushed to the left" in captions(CaptionFacts("push", "cube", "red", "left"))
    assert "to the left: a red cube is pushed by the arm" in captions(CaptionFacts("push", "cube", "red", "left"),
                                                                      "heldout")
    assert "the blue cup is wiped to the table" in captions(CaptionFacts("wipe", "cup", "blue", "table"))
    assert f.key() == CaptionFacts("place", "cube", "red", "shelf").key()


def test_facts_from_meta():
    f = CaptionFacts.from_meta({"task": "Push", "object": {"shape": "cube", "color": "Red"}, "goal_region": "left_bin"})
    assert (f.task, f.shape, f.colour, f.goal) == ("push", "cube", "red", "left bin")
    with pytest.raises(InputError, match="no task"):
        CaptionFacts.from_meta({"shape": "cube"})
    with pytest.raises(InputError, match="unknown caption split"):
        captions(f, "test")


def test_batches_never_repeat_a_key_and_cover_everything():
    keys = [i % 5 for i in range(103)]
    seen = []
    for b in distinct_key_batches(keys, 4, np.random.default_rng(0)):
        assert 2 <= len(b) <= 4 and len({keys[i] for i in b}) == len(b)
        seen += b
    assert len(seen) == len(set(seen)) >= 100  # at most a final singleton is dropped
