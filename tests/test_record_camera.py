"""Camera recording through cv2.VideoCapture: a video file on disk imports the same way a device records."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from robot_irl.errors import InputError
from robot_irl.library import Library
from robot_irl.record.camera import record_camera
from test_library_lerobot import luma_psnr, smooth_frame
from test_library_malformed import snapshot


def write_video(path: Path, n: int, fps: float = 15.0) -> list[np.ndarray]:
    frames = [smooth_frame(i, 96, 64) for i in range(n)]
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), fps, (96, 64))
    for f in frames:
        w.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    w.release()
    return frames


def test_video_file_imports_every_frame(tmp_path: Path) -> None:
    frames = write_video(tmp_path / "in.mkv", 20)
    lib = Library.open(tmp_path / "lib", create=True)
    ep = record_camera(lib, str(tmp_path / "in.mkv"), task="wave", chunk_frames=8)
    assert ep.source == "camera" and ep.meta["extra"]["stopped_by"] == "end of file"
    assert ep.frame_count("cam0") == 20 and len(ep.video_files("cam0")) == 3
    assert all(p.suffix == ".mp4" for p in ep.video_files("cam0"))
    np.testing.assert_allclose(ep.timestamps("cam0"), np.arange(20) / 15.0, atol=1e-3)
    assert min(luma_psnr(a, b) for a, b in zip(frames, ep.video_frames("cam0"))) >= 35.0


def test_duration_and_frame_limits(tmp_path: Path) -> None:
    write_video(tmp_path / "in.mkv", 30)
    lib = Library.open(tmp_path / "lib", create=True)
    ep = record_camera(lib, str(tmp_path / "in.mkv"), max_frames=7)
    assert ep.frame_count("cam0") == 7 and ep.meta["extra"]["stopped_by"] == "frame count"
    ep = record_camera(lib, str(tmp_path / "in.mkv"), duration=1.0)
    assert ep.meta["extra"]["stopped_by"] == "duration" and ep.timestamps("cam0")[-1] >= 1.0
    assert ep.frame_count("cam0") == 16


@pytest.mark.parametrize("device", ["missing.mp4", "99", "not-a-video.txt"])
def test_unreadable_device(tmp_path: Path, device: str) -> None:
    (tmp_path / "not-a-video.txt").write_text("hello")
    lib = Library.open(tmp_path / "lib", create=True)
    before = snapshot(lib)
    dev = str(tmp_path / device) if not device.isdigit() else device
    with pytest.raises(InputError) as err:
        record_camera(lib, dev)
    assert err.value.field == "--device" and err.value.file == dev
    assert snapshot(lib) == before and lib.ids() == []
