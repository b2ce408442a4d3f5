"""Demo library: writing and reading episodes, catalog, query syntax, derived data, locking, location."""
from __future__ import annotations

import multiprocessing as mp
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from robot_irl.core.camera import CameraModel
from robot_irl.errors import InputError, UnknownNameError
from robot_irl.library import Column, Library, default_library_path, parse_query, resolve_library_path

W, H = 64, 48


def frame_at(i: int) -> np.ndarray:
    """A frame that differs per index (so a lost or reordered frame shows)."""
    f = np.zeros((H, W, 3), np.uint8)
    f[..., 0] = (np.arange(W)[None, :] * 3 + i * 7) % 256
    f[..., 1] = (np.arange(H)[:, None] * 5) % 256
    f[..., 2] = i % 256
    return f


def synth_episode(lib: Library, n: int = 12, *, task: str = "place the red cube", codec: str = "ffv1",
                  chunk_frames: int = 5, variant: dict | None = None, tags: list[str] | None = None,
                  success: bool | None = True, source: str = "sim"):
    """An episode with one camera and one stream sharing timestamps, like a sim recording."""
    K = np.array([[50.0, 0, W / 2], [0, 50.0, H / 2], [0, 0, 1]])
    with lib.writer(task=task, source=source, fps=10, robot="iiwa", variant=variant or {"color": "red", "size": 0.03},
                    tags=tags, chunk_frames=chunk_frames) as w:
        w.add_camera("cam0", (W, H), codec=codec, model=CameraModel(K=K, size=(W, H)))
        w.add_stream("state", {"joint_pos": Column((7,), "float64", "rad"),
                               "keypoints_3d": Column((3, 3), "float64", "m"),
                               "visible": Column((3,), "bool"), "gripper": Column((), "float64")})
        for i in range(n):
            t = 0.1 * i
            w.write_frame("cam0", frame_at(i), t)
            w.write_row("state", t, joint_pos=np.arange(7) * 0.01 * i, keypoints_3d=np.full((3, 3), i * 0.5),
                        visible=np.array([True, i % 2 == 0, False]), gripper=np.nan if i == n - 1 else 1.0)
        return w.commit(success=success)


@pytest.fixture
def lib(tmp_path: Path) -> Library:
    return Library.open(tmp_path / "lib", create=True)


def test_write_read_round_trip(lib: Library) -> None:
    ep = synth_episode(lib, n=12, chunk_frames=5)
    assert ep.frame_count("cam0") == 12 and len(ep.video_files("cam0")) == 3  # chunks of 5, 5, 2
    np.testing.assert_allclose(ep.timestamps("cam0"), 0.1 * np.arange(12))
    frames = list(ep.video_frames("cam0"))
    assert len(frames) == 12 and all(np.array_equal(f, frame_at(i)) for i, f in enumerate(frames))
    assert np.array_equal(ep.frame("cam0", 7), frame_at(7))
    assert [np.array_equal(f, frame_at(i + 4)) for i, f in enumerate(ep.video_frames("cam0", 4, 8))] == [True] * 4
    a = ep.arrays("state")
    assert a["keypoints_3d"].shape == (12, 3, 3) and a["visible"].dtype == bool and np.isnan(a["gripper"][-1])
    np.testing.assert_array_equal(a["joint_pos"][5], np.arange(7) * 0.01 * 5)
    assert ep.timeseries("state").num_rows == 12
    assert ep.camera_model("cam0").size == (W, H)
    assert ep.columns("state")["joint_pos"].unit == "rad"
    ep.validate(deep=True)


def test_ids_are_readable_unique_and_stable(lib: Library) -> None:
    ids = [synth_episode(lib, n=2, task="Pick & place: the BLUE cylinder!").id for _ in range(3)]
    assert len(set(ids)) == 3
    assert all(re.fullmatch(r"\d{8}-\d{6}-sim-pick-place-the-blue-[0-9a-f]{4}", i) for i in ids), ids
    reopened = Library.open(lib.path)
    assert sorted(reopened.ids()) == sorted(ids) and reopened.episode(ids[0]).id == ids[0]


def test_query_syntax(lib: Library) -> None:
    a = synth_episode(lib, n=3, task="place the red cube", variant={"color": "red", "size": 0.03}, tags=["good"])
    b = synth_episode(lib, n=4, task="push the blue cylinder", variant={"color": "blue", "size": 0.05},
                      success=False, source="camera")
    ids = lambda q: sorted(r["id"] for r in lib.rows(q))  # noqa: E731  (order is tested elsewhere)
    assert ids("") == sorted([a.id, b.id])
    assert ids("red") == [a.id] and ids('"blue cylinder"') == [b.id]
    assert ids("source:camera") == [b.id] and ids("source:sim,camera") == sorted([a.id, b.id])
    assert ids("variant.color=blue") == [b.id] and ids("variant.size>0.04") == [b.id]
    assert ids("variant.size<=0.03 tag:good") == [a.id] and ids("-tag:good") == [b.id]
    assert ids("success:false") == [b.id] and ids("frames>=4") == [b.id]
    assert ids(f"id:{a.id[:-3]}") == [a.id] and ids(f"id={b.id}") == [b.id]
    assert ids("camera:cam0 robot:IIWA") == sorted([a.id, b.id])
    with pytest.raises(UnknownNameError, match="query field"):
        parse_query("colour:red")
    with pytest.raises(InputError, match="not a number"):
        lib.rows("frames>many")
    with pytest.raises(InputError, match="unclosed"):
        parse_query('task:"red')


def test_catalog_is_rebuilt_from_episode_folders(lib: Library) -> None:
    eps = [synth_episode(lib, n=2) for _ in range(2)]
    before = lib.rows()
    (lib.path / "catalog.sqlite").unlink()
    for p in lib.path.glob("catalog.sqlite-*"):
        p.unlink()
    again = Library.open(lib.path)
    assert [r["id"] for r in again.rows()] == [e.id for e in eps]
    assert [{k: v for k, v in r.items() if k != "stamp"} for r in again.rows()] == \
        [{k: v for k, v in r.items() if k != "stamp"} for r in before]
    # an episode folder copied in by hand appears; one removed by hand disappears
    shutil.rmtree(lib.episodes_dir / eps[0].id)
    assert Library.open(lib.path).ids() == [eps[1].id]


def test_derived_data_is_versioned_and_queryable(lib: Library) -> None:
    ep = synth_episode(lib, n=4)
    kp = np.random.default_rng(0).normal(size=(4, 3, 2))
    ep.write_derived("keypoints", {"keypoints": kp, "timestamps": ep.timestamps("cam0")}, {"camera": "cam0"}, version=1)
    ep.write_derived("keypoints", {"keypoints": kp * 2, "timestamps": ep.timestamps("cam0")}, {"camera": "cam0"}, version=2)
    ep.write_derived("keypoints", {"keypoints": kp * 3, "timestamps": ep.timestamps("cam0")}, {"camera": "cam0"}, version=2)
    assert ep.derived() == {"keypoints": [1, 2]}
    d = ep.read_derived("keypoints")
    assert d.version == 2 and np.array_equal(d.arrays["keypoints"], kp * 3) and d.meta == {"camera": "cam0"}
    assert np.array_equal(ep.read_derived("keypoints", 1).arrays["keypoints"], kp)
    assert [r["id"] for r in lib.rows("derived:keypoints")] == [ep.id]
    with pytest.raises(UnknownNameError):
        ep.read_derived("embeddings")
    with pytest.raises(InputError, match="dtype"):
        ep.write_derived("bad", {"x": np.array(["a", "b"])})


def test_rm_removes_exactly_what_it_names(lib: Library) -> None:
    eps = [synth_episode(lib, n=2) for _ in range(3)]
    with pytest.raises(UnknownNameError):
        lib.remove([eps[0].id, eps[1].id[:-1]])  # a prefix is not an id: nothing removed
    assert len(lib.ids()) == 3
    assert lib.remove([eps[1].id]) == [eps[1].id]
    assert lib.ids() == [eps[0].id, eps[2].id] and sorted(os.listdir(lib.episodes_dir)) == sorted(lib.ids())


def _write_derived_loop(path: str, eid: str, n: int) -> None:
    lib = Library.open(path)
    ep = lib.episode(eid)
    for v in range(1, n + 1):
        ep.write_derived("keypoints", {"keypoints": np.full((2, 3, 2), v)}, version=v)


def test_recording_and_extraction_run_at_once(lib: Library) -> None:
    done = synth_episode(lib, n=2)
    ctx = mp.get_context("spawn")
    proc = ctx.Process(target=_write_derived_loop, args=(str(lib.path), done.id, 8))
    with lib.writer(task="concurrent", source="sim", fps=10, chunk_frames=3) as w:
        w.add_camera("cam0", (W, H))
        proc.start()
        for i in range(12):
            w.write_frame("cam0", frame_at(i), i * 0.1)
        assert [s for s, active in lib.staged()] == [w.id] and lib.staged()[0][1]  # seen as active
        proc.join(60)
    assert proc.exitcode == 0
    assert lib.episode(done.id).derived() == {"keypoints": list(range(1, 9))}
    assert Library.open(lib.path).rows("derived:keypoints")[0]["id"] == done.id
    assert lib.episode(w.id).frame_count("cam0") == 12


def test_library_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROBOT_IRL_LIBRARY", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert resolve_library_path(tmp_path / "cli") == tmp_path / "cli"
    assert resolve_library_path(None) == tmp_path / "env"
    monkeypatch.delenv("ROBOT_IRL_LIBRARY")
    assert resolve_library_path(None) == tmp_path / "xdg" / "robot-irl" / "library" == default_library_path()
    with pytest.raises(InputError, match="no robot-irl library"):
        Library.open(None)
    assert Library.open(None, create=True).path == tmp_path / "xdg" / "robot-irl" / "library"


def test_bad_frames_and_timestamps_are_errors_not_drops(lib: Library) -> None:
    with lib.writer(task="strict", source="sim", fps=10) as w:
        w.add_camera("cam0", (W, H))
        w.add_stream("state", {"q": Column((2,))})
        w.write_frame("cam0", frame_at(0), 0.0)
        with pytest.raises(InputError, match="frame is uint8"):
            w.write_frame("cam0", np.zeros((H + 1, W, 3), np.uint8), 0.1)
        with pytest.raises(InputError, match="float32"):
            w.write_frame("cam0", np.zeros((H, W, 3), np.float32), 0.1)
        for bad_t in (0.0, float("nan"), -1.0):
            with pytest.raises(InputError, match="strictly increasing"):
                w.write_frame("cam0", frame_at(1), bad_t)
        with pytest.raises(InputError, match="shape"):
            w.write_row("state", 0.0, q=np.zeros(3))
        with pytest.raises(InputError, match="exactly"):
            w.write_row("state", 0.0, q=np.zeros(2), extra=1.0)
        w.write_frame("cam0", frame_at(1), 0.1)
        w.write_row("state", 0.0, q=np.zeros(2))
        ep = w.commit()
    assert ep.frame_count("cam0") == 2 and ep.meta["streams"]["state"]["rows"] == 1


def test_mp4_index_count_matches_the_decoder(tmp_path: Path) -> None:
    """Chunks are verified from the mp4 index (cheap); it must agree with decoding, and anything
    it cannot read (truncated, not an mp4) falls back to the decoder instead of passing."""
    from robot_irl.library.video import VideoWriteError, decoded_count, mp4_sample_count, open_writer, verify_count
    path = tmp_path / "c.mp4"
    w = open_writer(path, "mp4v", 10.0, (W, H))
    for i in range(13):
        w.write(frame_at(i))
    w.release()
    assert mp4_sample_count(path) == decoded_count(path) == 13
    verify_count(path, 13)
    with pytest.raises(VideoWriteError):
        verify_count(path, 14)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert mp4_sample_count(cut) is None
    with pytest.raises(VideoWriteError):
        verify_count(cut, 13)
