"""Camera episodes carry a keypoint spec: stored at recording, set or replaced later (the old one
kept), honoured by extraction; bad input changes nothing."""
from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from robot_irl.cli import main
from robot_irl.core.spec import KeypointSpec, Marker
from robot_irl.keypoints.episodes import extract_and_store
from robot_irl.keypoints.synthetic import background, camera_640x480, draw_marker, facing_pose
from robot_irl.library import Library

CAM = camera_640x480()


def tag_video(path: Path, n: int = 10) -> Path:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 30.0, CAM.size)
    for t in range(n):
        img = background(CAM.size, 0)
        draw_marker(img, CAM.K, facing_pose(0.4, (10.0, 0.0), (3.0 * t, 0.0), CAM.K), Marker(4, 0.04, "DICT_4X4_50"))
        w.write(img)
    w.release()
    return path


def spec_file(path: Path, mid: int, key: str = "id") -> Path:
    path.write_text(json.dumps({"keypoints": [{"name": f"tag{mid}", "feature": {
        "kind": "marker", key: mid, "dictionary": "DICT_4X4_50"}}]}))
    return path


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("camspec")
    lib_path = tmp / "lib"
    assert main(["record", "--source", "camera", "--device", str(tag_video(tmp / "clip.mkv")), "--library",
                 str(lib_path), "--keypoint-spec", str(spec_file(tmp / "s9.json", 9))]) == 0
    lib = Library.open(lib_path)
    return tmp, lib_path, lib.select("")[0].id


def test_record_camera_stores_the_spec_and_demos_spec_replaces_it(recorded, capsys):
    tmp, lib_path, eid = recorded
    assert Library.open(lib_path).episode(eid).keypoint_spec.names == ["tag9"]
    assert main(["demos", "spec", eid, "--set", str(spec_file(tmp / "s4.json", 4)), "--library", str(lib_path)]) == 0
    ep = Library.open(lib_path).episode(eid)
    assert ep.keypoint_spec.names == ["tag4"]
    hist = ep.meta["extra"]["keypoint_spec_history"]
    assert [h["version"] for h in hist] == [1] and hist[0]["spec"]["keypoints"][0]["name"] == "tag9"
    track = extract_and_store(ep, progress=False)
    assert (track.status[:, 0] == 1).all()
    capsys.readouterr()
    assert main(["demos", "spec", eid, "--library", str(lib_path)]) == 0
    assert json.loads(capsys.readouterr().out)["keypoint_spec"]["keypoints"][0]["name"] == "tag4"


def test_extraction_honours_a_spec_given_for_the_run(recorded):
    _, lib_path, eid = recorded
    ep = Library.open(lib_path).episode(eid)
    spec = KeypointSpec.from_dict(json.loads(spec_file(Path(lib_path).parent / "s4b.json", 4).read_text()))
    track = extract_and_store(ep, spec=spec, progress=False)
    assert track.names == ["tag4"] and (track.status[:, 0] == 1).all()


def test_extract_command_honours_spec_on_an_episode(recorded, capsys):
    """`robot-irl extract EPISODE --spec F` extracts with F (the episode's own spec is tag9, which is
    not in the video; F names tag4, which is)."""
    tmp, lib_path, eid = recorded
    assert main(["extract", eid, "--spec", str(spec_file(tmp / "s4c.json", 4)), "--library", str(lib_path),
                 "--quiet"]) == 0
    assert "tag4" in capsys.readouterr().out


def test_bad_spec_or_target_changes_nothing(recorded, capsys):
    tmp, lib_path, eid = recorded
    meta = (Library.open(lib_path).episode(eid).path / "meta.json").read_bytes()
    (tmp / "corrupt.json").write_text("{not json")
    spec_file(tmp / "bad.json", 4, key="idd")
    for target, f, msg in ((eid, "bad.json", r"bad.json: field 'keypoints\[0\]\.feature\.idd'"),
                           (eid, "corrupt.json", "corrupt.json.*invalid JSON"),
                           (eid, "missing.json", "missing.json.*missing keypoint spec"),
                           ("task:nothing-like-this", "s4.json", "no episode matches 'task:nothing-like-this'")):
        capsys.readouterr()
        assert main(["demos", "spec", target, "--set", str(tmp / f), "--library", str(lib_path)]) == 2
        assert re.search(msg, capsys.readouterr().err), msg
    assert (Library.open(lib_path).episode(eid).path / "meta.json").read_bytes() == meta


def test_preview_draws_the_saved_track_with_each_status(recorded, tmp_path):
    from robot_irl.keypoints.track import INTERPOLATED, MISSING
    from robot_irl.keypoints.video import STATUS_COLOURS, write_track_preview
    from robot_irl.library.decode import decode
    _, lib_path, eid = recorded
    ep = Library.open(lib_path).episode(eid)
    track = extract_and_store(ep, preview=tmp_path / "p.mp4", progress=False)
    assert sum(1 for _ in decode(tmp_path / "p.mp4")) == ep.frame_count("cam0")
    track.status[3, 0], track.status[4, 0] = INTERPOLATED, MISSING          # as cleaning would leave them
    write_track_preview(ep.video_frames("cam0"), track, tmp_path / "q.mp4", rgb=True)
    frames = [f for _, f in decode(tmp_path / "q.mp4", bgr=True)]
    u, v = (int(round(x)) for x in track.uv[3, 0])
    ring = frames[3][v - 6:v + 7, u - 6:u + 7].reshape(-1, 3).astype(int)
    assert (np.abs(ring - STATUS_COLOURS[INTERPOLATED]).sum(1) < 90).any()  # magenta ring around the filled value
    assert not (np.abs(frames[4].reshape(-1, 3).astype(int) - STATUS_COLOURS[INTERPOLATED]).sum(1) < 90).any()


def test_demos_replay_draws_the_extracted_keypoints_as_saved(recorded, tmp_path, capsys):
    from robot_irl.library.decode import decode
    from robot_irl.library.replay import COLOURS
    tmp, lib_path, eid = recorded
    ep = Library.open(lib_path).episode(eid)
    track = extract_and_store(ep, spec=KeypointSpec.from_dict(json.loads(spec_file(tmp / "s4r.json", 4).read_text())),
                              progress=False)
    capsys.readouterr()
    assert main(["demos", "replay", eid, "--out", str(tmp_path / "r.mkv"), "--library", str(lib_path)]) == 0
    assert "with keypoints from derived keypoints" in capsys.readouterr().out
    frames = [f for _, f in decode(tmp_path / "r.mkv", bgr=True)]
    assert len(frames) == ep.frame_count("cam0")
    for t in (0, len(frames) - 1):
        u, v = (int(round(x)) for x in track.uv[t, 0])
        dot = frames[t][v - 2:v + 3, u - 2:u + 3].reshape(-1, 3).astype(int)
        assert (np.abs(dot - COLOURS[0]).sum(1) < 60).sum() >= 5, t     # a filled dot at the saved pixel
