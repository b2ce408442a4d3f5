"""Library collectors on a small sim library: keypoint latents separate the task variants (goal
region) by 10-NN label accuracy, end to end through `robot-irl diagnose LIB --latent keypoints`;
CLIP latents come from the retrieval stage's stored embeddings."""
from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from robot_irl.diagnostics import collect
from robot_irl.diagnostics.cli import register
from robot_irl.errors import InputError
from robot_irl.library import Library

EPISODES_PER_REGION = 4


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    from robot_irl.record.sim import record_sim

    lib = Library.open(tmp_path_factory.mktemp("diag") / "library", create=True)
    for i, region in enumerate(("left", "right")):
        # start_range 0.1: demos of both regions start in one wide box, so the variant is not in the start
        record_sim(lib, "robot_irl/Place-v0", episodes=EPISODES_PER_REGION, seed=10 * i,
                   variant={"goal_region": region, "start_range": 0.1}, render_size=(160, 120))
    return lib


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="robot-irl")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.mark.timeout(120)
def test_keypoint_latent_separates_goal_regions(lib, tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert _run(["diagnose", str(lib.path), "--latent", "keypoints", "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    n = sum(len(ep.arrays("state")["timestamp"]) for ep in lib.select(None))
    assert m["keypoints.n_points"] == n and m["keypoints.n_dims"] == 18  # [x_t, x_end] of 3 keypoints
    # the acceptance figure: variants separate in the original space and in the map
    assert m["keypoints.original.knn_acc10.goal_region"] >= 0.9
    assert m["keypoints.tsne_pca.knn_acc10.goal_region"] >= 0.9
    for label in ("goal_region", "task", "episode", "step", "phase"):
        assert (out / "plots" / "keypoints" / f"{label}.png").stat().st_size > 1000
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["kind"] == "diagnose" and cfg["latents"]["collector"] == "keypoints"
    pbtxt = next(out.joinpath("tb").rglob("projector_config.pbtxt")).read_text()
    assert "sprite" in pbtxt and "single_image_dim: 32" in pbtxt
    text = capsys.readouterr().out
    assert "goal_region groups separate (10-NN accuracy" in text and "verdict:" in text
    assert f"projector: tensorboard --logdir {out / 'tb'}" in text


def test_keypoint_rows_labels_and_options(lib) -> None:
    lat = collect("keypoints", lib.path, thumbnails=False)
    eps = lib.select(None)
    first = eps[0].arrays("state")["keypoints_3d"]
    T = len(first)
    np.testing.assert_allclose(lat.X[:T, :9], first.reshape(T, 9))        # base frame, not goal-relative
    np.testing.assert_allclose(lat.X[:T, 9:], np.tile(first[-1].reshape(1, 9), (T, 1)))  # where it ended
    assert set(lat.labels["goal_region"]) == {"left", "right"} and lat.thumbnails is None
    assert np.unique(lat.labels["episode"]).size == len(eps)
    step = lat.labels["step"][:T]
    assert step.dtype.kind == "f" and step[0] == 0.0 and step[-1] == 1.0 and np.all(np.diff(step) > 0)
    assert "start_range" not in lat.labels  # a float setting, not a class
    left = collect("keypoints", lib.path, query="variant.goal_region=left", every=3, thumbnails=True)
    assert "goal_region" not in left.labels  # one class only: nothing to colour by
    assert np.unique(left.labels["episode"]).size == EPISODES_PER_REGION
    assert left.n == sum(len(range(0, len(e.arrays("state")["timestamp"]), 3))
                         for e in lib.select("variant.goal_region=left"))
    assert left.thumbnails.shape == (left.n, 32, 32, 3) and left.thumbnails.max() > 0
    with pytest.raises(InputError, match="field 'every'"):
        collect("keypoints", lib.path, every=0)
    with pytest.raises(InputError, match="no episode with keypoints matches"):
        collect("keypoints", lib.path, query="task:nothing-like-this")


@pytest.mark.timeout(120)
def test_clip_latents_use_the_stored_embeddings(lib) -> None:
    from robot_irl.retrieval.library_index import derived_name, keyframes

    query = "variant.goal_region=left"
    eps = lib.select(query)
    lat = collect("clip", lib.path, query=query, model="robot-irl-clip-64")  # random init: wiring, not quality
    assert lat.name == "clip" and lat.X.shape == (sum(len(keyframes(e)) for e in eps), 128)
    np.testing.assert_allclose(np.linalg.norm(lat.X, axis=1), 1.0, atol=2e-3)  # fp16 store of unit vectors
    assert all(any(n.startswith("clip-") for n in e.derived()) for e in lib.select(query))
    again = collect("clip", lib.path, query=query, model="robot-irl-clip-64", texts=True, thumbnails=False)
    kind = again.labels["kind"]
    assert (kind == "text").sum() == len(eps) and "step" not in again.labels
    np.testing.assert_array_equal(again.X[kind == "keyframe"], lat.X)  # read back, not recomputed
    stored = eps[0].read_derived(next(n for n in eps[0].derived() if n.startswith("clip-")))
    assert stored.name == derived_name(stored.meta["model_id"])
    assert lat.thumbnails.shape == (lat.n, 32, 32, 3)
    with pytest.raises(InputError, match="no CLIP model in this library"):
        collect("clip", lib.path)


def test_cli_says_what_to_diagnose(tmp_path) -> None:
    with pytest.raises(InputError, match="say what to diagnose"):
        _run(["diagnose", "--out", str(tmp_path / "x")])
    with pytest.raises(InputError, match="--latent cost needs a run folder"):
        _run(["diagnose", "--latent", "cost"])
    with pytest.raises(InputError, match="both a source"):
        _run(["diagnose", str(tmp_path), "--latents", str(tmp_path / "l.npz")])


def test_episode_with_a_keypoint_never_seen_is_reported_not_dropped(lib, tmp_path) -> None:
    import shutil

    copy = Library.open(shutil.copytree(lib.path, tmp_path / "lib"))
    ep = copy.select(None)[0]
    st = ep.arrays("state")
    kp = np.array(st["keypoints_3d"], dtype=float)
    kp[:, 1] = np.nan                     # one keypoint never found in this episode's video
    names = ep.columns("state")["keypoints_3d"].names
    ep.write_derived("keypoints", {"timestamps": st["timestamp"], "keypoints": kp}, meta={"names": list(names)},
                     version=1)
    lat = collect("keypoints", copy.path, thumbnails=False)
    assert lat.skipped == {ep.id: f"keypoint {names[1]} never seen"}
    assert ep.id not in set(lat.labels["episode"])
