"""`robot-irl train --query TEXT --k N`: text → the library's CLIP → demos → a learned cost."""
import json

import pytest

from robot_irl.cli import main
from robot_irl.library import Library
from robot_irl.record.sim import record_sim
from robot_irl.retrieval import train_library_clip


@pytest.fixture(scope="module")
def library_with_clip(tmp_path_factory):
    lib = Library.open(tmp_path_factory.mktemp("lib") / "lib", create=True)
    for i, variant in enumerate([{"color": "red", "goal_region": "right"}, {"color": "blue", "goal_region": "left"}]):
        record_sim(lib, "robot_irl/Place-v0", episodes=2, seed=10 * i, variant=variant, render_size=(160, 120))
    train_library_clip(lib, seconds=3, seed=0)
    return lib


def test_train_learns_from_the_demos_search_returns(library_with_clip, tmp_path, capsys):
    lib = library_with_clip
    out = tmp_path / "run"
    rc = main(["train", "--library", str(lib.path), "--query", "place the red cube to the right", "--k", "2",
               "--demos", "source:sim", "--keypoints", "truth", "--iters", "5", "--out", str(out), "--quiet", "--json"])
    assert rc == 0
    found = json.loads(capsys.readouterr().out.splitlines()[0])
    ids = [d["episode"] for d in found["demos"]]
    assert len(ids) == 2 and set(ids) <= set(lib.ids())
    config = json.loads((out / "config.json").read_text())
    assert all(i in json.dumps(config) for i in ids)      # the run records which demos it learned from


def test_query_without_a_trained_clip_is_a_clear_error(tmp_path, capsys):
    lib = Library.open(tmp_path / "empty", create=True)
    record_sim(lib, "robot_irl/Reach-v0", episodes=1, seed=0, render_size=(160, 120))
    rc = main(["train", "--library", str(lib.path), "--query", "reach", "--out", str(tmp_path / "r")])
    assert rc == 2
    assert "no trained CLIP" in capsys.readouterr().err
