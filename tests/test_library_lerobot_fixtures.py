"""Imports of datasets LeRobot 0.6.1 wrote itself (../shared/lerobot-fixtures, values in its README):
AV1 (LeRobot's default), H.264, two cameras with a 2-D feature, no video; the v2.1 layout; all-or-nothing;
a dataset imported twice; missing / truncated / unsupported video told apart."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from robot_irl.errors import InputError
from robot_irl.library import Library
from robot_irl.library import decode as decode_mod
from robot_irl.library.decode import CodecUnsupportedError, VideoMissingError, VideoTruncatedError
from robot_irl.library.lerobot_import import import_lerobot
from lerobot_v21 import write_v21
from test_library_malformed import snapshot

FIXTURES = Path(os.environ.get("ROBOT_IRL_LEROBOT_FIXTURES",
                               Path(__file__).resolve().parents[1].parent / "shared" / "lerobot-fixtures"))
pytestmark = pytest.mark.skipif(not (FIXTURES / "h264/meta/info.json").is_file(),
                                reason=f"LeRobot fixtures not found at {FIXTURES} (set ROBOT_IRL_LEROBOT_FIXTURES)")
LENGTHS = {"av1_default": (12, 15), "h264": (12, 15), "two_cameras_h264": (10, 11, 12), "no_video": (12, 15)}
TASKS = ("pick up the cube", "place the cube in the box", "pick up the cube")
BG = {"front": lambda e: (40 + 30 * e, 90, 160), "wrist": lambda e: (60 + 30 * e, 140, 60)}
SQUARE = {"front": (250, 230, 40), "wrist": (240, 240, 240)}


def state(e: int, k: int) -> np.ndarray:
    return np.sin(2 * np.pi * 0.5 * (k / 10) + 0.5 * np.arange(7) + e).astype(np.float32)


def expected_frame(cam: str, e: int, k: int, n: int) -> tuple[np.ndarray, tuple[float, float]]:
    img = np.empty((48, 64, 3), np.uint8)
    img[:] = BG[cam](e)
    x = round(56 * k / (n - 1)) if cam == "front" else 56 - round(56 * k / (n - 1))
    y = round(40 * k / (n - 1))
    img[y:y + 8, x:x + 8] = SQUARE[cam]
    return img, (x + 3.5, y + 3.5)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def centroid(img: np.ndarray, colour: tuple[int, int, int]) -> tuple[float, float]:
    d = np.abs(img.astype(np.int32) - np.array(colour)).sum(-1)
    ys, xs = np.nonzero(d < 90)
    return float(xs.mean()), float(ys.mean())


def check_dataset(lib: Library, name: str, eps) -> None:
    lengths = LENGTHS[name]
    assert [ep.frame_count(c) if ep.cameras else ep.meta["streams"]["state"]["rows"]
            for ep in eps for c in (ep.cameras[:1] or [None])] == list(lengths)
    for e, (ep, n) in enumerate(zip(eps, lengths)):
        assert ep.task == TASKS[e] and ep.source == "lerobot" and ep.robot == "synthetic_7dof" and ep.fps == 10
        a = ep.arrays("state")
        np.testing.assert_array_equal(a["observation.state"], np.stack([state(e, k) for k in range(n)]))
        act = np.stack([np.append(state(e, k + 1), np.float32(k / (n - 1))) for k in range(n)])
        np.testing.assert_array_equal(a["action"], act)
        np.testing.assert_allclose(a["timestamp"], np.arange(n) / 10, atol=1e-9)
        if name == "two_cameras_h264":
            kp = e + 0.1 * np.arange(n)[:, None, None] + 0.01 * (3 * np.arange(3)[:, None] + np.arange(3))
            np.testing.assert_array_equal(a["observation.keypoints"], kp.astype(np.float32))
        assert ep.cameras == (["front", "wrist"] if name == "two_cameras_h264" else [] if name == "no_video"
                              else ["front"])
        for cam in ep.cameras:   # stored as LeRobot encoded it: packets copied, no re-encoding
            assert ep.meta["cameras"][cam]["codec"] == ("av1" if name == "av1_default" else "h264")
            np.testing.assert_allclose(ep.timestamps(cam), np.arange(n) / 10, atol=1e-6)
            for k, frame in enumerate(ep.video_frames(cam)):
                want, (cx, cy) = expected_frame(cam, e, k, n)
                assert psnr(frame, want) > 25.0, (cam, e, k)
                gx, gy = centroid(frame, SQUARE[cam])
                assert abs(gx - cx) <= 1 and abs(gy - cy) <= 1, (cam, e, k, gx, gy, cx, cy)
    rows = lib.rows("")
    assert [r["frames"] for r in rows] == ([0] * len(lengths) if name == "no_video" else list(lengths))


@pytest.mark.parametrize("name", sorted(LENGTHS))
def test_fixture_imports(tmp_path: Path, name: str) -> None:
    lib = Library.open(tmp_path / "lib", create=True)
    eps = import_lerobot(lib, FIXTURES / name)
    check_dataset(lib, name, eps)
    if name == "h264":   # the same dataset again, even from another folder: refused, nothing added
        shutil.copytree(FIXTURES / name, tmp_path / "copy")
        before = snapshot(lib)
        with pytest.raises(InputError, match="imported already as 2 episode") as err:
            import_lerobot(lib, tmp_path / "copy")
        assert eps[0].id in str(err.value) and "demos rm" in str(err.value)
        assert snapshot(lib) == before


def test_v21_dataset_imports(tmp_path: Path) -> None:
    v21 = write_v21(FIXTURES / "two_cameras_h264", tmp_path / "v21")
    assert json.loads((v21 / "meta/info.json").read_text())["codebase_version"] == "v2.1"
    lib = Library.open(tmp_path / "lib", create=True)
    check_dataset(lib, "two_cameras_h264", import_lerobot(lib, v21))


def test_unknown_version_is_named(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "no_video", tmp_path / "ds")
    p = tmp_path / "ds/meta/info.json"
    p.write_text(p.read_text().replace('"v3.0"', '"v1.6"'))
    with pytest.raises(InputError, match="'v1.6'") as err:
        import_lerobot(Library.open(tmp_path / "lib", create=True), tmp_path / "ds")
    assert err.value.field == "codebase_version"


def test_video_path_template_is_followed(tmp_path: Path) -> None:
    ds = tmp_path / "ds"
    shutil.copytree(FIXTURES / "h264", ds)
    (ds / "videos").rename(ds / "mp4")
    p = ds / "meta/info.json"
    info = json.loads(p.read_text())
    info["video_path"] = "mp4/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    p.write_text(json.dumps(info))
    lib = Library.open(tmp_path / "lib", create=True)
    assert len(import_lerobot(lib, ds)) == 2


def test_failures_are_told_apart_and_leave_the_library_as_it_was(tmp_path: Path, monkeypatch) -> None:
    lib = Library.open(tmp_path / "lib", create=True)
    import_lerobot(lib, FIXTURES / "no_video")
    before = snapshot(lib)
    ds = tmp_path / "ds"
    video = ds / "videos/observation.images.front/chunk-000/file-000.mp4"

    def attempt(exc: type) -> InputError:
        with pytest.raises(exc) as err:
            import_lerobot(lib, ds)
        assert snapshot(lib) == before and len(lib.ids()) == 2
        assert [d.name for d in lib.staging_dir.iterdir()] == []
        return err.value

    shutil.copytree(FIXTURES / "h264", ds)
    video.unlink()
    assert "missing" in str(attempt(VideoMissingError))
    shutil.copy(FIXTURES / "h264/videos/observation.images.front/chunk-000/file-000.mp4", video)
    data = video.read_bytes()
    video.write_bytes(data[: len(data) * 2 // 3])   # episode 0 imports, episode 1 cannot: nothing is kept
    assert "truncated" in str(attempt(VideoTruncatedError))
    shutil.copy(FIXTURES / "av1_default/videos/observation.images.front/chunk-000/file-000.mp4", video)
    real = decode_mod.has_decoder   # an FFmpeg build without an AV1 decoder (as OpenCV's is)
    monkeypatch.setattr(decode_mod, "has_decoder", lambda name: name not in ("libdav1d", "av1") and real(name))
    assert "'av1' not supported" in str(attempt(CodecUnsupportedError))
