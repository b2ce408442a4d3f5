"""Two sim cameras (front + close, 640×480, lossless) → triangulated 3D for a blob with no marker."""
import argparse

import numpy as np
import pytest

from robot_irl.core.spec import KeypointSpec
from robot_irl.errors import InputError
from robot_irl.keypoints import extract_video
from robot_irl.keypoints.multiview import extract_two_cameras, markerless, match_frames

pytest.importorskip("pybullet")
SIZE = (640, 480)


@pytest.fixture(scope="module")
def two_views():
    """12 steps of the Place expert rendered from two cameras of the same scene, with 3D truth."""
    import gymnasium
    import sim  # noqa: F401  (registers the envs)
    from sim.camera import get_camera
    from sim.expert import expert_for

    env = gymnasium.make("robot_irl/Place-v0", render_size=SIZE, camera="front")
    u = env.unwrapped
    try:
        obs, _ = env.reset(seed=0)
        ex = expert_for(env)
        cams = {"front": u.camera, "close": get_camera("close", SIZE)}
        frames = {n: [] for n in cams}
        truth = []
        for _ in range(12):
            for n, c in cams.items():
                u.camera = c
                frames[n].append(env.render())
            truth.append(obs["keypoints"].copy())
            obs, *_ = env.step(ex.act(obs))
        u.camera = cams["front"]
        spec = u.keypoint_spec
    finally:
        env.close()
    # Without the wrist marker in the spec, the wrist blob has no marker on its link: one camera
    # cannot place it in 3D (it is not on a known plane), two can.
    blob_only = KeypointSpec(tuple(k for k in spec if k.name != "ee"))
    return dict(frames=frames, models={n: c.model() for n, c in cams.items()}, ts=np.arange(12) * 0.1,
                truth=np.array(truth)[:, [spec.index(n) for n in blob_only.names]], spec=blob_only)


def test_markerless_keypoints_are_those_without_a_marker_on_their_link(two_views):
    assert [two_views["spec"].names[i] for i in markerless(two_views["spec"])] == ["ee_blob"]


def test_two_cameras_triangulate_a_blob_one_camera_cannot_place(two_views):
    v, k = two_views, two_views["spec"].index("ee_blob")
    one = extract_video(v["frames"]["front"], v["ts"], v["spec"], v["models"]["front"], rgb=True, progress=False)
    assert np.isnan(one.xyz[:, k]).all()
    two = extract_two_cameras(v["frames"]["front"], v["ts"], v["models"]["front"], v["frames"]["close"], v["ts"],
                              v["models"]["close"], v["spec"], rgb=True, progress=False)
    err = np.linalg.norm(two.xyz[:, k] - v["truth"][:, k], axis=1)
    assert two.meta["triangulated"]["ee_blob"] >= 10 and np.nanmedian(err) < 0.003
    # the marker keypoint keeps its single-camera pose estimate (not triangulated)
    assert two.meta["triangulated"]["obj"] == 0 and np.isfinite(two.xyz[:, two_views["spec"].index("obj")]).any()


def test_cli_extract_episode_with_second_camera(two_views, tmp_path):
    from robot_irl.keypoints.cli import register
    from robot_irl.library import Library

    v = two_views
    lib = Library.open(tmp_path / "lib", create=True)
    with lib.writer(task="place", source="sim", fps=10, keypoint_spec=v["spec"]) as w:
        for name in ("front", "close"):
            w.add_camera(name, SIZE, codec="ffv1", model=v["models"][name])
        for i, t in enumerate(v["ts"]):
            for name in ("front", "close"):
                w.write_frame(name, v["frames"][name][i], float(t))
        w.commit(success=True)
    ep = lib.select()[0]
    p = argparse.ArgumentParser()
    register(p.add_subparsers())
    args = p.parse_args(["extract", ep.id, "--library", str(tmp_path / "lib"), "--camera", "front",
                         "--second-camera", "close", "--no-clean", "--quiet"])
    assert args.func(args) == 0
    d = lib.episode(ep.id).read_derived("keypoints")
    k = d.meta["names"].index("ee_blob")
    assert np.nanmedian(np.linalg.norm(d.arrays["keypoints"][:, k] - v["truth"][:, k], axis=1)) < 0.003
    assert d.meta["second_camera_name"] == "close"


def test_frames_matched_by_time_within_half_a_period():
    assert match_frames(np.array([0.0, 0.1, 0.2, 0.5]), np.array([0.01, 0.12, 0.19])).tolist() == [0, 1, 2, -1]
    with pytest.raises(InputError, match="overlap"):
        from robot_irl.keypoints.multiview import fuse_tracks
        from robot_irl.keypoints.track import KeypointTrack
        a, b = KeypointTrack.empty(["x"], np.arange(3.0)), KeypointTrack.empty(["x"], np.arange(3.0) + 10)
        fuse_tracks(a, None, b, None, KeypointSpec(()))
