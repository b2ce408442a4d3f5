"""2D → 3D: marker pose (IPPE flip), rigid bodies, camera-to-base, ray–plane, triangulation."""
import cv2
import numpy as np
import pytest

from robot_irl.core.camera import CameraModel, look_at
from robot_irl.core.spec import KeypointDef, Marker
from robot_irl.errors import InputError
from robot_irl.keypoints.geometry import (SquarePoseSolver, camera_to_base, make_T, marker_corners_link, marker_square,
                                          ray_plane, rigid_pose, rotation_angle, transform, triangulate,
                                          undistort_points)
from robot_irl.keypoints.synthetic import camera_640x480, facing_pose

K = camera_640x480().K


def project(T_cam_obj, pts):
    return cv2.projectPoints(np.asarray(pts, np.float64).reshape(-1, 1, 3), cv2.Rodrigues(T_cam_obj[:3, :3])[0],
                             T_cam_obj[:3, 3], K, None)[0].reshape(-1, 2)


def test_ippe_flip_resolved_by_continuity():
    """A small face-on marker with noisy corners has two near-equal poses; continuity keeps the
    previous frame's one instead of flickering."""
    rng = np.random.default_rng(0)
    T = facing_pose(0.9, (12.0, 8.0), K=K)
    solver = SquarePoseSolver()
    solver.solve("m", project(T, marker_square(0.04)), 0.04, K)  # clean first frame
    flips_fresh = flips_cont = 0
    for _ in range(40):
        c = project(T, marker_square(0.04)) + rng.normal(0, 0.2, (4, 2))
        fresh = SquarePoseSolver().solve("m", c, 0.04, K).T_cam_obj
        cont = solver.solve("m", c, 0.04, K).T_cam_obj
        flips_fresh += rotation_angle(fresh[:3, :3], T[:3, :3]) > np.deg2rad(12)
        flips_cont += rotation_angle(cont[:3, :3], T[:3, :3]) > np.deg2rad(12)
    assert flips_fresh > 0 and flips_cont == 0


def test_marker_corners_follow_normal_and_up():
    kd = KeypointDef("ee", "robot", "l7", (0.0, 0.07, 0.035), Marker(0, 0.04), normal=(0, 1, 0), up=(0, 0, -1))
    c = marker_corners_link(kd)
    assert np.allclose(c.mean(0), kd.offset)
    assert np.allclose(np.cross(c[1] - c[0], c[3] - c[0]) / 0.04 ** 2, [0, -1, 0])  # TL→TR × TL→BL = -normal
    assert c[0][2] < kd.offset[2] or np.isclose(c[0][2], kd.offset[2] - 0.02)  # top edge along +up = -z


def test_rigid_pose_from_two_markers():
    kds = [KeypointDef(f"m{i}", "box", "base", (x, 0.0, 0.0), Marker(i, 0.03)) for i, x in enumerate((-0.05, 0.05))]
    T = make_T(cv2.Rodrigues(np.array([2.9, 0.2, 0.1]))[0], [0.02, -0.01, 0.6])
    obj = np.concatenate([marker_corners_link(k) for k in kds])
    pose = rigid_pose(obj, project(T, obj), K, T @ make_T(np.eye(3), [0.003, 0, 0.01]))
    assert np.allclose(pose.T_cam_obj, T, atol=1e-5) and pose.reproj_px < 1e-4


def test_camera_to_base_from_end_effector_marker():
    rng = np.random.default_rng(2)
    T_base_cam = look_at(np.array([0.5, -0.8, 0.5]), np.array([0.5, 0.0, 0.1]))
    corners_ee = marker_corners_link(KeypointDef("ee", "robot", "l7", (0, 0.07, 0.03), Marker(0, 0.04),
                                                 normal=(0, 1, 0), up=(0, 0, -1)))
    P, uv = [], []
    for _ in range(20):
        R = cv2.Rodrigues(rng.normal(0, 0.25, 3))[0] @ np.diag([1.0, -1.0, -1.0])
        T_base_ee = make_T(R, [rng.uniform(0.35, 0.65), rng.uniform(-0.2, 0.2), rng.uniform(0.1, 0.4)])
        pb = transform(T_base_ee, corners_ee)
        P.append(pb)
        uv.append(project(np.linalg.inv(T_base_cam), pb) + rng.normal(0, 0.2, (4, 2)))
    T, rms = camera_to_base(P, uv, K)
    assert np.linalg.norm(T[:3, 3] - T_base_cam[:3, 3]) < 0.005
    assert rotation_angle(T[:3, :3], T_base_cam[:3, :3]) < np.deg2rad(0.5)
    assert rms < 0.4
    with pytest.raises(InputError, match="corners"):
        camera_to_base(P[:1], [np.full((4, 2), np.nan)], K)


def test_ray_plane_and_triangulation_recover_points():
    cam_a = CameraModel(K=K, size=(640, 480), T_base_cam=look_at(np.array([0.5, -0.8, 0.5]), np.array([0.5, 0, 0])))
    cam_b = CameraModel(K=K, size=(640, 480), T_base_cam=look_at(np.array([1.2, 0.2, 0.6]), np.array([0.5, 0, 0])))
    pts = np.array([[0.5, 0.0, 0.02], [0.6, 0.1, 0.02], [0.4, -0.1, 0.02]])
    xyz = ray_plane(cam_a, cam_a.project(pts), np.array([0, 0, 0.02]), np.array([0, 0, 1.0]))
    assert np.allclose(xyz, pts, atol=1e-9)
    tri = triangulate(cam_a, cam_a.project(pts), cam_b, cam_b.project(pts))
    assert np.allclose(tri, pts, atol=1e-6)
    assert np.isnan(triangulate(cam_a, np.full((1, 2), np.nan), cam_b, cam_b.project(pts[:1]))).all()


def test_undistort_points_inverts_projection_distortion():
    dist = np.array([-0.25, 0.08, 0.001, -0.001, 0.0])
    pc = np.array([[0.1, -0.05, 0.6], [-0.2, 0.1, 0.8]])
    ideal = project(np.eye(4), pc)
    distorted = cv2.projectPoints(pc.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), K, dist)[0].reshape(-1, 2)
    assert np.abs(distorted - ideal).max() > 1.0
    assert np.allclose(undistort_points(distorted, K, dist), ideal, atol=0.02)
    assert np.isnan(undistort_points(np.array([[np.nan, 1.0]]), K, dist)).all()


def test_blob_pixel_fixes_the_tilt_of_a_face_on_marker():
    """The iiwa's wrist: a 4 cm marker seen face-on at 1 m and a blob 5.5 cm beside it on the same
    link. From the corners alone IPPE's two mirror tilts fit about equally and the blob lands up to
    centimetres off where the marker says; with the blob's pixel in the pose fit the tilt is fixed.
    (Measured relative to the lifted marker: the marker's own depth noise is common to both.)"""
    from robot_irl.core.spec import Blob, KeypointSpec
    from robot_irl.keypoints.detectors import Detection
    from robot_irl.keypoints.geometry import marker_T_link
    from robot_irl.keypoints.pipeline import _Lifter
    from robot_irl.keypoints.track import DETECTED, SRC_ARUCO, SRC_BLOB

    marker = KeypointDef("ee", "robot", "l7", (0.0, 0.07, -0.005), Marker(0, 0.04), normal=(0, 1, 0), up=(0, 0, -1))
    blob = KeypointDef("ee_blob", "robot", "l7", (0.055, 0.05, 0.0), Blob("magenta", 0.012))
    spec = KeypointSpec([marker, blob])
    cam = camera_640x480()
    T_cam_link = facing_pose(1.0, (4.0, 3.0), K=cam.K) @ np.linalg.inv(marker_T_link(marker))
    offset = transform(T_cam_link, np.array(blob.offset)) - transform(T_cam_link, np.array(marker.offset))
    rng = np.random.default_rng(3)
    worst = {"corners": 0.0, "corners+blob": 0.0}
    for _ in range(40):
        c = project(T_cam_link, marker_corners_link(marker)) + rng.normal(0, 0.1, (4, 2))
        uv = project(T_cam_link, [blob.offset])[0] + rng.normal(0, 0.3, 2)
        seen = {"ee": (DETECTED, Detection(c.mean(0), 1.0, SRC_ARUCO, corners=c))}
        with_blob = {**seen, "ee_blob": (DETECTED, Detection(uv, 1.0, SRC_BLOB))}
        for name, obs in (("corners", seen), ("corners+blob", with_blob)):
            out = _Lifter(spec, cam, {}).lift(obs)
            err = np.linalg.norm(out["ee_blob"][0] - out["ee"][0] - offset)
            worst[name] = max(worst[name], float(err))
    assert worst["corners"] > 0.01          # the failure this guards against: a centimetre or more
    assert worst["corners+blob"] < 0.006
