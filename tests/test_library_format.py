"""Episode format v2: migration of older libraries, episode kind, queries that fail loudly, spec keys."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from robot_irl.core.spec import KeypointSpec
from robot_irl.errors import InputError
from robot_irl.library import SCHEMA_VERSION, Column, Library

W, H = 32, 24


def tiny(lib: Library, *, kind: str = "demo", tags: list[str] | None = None, cams: int = 1, n: int = 4):
    with lib.writer(task="push", source="sim", fps=10, kind=kind, tags=tags, variant={"color": "red"}) as w:
        for c in range(cams):
            w.add_camera(f"cam{c}", (W, H))
        w.add_stream("state", {"q": Column((2,), "float64")})
        for i in range(n):
            for c in range(cams):
                w.write_frame(f"cam{c}", np.full((H, W, 3), 10 * i, np.uint8), 0.1 * i)
            w.write_row("state", 0.1 * i, q=np.array([i, -i], float))
        return w.commit(success=True)


def test_v1_library_is_migrated_in_place_with_a_catalog_backup(tmp_path: Path) -> None:
    lib = Library.open(tmp_path / "lib", create=True)
    ep = tiny(lib)
    meta_path = ep.path / "meta.json"
    meta = json.loads(meta_path.read_text())
    del meta["kind"]
    meta["schema_version"] = 1
    meta_path.write_text(json.dumps(meta))
    (tmp_path / "lib/library.json").write_text(json.dumps({"format": "robot-irl demo library", "schema_version": 1}))
    lib2 = Library.open(str(tmp_path / "lib"))
    assert json.loads(meta_path.read_text())["schema_version"] == SCHEMA_VERSION == 2
    assert json.loads(meta_path.read_text())["kind"] == "demo"
    assert json.loads((tmp_path / "lib/library.json").read_text())["schema_version"] == 2
    backup = tmp_path / "lib/catalog.v1.sqlite"
    assert backup.is_file()
    with sqlite3.connect(backup) as con:
        assert con.execute("SELECT count(*) FROM episodes").fetchone()[0] == 1
    assert [e.kind for e in lib2.select("")] == ["demo"]


def test_newer_library_and_episode_are_refused_by_version(tmp_path: Path) -> None:
    lib = Library.open(tmp_path / "lib", create=True)
    ep = tiny(lib)
    meta = json.loads((ep.path / "meta.json").read_text())
    meta["schema_version"] = 7
    (ep.path / "meta.json").write_text(json.dumps(meta))
    assert "schema_version 7 is newer" in str(Library.open(tmp_path / "lib").problems[0])
    (tmp_path / "lib/library.json").write_text(json.dumps({"format": "robot-irl demo library", "schema_version": 9}))
    with pytest.raises(InputError, match="schema_version 9 is newer.*reads up to 2"):
        Library.open(tmp_path / "lib")


def test_runs_stay_out_of_demo_queries(tmp_path: Path) -> None:
    lib = Library.open(str(tmp_path / "lib"), create=True)
    demo, run = tiny(lib), tiny(lib, kind="run")
    assert run.kind == "run" and demo.kind == "demo"
    assert [r["id"] for r in lib.rows("")] == [demo.id]
    assert [r["id"] for r in lib.rows("kind:run")] == [run.id]
    assert {r["id"] for r in lib.rows("kind:*")} == {demo.id, run.id}
    assert [r["id"] for r in lib.rows("-kind:run")] == [demo.id]
    with pytest.raises(InputError, match="kind"):
        lib.writer(task="x", source="sim", fps=10, kind="eval")
    assert not list((tmp_path / "lib/staging").iterdir())


def test_unknown_variant_field_lists_the_valid_ones(tmp_path: Path) -> None:
    lib = Library.open(tmp_path / "lib", create=True)
    tiny(lib)
    assert len(lib.rows("variant.color=red")) == 1
    with pytest.raises(InputError, match=r"variant\.colour.*variant\.color"):
        lib.rows("variant.colour=red")
    with pytest.raises(InputError, match="one of"):
        lib.rows("colour:red")


def test_frames_count_per_camera_not_summed(tmp_path: Path) -> None:
    lib = Library.open(tmp_path / "lib", create=True)
    tiny(lib, cams=2, n=5)
    assert lib.rows("")[0]["frames"] == 5


def test_library_from_a_plain_string(tmp_path: Path) -> None:
    ep = tiny(Library.open(tmp_path / "lib", create=True))
    lib = Library(str(tmp_path / "lib"))
    assert lib.path == tmp_path / "lib" and [e.id for e in lib.select("")] == [ep.id]


def cli(*args: str) -> subprocess.CompletedProcess:
    root = Path(__file__).resolve().parents[1]
    return subprocess.run([sys.executable, "-m", "robot_irl.cli", *args], capture_output=True, text=True, cwd=root,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})


def test_cli_negated_term(tmp_path: Path) -> None:
    lib = Library.open(tmp_path / "lib", create=True)
    keep, drop = tiny(lib), tiny(lib, tags=["train"])
    r = cli("demos", "list", "-tag:train", "--library", str(tmp_path / "lib"))
    assert r.returncode == 0, r.stderr
    assert keep.id in r.stdout and drop.id not in r.stdout


def test_list_and_repair_agree_on_a_truncated_video(tmp_path: Path) -> None:
    lib = Library.open(tmp_path / "lib", create=True)
    ok, bad = tiny(lib), tiny(lib)
    video = bad.video_files("cam0")[0]
    video.write_bytes(video.read_bytes()[:100])
    listed = cli("demos", "list", "--library", str(lib.path))
    repaired = cli("demos", "repair", "--library", str(lib.path))
    assert ok.id in listed.stdout and bad.id not in listed.stdout
    line = [ln for ln in listed.stderr.splitlines() if bad.id in ln]
    assert line and line[0].startswith("warning: ")
    assert line[0][len("warning: "):] in repaired.stdout.splitlines()
    assert f"robot-irl demos rm {bad.id}" in line[0] and repaired.returncode == 1


def test_misspelt_keypoint_spec_key_is_named() -> None:
    good = {"keypoints": [{"name": "ee", "body": "robot", "link": "l7", "offset": [0, 0, 0.1]}]}
    assert KeypointSpec.from_dict(good).keypoints[0].offset == (0, 0, 0.1)
    bad = {"keypoints": [{"name": "ee", "body": "robot", "link": "l7", "ofset": [0, 0, 0.1]}]}
    with pytest.raises(InputError, match="ofset") as e:
        KeypointSpec.from_dict(bad, file="spec.json")
    assert "offset" in str(e.value) and "keypoints[0].ofset" in str(e.value)


def test_show_reads_as_text_and_as_json_with_the_flag(tmp_path: Path, capsys) -> None:
    import argparse

    from robot_irl.library import cli as library_cli

    lib = Library.open(tmp_path / "lib", create=True)
    ep = tiny(lib, kind="run")
    p = argparse.ArgumentParser()
    library_cli.register(p.add_subparsers(dest="cmd"))
    for extra in ([], ["--json"]):
        args = p.parse_args(["demos", "show", ep.id, "--library", str(lib.path), *extra])
        assert args.func(args) == 0
    text, js = capsys.readouterr().out.split("\n{", 1)
    assert "kind:      run" in text and "task:      push" in text and "color=red" in text
    assert any(ln.split()[:3] == ["cam0", "4", f"{W}x{H}"] for ln in text.splitlines())   # the cameras table
    assert any(ln.split()[:3] == ["state", "4", "q"] for ln in text.splitlines())         # the streams table
    shown = json.loads("{" + js)
    assert shown["kind"] == "run" and shown["cameras"]["cam0"]["frames"] == 4
