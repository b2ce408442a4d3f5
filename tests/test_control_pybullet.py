"""The Arm on the in-process PyBullet backend, on a fake clock: lifecycle, filter in front of the
simulated arm (property test: its state never leaves its limits), watchdog, e-stop, teach mode,
home, calibration offsets and the receding-horizon runner."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robot_irl.control import (ArmCalibration, ArmStateError, EmergencyStopError, FakeClock, SafetyConfig,
                               backend_config, make_arm)
from robot_irl.control.runner import run_mpc, save_run_episode
from robot_irl.errors import InputError


def arm_on(clock, robot="iiwa", **safety):
    return make_arm("pybullet", backend_config("pybullet", {"robot": robot}), safety=SafetyConfig(**safety),
                    clock=clock)


def step(arm, clock, target, dt=0.1):
    arm.get_observation()
    cmd = arm.send_action(target)
    clock.advance(dt)
    return cmd


def test_connect_read_move_and_disconnect_in_context():
    c = FakeClock()
    arm = arm_on(c)
    with arm:
        caps = arm.capabilities
        assert caps.n_dof == 7 and caps.native_rate_hz == 240 and "teach" in caps.control_modes
        o = arm.get_observation()
        assert o.t == c.now() and o.ee_pos.shape == (3,)
        goal = o.q + 0.2
        for _ in range(20):
            cmd = step(arm, c, goal)
        np.testing.assert_allclose(arm.get_observation().q, goal, atol=5e-3)
        assert cmd.clamps == () and cmd.refused is None
    with pytest.raises(ArmStateError, match="not connected"):
        arm.get_observation()


def test_disconnects_when_the_block_raises():
    c = FakeClock()
    arm = arm_on(c)
    with pytest.raises(ZeroDivisionError):
        with arm:
            1 / 0
    assert arm.backend.robot is None


def test_clamps_are_visible_in_what_send_action_returns():
    c = FakeClock()
    with arm_on(c) as arm:
        q = arm.get_observation().q
        cmd = arm.send_action(q + np.array([1.0, 0, 0, 0, 0, 0, 0]))
        assert [cl.kind for cl in cmd.clamps] == ["delta"] and cmd.clamps[0].joints == (0,)
        assert cmd.sent[0] == pytest.approx(q[0] + 0.05) and cmd.requested[0] == pytest.approx(q[0] + 1.0)
        cmd = arm.send_action([np.nan] * 7)
        assert cmd.refused == "nonfinite" and np.all(np.isfinite(cmd.sent))
        assert arm.safety_filter.counts["delta"] == 1


arm_targets = st.one_of(
    st.lists(st.floats(-6, 6), min_size=7, max_size=7),
    st.lists(st.one_of(st.floats(-6, 6), st.just(np.nan), st.just(np.inf)), min_size=7, max_size=7),
    st.lists(st.floats(-0.03, 0.03), min_size=7, max_size=7).map(lambda d: ["rel", *d]),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stream=st.lists(st.tuples(arm_targets, st.floats(0.01, 0.3), st.booleans()), min_size=5, max_size=30))
def test_property_arm_state_never_leaves_limits(stream):
    c = FakeClock()
    with arm_on(c) as arm:
        lim = arm.capabilities.limits
        for target, dt, fresh in stream:
            if fresh:
                arm.get_observation()
            q = arm.safety_filter.reference.copy()
            t = q + np.asarray(target[1:]) if target[0] == "rel" else np.asarray(target, float)
            arm.poll()
            ref = arm.safety_filter.reference.copy()
            cmd = arm.send_action(t)
            assert cmd.refused is not None or cmd.clamps or np.array_equal(cmd.sent, t)
            if not np.all(np.isfinite(t)):
                assert cmd.refused == "nonfinite"
            assert np.max(np.abs(cmd.sent - ref)) <= 0.05 + 1e-9
            c.advance(dt)
            o = arm.get_observation()
            assert np.all(o.q >= lim[:, 0] - 1e-3) and np.all(o.q <= lim[:, 1] + 1e-3)


def test_watchdog_trips_within_T_and_holds_on_fake_clock():
    c = FakeClock()
    with arm_on(c, watchdog_timeout=0.2) as arm:
        q0 = arm.get_observation().q
        for _ in range(3):
            step(arm, c, q0 + 0.5, dt=0.05)          # a stream that moves the arm
        c.advance(0.15)                             # 0.2 s since the last target
        arm.poll()
        assert arm.watchdog_trips == 0
        c.advance(0.011)
        arm.poll()
        assert arm.watchdog_trips == 1
        held = arm.get_observation().q
        c.advance(1.0)
        np.testing.assert_allclose(arm.get_observation().q, held, atol=2e-3)   # it stays
        cmd = step(arm, c, held + 0.01)                 # fresh targets resume from where it is
        assert cmd.refused is None and np.max(np.abs(cmd.sent - held)) <= 0.05


def test_stale_observation_is_refused_and_arm_holds():
    c = FakeClock()
    with arm_on(c, stale_after=0.1) as arm:
        q = arm.get_observation().q
        c.advance(0.2)
        cmd = arm.send_action(q + 0.03)
        assert cmd.refused == "stale_observation"
        np.testing.assert_array_equal(cmd.sent, q)


def test_emergency_stop_latches_until_reset():
    c = FakeClock()
    with arm_on(c) as arm:
        q = arm.get_observation().q
        step(arm, c, q + 0.04)
        arm.estop.trip("test")
        with pytest.raises(EmergencyStopError, match="test"):
            arm.send_action(q)
        with pytest.raises(EmergencyStopError):
            arm.get_observation()
        arm.reset_estop()
        assert step(arm, c, q).refused is None


def test_teach_mode_refuses_targets_and_lets_the_arm_be_moved():
    c = FakeClock()
    with arm_on(c) as arm:
        q0 = arm.get_observation().q
        arm.teach(True)
        with pytest.raises(ArmStateError, match="teach"):
            arm.send_action(q0)
        c.advance(0.5)
        drift = np.max(np.abs(arm.get_observation().q - q0))
        assert drift < 0.05                          # gravity compensated: it does not fall
        import pybullet as p
        b = arm.backend
        p.resetJointState(b.robot.body, b.robot.joints[0], float(q0[0]) + 0.3, physicsClientId=b._bullet.client)
        c.advance(0.2)
        assert arm.get_observation().q[0] == pytest.approx(q0[0] + 0.3, abs=0.05)   # a hand moved it; it stays
        arm.teach(False)
        assert step(arm, c, arm.get_observation().q).refused is None


def test_home_goes_through_the_filter_at_the_speed_scale():
    c = FakeClock()
    with arm_on(c, speed_scale=0.5) as arm:
        q = arm.get_observation().q
        for _ in range(10):
            step(arm, c, q + 0.3)
        away = np.max(np.abs(arm.get_observation().q - arm.home_pose))
        assert away > 0.2
        t0 = c.now()
        o = arm.home(timeout_s=20)
        np.testing.assert_allclose(o.q, arm.home_pose, atol=0.01)
        # no faster than v_max * scale (one first step of max_delta * scale allowed)
        assert c.now() - t0 >= (away - 0.01 - 0.05 * 0.5) / (1.0 * 0.5)


def test_calibration_offsets_and_limits_apply(tmp_path):
    c = FakeClock()
    with arm_on(c) as arm:
        caps = arm.capabilities
    lim = caps.limits.copy()
    lim[0] = [-0.5, 0.5]
    cal = ArmCalibration(id="sim-1", robot="iiwa", joint_names=caps.joint_names, joint_offsets=np.r_[0.1, np.zeros(6)],
                         limits=lim, max_velocity=caps.max_velocity, home=np.r_[0.1, 0.4, 0, -1.4, 0, 1.3, 0])
    arm = make_arm("pybullet", safety=SafetyConfig(), calibration=cal, clock=c)
    with arm:
        assert arm.get_observation().q[0] == pytest.approx(0.1, abs=1e-6)      # raw 0 + offset
        assert arm.capabilities.limits[0].tolist() == [-0.5, 0.5]
        for _ in range(40):
            step(arm, c, np.r_[3.0, arm.get_observation().q[1:]])
        assert arm.get_observation().q[0] == pytest.approx(0.45, abs=5e-3)   # 0.5 - margin
    wrong = ArmCalibration(**{**cal.__dict__, "robot": "panda"})
    with pytest.raises(InputError, match="robot"):
        make_arm("pybullet", calibration=wrong, clock=c).connect()


def test_workspace_box_with_the_arms_forward_kinematics():
    c = FakeClock()
    with arm_on(c) as probe:
        ee0 = probe.get_observation().ee_pos
    lo, hi = tuple(ee0 - [0.3, 0.3, 0.3]), tuple(ee0 + [0.3, 0.3, 0.02])
    with arm_on(c, workspace_lo=lo, workspace_hi=hi) as arm:
        q = arm.get_observation().q
        up = q.copy()
        up[1] -= 0.5; up[3] += 0.5                 # raise the arm: leaves the box through the top
        kinds = set()
        for _ in range(30):
            kinds |= {cl.kind for cl in step(arm, c, up).clamps}
        assert "workspace" in kinds
        assert arm.get_observation().ee_pos[2] <= hi[2] + 0.01


def test_runner_reaches_goal_with_simple_planner_and_records(tmp_path):
    from robot_irl.library import Library
    c = FakeClock()

    def plan(q, goal, horizon):             # a proportional planner: straight to the goal in joint space
        return np.tile(np.clip(goal - q, -0.04, 0.04), (horizon, 1))

    with arm_on(c) as arm:
        goal = arm.get_observation().q + np.array([0.5, -0.3, 0.4, 0.3, 0.0, -0.2, 0.6])
        for base in ("target", "measured"):
            arm.home()
            rec = run_mpc(arm, plan, goal, horizon=5, rate_hz=10, max_steps=80, base=base,
                          done=lambda o: np.max(np.abs(o.q - goal)) < 0.01)
            assert rec.reached and 10 < len(rec) < 80
        a = rec.arrays()
        assert np.max(np.abs(np.diff(a["sent"], axis=0))) <= 0.05 + 1e-9
        with pytest.raises(InputError, match="planner returned"):
            run_mpc(arm, lambda q, g, h: np.zeros((h, 3)), goal, max_steps=2)
    ep = save_run_episode(Library.open(tmp_path / "lib", create=True), rec, robot="iiwa", task="reach",
                          arm_name="pybullet")
    back = ep.arrays("state")
    np.testing.assert_allclose(back["target_sent"], a["sent"])
    np.testing.assert_allclose(back["target_requested"], a["requested"])
    assert ep.source == "arm" and ep.success is True
