"""The filter bounds targets by the *arm*, not only by the stream (issue 14): measured positions
that do not follow the targets — held still, lagging, noisy, jumping, stale — never let a target
wind up away from the arm, and a stall holds the arm and says which joints. Also per-model limits,
the workspace box in the calibration file and on every watched point, and holds that keep the cap."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robot_irl.control import ArmCalibration, FakeClock, SafetyConfig, SafetyFilter, backend_config, make_arm
from robot_irl.control.errors import ArmStallError, ArmStateError
from robot_irl.control.limits import MODELS, model_limits
from robot_irl.control.types import Observation
from robot_irl.errors import InputError

N = 3
LIMITS = np.array([[-3.0, 3.0]] * N)
PERIOD = 0.1


def obs_at(clock, q, age=0.0) -> Observation:
    return Observation(t=clock.now() - age, q=np.asarray(q, float).copy(), dq=np.zeros(N))


def new_filter(**kw) -> tuple[SafetyFilter, FakeClock]:
    c = FakeClock()
    f = SafetyFilter(SafetyConfig(**kw), LIMITS, c)
    f.reset(np.zeros(N))
    return f, c


def test_blocked_arm_target_never_winds_up_and_freeing_it_moves_one_cap_per_tick():
    """The review's case: measured q held at 0 rad, the policy asks for +1 rad for 40 ticks."""
    f, c = new_filter(stall_after=1e9)                 # stall check off: look at the bound alone
    bound = f.lead + 1e-12
    sent = []
    for _ in range(40):
        d = f.filter(np.ones(N), obs_at(c, np.zeros(N)))
        assert d.refused is None and np.all(np.abs(d.sent) <= bound)
        sent.append(d.sent)
        c.advance(PERIOD)
    assert np.max(sent) == pytest.approx(float(f.lead[0]))   # it got as far as the bound, no further
    q = np.zeros(N)                                          # freed: the arm follows its targets
    prev = sent[-1]
    for _ in range(20):
        d = f.filter(np.ones(N), obs_at(c, q))
        assert np.max(np.abs(d.sent - prev)) <= f.config.max_delta + 1e-12
        prev, q = d.sent, d.sent.copy()
        c.advance(PERIOD)
    assert q[0] == pytest.approx(1.0)


def test_blocked_arm_stalls_after_T_naming_the_joints():
    f, c = new_filter(stall_after=0.5)
    q = np.zeros(N)
    decisions = []
    for _ in range(30):
        d = f.filter([1.0, 0.0, 0.0], obs_at(c, q))      # only joint 0 is asked to move; it cannot
        decisions.append(d)
        if d.refused:
            break
        c.advance(PERIOD)
    d = decisions[-1]
    assert d.refused == "stall" and d.stalled == (0,) and "joints [0]" in d.detail
    np.testing.assert_array_equal(d.sent, q)            # hold where the arm is
    lag_starts = next(i for i, x in enumerate(decisions) if abs(x.sent[0]) > f.stall_threshold[0])
    assert (len(decisions) - 1 - lag_starts) * PERIOD <= 0.5 + 2 * PERIOD   # within T (+ the tick that sees it)
    assert f.filter([1.0, 0.0, 0.0], obs_at(c, q)).sent[0] <= f.config.max_delta + 1e-12   # resumes from the hold


def test_slow_arm_that_moves_is_paced_not_stalled():
    """An arm that lags (a first-order response slower than the cap) still moves: no stall."""
    f, c = new_filter(stall_after=0.3)
    q = np.zeros(N)
    for _ in range(80):
        d = f.filter(np.full(N, 2.0), obs_at(c, q))
        assert d.refused is None
        q = q + 0.15 * (d.sent - q)                     # tracks 15 % of the gap per tick
        c.advance(PERIOD)
    assert q[0] > 1.5


def test_windows_that_do_not_overlap_stall_at_once():
    """The arm was pushed away (by a person, a collision): the stream's window around the last
    target and the arm's window around where it is are disjoint."""
    f, c = new_filter()
    f.filter(np.full(N, 0.05), obs_at(c, np.zeros(N)))
    c.advance(PERIOD)
    pushed = np.array([0.0, -0.6, 0.0])
    d = f.filter(np.full(N, 0.1), obs_at(c, pushed))
    assert d.refused == "stall" and d.stalled == (1,)
    np.testing.assert_array_equal(d.sent, pushed)


STREAM = st.lists(st.floats(-4.0, 4.0), min_size=N, max_size=N)


@settings(max_examples=60, deadline=None)
@given(targets=st.lists(STREAM, min_size=5, max_size=40),
       arm=st.sampled_from(["still", "lagging", "noisy", "jumping", "stale"]),
       seed=st.integers(0, 10_000), scale=st.sampled_from([0.1, 0.5, 1.0]))
def test_property_targets_stay_near_the_arm_and_the_last_target(targets, arm, seed, scale):
    """Whatever the measured positions do, every target sent lies within the lead bound of the
    measured position it was judged against and within one step cap of the target sent before
    it (or, after a stall, is the measured position itself: the hold)."""
    rng = np.random.default_rng(seed)
    f, c = new_filter(speed_scale=scale)
    q = np.zeros(N)
    prev = np.zeros(N)
    cap = f.config.max_delta * scale + 1e-12
    for t in targets:
        measured = {"still": np.zeros(N), "lagging": q, "noisy": q + rng.normal(0, 0.02, N),
                    "jumping": q + (rng.random() < 0.2) * rng.normal(0, 0.5, N), "stale": q}[arm]
        o = obs_at(c, measured, age=0.5 if arm == "stale" and rng.random() < 0.3 else 0.0)
        d = f.filter(t, o)
        if d.refused == "stall":
            np.testing.assert_array_equal(d.sent, measured)
        elif d.refused is None:
            assert np.all(np.abs(d.sent - measured) <= f.lead + 1e-9)
            assert np.all(np.abs(d.sent - prev) <= cap)
            assert np.all(d.sent >= LIMITS[:, 0] + f.config.limit_margin - 1e-12)
        else:                                             # refused (stale): the last target is held
            assert d.refused == "stale_observation"
            np.testing.assert_array_equal(d.sent, prev)
        prev = d.sent
        q = q + 0.5 * (d.sent - q)
        c.advance(PERIOD)


def test_arm_holds_and_raises_on_a_stall_and_the_hold_keeps_the_cap():
    """Through a whole Arm (PyBullet, fake clock): hold returns what the backend holds at, so the
    first target after a hold or a watchdog trip is one cap from it; a stall raises ArmStallError."""
    c = FakeClock()
    arm = make_arm("pybullet", backend_config("pybullet", {"robot": "iiwa"}), safety=SafetyConfig(), clock=c)
    with arm:
        q0 = arm.get_observation().q
        for _ in range(5):
            arm.get_observation()
            arm.send_action(q0 + 0.3)
            c.advance(PERIOD)
        arm.hold()
        held = arm.safety_filter.reference.copy()
        arm.get_observation()
        cmd = arm.send_action(q0 + 1.0)
        assert np.max(np.abs(cmd.sent - held)) <= arm.safety.max_delta + 1e-12
        c.advance(1.0)                                      # no target: the watchdog holds
        arm.poll()
        assert arm.watchdog_trips == 1
        held = arm.safety_filter.reference.copy()
        arm.get_observation()
        cmd = arm.send_action(q0 + 1.0)
        assert cmd.refused is None and np.max(np.abs(cmd.sent - held)) <= arm.safety.max_delta + 1e-12

        # Block joint 0: the sim arm reports it where it is whatever it is told.
        stuck = arm.get_observation().q[0]
        real_read = arm.backend.read

        def blocked_read():
            o = real_read()
            q = o.q.copy()
            q[0] = stuck
            return type(o)(o.t, q, o.dq, o.ee_pos)
        arm.backend.read = blocked_read
        with pytest.raises(ArmStallError) as err:
            for _ in range(40):
                c.advance(PERIOD)
                q = arm.get_observation().q
                arm.send_action(np.r_[stuck + 1.0, q[1:]])
        assert err.value.joints == (0,) and "lbr_iiwa_joint_1" in str(err.value)


def test_model_tables_name_their_source_and_panda_clamps_fr3_joint6():
    for m in MODELS.values():
        assert m.source and m.position.shape == (m.n_dof, 2) and np.all(m.position[:, 0] < m.position[:, 1])
        assert np.all(m.velocity > 0)
    panda, fr3 = model_limits("panda"), model_limits("fr3")
    c = FakeClock()
    f = SafetyFilter(SafetyConfig(max_delta=10.0, max_velocity=100.0, lead_s=100.0), panda.position, c,
                     max_velocity=panda.velocity)
    q = np.array([0.0, 0.0, 0.0, -1.5, 0.0, 3.70, 0.0])
    f.reset(q)
    target = q.copy()
    target[5] = fr3.position[5, 1]                       # 4.5169: fine for an FR3, past a Panda's 3.7525
    d = f.filter(target, Observation(c.now(), q, np.zeros(7)))
    assert d.sent[5] == pytest.approx(panda.position[5, 1] - f.config.limit_margin)
    ur = model_limits("ur5e")
    assert np.allclose(ur.soft_position()[2], [-np.pi, np.pi]) and np.allclose(ur.position[2], [-2 * np.pi, 2 * np.pi])
    with pytest.raises(InputError, match="ur5e"):
        model_limits("ur6")


def test_panda_through_an_fr3_only_libfranka_is_refused_naming_the_version():
    from robot_irl.control.errors import ArmConnectionError
    from robot_irl.control.franka import FrankaConfig, check_libfranka_supports, urdf_model

    with pytest.raises(ArmConnectionError, match="libfranka 0.21.2"):
        check_libfranka_supports("panda", (0, 21, 2))
    check_libfranka_supports("panda", (0, 9, 2))
    check_libfranka_supports("fr3", (0, 21, 2))
    assert urdf_model('<joint name="fr3_joint1"/>') == "fr3" and urdf_model('<link name="panda_link0"/>') == "panda"
    with pytest.raises(InputError, match="franka.model"):
        FrankaConfig(model="fr5")


class FakeDashboard:
    def __init__(self, model: str, version: str) -> None:
        self.model, self.version = model, version

    def getRobotModel(self):
        return self.model

    def polyscopeVersion(self):
        return self.version


@pytest.mark.parametrize("model,version,expected", [("UR5", "URSoftware 5.11.1.108318 (Nov 26 2021)", "ur5e"),
                                                    ("UR10", "URSoftware 3.15.7.106331 (Mar 2021)", "ur10")])
def test_ur_model_comes_from_the_dashboard_and_a_mismatch_is_refused(model, version, expected):
    from robot_irl.control.ur import URBackend, URConfig, reported_model

    assert reported_model(FakeDashboard(model, version)) == expected
    other = "ur3e" if expected != "ur3e" else "ur5e"
    backend = URBackend(URConfig(model=other, sdk=(None, None, lambda host: FakeDashboard(model, version))))
    with pytest.raises(InputError, match=f"--arm-opt model={expected}"):
        backend.connect()
    with pytest.raises(InputError, match="lookahead_time"):
        URConfig(lookahead_time=0.5)


def test_ur_forward_kinematics_matches_the_datasheet_poses():
    from robot_irl.control.ur_kinematics import ur_flange_position

    np.testing.assert_allclose(ur_flange_position("ur5e", np.zeros(6)), [-0.8172, -0.2329, 0.0628], atol=1e-9)
    up = ur_flange_position("ur10e", [0.0, -np.pi / 2, 0.0, -np.pi / 2, 0.0, 0.0])
    np.testing.assert_allclose(up, [0.0, -0.17415 - 0.11655, 0.1807 + 0.6127 + 0.57155 + 0.11985], atol=1e-9)


def test_workspace_in_the_calibration_file_round_trips_and_bad_boxes_name_the_field(tmp_path):
    caps_cal = ArmCalibration(id="a", robot="iiwa", joint_names=("j",), joint_offsets=np.zeros(1),
                              limits=np.array([[-1.0, 1.0]]), max_velocity=np.ones(1), home=np.zeros(1))
    cal = caps_cal.with_workspace([0.2, -0.5, 0.0], [0.9, 0.5, 1.0])
    cal.save(tmp_path / "c.json")
    back = ArmCalibration.load(tmp_path / "c.json")
    np.testing.assert_array_equal(back.workspace[0], [0.2, -0.5, 0.0])
    for box, match in [({"lo": [0, 0, 0], "hi": [1, 1]}, "three"), ({"lo": [0, 0, 1], "hi": [1, 1, 0]}, "axes \\[2\\]"),
                       ({"lo": [0, 0, 0], "hi": [60, 10, 15]}, "centimetres"), ({"lo": [0, 0, 0]}, "exactly")]:
        with pytest.raises(InputError, match=match) as err:
            ArmCalibration.from_dict({**cal.to_dict(), "workspace": box}, file="c.json")
        assert err.value.field == "workspace"


def test_physical_arm_refuses_to_move_without_a_box_but_may_be_read():
    from robot_irl.control.arm import Arm
    from robot_irl.control.pybullet_arm import PyBulletBackend, PyBulletConfig

    c = FakeClock()
    arm = Arm(PyBulletBackend(PyBulletConfig(), c), clock=c, physical=True)
    with arm:
        q = arm.get_observation().q
        with pytest.raises(ArmStateError, match="teach-workspace"):
            arm.send_action(q)


def test_box_holds_every_watched_point_along_the_path():
    """A watched point (a run keypoint) that would leave the box stops the step, even when the
    end effector stays inside; and a step whose end point is inside but whose middle is not is cut."""
    c = FakeClock()
    f = SafetyFilter(SafetyConfig(workspace_lo=(-1, -1, -1), workspace_hi=(1, 1, 1), max_delta=5.0, max_velocity=100.0,
                                  lead_s=100.0), np.array([[-5.0, 5.0]]), c,
                     fk=lambda q: np.array([[0.0, 0.0, 0.0], [q[0], 0.0, 0.0]]))
    f.reset(np.zeros(1))
    d = f.filter([3.0], Observation(c.now(), np.zeros(1), np.zeros(1)))
    assert d.sent[0] == pytest.approx(1.0, abs=1e-3) and "workspace" in [k.kind for k in d.clamps]
    arc = SafetyFilter(SafetyConfig(workspace_lo=(-1, -1, -1), workspace_hi=(1, 1, 1), max_delta=5.0,
                                    max_velocity=100.0, lead_s=100.0), np.array([[-5.0, 5.0]]), c,
                       fk=lambda q: np.array([0.0, 0.0, 2.0 * np.sin(q[0])]))   # out of the box mid-way, back in at pi
    arc.reset(np.zeros(1))
    d = arc.filter([np.pi], Observation(c.now(), np.zeros(1), np.zeros(1)))
    assert d.sent[0] <= np.arcsin(0.5) + 1e-3
