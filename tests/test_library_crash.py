"""SIGKILL during a recording: `repair` recovers every flushed frame and row; the catalog and the
other episodes are untouched; a live recording is never touched by repair."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from robot_irl.library import Library
from test_library_core import frame_at, synth_episode
from test_library_malformed import snapshot

RECORDER = textwrap.dedent("""
    import sys, time
    import numpy as np
    sys.path.insert(0, {tests!r})
    from robot_irl.library import Column, Library
    from test_library_core import frame_at
    lib = Library.open({path!r})
    w = lib.writer(task="killed mid-recording", source="sim", fps=10, chunk_frames=4, flush_seconds=3600)
    w.add_camera("cam0", (64, 48))
    w.add_stream("state", {{"q": Column((2,))}})
    for i in range({n}):
        w.write_frame("cam0", frame_at(i), 0.1 * i)
        w.write_row("state", 0.1 * i, q=np.array([i, -i], float))
    w.sealed()   # the closed chunks are sealed off the recording thread; wait for them
    print("READY", w.id, flush=True)
    time.sleep(600)
""")


def start_recorder(lib: Library, n: int) -> tuple[subprocess.Popen, str]:
    code = RECORDER.format(tests=str(Path(__file__).parent), path=str(lib.path), n=n)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().split()
    assert line and line[0] == "READY", line
    return proc, line[1]


def test_sigkill_then_repair_recovers_flushed_chunks(tmp_path: Path) -> None:
    lib = Library.open(tmp_path / "lib", create=True)
    other = synth_episode(lib, n=6)
    other_files = {k: v for k, v in snapshot(lib).items() if k.startswith(f"episodes/{other.id}/")}
    rows_before = lib.catalog.rows()
    proc, eid = start_recorder(lib, n=10)  # chunks of 4: frames 0-7 flushed, 8-9 in the open chunk
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    # the catalog and the other episode are untouched by the crash
    assert lib.catalog.rows() == rows_before
    assert Library.open(lib.path).ids() == [other.id]
    report = lib.repair()
    assert list(report.recovered) == [eid] and not report.skipped and not report.problems
    assert any("unflushed chunk chunk-000002" in line for line in report.recovered[eid])
    ep = lib.episode(eid)
    assert ep.meta["recovered"] and "recovered" in ep.tags
    assert ep.frame_count("cam0") == 8
    np.testing.assert_allclose(ep.timestamps("cam0"), 0.1 * np.arange(8))
    assert all(np.array_equal(f, frame_at(i)) for i, f in enumerate(ep.video_frames("cam0")))
    a = ep.arrays("state")
    np.testing.assert_array_equal(a["q"][:, 0], np.arange(8))
    ep.validate(deep=True)
    assert sorted(lib.ids()) == sorted([other.id, eid])
    assert {k: v for k, v in snapshot(lib).items() if k.startswith(f"episodes/{other.id}/")} == other_files
    assert not any(lib.staging_dir.iterdir())


def test_repair_leaves_a_live_recording_alone(tmp_path: Path) -> None:
    lib = Library.open(tmp_path / "lib", create=True)
    proc, eid = start_recorder(lib, n=5)
    try:
        before = snapshot(lib)
        report = lib.repair()
        assert report.skipped == {eid: "still recording (its process holds the lock)"}
        assert snapshot(lib) == before and lib.ids() == []
    finally:
        proc.kill()
        proc.wait(30)
    assert list(lib.repair().recovered) == [eid]
    assert lib.episode(eid).frame_count("cam0") == 4
