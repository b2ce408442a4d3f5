"""Person demos (issue 20): sim person source → extraction in the reference marker's world frame →
registration → cost over the object's keypoints → the arm carries the object; and the bad inputs.

One end-to-end test at tiny size (2 demos, 2 goals, few outer iterations); the rest are unit tests
and error messages on a library of two deliberately broken demos."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from robot_irl.control.registration import WorldRegistration, fit_points, hand_eye, touch, typed
from robot_irl.errors import InputError
from robot_irl.irl.object_demos import object_demos_from_library, progress_resample, style_path_error

FPS = 8.0   # few frames per demo (the render is what costs), enough that the lift and carry are several frames each


@pytest.fixture(scope="module")
def person_lib(tmp_path_factory):
    from robot_irl.keypoints.episodes import extract_and_store
    from robot_irl.library import Library
    from robot_irl.record.person import record_person_sim

    lib = Library.open(tmp_path_factory.mktemp("person") / "lib", create=True)
    for ep in record_person_sim(lib, episodes=2, seed=3, fps=FPS):
        extract_and_store(ep, progress=False)
    return lib


@pytest.fixture(scope="module")
def broken_lib(tmp_path_factory):
    """Episode 0: no reference marker in the world; episode 1: the object's marker invisible."""
    from robot_irl.keypoints.episodes import extract_and_store
    from robot_irl.library import Library
    from robot_irl.record.person import record_person_sim

    lib = Library.open(tmp_path_factory.mktemp("broken") / "lib", create=True)
    a = record_person_sim(lib, episodes=1, seed=5, fps=3.0, show_world_marker=False)[0]
    b = record_person_sim(lib, episodes=1, seed=6, fps=3.0, show_object_marker=False)[0]
    for ep in (a, b):
        with pytest.warns(UserWarning):
            extract_and_store(ep, progress=False)
    return lib, a, b


def test_person_demo_end_to_end_tiny(person_lib):
    """2 person demos → learned cost → the PyBullet arm carries the object to 2 held-out goals,
    judged on the object seen in the run's video after release."""
    from robot_irl.control import FakeClock, SafetyConfig, make_arm
    from robot_irl.control.pybullet_arm import PyBulletConfig
    from robot_irl.irl import LearnerConfig
    from robot_irl.record import person_pipeline as pp

    eps = person_lib.select("tag:person")
    assert len(eps) == 2 and all(e.meta["extra"]["demonstrator"] == "person" for e in eps)
    assert not any("joint_pos" in e.arrays("state") for e in eps)          # no robot, no joint log
    setup = pp.PersonSetup()
    arm = make_arm("pybullet", PyBulletConfig(robot="iiwa"), safety=SafetyConfig(), clock=FakeClock())
    with arm:
        reg = pp.touch_registration(arm, setup, np.random.default_rng(0))
    assert reg.method == "touch" and reg.rms_m < 0.003
    assert np.linalg.norm(reg.T_base_world[:3, 3] - setup.layout.T_base_world[:3, 3]) < 0.005
    trained, od = pp.learn(person_lib, "tag:person", reg, setup, "timedep", LearnerConfig(outer_iters=20))
    truth = object_demos_from_library(person_lib, "tag:person", setup.layout.T_base_world, keypoints="truth")
    # extracted carries (through video and the touched registration) follow the true ones
    assert np.median(np.linalg.norm(od.fine[:, :, 0] - truth.fine[:, :, 0], axis=-1)) < 0.015
    assert 0.06 < od.lift_m < 0.14
    for s, g in (((0.5, -0.02), (0.66, 0.05)), ((0.48, 0.0), (0.69, 0.0))):
        res = pp.run_goal(trained, setup, reg, np.array(s), np.array(g), frames=2)
        assert res.record.succeeded, (res.record.summary(), res.record.log)
        assert res.record.err_m < 0.02
        assert style_path_error(res.path, truth.fine) < 0.03


def test_no_reference_marker_is_named(broken_lib):
    lib, a, _ = broken_lib
    with pytest.raises(InputError, match=r"reference marker .*not seen.*record --source camera\s+--person"):
        object_demos_from_library(lib, f"id:{a.id}", np.eye(4))


def test_object_never_seen_is_named(broken_lib):
    lib, _, b = broken_lib
    with pytest.raises(InputError, match=r"object .*never seen.*robot-irl extract"):
        object_demos_from_library(lib, f"id:{b.id}", np.eye(4))


def test_no_registration_names_the_command(person_lib):
    with pytest.raises(InputError, match=r"no world-to-base registration.*robot-irl world touch"):
        object_demos_from_library(person_lib, "tag:person", None)


def test_demos_of_different_objects_are_refused(broken_lib):
    from robot_irl.core.spec import KeypointSpec, Marker

    lib, a, b = broken_lib
    spec = b.keypoint_spec
    other = KeypointSpec(tuple(dataclasses.replace(k, feature=Marker(id=3, size=0.03))
                               if k.name == "obj_marker" else k for k in spec))
    b.set_keypoint_spec(other, "test: another object")
    try:
        with pytest.raises(InputError, match=r"different objects.*marker.*1\).*marker.*3\)"):
            object_demos_from_library(lib, f"id:{a.id},{b.id}", np.eye(4))
    finally:
        b.set_keypoint_spec(spec, "test: restored")


def test_registration_touch_typed_and_calibration_roundtrip(tmp_path):
    from scipy.spatial.transform import Rotation

    from robot_irl.control.calibration import ArmCalibration

    T = np.eye(4)
    T[:3, :3] = Rotation.from_euler("xyz", [3, -2, 40], degrees=True).as_matrix()
    T[:3, 3] = [0.3, -0.2, 0.01]
    corners = np.array([[-0.035, 0.095, 0.0], [0.035, 0.095, 0.0], [0.035, 0.025, 0.0], [-0.035, 0.025, 0.0]])
    touched = corners @ T[:3, :3].T + T[:3, 3]
    reg = touch(corners, touched + np.random.default_rng(0).normal(0, 5e-4, touched.shape))
    assert np.abs(reg.T_base_world - T).max() < 0.02 and reg.rms_m < 1e-3
    with pytest.raises(InputError, match="ArUco order"):
        touch(corners, touched[[1, 0, 2, 3]])
    Tf, rms = fit_points(corners, touched)
    assert np.allclose(Tf, T, atol=1e-9) and rms < 1e-9
    T_cam_world = np.linalg.inv(np.diag([1.0, -1.0, -1.0, 1.0]) @ np.eye(4))
    assert np.allclose(hand_eye(T @ np.linalg.inv(T_cam_world), T_cam_world).T_base_world, T)
    t = typed("0.3,-0.2,0.0,90")
    assert np.allclose(t.to_base([1.0, 0.0, 0.0]), [0.3, 0.8, 0.0])
    with pytest.raises(InputError, match="--pose"):
        typed("1,2")
    cal = ArmCalibration(id="a", robot="iiwa", joint_names=("j",), joint_offsets=np.zeros(1),
                         limits=np.array([[-1.0, 1.0]]), max_velocity=np.ones(1), home=np.zeros(1))
    cal.with_world(reg).save(tmp_path / "arm.json")
    back = ArmCalibration.load(tmp_path / "arm.json").world
    assert isinstance(back, WorldRegistration) and back.method == "touch"
    assert np.allclose(back.T_base_world, reg.T_base_world)


def test_world_cli_set_and_show(tmp_path, capsys):
    from robot_irl import cli
    from robot_irl.control.calibration import ArmCalibration

    path = tmp_path / "arm.json"
    assert cli.main(["world", "set", "--calibration", str(path), "--pose", "0.3,-0.2,0,12"]) == 2
    assert "robot-irl arm check" in capsys.readouterr().err
    ArmCalibration(id="a", robot="iiwa", joint_names=("j",), joint_offsets=np.zeros(1),
                   limits=np.array([[-1.0, 1.0]]), max_velocity=np.ones(1), home=np.zeros(1)).save(path)
    assert cli.main(["world", "show", "--calibration", str(path)]) == 2
    assert "robot-irl world touch" in capsys.readouterr().err
    assert cli.main(["world", "set", "--calibration", str(path), "--pose", "0.3,-0.2,0,12"]) == 0
    capsys.readouterr()
    assert cli.main(["world", "show", "--calibration", str(path), "--json"]) == 0
    out = capsys.readouterr().out
    assert '"method": "typed"' in out and ArmCalibration.load(path).world is not None


def test_progress_alignment_removes_pauses_and_speed():
    """The same arc walked at two speeds, one with a long pause, gives the same rows by progress
    (not by frame index)."""
    s = np.linspace(0, 1, 200)
    arc = np.stack([0.2 * s, 0.1 * (1 - (1 - s) ** 2), 0.1 * (1 - s ** 3)], 1)[:, None]
    slow = arc[np.clip(np.concatenate([np.arange(80), np.full(60, 80), np.arange(80, 200)]), 0, 199)]
    fast = arc[::3]
    a, b = progress_resample(slow, 10), progress_resample(fast, 10)
    assert np.abs(a - b).max() < 0.004
    by_index = np.linspace(0, len(slow) - 1, 10).astype(int)
    assert np.abs(slow[by_index] - b).max() > 0.02          # frame index would not align them
    assert style_path_error(fast, progress_resample(slow, 50)[None]) < 0.004


def _styled(start, end, n=50):
    """A carry in the sim person's style: y closes its gap early, the height late."""
    s = np.linspace(0, 1, n)[:, None]
    prof = np.concatenate([s, 1 - (1 - s) ** 2, s ** 3], 1)
    return (np.asarray(start) + prof * (np.asarray(end) - np.asarray(start)))[:, None]


def test_style_is_each_coordinates_progress_carried_to_the_new_goal():
    """Demos to goals in different directions; a new carry in their style to a goal of its own scores
    ~0, the straight line does not; the demos' sideways bulges are scaled to the new goal, not
    copied (a goal straight ahead has no sideways bulge)."""
    up = [0.5, 0.0, 0.13]
    demos = np.array([_styled(up, [0.68, dy, 0.03]) for dy in (0.14, 0.06, -0.04)])
    fine = np.stack([progress_resample(d, 50) for d in demos])
    ahead = _styled(up, [0.7, 0.0, 0.03])
    assert style_path_error(ahead, fine) < 0.002
    line = np.linspace(up, [0.7, 0.0, 0.03], 50)[:, None]
    assert style_path_error(line, fine) > 0.01
    assert style_path_error(_styled(up, [0.62, -0.05, 0.03]), fine) < 0.002


def test_record_person_needs_a_reference_marker_in_the_spec(tmp_path, capsys):
    import json

    from robot_irl import cli

    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"keypoints": [{"name": "obj", "body": "obj",
                                               "feature": {"kind": "marker", "id": 1, "size": 0.03,
                                                           "dictionary": "DICT_4X4_50"}}]}))
    argv = ["record", "--source", "camera", "--person", "--device", str(tmp_path / "clip.mp4"),
            "--keypoint-spec", str(spec), "--library", str(tmp_path / "lib")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "no reference marker" in err and "robot-irl demos spec" in err


def test_cli_train_and_run_person_demos(person_lib, tmp_path, capsys):
    """`robot-irl train` on person demos learns the object cost for the calibration's robot (its
    registration from `robot-irl world set`); `robot-irl run` with that run carries the object in
    the simulated cell and is judged by the camera; each missing piece is named."""
    from robot_irl import cli

    lib, cal, run = str(person_lib.path), str(tmp_path / "arm.json"), str(tmp_path / "run")
    train = ["train", "--library", lib, "--demos", "tag:person", "--out", run, "--iters", "20", "--quiet", "--json"]
    assert cli.main(train) == 2                                            # no calibration: named
    assert "--calibration ARM.json (`robot-irl arm check" in capsys.readouterr().err
    assert cli.main(["arm", "check", "--arm", "pybullet", "--write-calibration", cal]) == 0
    assert cli.main([*train, "--calibration", cal]) == 2                   # a calibration without the registration
    assert "robot-irl world set --calibration" in capsys.readouterr().err
    assert cli.main(["world", "set", "--calibration", cal, "--pose", "0.34,-0.16,0,12"]) == 0   # the cell's marker
    capsys.readouterr()
    assert cli.main([*train, "--calibration", cal]) == 0
    figs = json.loads(capsys.readouterr().out.split("run saved to")[0])
    assert figs["train_final_err_cm"] < 3.0
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["demos"]["person"]["robot"] == "iiwa" and cfg["demos"]["keypoints"] == "extracted"
    assert cli.main(["eval", run, "--json"]) == 0                         # the run's own demos, as it learned them
    assert json.loads(capsys.readouterr().out)["eval_train_final_err_cm"] == pytest.approx(figs["train_final_err_cm"], abs=0.05)

    go = ["run", "--arm", "pybullet", "--run", run, "--goal", "0.66,0.05", "--object", "0.5,-0.02",
          "--library", str(tmp_path / "runs"), "--sim-time"]
    assert cli.main(go) == 2                                               # the run needs the registration too
    assert "robot-irl world touch" in capsys.readouterr().err
    assert cli.main([*go, "--calibration", cal, "--dry-run"]) == 2         # robot-run options are named
    assert "--dry-run with a run trained on person demos" in capsys.readouterr().err
    assert cli.main([*go, "--calibration", cal, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["succeeded"] and out["err_cm"] < 2.0 and out["carry_outcome"] in ("reached", "settled")
    assert np.linalg.norm(np.array(out["object_found"][:2]) - [0.5, -0.02]) < 0.01
