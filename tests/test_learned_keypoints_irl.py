"""The learner on learned keypoints (issue 18 item 4): the image space pixels are lifted into and demos
from arrays. The observer and the tiny end-to-end pass through the CLI (exploration seen through a
detector, a dynamics fit, a cost, one plan toward a goal image) are in test_keypoints_learned.py,
on that module's plain library and detector."""
from __future__ import annotations

import json

import numpy as np
import pytest

from robot_irl.errors import InputError


def _front(size=(64, 48)):
    from sim.camera import get_camera
    return get_camera("front", size).model()


def test_image_space_lifts_onto_the_plane_facing_the_camera_and_back():
    from robot_irl.keypoints.learned.space import ImageSpace, axis_depth
    cam = _front()
    d = axis_depth(cam)
    # the sim's front camera: eye z 0.5 looking at (0.55, 0, 0.12): the axis meets z = 0 at 0.5 / sin(25.4 deg)
    assert d == pytest.approx(0.5 / np.sin(np.arctan2(0.38, 0.8)), rel=1e-6)
    space = ImageSpace.facing(cam)
    uv = np.array([[[10.0, 5.0], [32.0, 24.0]], [[63.0, 47.0], [np.nan, np.nan]]])
    xyz = space.lift(uv)
    assert xyz.shape == (2, 2, 3) and np.isnan(xyz[1, 1]).all()
    assert np.allclose(cam.to_camera(xyz[np.isfinite(xyz).all(-1)])[:, 2], d)     # one depth for every pixel
    assert np.allclose(space.pixels(xyz)[np.isfinite(uv)], uv[np.isfinite(uv)])
    # one scale everywhere: equal pixel steps are equal metres, at the image's edge as at its centre
    step = np.linalg.norm(np.diff(space.lift(np.array([[0.0, 0.0], [1.0, 0.0], [62.0, 47.0], [63.0, 47.0]])), axis=0), axis=-1)
    assert step[0] == pytest.approx(step[2])
    assert ImageSpace.from_dict(json.loads(json.dumps(space.to_dict()))).depth == pytest.approx(d)


def test_image_space_refuses_a_camera_that_never_sees_the_ground_and_a_bad_depth():
    from robot_irl.core.camera import CameraModel
    from robot_irl.keypoints.learned.space import ImageSpace, axis_depth
    up = CameraModel(K=np.eye(3), size=(64, 48), T_base_cam=np.eye(4))     # optical axis along +z of the base
    with pytest.raises(InputError, match="never meets the plane"):
        axis_depth(up)
    with pytest.raises(InputError, match="depth"):
        ImageSpace(_front(), -1.0)
    with pytest.raises(InputError, match="no image space"):
        ImageSpace.from_dict({"depth": 1.0})


def test_demos_from_arrays_cut_where_the_joints_rest_and_end_at_the_last_keypoints():
    from robot_irl.irl.library_demos import demos_from_arrays
    t = np.arange(20) * 0.1
    q = np.minimum(t, 1.0)[:, None] * np.ones((1, 3))          # moves for 1 s, then rests
    x = np.stack([q[:, :1] * np.array([1.0, 0.0, 0.0])] * 2, 1)   # [T, 2, 3]
    demos = demos_from_arrays([{"name": "a", "t": t, "x": x, "t_state": t, "q": q}], rows=5)
    assert demos.keypoints.shape == (1, 5, 2, 3) and demos.names == ["a"]
    assert demos.keypoints[0, -1, 0, 0] == pytest.approx(1.0) and demos.timestamps[0, -1] == pytest.approx(1.0)
    assert np.allclose(demos.q0, 0.0) and np.allclose(demos.goal_keypoints()[0], x[-1])
    with pytest.raises(InputError, match="demo b"):
        demos_from_arrays([{"name": "b", "t": t, "x": x[:, :, :2], "t_state": t, "q": q}])
