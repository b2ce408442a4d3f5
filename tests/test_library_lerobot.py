"""LeRobotDataset v3 export/import: round trip, refusals, and loading with LeRobot itself."""
from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

from robot_irl.errors import InputError
from robot_irl.library import Column, Episode, Library
from robot_irl.library.lerobot import export_lerobot
from robot_irl.library.lerobot_import import import_lerobot
from test_library_core import frame_at, synth_episode
from test_library_malformed import snapshot

SEMANTIC = ("task", "source", "kind", "robot", "env", "seed", "fps", "success", "tags", "variant", "keypoint_spec")


def luma_psnr(a: np.ndarray, b: np.ndarray) -> float:
    ya = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY).astype(np.float64)
    yb = cv2.cvtColor(b, cv2.COLOR_RGB2GRAY).astype(np.float64)
    mse = np.mean((ya - yb) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def assert_round_trip(src: list[Episode], back: list[Episode], *, lossless: bool) -> list[float]:
    """Identical time series, timestamps and meta; frames exact (lossless) or their worst luma PSNR."""
    assert len(src) == len(back)
    worst = []
    for a, b in zip(src, back):
        assert {k: a.meta[k] for k in SEMANTIC} == {k: b.meta[k] for k in SEMANTIC}
        assert b.meta["extra"]["original_id"] == a.id
        imported = ("original_id", "lerobot_source")
        assert {k: v for k, v in b.meta["extra"].items() if k not in imported} == a.meta["extra"]
        assert a.cameras == b.cameras and a.streams == b.streams
        for s in a.streams:
            assert a.columns(s) == b.columns(s)
            A, B = a.arrays(s), b.arrays(s)
            assert A.keys() == B.keys()
            for k in A:
                assert A[k].dtype == B[k].dtype and np.array_equal(A[k], B[k], equal_nan=True), k
        for c in a.cameras:
            assert np.array_equal(a.timestamps(c), b.timestamps(c))
            assert a.meta["cameras"][c]["model"] == b.meta["cameras"][c]["model"]
            assert a.calibration(c) == b.calibration(c)
            assert a.frame_count(c) == b.frame_count(c)
            ps = [luma_psnr(x, y) for x, y in zip(a.video_frames(c), b.video_frames(c))]
            assert len(ps) == a.frame_count(c)
            if lossless:
                assert all(p == float("inf") for p in ps)
            worst.append(min(ps))
    return worst


def smooth_frame(i: int, w: int = 64, h: int = 48) -> np.ndarray:
    """Camera-like content (smooth shading and a moving disc)."""
    yy, xx = np.mgrid[0:h, 0:w]
    f = np.stack([(xx * 2 + 40) % 256, (yy * 3 + 60) % 256, np.full_like(xx, 120)], -1).astype(np.uint8)
    cv2.circle(f, (10 + 3 * i, h // 2), 8, (230, 40, 40), -1)
    return cv2.GaussianBlur(f, (5, 5), 1.0)


@pytest.mark.parametrize("codec", ["ffv1", "mp4v", "h264"])
def test_round_trip_synthetic(tmp_path: Path, codec: str) -> None:
    lib = Library.open(tmp_path / "lib", create=True)
    if codec == "ffv1":
        src = [synth_episode(lib, n=7, chunk_frames=3, tags=["a"]), synth_episode(lib, n=5, task="another task")]
        src[0].update_camera_model("cam0", src[0].camera_model("cam0"), {"rms_px": 0.4, "source": "board.mp4"})
    else:
        src = []
        for n in (6, 4):
            with lib.writer(task="camera-like", source="sim", fps=10, variant={"k": 1}) as w:
                w.add_camera("cam0", (64, 48))
                w.add_stream("state", {"q": Column((2,)), "flag": Column((), "bool")})
                for i in range(n):
                    w.write_frame("cam0", smooth_frame(i), 0.1 * i + 0.013)
                    w.write_row("state", 0.1 * i + 0.013, q=np.array([i, np.nan]), flag=np.bool_(i % 2))
                src.append(w.commit(success=False))
    out = export_lerobot(src, tmp_path / "lr", video_codec=codec)
    info = json.loads((out / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["total_episodes"] == 2 and info["fps"] == 10
    assert (out / "videos/observation.images.cam0/chunk-000/file-001.mp4").is_file()
    back = import_lerobot(Library.open(tmp_path / "lib2", create=True), out)
    worst = assert_round_trip(src, back, lossless=codec == "ffv1")
    assert min(worst) >= 35.0, worst


def test_export_is_nan_free_with_stats_for_every_feature(tmp_path: Path) -> None:
    lib = Library.open(tmp_path / "lib", create=True)
    with lib.writer(task="hold", source="sim", fps=10) as w:
        w.add_camera("cam0", (64, 48))
        w.add_stream("state", {"joint_pos": Column((2,)), "target_sent": Column((2,)),
                               "action_delta": Column((2,)), "gripper": Column(())})
        for i in range(5):
            last = i == 4
            w.write_frame("cam0", smooth_frame(i), 0.1 * i)
            w.write_row("state", 0.1 * i, joint_pos=np.array([i, -i], float),
                        target_sent=np.full(2, np.nan) if last else np.array([i + 1, -i - 1], float),
                        action_delta=np.full(2, np.nan) if last else np.ones(2), gripper=np.nan if last else 1.0)
        ep = w.commit()
    out = export_lerobot([ep], tmp_path / "lr")
    import pyarrow.parquet as pq
    t = pq.read_table(out / "data/chunk-000/file-000.parquet")
    act = np.array(t.column("action").to_pylist())
    assert act.dtype == np.float64 and np.array_equal(act[-1], [4, -4]) and np.array_equal(act[-2], [4, -4])
    for name in t.column_names:
        assert not np.isnan(np.asarray(t.column(name).to_pylist(), dtype=float)).any(), name
    assert np.array_equal(np.array(t.column("robot_irl.action_delta").to_pylist())[-1], [0, 0])
    assert t.schema.field("observation.state").type.value_type == "float"   # float32, as LeRobot's policies take
    info = json.loads((out / "meta/info.json").read_text())
    stats = json.loads((out / "meta/stats.json").read_text())
    assert set(stats) == set(info["features"])
    img = stats["observation.images.cam0"]
    assert np.array(img["mean"]).shape == (3, 1, 1) and img["count"] == [5] and 0 <= np.min(img["min"]) <= 1
    assert {"min", "max", "mean", "std", "count", "q01", "q50", "q99"} <= set(stats["action"])
    assert info["features"]["observation.images.cam0"]["info"]["video.codec"] == "h264"
    back = import_lerobot(Library.open(tmp_path / "lib2", create=True), out)[0].arrays("state")
    src = ep.arrays("state")
    assert all(np.array_equal(src[k], back[k], equal_nan=True) for k in src)


def test_export_refuses_what_lerobot_cannot_hold(tmp_path: Path) -> None:
    lib = Library.open(tmp_path / "lib", create=True)
    with lib.writer(task="multi-rate", source="arm", fps=10) as w:
        w.add_camera("cam0", (64, 48))
        w.add_stream("state", {"q": Column((2,))})
        for i in range(4):
            w.write_frame("cam0", frame_at(i), 0.1 * i)
        for i in range(8):
            w.write_row("state", 0.05 * i, q=np.zeros(2))
        ep = w.commit()
    with pytest.raises(InputError, match="not aligned") as err:
        export_lerobot([ep], tmp_path / "out")
    assert err.value.field == "cameras.cam0.timestamps"
    other = synth_episode(lib, n=3)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep")
    with pytest.raises(InputError, match="not an empty folder"):
        export_lerobot([other], tmp_path / "full")
    assert (tmp_path / "full" / "x").read_text() == "keep"


@pytest.mark.parametrize("edit,field", [
    (lambda info: info.update(codebase_version="v1.6"), "codebase_version"),
    (lambda info: info.pop("fps"), "fps"),
    (lambda info: info["features"]["observation.state"].pop("shape"), "features.observation.state.shape"),
])
def test_import_refuses_malformed_info(tmp_path: Path, edit, field: str) -> None:
    lib = Library.open(tmp_path / "lib", create=True)
    out = export_lerobot([synth_episode(lib, n=3)], tmp_path / "lr")
    p = out / "meta/info.json"
    info = json.loads(p.read_text())
    edit(info)
    p.write_text(json.dumps(info))
    target = Library.open(tmp_path / "lib2", create=True)
    before = snapshot(target)
    with pytest.raises(InputError) as err:
        import_lerobot(target, out)
    assert err.value.field == field and err.value.file == str(p)
    assert snapshot(target) == before and target.ids() == []


def test_import_truncated_lerobot_video(tmp_path: Path) -> None:
    lib = Library.open(tmp_path / "lib", create=True)
    out = export_lerobot([synth_episode(lib, n=8)], tmp_path / "lr", video_codec="ffv1")
    v = out / "videos/observation.images.cam0/chunk-000/file-000.mp4"
    v.write_bytes(v.read_bytes()[:200])
    target = Library.open(tmp_path / "lib2", create=True)
    with pytest.raises(InputError) as err:
        import_lerobot(target, out)
    assert err.value.file == str(v) and err.value.field == "observation.images.cam0"
    assert target.ids() == [] and list(target.staging_dir.iterdir()) == []


LOAD = textwrap.dedent("""
    import json, sys
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    ds = LeRobotDataset("local/robot_irl_export", root=sys.argv[1], video_backend="pyav")
    last = ds[len(ds) - 1]
    print(json.dumps({"episodes": ds.num_episodes, "frames": ds.num_frames, "fps": ds.fps, "task": last["task"],
                      "image": list(last["observation.images.cam0"].shape),
                      "state": last["observation.state"].tolist(), "t": float(last["robot_irl.timestamp"])}))
""")


@pytest.mark.skipif(not os.environ.get("LEROBOT_PYTHON"), reason="set LEROBOT_PYTHON to a python with lerobot installed")
@pytest.mark.parametrize("codec", ["h264", "ffv1"])
def test_export_loads_in_lerobot(tmp_path: Path, codec: str) -> None:
    lib = Library.open(tmp_path / "lib", create=True)
    eps = [synth_episode(lib, n=6), synth_episode(lib, n=4, task="second")]
    out = export_lerobot(eps, tmp_path / "lr", video_codec=codec)
    res = subprocess.run([os.environ["LEROBOT_PYTHON"], "-c", LOAD, str(out)], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["episodes"] == 2 and got["frames"] == 10 and got["fps"] == 10 and got["task"] == "second"
    assert got["image"] == [3, 48, 64]
    np.testing.assert_allclose(got["state"], eps[1].arrays()["joint_pos"][-1], rtol=1e-6)
    assert abs(got["t"] - eps[1].timestamps("cam0")[-1]) < 1e-6
