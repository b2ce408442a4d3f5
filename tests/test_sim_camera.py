"""Ground-truth projection checked against the rendered pixels themselves."""
import cv2
import gymnasium as gym
import numpy as np
import pytest

import sim  # noqa: F401  (registers the envs)
from sim.scene import Marker


@pytest.mark.parametrize("size", [(320, 240), (640, 480)])
def test_projection_matches_sphere_mask_centroid(size):
    env = gym.make("robot_irl/Reach-v0", render_size=size)
    env.reset(seed=0)
    u = env.unwrapped
    sphere = u.bullet.create_visual_sphere(0.012, [1, 0, 0, 1])
    cam = u.camera_model()
    errors = []
    for p in [[0.5, -0.15, 0.1], [0.45, -0.1, 0.05], [0.62, -0.25, 0.12], [0.55, -0.2, 0.15], [0.4, -0.3, 0.2]]:
        u.bullet.set_pose(sphere, p, (0, 0, 0, 1))
        _, seg = u._render(segmentation=True)
        ys, xs = np.nonzero(seg == sphere)
        assert len(xs) > 20
        errors.append(np.hypot(xs.mean() - cam.project(np.array(p))[0], ys.mean() - cam.project(np.array(p))[1]))
    assert np.max(errors) < 0.5, errors   # sub-pixel
    env.close()


def test_marker_corners_project_onto_detected_corners():
    env = gym.make("robot_irl/Place-v0", render_size=(640, 480), camera="close")
    env.reset(seed=0)
    u = env.unwrapped
    img = env.render()
    corners = u.scene.marker_corners_3d()
    cam = u.camera_model()
    det = cv2.aruco.ArucoDetector(cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_4X4_50),
                                  cv2.aruco.DetectorParameters())
    params = det.getDetectorParameters()
    params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
    det.setDetectorParameters(params)
    found, ids, _ = det.detectMarkers(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY))
    assert ids is not None
    by_id = {int(i): c.reshape(4, 2) for i, c in zip(ids.ravel(), found)}
    uv, visible = u.keypoints_2d()
    for kp in u.keypoint_spec:
        if isinstance(kp.feature, Marker) and visible[u.keypoint_spec.index(kp.name)]:
            truth = cam.project(corners[kp.name])
            err = np.linalg.norm(by_id[kp.feature.id] - truth, axis=1)
            assert np.median(err) < 0.5, (kp.name, err)
    env.close()


def test_visibility_false_when_occluded():
    env = gym.make("robot_irl/Reach-v0", render_size=(320, 240))
    env.reset(seed=0)
    u = env.unwrapped
    _, vis = u.keypoints_2d()
    assert vis[u.keypoint_spec.index("ee")]
    cam = u.camera_model()
    ee = u.keypoints_3d()[u.keypoint_spec.index("ee")]
    between = ee + 0.3 * (np.asarray(u.camera.eye) - ee)
    u.bullet.create_box([0.05, 0.005, 0.05], between, [0, 0, 0, 1], collide=False)
    u.render()
    _, vis = u.keypoints_2d()
    assert not vis[u.keypoint_spec.index("ee")]
    assert np.isfinite(cam.project(ee)).all()
    env.close()
