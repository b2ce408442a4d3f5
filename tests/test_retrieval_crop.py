"""Workspace crop: the rectangle follows the camera model, holds the whole workspace box, and
falls back to the full frame for a camera that does not see the workspace."""
from __future__ import annotations

import itertools

import numpy as np

from robot_irl.core.camera import CameraModel, look_at
from robot_irl.retrieval.crop import WORKSPACE_BOX, crop_frames, workspace_rect


def camera(eye, target=(0.55, 0.0, 0.1), size=(160, 120), f=104.0) -> CameraModel:
    K = [[f, 0, size[0] / 2], [0, f, size[1] / 2], [0, 0, 1]]
    return CameraModel(K=K, size=size, T_base_cam=look_at(np.array(eye, float), np.array(target, float)))


def test_rect_holds_the_projected_workspace_and_drops_the_rest():
    cam = camera((0.55, -0.8, 0.5))
    x0, y0, x1, y1 = workspace_rect(cam)
    uv = cam.project(np.array(list(itertools.product(*WORKSPACE_BOX))))
    inside = (uv[:, 0] >= x0) & (uv[:, 0] < x1) & (uv[:, 1] >= y0) & (uv[:, 1] < y1)
    on_image = (uv[:, 0] >= 0) & (uv[:, 0] < 160) & (uv[:, 1] >= 0) & (uv[:, 1] < 120)
    assert np.all(inside | ~on_image)
    assert (x1 - x0) * (y1 - y0) < 0.8 * 160 * 120  # a real crop, not the whole frame


def test_rect_moves_with_the_camera():
    near, far = workspace_rect(camera((0.55, -0.6, 0.4))), workspace_rect(camera((0.55, -1.6, 0.8)))
    assert (far[2] - far[0]) < (near[2] - near[0])  # a farther camera sees the box smaller
    side = workspace_rect(camera((1.4, 0.0, 0.5)))
    assert side != near


def test_camera_looking_away_keeps_the_whole_frame():
    away = camera((0.55, -0.8, 0.5), target=(0.55, -3.0, 0.5))
    assert workspace_rect(away) is None
    frame = np.zeros((120, 160, 3), np.uint8)
    assert crop_frames([frame], None)[0].shape == (120, 160, 3)


def test_crop_frames_cuts_the_rectangle():
    frame = np.arange(120 * 160 * 3, dtype=np.uint32).reshape(120, 160, 3).astype(np.uint8)
    out = crop_frames([frame], (10, 20, 110, 90))[0]
    assert out.shape == (70, 100, 3) and np.array_equal(out, frame[20:90, 10:110])


def test_camera_seeing_the_workspace_half_off_image_keeps_the_whole_frame():
    # panning sideways past the box: cut where it leaves the image while most of it is in view,
    # the whole frame once most of it has left
    assert workspace_rect(camera((0.9, -0.8, 0.5), target=(0.9, 0.0, 0.1)))[0] == 0
    assert workspace_rect(camera((1.3, -0.8, 0.5), target=(1.3, 0.0, 0.1))) is None
