"""Malformed inputs: each is a clear error naming the file and the field, and nothing else in the
library changes (every other file byte-identical, catalog rows identical, the other episode loads)."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from robot_irl.errors import InputError
from robot_irl.library import Episode, Library
from test_library_core import synth_episode


def snapshot(lib: Library) -> dict[str, str]:
    out = {}
    for p in sorted(lib.path.rglob("*")):
        rel = p.relative_to(lib.path).as_posix()
        if p.is_file() and not rel.startswith(("catalog.sqlite", "locks/")):
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def edit_meta(ep: Episode, fn: Callable[[dict], None]) -> Path:
    p = ep.path / "meta.json"
    m = json.loads(p.read_text())
    fn(m)
    p.write_text(json.dumps(m))
    return p


def rewrite_state(ep: Episode, fn: Callable[[pa.Table], pa.Table]) -> Path:
    p = ep.path / ep.meta["streams"]["state"]["chunks"][0]["file"]
    pq.write_table(fn(pq.read_table(p)), p)
    edit_meta(ep, lambda m: m["streams"]["state"]["chunks"][0].update(bytes=p.stat().st_size))
    return p


def load(lib: Library, ep: Episode) -> None:
    Library.open(lib.path).episode(ep.id)


def deep(lib: Library, ep: Episode) -> None:
    Library.open(lib.path).episode(ep.id).validate(deep=True)


def truncate_video(ep: Episode, *, fix_bytes: bool) -> Path:
    p = ep.video_files("cam0")[0]
    data = p.read_bytes()
    p.write_bytes(data[: len(data) * 2 // 3])
    if fix_bytes:
        edit_meta(ep, lambda m: m["cameras"]["cam0"]["chunks"][0].update(bytes=p.stat().st_size))
    return p


def ts_table(values) -> pa.Table:
    return pa.table({"timestamp": pa.array(np.asarray(values, dtype=np.float64))})


def set_cam_ts(ep: Episode, values) -> Path:
    p = ep.path / "cameras/cam0/timestamps.parquet"
    pq.write_table(ts_table(values), p)
    return p


def bad_dtype(t: pa.Table) -> pa.Table:
    i = t.column_names.index("joint_pos")
    arr = pa.FixedSizeListArray.from_arrays(t.column(i).combine_chunks().flatten().cast(pa.float32()), 7)
    return t.set_column(i, "joint_pos", arr)


def bad_shape(t: pa.Table) -> pa.Table:
    i = t.column_names.index("joint_pos")
    vals = np.asarray(t.column(i).combine_chunks().flatten()).reshape(-1, 7)[:, :6]
    return t.set_column(i, "joint_pos", pa.FixedSizeListArray.from_arrays(pa.array(vals.ravel()), 6))


def back_in_time(t: pa.Table) -> pa.Table:
    ts = t.column("timestamp").to_numpy().copy()
    ts[2] = ts[1]
    return t.set_column(0, "timestamp", pa.array(ts))


def corrupt_npz(lib: Library, ep: Episode) -> Path:
    ep = lib.episode(ep.id)
    path = ep.write_derived("keypoints", {"keypoints": np.zeros((3, 2, 2))}) / "arrays.npz"
    path.write_bytes(path.read_bytes()[:40])
    return path


# name -> (corrupt(lib, ep) -> file that must be named, operation, field that must be named)
CASES: dict[str, tuple[Callable, Callable, str]] = {
    "truncated video (size check)": (lambda lib, ep: truncate_video(ep, fix_bytes=False), load, "bytes"),
    "truncated video (decode check)": (lambda lib, ep: truncate_video(ep, fix_bytes=True), deep, "frames"),
    "fewer timestamps than frames": (lambda lib, ep: set_cam_ts(ep, np.arange(ep.frame_count("cam0") - 1) * 0.1),
                                     deep, "cameras.cam0.timestamps"),
    "frame count differs from chunks": (lambda lib, ep: edit_meta(ep, lambda m: m["cameras"]["cam0"].update(frames=99)),
                                        load, "cameras.cam0.frames"),
    "row count differs from chunk": (lambda lib, ep: edit_meta(ep, lambda m: (
        m["streams"]["state"]["chunks"][0].update(rows=4), m["streams"]["state"].update(rows=7))), deep, "rows"),
    "missing meta field": (lambda lib, ep: edit_meta(ep, lambda m: m.pop("task")), load, "task"),
    "bad meta field type": (lambda lib, ep: edit_meta(ep, lambda m: m.update(fps="thirty")), load, "fps"),
    "unknown source": (lambda lib, ep: edit_meta(ep, lambda m: m.update(source="dream")), load, "source"),
    "wrong column dtype": (lambda lib, ep: rewrite_state(ep, bad_dtype), deep, "streams.state.columns.joint_pos"),
    "wrong column shape": (lambda lib, ep: rewrite_state(ep, bad_shape), deep, "streams.state.columns.joint_pos"),
    "NaN camera timestamp": (lambda lib, ep: set_cam_ts(ep, [0.0, np.nan] + [0.1 * i for i in range(2, 8)]),
                             deep, "cameras.cam0.timestamps"),
    "state timestamps go back": (lambda lib, ep: rewrite_state(ep, back_in_time), deep, "streams.state.timestamp"),
    "newer schema version": (lambda lib, ep: edit_meta(ep, lambda m: m.update(schema_version=99)), load,
                             "schema_version"),
    "older schema version without migration": (lambda lib, ep: edit_meta(ep, lambda m: m.update(schema_version=0)),
                                               load, "schema_version"),
    "meta.json not JSON": (lambda lib, ep: ((ep.path / "meta.json").write_text("{oops"), ep.path / "meta.json")[1],
                           load, None),
    "missing chunk file": (lambda lib, ep: (ep.video_files("cam0")[1].unlink(), ep.video_files("cam0")[1])[1],
                           load, "cameras.cam0.chunks[1].file"),
    "chunk path leaves the episode": (lambda lib, ep: edit_meta(
        ep, lambda m: m["cameras"]["cam0"]["chunks"][0].update(file="../../x.mkv")), load, "cameras.cam0.chunks[0].file"),
    "camera K of wrong shape": (lambda lib, ep: edit_meta(
        ep, lambda m: m["cameras"]["cam0"]["model"].update(K=[[1, 0], [0, 1]])), load, "camera.K"),
    "id differs from folder": (lambda lib, ep: edit_meta(ep, lambda m: m.update(id="someone-else")), load, "id"),
    "corrupt derived arrays": (corrupt_npz, lambda lib, ep: Library.open(lib.path).episode(ep.id).read_derived("keypoints"),
                               "derived.keypoints"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_malformed_episode(tmp_path: Path, case: str) -> None:
    lib = Library.open(tmp_path / "lib", create=True)
    ep = synth_episode(lib, n=8, chunk_frames=3)
    other = synth_episode(lib, n=5, task="the other one")
    corrupt, op, field = CASES[case]
    named = corrupt(lib, ep)
    Library.open(lib.path)  # a valid edit (e.g. a byte count fixed) is picked up here, before the failure
    before, rows_before = snapshot(lib), lib.catalog.rows()
    with pytest.raises(InputError) as err:
        op(lib, ep)
    e = err.value
    assert e.file is not None and Path(named).name in str(e), str(e)
    if field is not None:
        assert e.field is not None and field in e.field, (e.field, str(e))
    assert snapshot(lib) == before
    assert lib.catalog.rows() == rows_before
    Library.open(lib.path).episode(other.id).validate(deep=True)


def test_library_path_is_a_file(tmp_path: Path) -> None:
    f = tmp_path / "notes.txt"
    f.write_text("mine")
    for create in (False, True):
        with pytest.raises(InputError, match="library path is a file") as err:
            Library.open(f, create=create)
        assert err.value.file == str(f) and err.value.field == "library"
    assert f.read_text() == "mine"


def test_foreign_folder_is_not_taken_over(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.jpg").write_bytes(b"x")
    with pytest.raises(InputError, match="not empty and has no library.json") as err:
        Library.open(tmp_path / "photos", create=True)
    assert err.value.field == "library"
    assert sorted(p.name for p in (tmp_path / "photos").iterdir()) == ["a.jpg"]


def test_library_json_of_unknown_format(tmp_path: Path) -> None:
    lib = Library.open(tmp_path / "lib", create=True)
    (lib.path / "library.json").write_text(json.dumps({"format": "something else", "schema_version": 1}))
    with pytest.raises(InputError, match="format") as err:
        Library.open(lib.path)
    assert err.value.field == "format" and err.value.file.endswith("library.json")


def test_broken_episode_is_reported_not_catalogued(tmp_path: Path) -> None:
    lib = Library.open(tmp_path / "lib", create=True)
    good = synth_episode(lib, n=3)
    bad = synth_episode(lib, n=3)
    (lib.catalog.path).unlink()
    edit_meta(bad, lambda m: m.pop("fps"))
    again = Library.open(lib.path)
    assert again.ids() == [good.id]
    assert len(again.problems) == 1 and again.problems[0].field == "fps"
