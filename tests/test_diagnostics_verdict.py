"""`diagnose` says what to conclude: a verdict from the trust measures, tables, the projector command."""
from __future__ import annotations

import json

import numpy as np
import pytest

from robot_irl.cli import main
from robot_irl.diagnostics.synthetic import clustered_points
from robot_irl.diagnostics.verdict import verdict


def test_verdict_sentences_follow_the_figures():
    good = {"tsne.trust10": 0.99, "tsne.knn_kept10": 0.6, "tsne.spearman_pdist": 0.8,
            "tsne.knn_acc10.goal_region": 0.97, "original.knn_acc10.goal_region": 0.99,
            "tsne.knn_acc10.colour": 0.5, "original.knn_acc10.colour": 0.9, "tsne.knn_acc10.episode": 0.2}
    lines = verdict(good, "tsne", ["goal_region", "colour", "episode"])
    assert lines[0] == "the tsne map keeps local structure: trust10 0.99, 10-NN kept 0.60"
    assert lines[1] == "distances across the map follow the latents (Spearman 0.80)"
    assert lines[2] == "goal_region groups separate (10-NN accuracy 0.97 in the map, 0.99 in the latents)"
    assert lines[3].startswith("colour groups do not separate") and "the map mixes groups" in lines[3]
    assert len(lines) == 4   # no sentence about per-episode classes
    bad = verdict({"umap.trust10": 0.7, "umap.spearman_pdist": 0.1}, "umap", [])
    assert "does not keep local structure" in bad[0] and "mean little" in bad[1]


@pytest.fixture(scope="module")
def latents_file(tmp_path_factory):
    X, cluster = clustered_points(120, 20, n_groups=2, per_group=2, seed=1)
    path = tmp_path_factory.mktemp("lat") / "lat.npz"
    np.savez(path, X=X, cluster=cluster)
    return path


def test_diagnose_prints_tables_verdict_and_projector_command(latents_file, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["diagnose", "--latents", str(latents_file), "--out", str(out), "--method", "pca"]) == 0
    text = capsys.readouterr().out
    assert "map  trust10  knn_kept10  spearman_pdist" in text
    assert "verdict:\n  the pca map keeps local structure: trust10" in text
    assert "cluster groups separate" in text
    assert f"projector: tensorboard --logdir {out / 'tb'}   (then open the PROJECTOR tab)" in text
    assert len(text.splitlines()) < 15


def test_diagnose_json_for_machines(latents_file, tmp_path, capsys):
    assert main(["diagnose", "--latents", str(latents_file), "--out", str(tmp_path / "r"), "--method", "pca",
                 "--no-tensorboard", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["metrics"]["pca.trust10"] > 0.9 and data["run"] == str(tmp_path / "r")
    assert data["skipped"] == {}


def test_diagnose_input_errors_answer_before_heavy_imports(tmp_path):
    import subprocess
    import sys

    code = ("import sys\nfrom robot_irl.cli import main\n"
            f"rc = main(['diagnose', '--latents', {str(tmp_path / 'nosuch.npz')!r}])\n"
            "print(rc, sorted(m for m in ('torch', 'matplotlib', 'sklearn') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.strip().splitlines()[-1] == "2 []", r.stdout + r.stderr
    assert "nosuch.npz: latent file does not exist" in r.stderr
