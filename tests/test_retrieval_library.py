"""End to end over a tiny sim library: `clip train`, then `search` (text, image, filter, sheet, JSON),
with the index kept in step with the library."""
from __future__ import annotations

import argparse
import json

import cv2
import numpy as np
import pytest

from robot_irl.errors import InputError
from robot_irl.library import Library
from robot_irl.retrieval import cli
from robot_irl.retrieval.encoders import load_encoder
from robot_irl.retrieval.library_index import (derived_name, episode_facts, keyframes, latest_model,
                                               library_index, phases)

VARIANTS = [("robot_irl/Place-v0", {"color": "red", "shape": "cube", "goal_region": "left"}),
            ("robot_irl/Push-v0", {"color": "blue", "shape": "cylinder", "goal_region": "right"})]


def run(*argv: str) -> int:
    p = argparse.ArgumentParser(prog="robot-irl")
    cli.register(p.add_subparsers(dest="command", required=True))
    args = p.parse_args(list(argv))
    return args.func(args)


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    from robot_irl.record.sim import record_sim

    lib = Library.open(tmp_path_factory.mktemp("lib") / "library", create=True)
    for env, variant in VARIANTS:
        record_sim(lib, env, episodes=1, seed=0, variant=variant, render_size=(64, 48))
    return lib


def test_episode_keyframes_phases_and_facts(lib):
    place = lib.select("task:place")[0]
    kf = keyframes(place)
    n = place.frame_count("cam0")
    assert kf[0] == 0 and kf[-1] == n - 1 and len(kf) > 8 and np.all(np.diff(kf) > 0)
    ph = phases(place, place.timestamps("cam0"))
    assert ph[0] == "carry" and ph[-1] == "retreat"  # the sim place task starts with the cube held
    f = episode_facts(place)
    assert (f.task, f.shape, f.colour, f.goal) == ("place", "cube", "red", "left")


@pytest.mark.slow
def test_train_then_search(lib, tmp_path, capsys):
    assert run("clip", "train", "--library", str(lib.path), "--epochs", "1", "--batch-size", "4",
               "--frames-per-episode", "4", "--quiet") == 0
    model_dir = latest_model(lib)
    printed = capsys.readouterr().out
    assert model_dir is not None and "saved to" in printed
    # figures beside the starting model's and chance (1 episode per variant: nothing held out)
    assert all(row in printed for row in ("trained", "random init", "chance"))
    sheet = tmp_path / "sheet.png"
    assert run("search", "place the red cube to the left", "--library", str(lib.path), "--k", "5",
               "--sheet", str(sheet), "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["hits"]) == 2 and out["embedded_now"] == 0 and out["index"] == "exact"  # train embedded all
    assert {h["episode_id"] for h in out["hits"]} == set(lib.ids())
    assert all(h["frame"] >= 0 and h["kind"] == "keyframe" for h in out["hits"])
    assert cv2.imread(str(sheet)) is not None
    enc = load_encoder(f"local-dir:{model_dir}")
    ep = lib.select("task:push")[0]
    assert derived_name(enc.model_id) in ep.derived()
    x0, y0, x1, y1 = ep.read_derived(derived_name(enc.model_id)).meta["crop"]  # keyframes cut to the workspace
    w, h = ep.frame_size("cam0")
    assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h and (x1 - x0) * (y1 - y0) < 0.8 * w * h

    frame = tmp_path / "frame.png"
    cv2.imwrite(str(frame), ep.frame("cam0", 5)[:, :, ::-1])
    assert run("search", "--image", str(frame), "--filter", "task:push", "--library", str(lib.path), "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert [h["episode_id"] for h in out["hits"]] == [ep.id] and out["embedded_now"] == 0
    assert out["hits"][0]["score"] > 0.9  # its own keyframes are in the index

    # the index follows the library: a removed episode triggers a rebuild without it
    lib.remove([ep.id])
    idx, rep = library_index(lib, enc)
    assert rep.rebuilt and set(idx.episodes()) == set(lib.ids())

    (tmp_path / "bad.png").write_bytes(b"nope")
    with pytest.raises(InputError, match="unreadable image"):
        run("search", "--image", str(tmp_path / "bad.png"), "--library", str(lib.path))


def test_clear_errors_without_model_or_episodes(tmp_path):
    empty = Library.open(tmp_path / "empty", create=True)
    with pytest.raises(InputError, match="no CLIP model in this library"):
        run("search", "red cube", "--library", str(empty.path))
    with pytest.raises(InputError, match="library has no episodes"):
        library_index(empty, load_encoder("robot-irl-clip-64"))
    with pytest.raises(InputError, match="no episodes selected"):
        run("clip", "train", "--library", str(empty.path), "--quiet")
    with pytest.raises(InputError, match="nothing to search for"):
        run("search", "--library", str(empty.path))


@pytest.mark.slow
def test_workspace_box_chosen_at_training_is_the_models(lib, tmp_path, capsys):
    from robot_irl.retrieval.crop import workspace_rect

    box = ["0.2", "0.9", "-0.2", "0.3", "0", "0.5"]
    assert run("clip", "train", "--library", str(lib.path), "--epochs", "1", "--batch-size", "4",
               "--frames-per-episode", "2", "--workspace", *box, "--out", str(tmp_path / "m1"), "--quiet") == 0
    enc = load_encoder(f"local-dir:{tmp_path / 'm1'}")
    assert enc.workspace_box == ((0.2, 0.9), (-0.2, 0.3), (0.0, 0.5))
    ep = lib.select("task:place")[0]
    assert list(ep.read_derived(derived_name(enc.model_id)).meta["crop"]) == list(
        workspace_rect(ep.camera_model("cam0"), enc.workspace_box))

    assert run("clip", "train", "--library", str(lib.path), "--epochs", "1", "--batch-size", "4",
               "--frames-per-episode", "2", "--whole-frames", "--out", str(tmp_path / "m2"), "--quiet") == 0
    enc = load_encoder(f"local-dir:{tmp_path / 'm2'}")
    assert enc.workspace_box is None and ep.read_derived(derived_name(enc.model_id)).meta["crop"] is None

    with pytest.raises(InputError, match="--workspace") as e:
        run("clip", "train", "--library", str(lib.path), "--workspace", "0.8", "0.3", "0", "1", "0", "1")
    assert "x0 < x1" in str(e.value)


def test_new_model_folders_are_distinct_and_sort_by_age(tmp_path):
    from robot_irl.retrieval.library_index import new_model_dir

    lib = Library.open(tmp_path / "lib", create=True)
    made = [new_model_dir(lib, "robot-irl-rn-64") for _ in range(20)]  # well inside one second
    assert len(set(made)) == 20 and all(d.is_dir() and not any(d.iterdir()) for d in made)
    assert sorted(made) == made
    assert latest_model(lib) is None  # empty folders are not models
    (made[3] / "open_clip_config.json").write_text("{}")
    assert latest_model(lib) == made[3]
