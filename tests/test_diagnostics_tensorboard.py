"""The TensorBoard projector loads our export: start `tensorboard`, read it over HTTP, stop it."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from robot_irl.diagnostics.projector import export_projector

STARTUP_S = 90.0  # tensorboard imports slowly on a loaded machine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_json(url: str):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


@pytest.mark.timeout(180)
def test_tensorboard_projector_reads_the_export(tmp_path) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 6))
    tags = export_projector(tmp_path, X, {"pca": X[:, :2]}, {"task": np.repeat(["a", "b"], 20)},
                            thumbnails=rng.integers(0, 255, size=(40, 8, 8), dtype=np.uint8), name="lat")
    assert tags == ["lat", "lat/pca"]
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(tmp_path),
                             "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            assert proc.poll() is None, proc.stderr.read().decode(errors="replace")[-2000:]
            try:
                plugins = _get_json(f"{base}/data/plugins_listing")
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, "tensorboard did not answer in time"
                time.sleep(0.5)
        assert "projector" in plugins
        # The projector finds its config lazily; poll until the run shows up.
        while True:
            runs = _get_json(f"{base}/data/plugin/projector/runs")
            if runs:
                break
            assert time.monotonic() < deadline, "projector found no runs"
            time.sleep(0.5)
        # "enabled" flips once TensorBoard's multiplexer has scanned the logdir: poll (slow under load).
        while not _get_json(f"{base}/data/plugins_listing")["projector"]["enabled"]:
            assert time.monotonic() < deadline, "projector plugin never became enabled"
            time.sleep(0.5)
        info = _get_json(f"{base}/data/plugin/projector/info?run={runs[0]}")
        by_name = {e["tensorName"]: e for e in info["embeddings"]}
        assert set(by_name) == {"lat:00000", "lat/pca:00000"}
        assert by_name["lat:00000"]["tensorShape"] == [40, 6]
        emb = by_name["lat/pca:00000"]
        assert emb["tensorShape"] == [40, 2]
        assert emb["metadataPath"] and emb["sprite"]["singleImageDim"] == [8, 8]
        meta_url = f"{base}/data/plugin/projector/metadata?run={runs[0]}&name={urllib.request.quote(emb['tensorName'])}"
        with urllib.request.urlopen(meta_url, timeout=10) as r:
            lines = r.read().decode().splitlines()
        assert lines[0] == "index\ttask" and len(lines) == 41
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        proc.stderr.close()
