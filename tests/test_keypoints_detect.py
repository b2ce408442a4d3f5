"""Detectors on synthetic anti-aliased renders with exact ground truth."""
import numpy as np
import pytest

from robot_irl.core.spec import Blob, KeypointDef, Marker
from robot_irl.errors import UnknownNameError
from robot_irl.keypoints.detectors import (ArucoDetector, BlobDetector, Frame, MarkerTemplate, quad_centre,
                                           refine_edges, refine_template)
from robot_irl.keypoints.synthetic import background, camera_640x480, draw_marker, draw_sphere, facing_pose

CAM = camera_640x480()
MARKER = Marker(3, 0.04)
KD = KeypointDef("m", "cube", "base", feature=MARKER)


def views(n, seed=0):
    rng = np.random.default_rng(seed)
    for i in range(n):
        T = facing_pose(rng.uniform(0.35, 1.0), tuple(rng.uniform(-35, 35, 2)),
                        tuple(rng.uniform(-200, 200, 2) * [1, 0.7]), CAM.K, rng.uniform(-180, 180))
        img = background(CAM.size, i)
        yield img, draw_marker(img, CAM.K, T, MARKER)


@pytest.mark.parametrize("fit", ["edges", "template"])
def test_marker_corners_subpixel_on_antialiased_renders(fit):
    det = ArucoDetector([KD], refine="none")
    tpl = MarkerTemplate(MARKER)
    errs, found = [], 0
    for img, truth in views(15):
        frame = Frame(img)
        c = det.detect_corners(frame.gray).get("m")
        if c is None:
            continue
        found += 1
        c = refine_edges(frame.gray, c, 6) if fit == "edges" else refine_template(frame.gray, c, tpl)
        errs.append(np.linalg.norm(c - truth, axis=1))
    assert found >= 14
    assert np.median(np.concatenate(errs)) < 0.15


def test_apriltag_refinement_half_pixel_is_corrected():
    det = ArucoDetector([KD], refine="apriltag")
    shifts = []
    for img, truth in views(4, seed=3):
        c = det.detect_corners(Frame(img).gray).get("m")
        if c is not None:
            shifts.append((c - truth).mean(0))
    assert shifts and np.abs(np.mean(shifts, axis=0)).max() < 0.15  # uncorrected it would be ≈ +0.5


def test_detection_centre_is_diagonal_intersection():
    c = np.array([[0.0, 0.0], [10.0, 0.0], [12.0, 8.0], [0.0, 10.0]])
    p = quad_centre(c)
    d1, d2 = c[2] - c[0], c[3] - c[1]
    cross = lambda a, b: a[0] * b[1] - a[1] * b[0]  # noqa: E731
    assert abs(cross(d1, p - c[0])) < 1e-9 and abs(cross(d2, p - c[1])) < 1e-9


def test_other_ids_and_dictionaries_are_ignored_and_unknown_dictionary_named():
    det = ArucoDetector([KeypointDef("m", "cube", "base", feature=Marker(7, 0.04))])
    img, _ = next(views(1))
    assert det.detect(Frame(img)) == {}
    with pytest.raises(UnknownNameError, match="DICT_4X4_50"):
        ArucoDetector([KeypointDef("m", "c", "base", feature=Marker(1, 0.04, "DICT_NOPE"))])


def blob_scene(p_cam, occlude=0.0, color="red", seed=0):
    img = background(CAM.size, seed)
    uv = draw_sphere(img, CAM.K, np.asarray(p_cam), Blob(color, 0.012), occlude=occlude)
    return img, uv


def test_blob_centroid_subpixel():
    rng = np.random.default_rng(1)
    errs = []
    for i in range(12):  # independent views: a fresh detector each (no area history across them)
        det = BlobDetector([KeypointDef("b", "ball", "base", feature=Blob("red", 0.012))])
        p = np.array([rng.uniform(-0.2, 0.2), rng.uniform(-0.15, 0.15), rng.uniform(0.35, 0.9)])
        img, uv = blob_scene(p, seed=i)
        d = det.detect(Frame(img))["b"]
        errs.append(np.linalg.norm(d.uv - uv))
        assert 0 < d.confidence <= 1
    assert np.median(errs) < 0.2


def test_blob_area_gate_rejects_partial_occlusion():
    det = BlobDetector([KeypointDef("b", "ball", "base", feature=Blob("blue", 0.012))])
    img, _ = blob_scene([0.0, 0.0, 0.4], color="blue")
    assert "b" in det.detect(Frame(img))
    img, _ = blob_scene([0.0, 0.0, 0.4], occlude=0.45, color="blue")
    assert "b" not in det.detect(Frame(img))
    assert det.rejected["b"] >= 1


def test_blob_colours_do_not_cross_talk():
    det = BlobDetector([KeypointDef("g", "ball", "base", feature=Blob("green", 0.012))])
    img, _ = blob_scene([0.0, 0.0, 0.4], color="red")
    assert det.detect(Frame(img)) == {}
