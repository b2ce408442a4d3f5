"""A process's CPU budget (robot_irl.core.threads): OpenCV's pool and the video decoder's threads
follow it, the defaults come back with None, and decoded frames do not depend on it."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from robot_irl.core.threads import cpu_budget, set_cpu_budget
from robot_irl.library import decode


@pytest.fixture
def budget():
    """The suite's own setting (the libraries' defaults) back after the test."""
    yield
    set_cpu_budget(None)


def _video(path) -> None:
    rng = np.random.default_rng(0)
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 30.0, (64, 48))
    for _ in range(4):
        w.write(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    w.release()


def test_budget_sizes_opencv_and_the_decoder_and_none_gives_their_defaults_back(tmp_path, monkeypatch, budget):
    video = tmp_path / "v.mkv"
    _video(video)
    default = cv2.getNumThreads()
    seen: list[int] = []
    opened = decode.open_video

    def spy(path, field="video"):
        c = opened(path, field)
        spy.stream = c.streams.video[0]          # the stream decode() sets its threads on
        return c

    def frames() -> np.ndarray:
        out = []
        for _, f in decode.decode(video):
            if not out:
                seen.append(spy.stream.thread_count)   # what decode() set, while the file is open
            out.append(f)
        return np.stack(out)

    monkeypatch.setattr(decode, "open_video", spy)
    assert cpu_budget() is None
    pooled = frames()
    set_cpu_budget(1)
    assert cpu_budget() == 1 and cv2.getNumThreads() == 1
    one = frames()
    set_cpu_budget(2.5)                  # a fractional task size rounds down
    assert cpu_budget() == 2 and cv2.getNumThreads() == 2
    two = frames()
    set_cpu_budget(0.5)                  # at least one thread
    assert cpu_budget() == 1
    set_cpu_budget(None)
    assert cpu_budget() is None and cv2.getNumThreads() == default
    assert seen[1:] == [1, 2]            # seen[0]: what FFmpeg chose for the machine itself
    assert np.array_equal(pooled, one) and np.array_equal(pooled, two) and len(one) == 4


def test_frames_are_converted_by_one_converter_per_file_sized_to_the_budget(tmp_path, monkeypatch, budget):
    """A converter per frame starts a pool of scaler threads per frame, sized to the machine: with
    two one-CPU workers on two cores, each frame then waited on threads the other worker held."""
    video = tmp_path / "v.mkv"
    _video(video)
    made: list[object] = []
    threads: list[int] = []
    real = decode.VideoReformatter

    class Counting:
        def __init__(self):
            made.append(self)
            self.inner = real()

        def reformat(self, frame, **kw):
            threads.append(kw.get("threads"))
            return self.inner.reformat(frame, **kw)

    monkeypatch.setattr(decode, "VideoReformatter", Counting)
    set_cpu_budget(1)
    frames = [f for _, f in decode.decode(video, bgr=True)]
    assert len(frames) == 4 and len(made) == 1 and threads == [1, 1, 1, 1]
    set_cpu_budget(None)
    monkeypatch.setattr(decode, "VideoReformatter", real)
    assert all(np.array_equal(a, b) for a, b in zip(frames, (f for _, f in decode.decode(video, bgr=True))))
