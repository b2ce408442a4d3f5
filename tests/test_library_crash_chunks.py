"""Repair after a crash that tore a chunk: a row chunk or a video chunk truncated at random offsets
loses only itself and the chunks after it; every earlier chunk and every other staged recording
is kept byte-identical. SIGKILL during an import leaves the library as it was."""
from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from robot_irl.library import Column, Library
from robot_irl.library.lerobot import export_lerobot
from test_library_core import frame_at, synth_episode
from test_library_malformed import snapshot

N, CHUNK = 12, 4   # three flushed chunks per camera and per stream


def stage(lib: Library, task: str) -> str:
    """A recording killed after its last flush: in staging, every chunk flushed, no meta.json."""
    w = lib.writer(task=task, source="sim", fps=10, chunk_frames=CHUNK, flush_seconds=3600)
    w.add_camera("cam0", (64, 48))
    w.add_stream("state", {"q": Column((2,))})
    for i in range(N):
        w.write_frame("cam0", frame_at(i), 0.1 * i)
        w.write_row("state", 0.1 * i, q=np.array([i, -i], float))
    w.abort()
    return w.id


def digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("chunk-*")) if p.suffix != ".json"}


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> tuple[Path, str, str]:
    root = tmp_path_factory.mktemp("crash") / "lib"
    lib = Library.open(root, create=True)
    return root, stage(lib, "torn"), stage(lib, "intact")


@pytest.mark.parametrize("which", ["data/state/chunk-000001.parquet", "cameras/cam0/chunk-000001.mkv"])
def test_torn_chunk_loses_only_itself_and_later_ones(tmp_path: Path, template, which: str) -> None:
    root, torn, intact = template
    before_torn, before_intact = digests(root / "staging" / torn), digests(root / "staging" / intact)
    size = (root / "staging" / torn / which).stat().st_size
    for k, offset in enumerate(np.random.default_rng(15).integers(1, size, 5)):
        lib_dir = tmp_path / f"lib{k}"
        shutil.copytree(root, lib_dir)
        p = lib_dir / "staging" / torn / which
        p.write_bytes(p.read_bytes()[:offset])
        lib = Library.open(lib_dir)
        report = lib.repair()
        assert sorted(report.recovered) == sorted([torn, intact]), (offset, report.skipped)
        assert any("chunk-000001" in line and "dropped" in line for line in report.recovered[torn]), report.recovered
        ep, other = lib.episode(torn), lib.episode(intact)
        assert digests(other.path) == before_intact
        kept = digests(ep.path)
        lost = {k for k in before_torn if k.startswith(which.rsplit("/", 1)[0]) and k >= which}
        assert kept == {k: v for k, v in before_torn.items() if k not in lost}, offset
        ep.validate(deep=True)
        if which.startswith("data"):
            assert ep.meta["streams"]["state"]["rows"] == CHUNK and ep.frame_count("cam0") == N
        else:
            assert ep.frame_count("cam0") == CHUNK and ep.meta["streams"]["state"]["rows"] == N
        assert not [d for d in lib.staging_dir.iterdir() if not d.name.startswith(".")]


IMPORTER = textwrap.dedent("""
    import sys
    from robot_irl.library import Library
    from robot_irl.library.lerobot_import import import_lerobot
    import_lerobot(Library.open(sys.argv[1]), sys.argv[2])
""")


def test_sigkill_during_import_leaves_the_library_as_it_was(tmp_path: Path) -> None:
    src = Library.open(tmp_path / "src", create=True)
    out = export_lerobot([synth_episode(src, n=40, chunk_frames=40) for _ in range(6)], tmp_path / "lr",
                         video_codec="ffv1")
    lib = Library.open(tmp_path / "lib", create=True)
    synth_episode(lib, n=3)
    before = snapshot(lib)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-c", IMPORTER, str(lib.path), str(out)], env=env)
    deadline = time.monotonic() + 120
    while not list(lib.staging_dir.glob(".batch-*/*/meta.json")):   # one episode staged, more to come
        assert proc.poll() is None and time.monotonic() < deadline, "import ended before it could be killed"
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert list(lib.staging_dir.glob(".batch-*"))            # it died mid-import
    again = Library.open(lib.path)                          # opening settles the dead, uncommitted batch
    assert snapshot(again) == before and len(again.ids()) == 1
    assert not list(again.staging_dir.iterdir())
