"""Batch commands go on past a failing item and name it (robot_irl.core.batch; `extract LIBRARY`),
say what options do nothing, and `record` warns when markers will be too small to extract."""
from __future__ import annotations

import cv2
import pytest

from robot_irl.cli import main
from robot_irl.core.batch import BatchReport, run_batch
from robot_irl.errors import InputError
from robot_irl.keypoints.synthetic import background
from test_keypoints_pipeline import CAM, SPEC, scene


def test_run_batch_goes_on_and_names_each_failure(capsys):
    def work(i: int) -> int:
        if i == 1:
            raise InputError("bad input", field="x")
        if i == 3:
            raise ZeroDivisionError("division by zero")
        return 10 * i

    report = run_batch(range(5), work, key=lambda i: f"ep{i}", verb="did")
    assert report.done == {"ep0": 0, "ep2": 20, "ep4": 40}
    assert report.failed == {"ep1": "field 'x': bad input", "ep3": "ZeroDivisionError: division by zero"}
    assert report.exit_code == 1
    assert report.summary().startswith("did 3 of 5; 2 failed: ep1 (")
    assert "failed: ep1: field 'x': bad input" in capsys.readouterr().err
    assert run_batch([1.0], lambda x: x, key=str).exit_code == 0


def test_batch_does_not_swallow_ctrl_c():
    report = BatchReport()
    with pytest.raises(KeyboardInterrupt):
        with report.item("a"):
            raise KeyboardInterrupt


@pytest.fixture
def library(tmp_path):
    """Three camera episodes: the synthetic clip, a blank one (nothing to detect), the clip again."""
    from robot_irl.library import Library

    frames, ts, _ = scene(T=8)
    blank = [background(CAM.size, 0) for _ in ts]
    lib = Library.open(tmp_path / "lib", create=True)
    ids = []
    for task, clip in (("push", frames), ("blank", blank), ("push", frames)):
        with lib.writer(task=task, source="camera", fps=10, keypoint_spec=SPEC) as w:
            w.add_camera("cam0", CAM.size, codec="ffv1", model=CAM)
            for f, t in zip(clip, ts):
                w.write_frame("cam0", cv2.cvtColor(f, cv2.COLOR_BGR2RGB), float(t))
            ids.append(w.commit(success=True).id)
    return lib, ids


def test_extract_library_goes_past_a_failing_episode(library, capsys):
    lib, (good1, bad, good2) = library
    assert main(["extract", str(lib.path), "--table-z", "0", "--quiet", "--fps", "10"]) == 1
    out, err = capsys.readouterr()
    assert f"failed: {bad}: camera cam0 video: field 'detector': no keypoint found in any of 8 frames" in err
    assert "<frames>" not in err
    assert "note: --fps does nothing for library episodes" in err
    assert f"extracted 2 of 3; 1 failed: {bad} (" in err
    for ep_id in (good1, good2):
        assert lib.episode(ep_id).read_derived("keypoints").arrays["keypoints"].shape == (8, 2, 3)


def test_extract_query_preview_writes_one_file_per_episode_and_says_so(library, tmp_path, capsys):
    lib, (good1, _, good2) = library
    preview = tmp_path / "f.mp4"
    assert main(["extract", "task:push", "--library", str(lib.path), "--table-z", "0", "--quiet",
                 "--preview", str(preview)]) == 0
    out, err = capsys.readouterr()
    assert f"one preview each, named {tmp_path / 'f_<id>.mp4'}" in err
    for ep_id in (good1, good2):
        path = tmp_path / f"f_{ep_id}.mp4"
        assert path.stat().st_size > 0 and f"(preview {path})" in out
    assert "extracted 2 of 2" in out


def test_record_warns_when_markers_are_too_small_to_extract(tmp_path, capsys):
    assert main(["record", "--source", "sim", "--size", "160x120", "--library", str(tmp_path / "lib")]) == 0
    err = capsys.readouterr().err
    assert "warning: at --size 160x120 the markers are too small for `robot-irl extract`" in err
    assert "obj 3.7 px" in err
