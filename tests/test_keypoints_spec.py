"""The documented keypoint spec: free objects, marker corners, ``dictionary: auto``, size only
for 3D, and one clear error per bad field."""
import cv2
import numpy as np
import pytest

from robot_irl.core.spec import KeypointSpec, Marker
from robot_irl.errors import InputError
from robot_irl.keypoints import ExtractConfig, extract_video
from robot_irl.keypoints.geometry import make_T
from robot_irl.keypoints.synthetic import background, camera_640x480, draw_marker

CAM = camera_640x480()


def free_tag(point="centre", dictionary="auto", **extra):
    return {"kind": "marker", "id": 5, "dictionary": dictionary, "point": point, **extra}


def frames_of_tag(dictionary="DICT_APRILTAG_36h11", T=6):
    """A 4 cm tag of id 5 drifting in front of the camera; its true corners per frame."""
    frames, corners = [], []
    m = Marker(5, 0.04, dictionary)
    sq = np.array([[-1, 1, 0], [1, 1, 0], [1, -1, 0], [-1, -1, 0]]) * 0.02
    for t in range(T):
        img = background(CAM.size, 0)
        R = cv2.Rodrigues(np.array([np.pi, 0.0, 0.05 * t]))[0]
        T_cam_m = make_T(R, [0.01 * t, 0.0, 0.35])
        draw_marker(img, CAM.K, T_cam_m, m)
        frames.append(img)
        p = (T_cam_m[:3, :3] @ sq.T).T + T_cam_m[:3, 3]
        corners.append(cv2.projectPoints(p, np.zeros(3), np.zeros(3), CAM.K, None)[0].reshape(4, 2))
    return frames, np.arange(T) / 30.0, np.array(corners)


def test_free_object_needs_no_body_or_link_and_markers_give_corners():
    spec = KeypointSpec.from_dict({"keypoints": [
        {"name": "tag", "feature": free_tag()},
        {"name": "tag_c2", "feature": free_tag("corner2")}]}, file="s.json")
    assert {k.body for k in spec} == {"marker5"} and {k.link for k in spec} == {"base"}
    assert spec.get("tag").feature.size is None and spec.get("tag_c2").feature.corner == 2
    assert KeypointSpec.from_dict(spec.to_dict()) == spec


def test_auto_dictionary_corners_and_centre_extracted_in_pixels():
    frames, ts, corners = frames_of_tag()
    spec = KeypointSpec.from_dict({"keypoints": [
        {"name": "tag", "feature": free_tag()}, {"name": "tag_c0", "feature": free_tag("corner0")},
        {"name": "tag_c3", "feature": free_tag("corner3")}]})
    with pytest.warns(UserWarning, match="dictionary auto: tag -> DICT_APRILTAG_36h11"):
        track = extract_video(frames, ts, spec, None, config=ExtractConfig(corner_fit="edges"), progress=False)
    assert (track.status == 1).all()
    assert track.meta["spec"]["keypoints"][0]["feature"]["dictionary"] == "DICT_APRILTAG_36h11"
    assert 5 in track.meta["dictionary_scan"]["seen"]["DICT_APRILTAG_36h11"]
    assert np.abs(track.uv[:, 1] - corners[:, 0]).max() < 0.5
    assert np.abs(track.uv[:, 2] - corners[:, 3]).max() < 0.5
    assert np.abs(track.uv[:, 0] - corners.mean(1)).max() < 0.5


def test_auto_dictionary_names_what_it_saw_when_the_id_is_absent():
    frames, ts, _ = frames_of_tag()
    spec = KeypointSpec.from_dict({"keypoints": [{"name": "tag", "feature": {**free_tag(), "id": 9}}]})
    with pytest.raises(InputError, match=r"marker id 9.*DICT_APRILTAG_36h11: ids \[5\]"):
        extract_video(frames, ts, spec, None, progress=False)


def test_3d_needs_a_size_and_says_so():
    frames, ts, _ = frames_of_tag("DICT_4X4_50", T=2)
    spec = KeypointSpec.from_dict({"keypoints": [{"name": "tag", "feature": free_tag(dictionary="DICT_4X4_50")}]})
    with pytest.raises(InputError, match="tag.feature.size"):
        extract_video(frames, ts, spec, CAM, progress=False)


@pytest.mark.parametrize("kp, field", [
    ({"name": "a", "feature": {"kind": "marker", "id": 1}}, "feature.dictionary"),
    ({"name": "a", "feature": {"kind": "marker", "id": 1, "dictionary": "DICT_4X4_51"}}, "feature.dictionary"),
    ({"name": "a", "feature": {"kind": "marker", "id": -1, "dictionary": "auto"}}, "feature.id"),
    ({"name": "a", "feature": {"kind": "marker", "id": "7", "dictionary": "auto"}}, "feature.id"),
    ({"name": "a", "feature": {"kind": "marker", "id": 1, "dictionary": "auto", "size": 0}}, "feature.size"),
    ({"name": "a", "feature": {"kind": "marker", "id": 1, "dictionary": "auto", "point": "corner4"}}, "feature.point"),
    ({"name": "a", "feature": {"kind": "marker", "id": 1, "dictionary": "auto", "szie": 0.02}}, "feature.szie"),
    ({"name": "a", "feature": {"kind": "blob", "color": "purple"}}, "feature.color"),
    ({"name": "a", "feature": {"kind": "laser"}}, "feature"),
    ({"name": "a", "body": ""}, "body"),
    ({"name": "a", "offset": [0, "x", 0]}, "offset"),
    ({"nmae": "a"}, "nmae"),
    ({"body": "robot"}, "name"),
])
def test_bad_spec_fields_are_named(kp, field):
    with pytest.raises(InputError, match=rf"spec.json: field 'keypoints\[0\]\.{field}'"):
        KeypointSpec.from_dict({"keypoints": [kp]}, file="spec.json")


def test_two_keypoints_on_one_corner_or_differing_bodies_are_refused():
    with pytest.raises(InputError, match="spec.json.*two keypoints on the corner1 of marker 5"):
        KeypointSpec.from_dict({"keypoints": [{"name": "a", "feature": free_tag("corner1")},
                                              {"name": "b", "feature": free_tag("corner1")}]}, file="spec.json")
    with pytest.raises(InputError, match="spec.json.*differ in feature.size"):
        KeypointSpec.from_dict({"keypoints": [{"name": "a", "feature": free_tag(size=0.02)},
                                              {"name": "b", "feature": free_tag("corner1", size=0.03)}]},
                               file="spec.json")


def test_the_documented_examples_parse():
    import json
    import re
    from pathlib import Path
    text = (Path(__file__).resolve().parents[1] / "demos" / "README.md").read_text()
    section = text[text.index("## Keypoint spec"):]
    block = re.search(r"```json\n(.*?)```", section, re.S).group(1)
    assert len(KeypointSpec.from_dict(json.loads(block))) == 2
    for example in re.findall(r"`(\{\"(?:keypoints|name)\".*?\})`", section, re.S):
        data = json.loads(example)
        KeypointSpec.from_dict(data if "keypoints" in data else {"keypoints": [data]})


def test_bad_extraction_inputs_name_file_and_field_and_write_nothing(tmp_path, capsys):
    import json
    import re

    import av

    from robot_irl.cli import main
    frames, _, _ = frames_of_tag("DICT_4X4_50", T=3)
    video = tmp_path / "tag.mkv"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"FFV1"), 30.0, CAM.size)
    for f in frames:
        w.write(f)
    w.release()
    empty = tmp_path / "empty.mkv"
    empty.write_bytes(b"")
    zero = tmp_path / "zero.mkv"                      # a valid container with a video stream and no frame
    c = av.open(str(zero), "w")
    s = c.add_stream("ffv1", rate=30)
    s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
    c.start_encoding()
    c.close()
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    corrupt = tmp_path / "corrupt.yml"
    corrupt.write_text("%YAML:1.0\n---\nK: [1, 2\n")
    far = tmp_path / "far.yml"                        # made at 1800x1000, size not stated
    fs = cv2.FileStorage(str(far), cv2.FILE_STORAGE_WRITE)
    fs.write("K", np.array([[900.0, 0, 900], [0, 900, 500], [0, 0, 1]]))
    fs.release()
    ts4 = tmp_path / "ts4.npy"
    np.save(ts4, np.arange(4.0))

    def spec(name, **feat):
        (tmp_path / name).write_text(json.dumps({"keypoints": [{"name": "tag", "feature": {
            "kind": "marker", "id": 5, "dictionary": "DICT_4X4_50", **feat}}]}))
        return str(tmp_path / name)

    cases = [
        ([str(video), "--spec", spec("wrongdict.json", dictionary="DICT_6X6_50")], r"tag.mkv: field 'detector'"),
        ([str(video), "--spec", spec("unseen.json", id=9)], r"tag.mkv: field 'detector'.*no keypoint found"),
        ([str(video), "--spec", spec("auto.json", id=9, dictionary="auto")], r"tag.mkv: field 'tag.feature.id'"),
        ([str(empty), "--spec", spec("ok.json")], r"empty.mkv: field 'video'"),
        ([str(video), "--spec", spec("nosize.json"), "--calib", str(tmp_path / "nope.yml")],
         r"nope.yml: field 'calibration'"),
        ([str(video), "--spec", spec("ok.json"), "--calib-size", "640x480", "--calib", str(tmp_path / "nope.yml")],
         r"nope.yml"),
        ([str(video), "--spec", str(tmp_path / "missing.json")], r"missing.json"),
        ([str(zero), "--spec", spec("ok.json")], r"zero.mkv: field 'video'"),
        ([str(video), "--spec", str(listed)], r"list.json: field 'keypoints'"),
        ([str(video), "--spec", spec("ok.json"), "--calib", str(corrupt)], r"corrupt.yml: field 'calibration'"),
        ([str(video), "--spec", spec("ok.json"), "--calib", str(far)],
         r"far.yml: field 'image size'.*does not fit the 640x480 video.*--calib-size"),
        ([str(video), "--spec", spec("ok.json"), "--timestamps", str(ts4)], r"tag.mkv: field 'timestamps'.*3 frames"),
        ([str(video), "--spec", spec("ok.json"), "--timestamps", str(tmp_path / "nope.npy")],
         r"nope.npy: field '--timestamps'.*not found"),
        ([str(video), "--spec", spec("ok.json"), "--fps", "0"], r"field '--fps'"),
    ]
    for args, msg in cases:
        capsys.readouterr()
        assert main(["extract", *args, "--quiet"]) == 2, args
        assert re.search(msg, capsys.readouterr().err), (args, msg)
    assert sorted(p.name for p in tmp_path.iterdir() if "keypoints" in p.name) == []
