"""Bad input gives clear errors; the CLI runs end to end on a latent file."""
from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from robot_irl.diagnostics import EmbedConfig, Embedder, Latents, collect, collector_names, diagnose
from robot_irl.diagnostics.cli import register
from robot_irl.diagnostics.synthetic import clustered_points
from robot_irl.errors import InputError, UnknownNameError
from robot_irl.runs import RunDir


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="robot-irl")
    register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_nan_latents_name_the_rows() -> None:
    X = np.ones((20, 3))
    X[[4, 7], 1] = np.nan
    with pytest.raises(InputError, match=r"field 'X': 2 of 20 rows hold NaN.*\[4, 7\]"):
        Latents(X=X)


def test_mismatched_label_length_names_the_label() -> None:
    with pytest.raises(InputError, match=r"labels.task.*shape \(9,\).*20 rows"):
        Latents(X=np.zeros((20, 3)), labels={"task": np.zeros(9)})


def test_bad_thumbnails_and_shapes() -> None:
    with pytest.raises(InputError, match="thumbnails"):
        Latents(X=np.zeros((5, 3)), thumbnails=np.zeros((4, 8, 8)))
    with pytest.raises(InputError, match="2-D"):
        Latents(X=np.zeros(5))


def test_too_few_points_for_perplexity_says_what_would_work() -> None:
    X = np.random.default_rng(0).normal(size=(50, 4))
    with pytest.raises(InputError, match=r"50 points are too few.*perplexity 30.*at least 91 points.*<= 16.3"):
        Embedder(EmbedConfig(perplexity=30)).fit(X)
    with pytest.raises(InputError, match="n_neighbors"):
        Embedder(EmbedConfig(method="umap", n_neighbors=60)).fit(X)


def test_diagnose_checks_size_before_writing(tmp_path) -> None:
    run = RunDir.create(tmp_path / "run", {}, kind="diagnose")
    with pytest.raises(InputError, match="too few"):
        diagnose(Latents(X=np.ones((40, 3)) + np.arange(40)[:, None]), run)
    assert not (run.path / "metrics.json").exists()


def test_npz_collector_errors_name_the_file(tmp_path) -> None:
    assert "npz" in collector_names()
    path = tmp_path / "lat.npz"
    X = np.zeros((30, 3))
    X[2, 0] = np.nan
    np.savez(path, X=X, task=np.zeros(30))
    with pytest.raises(InputError, match=r"lat.npz: field 'X'.*NaN"):
        collect("npz", path)
    np.savez(path, feats=np.zeros((30, 3)), task=np.zeros(29))
    with pytest.raises(UnknownNameError, match="feats"):
        collect("npz", path)
    with pytest.raises(InputError, match=r"lat.npz: field 'labels.task'"):
        collect("npz", path, x_key="feats", labels=["task"])
    with pytest.raises(UnknownNameError, match="unknown label 'episode'"):
        collect("npz", path, x_key="feats", labels=["episode"])
    with pytest.raises(UnknownNameError, match="unknown latent 'dynamcs'"):
        collect("dynamcs", path)
    with pytest.raises(InputError, match="does not exist"):
        collect("npz", tmp_path / "missing.npz")


def test_cli_diagnose_end_to_end(tmp_path) -> None:
    X, cluster = clustered_points(240, 70, n_groups=2, per_group=3, seed=2)
    rng = np.random.default_rng(0)
    thumbs = rng.integers(0, 255, size=(240, 12, 12, 3), dtype=np.uint8)
    np.savez(tmp_path / "lat.npz", X=X, task=np.where(cluster < 3, "reach", "push"), cluster=cluster,
             step=np.tile(np.arange(24.0), 10), thumbnails=thumbs)
    out = tmp_path / "run"
    args = _parse(["diagnose", "--latents", str(tmp_path / "lat.npz"), "--out", str(out), "--compare-init",
                   "--n-jobs", "1"])
    assert args.func(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for name in ("pca", "tsne_pca", "tsne_random"):
        for key in ("trust10", "knn_kept10", "spearman_pdist", "centroid_spearman.cluster", "knn_acc10.task"):
            assert -1.0 <= metrics[f"lat.{name}.{key}"] <= 1.0
    assert metrics["lat.tsne_pca.knn_acc10.cluster"] >= 0.9 and metrics["lat.original.knn_acc10.cluster"] >= 0.9
    assert metrics["lat.tsne_pca.trust10"] > metrics["lat.pca.trust10"]
    config = json.loads((out / "config.json").read_text())
    assert config["kind"] == "diagnose" and config["embedding"]["method"] == "tsne"
    assert sorted(p.name for p in (out / "plots" / "lat").iterdir()) == ["cluster.png", "step.png", "task.png"]
    assert sorted(np.load(out / "lat_maps.npz").files) == ["pca", "tsne_pca", "tsne_random"]
    assert (out / "tb" / "projector_config.pbtxt").is_file()
    assert list((out / "tb").rglob("sprite.png"))
