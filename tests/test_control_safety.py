"""SafetyFilter rules, the e-stop latch, calibration files and the backend registry (pure, fast)."""
from __future__ import annotations

import json
import os
import signal
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robot_irl.control import (ArmCalibration, EStop, FakeClock, Rate, SafetyConfig, SafetyFilter, backend_config,
                               make_arm)
from robot_irl.control.types import Observation
from robot_irl.errors import InputError, UnknownNameError

LIMITS = np.array([[-2.0, 2.0]] * 3 + [[-1.0, 0.5]])
N = len(LIMITS)


def make_filter(clock, **kw) -> SafetyFilter:
    f = SafetyFilter(SafetyConfig(**kw), LIMITS, clock)
    f.reset(np.zeros(N))
    return f


def obs(clock, q=None) -> Observation:
    return Observation(t=clock.now(), q=np.zeros(N) if q is None else np.asarray(q, float), dq=np.zeros(N))


def test_passes_a_safe_target_unchanged():
    c = FakeClock()
    d = make_filter(c).filter([0.01, -0.01, 0.0, 0.02], obs(c))
    assert d.refused is None and d.clamps == ()
    np.testing.assert_array_equal(d.sent, [0.01, -0.01, 0.0, 0.02])


@pytest.mark.parametrize("bad", [[np.nan, 0, 0, 0], [0, np.inf, 0, 0], [0, 0, -np.inf, 0]])
def test_refuses_nonfinite_and_holds(bad):
    c = FakeClock()
    f = make_filter(c)
    d = f.filter(bad, obs(c))
    assert d.refused == "nonfinite"
    np.testing.assert_array_equal(d.sent, np.zeros(N))
    assert f.counts["nonfinite"] == 1


def test_refuses_wrong_shape_and_bad_observation():
    c = FakeClock()
    f = make_filter(c)
    assert f.filter([0.0, 0.0], obs(c)).refused == "shape"
    assert f.filter([[0.0] * N], obs(c)).refused == "shape"
    assert f.filter([0.0] * N, obs(c, [np.nan, 0, 0, 0])).refused == "bad_observation"


def test_refuses_stale_observation():
    c = FakeClock()
    f = make_filter(c, stale_after=0.1)
    o = obs(c)
    c.advance(0.15)
    assert f.filter([0.01] * N, o).refused == "stale_observation"


def test_joint_limit_margin_then_delta_cap():
    c = FakeClock()
    f = make_filter(c, limit_margin=0.1, max_delta=0.05, max_velocity=10.0)
    f.reset(np.array([0.0, 0.0, 0.0, 0.3]))
    d = f.filter([0.0, 0.0, 0.0, 3.0], obs(c))
    kinds = [cl.kind for cl in d.clamps]
    assert kinds == ["joint_limit", "delta"]
    assert d.sent[3] == pytest.approx(0.35)          # toward 0.5 - margin 0.1, one 0.05 step at a time
    c.advance(0.1)
    d = f.filter([0.0, 0.0, 0.0, 3.0], obs(c))
    assert d.sent[3] == pytest.approx(0.4)
    assert d.clamps[0].joints == (3,)


def test_velocity_cap_uses_elapsed_time_and_speed_scale():
    c = FakeClock()
    f = make_filter(c, max_delta=0.5, max_velocity=1.0, speed_scale=0.1)
    f.filter([0.0] * N, obs(c))
    c.advance(0.01)
    d = f.filter([0.3] * N, obs(c))
    assert d.clamps[0].kind == "velocity"
    np.testing.assert_allclose(d.sent, 1.0 * 0.1 * 0.01)      # v * scale * dt


def test_workspace_box_shortens_the_step_along_the_line():
    c = FakeClock()
    fk = lambda q: np.array([q[0], q[1], 0.5])                   # toy FK: first joints are x, y
    f = SafetyFilter(SafetyConfig(max_delta=1.0, max_velocity=100.0, workspace_lo=(-0.3, -1, 0),
                                  workspace_hi=(0.3, 1, 1)), LIMITS, c, fk=fk)
    f.reset(np.zeros(N))
    d = f.filter([0.8, 0.4, 0, 0], obs(c))
    assert "workspace" in [cl.kind for cl in d.clamps]
    assert d.sent[0] == pytest.approx(0.3, abs=1e-3)
    assert d.sent[1] == pytest.approx(0.15, abs=1e-3)            # same line as requested


def test_watchdog_expires_after_T_on_fake_clock():
    c = FakeClock()
    f = make_filter(c, watchdog_timeout=0.2)
    assert not f.watchdog_expired()                               # no stream yet: nothing to guard
    f.filter([0.01] * N, obs(c))
    c.advance(0.199)
    assert not f.watchdog_expired()
    c.advance(0.002)
    assert f.watchdog_expired()


@pytest.mark.parametrize("kw", [dict(speed_scale=0), dict(speed_scale=1.5), dict(watchdog_action="explode"),
                                dict(workspace_lo=(0, 0, 0)), dict(workspace_lo=(0, 0, 0), workspace_hi=(1, -1, 1))])
def test_bad_safety_config_names_the_field(kw):
    with pytest.raises(InputError) as e:
        SafetyConfig(**kw)
    assert e.value.field


finite = st.floats(-10, 10, allow_nan=False)
target_st = st.one_of(
    st.lists(finite, min_size=N, max_size=N),                                   # anything, mostly out of limits
    st.lists(st.floats(-0.05, 0.05), min_size=N, max_size=N),                  # small, mostly valid
    st.lists(st.one_of(finite, st.just(np.nan), st.just(np.inf), st.just(-np.inf)), min_size=N, max_size=N),
)


@settings(max_examples=300, deadline=None)
@given(stream=st.lists(st.tuples(target_st, st.floats(0.0, 0.3)), min_size=1, max_size=40),
       scale=st.floats(0.05, 1.0))
def test_property_every_bad_target_is_refused_or_clamped(stream, scale):
    c = FakeClock()
    f = make_filter(c, speed_scale=scale, limit_margin=0.05, max_delta=0.05, max_velocity=1.0)
    for target, dt in stream:
        c.advance(dt)
        ref = f.reference.copy()
        t = np.asarray(target, float)
        d = f.filter(t, obs(c, ref))
        inner = LIMITS + [0.05, -0.05]
        if not np.all(np.isfinite(t)):
            assert d.refused == "nonfinite"
        assert np.all(np.isfinite(d.sent))
        assert np.all(d.sent >= inner[:, 0] - 1e-12) and np.all(d.sent <= inner[:, 1] + 1e-12)
        assert np.max(np.abs(d.sent - ref)) <= 0.05 * scale + 1e-12
        if d.refused is None and not d.clamps:
            np.testing.assert_array_equal(d.sent, t)
        if d.refused is None and (np.any(t < inner[:, 0]) or np.any(t > inner[:, 1])):
            assert "joint_limit" in [cl.kind for cl in d.clamps]


# --- e-stop ---
def test_estop_from_signal():
    e = EStop()
    e.install_signal(signal.SIGUSR1)
    try:
        os.kill(os.getpid(), signal.SIGUSR1)
        deadline = time.monotonic() + 2
        while not e.tripped and time.monotonic() < deadline:
            time.sleep(0.001)
        assert e.tripped and "SIGUSR1" in e.reason
    finally:
        e.close()
    assert signal.getsignal(signal.SIGUSR1) is not None


def test_estop_from_keyboard_line():
    r, w = os.pipe()
    with os.fdopen(r) as rf, os.fdopen(w, "w") as wf:
        e = EStop()
        e.watch_keyboard(rf)
        try:
            wf.write("\n")
            wf.flush()
            deadline = time.monotonic() + 2
            while not e.tripped and time.monotonic() < deadline:
                time.sleep(0.005)
            assert e.tripped and e.reason == "keyboard"
            e.reset()
            assert not e.tripped
        finally:
            e.close()


# --- calibration ---
def _cal_dict(**over):
    d = {"id": "lab-1", "robot": "iiwa", "joint_names": ["a", "b"], "joint_offsets": [0.0, 0.01],
         "limits": [[-1, 1], [-2, 2]], "max_velocity": [1, 1], "home": [0, 0.5]}
    d.update(over)
    return d


def test_calibration_round_trip(tmp_path):
    cal = ArmCalibration.from_dict(_cal_dict())
    cal.save(tmp_path / "arm.json")
    back = ArmCalibration.load(tmp_path / "arm.json")
    assert back.id == "lab-1" and back.home.tolist() == [0, 0.5]


@pytest.mark.parametrize("over,field", [({"limits": [[1, -1], [-2, 2]]}, "limits"), ({"home": [5, 0]}, "home"),
                                        ({"max_velocity": [1]}, "max_velocity"), ({"id": ""}, "id"),
                                        ({"joint_offsets": ["x", 0]}, "joint_offsets")])
def test_calibration_errors_name_file_and_field(tmp_path, over, field):
    p = tmp_path / "arm.json"
    p.write_text(json.dumps(_cal_dict(**over)))
    with pytest.raises(InputError) as e:
        ArmCalibration.load(p)
    assert e.value.field == field and str(p) in str(e.value) and e.value.expected


def test_calibration_missing_file_and_bad_json(tmp_path):
    with pytest.raises(InputError, match="not found"):
        ArmCalibration.load(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(InputError, match="invalid JSON"):
        ArmCalibration.load(tmp_path / "bad.json")


# --- registry and rate ---
def test_registry_unknown_backend_and_option():
    with pytest.raises(UnknownNameError, match="loopback"):
        make_arm("kuka-over-serial")
    with pytest.raises(InputError, match="robot"):
        backend_config("pybullet", {"colour": "red"})
    assert backend_config("pybullet", {"robot": "panda"}).robot == "panda"


def test_rate_on_fake_clock_keeps_schedule_and_reanchors():
    c = FakeClock(0.0)
    r = Rate(100, c)
    for _ in range(10):
        assert r.wait() == pytest.approx(0.0)
    assert c.now() == pytest.approx(0.1)
    c.advance(0.5)                         # a long stall: no burst afterwards
    r.wait()
    assert r.missed == 1
    t = c.now()
    r.wait()
    assert c.now() - t == pytest.approx(0.01)


def test_cli_arm_check_writes_calibration(tmp_path, capsys):
    import argparse

    from robot_irl.control.cli import register
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    out = tmp_path / "iiwa.json"
    args = parser.parse_args(["arm", "check", "--arm", "pybullet", "--arm-opt", "robot=iiwa", "--home",
                              "--write-calibration", str(out), "--arm-id", "sim-iiwa"])
    assert args.func(args) == 0
    assert ArmCalibration.load(out).id == "sim-iiwa"
    assert "home reached" in capsys.readouterr().out
    with pytest.raises(InputError, match="KEY=VALUE"):
        args = parser.parse_args(["arm", "check", "--arm-opt", "robot"])
        args.func(args)
