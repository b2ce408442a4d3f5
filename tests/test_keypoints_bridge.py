"""Bridging a marker past missed detections: per-corner forward-backward checks, the printed
pattern re-aligned where flow carried it (and the bridge ended where it no longer matches), and
re-detection in the predicted window, upscaled."""
import cv2
import numpy as np

from robot_irl.core.spec import KeypointDef, Marker
from robot_irl.keypoints.detectors import ArucoDetector, Detection, Frame, MarkerTemplate, quad_centre
from robot_irl.keypoints.flow import FlowBridge
from robot_irl.keypoints.pipeline import _verify_bridges
from robot_irl.keypoints.synthetic import background, camera_640x480, draw_marker, facing_pose
from robot_irl.keypoints.track import SRC_ARUCO

CAM = camera_640x480()
MARKER = Marker(2, 0.04, "DICT_4X4_50")


def view(offset=(0.0, 0.0), distance=0.4):
    img = background(CAM.size, 1)
    T = facing_pose(distance, (15.0, -10.0), offset, CAM.K)
    draw_marker(img, CAM.K, T, MARKER)
    sq = np.array([[-1, 1, 0], [1, 1, 0], [1, -1, 0], [-1, -1, 0]]) * MARKER.size / 2
    p = (T[:3, :3] @ sq.T).T + T[:3, 3]
    return img, cv2.projectPoints(p, np.zeros(3), np.zeros(3), CAM.K, None)[0].reshape(4, 2)


def test_a_failing_corner_drops_out_and_the_others_carry_the_quad():
    a, ca = view()
    b, cb = view((6.0, 3.0))
    x, y = np.round(cb[1]).astype(int)
    cv2.circle(b, (int(x), int(y)), 9, (128, 128, 128), -1)          # one corner hidden in the new frame
    ga, gb = (cv2.cvtColor(i, cv2.COLOR_BGR2GRAY) for i in (a, b))
    bridge = FlowBridge()
    bridge.step(ga, {"m": Detection(quad_centre(ca), 1.0, SRC_ARUCO, corners=ca)}, ("m",))
    out = bridge.step(gb, {}, ("m",))
    assert "m" in out and np.abs(out["m"].corners - cb).max() < 1.0


def test_the_pattern_snaps_a_lagging_bridge_back_and_ends_a_lost_one():
    img, c = view()
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    templates = {"m": MarkerTemplate(MARKER)}
    bridge = FlowBridge()
    lag = c + [3.0, -2.5]                                              # flow left it 4 px behind
    bridge.step(gray, {"m": Detection(quad_centre(lag), 1.0, SRC_ARUCO, corners=lag)}, ("m",))
    out = _verify_bridges(gray, {"m": Detection(quad_centre(lag), 0.8, SRC_ARUCO, corners=lag)}, templates, bridge,
                          0.8)
    assert np.abs(out["m"].corners - c).max() < 0.5 and np.abs(bridge.points("m") - c).max() < 0.5
    off = c + [200.0, 0.0]                                             # carried onto the background
    out = _verify_bridges(gray, {"m": Detection(quad_centre(off), 0.8, SRC_ARUCO, corners=off)}, templates, bridge, 0.8)
    assert out == {} and not bridge.live("m")


def test_redetect_in_the_predicted_window_maps_corners_back_to_the_frame():
    img, c = view((40.0, -30.0), distance=0.9)
    det = ArucoDetector([KeypointDef("m", "m", "base", feature=MARKER)], refine="none")
    full = det.detect(Frame(img))["m"].corners
    again = det.redetect(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), "m", c + [5.0, 5.0], 2.0)
    assert again is not None and np.abs(again - c).max() < 1.0
    assert np.abs(again - c).mean() <= np.abs(full - c).mean() + 0.3
