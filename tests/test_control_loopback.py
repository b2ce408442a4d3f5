"""The PyBullet arm served by an arm server process over ZeroMQ on 127.0.0.1, with faults injected:
server killed mid-motion, server frozen (SIGSTOP), client gone quiet, latency and jitter.
Real time: every bound is generous, every process is reaped."""
from __future__ import annotations

import time

import numpy as np
import pytest

from robot_irl.control import (ArmDisconnectedError, ArmTimeoutError, Rate, SafetyConfig, make_arm)
from robot_irl.control.faultlink import FaultLink
from robot_irl.control.loopback import LoopbackConfig
from robot_irl.control.server import ArmServerProcess, ServerConfig

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def server():
    with ArmServerProcess(ServerConfig(robot="iiwa", hold_after=0.2)) as s:
        yield s
    assert not s.alive() if s.proc else True


def client(endpoint, timeout_s=0.5, watchdog_thread=None, **safety):
    return make_arm("loopback", LoopbackConfig(endpoint=endpoint, timeout_s=timeout_s),
                    safety=SafetyConfig(**safety), watchdog_thread=watchdog_thread)


def drive(arm, goal, seconds, hz=20.0):
    """Stream targets toward ``goal`` (through the filter) for ``seconds``; returns the commands."""
    rate = Rate(hz, arm.clock)
    cmds = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        arm.get_observation()
        cmds.append(arm.send_action(goal))
        rate.wait()
    return cmds


def test_private_server_connect_read_move():
    with make_arm("loopback") as arm:
        proc = arm.backend._server
        assert proc.alive()
        o = arm.get_observation()
        assert time.monotonic() - o.t < 0.2
        goal = o.q + np.r_[0.15, np.zeros(6)]
        drive(arm, goal, 1.0)
        np.testing.assert_allclose(arm.get_observation().q, goal, atol=0.01)
    assert not proc.alive()


def test_server_killed_mid_motion_raises_disconnected(server):
    with client(server.endpoint) as arm:
        q = arm.get_observation().q
        drive(arm, q + 0.3, 0.3)
        server.kill()
        t0 = time.monotonic()
        with pytest.raises(ArmDisconnectedError):
            while time.monotonic() - t0 < 5:
                arm.get_observation()
                arm.send_action(q + 0.3)
                time.sleep(0.01)
        assert time.monotonic() - t0 < 1.0


def test_server_frozen_raises_timeout_then_holds_when_it_wakes(server):
    with client(server.endpoint, timeout_s=0.3) as arm:
        q = arm.get_observation().q
        drive(arm, q + 0.5, 0.3)
        server.freeze()
        t0 = time.monotonic()
        try:
            with pytest.raises(ArmTimeoutError):
                while time.monotonic() - t0 < 5:
                    arm.get_observation()
                    arm.send_action(q + 0.5)
                    time.sleep(0.01)
            assert time.monotonic() - t0 < 0.3 + 0.5
        finally:
            server.resume()
        time.sleep(0.3)
        assert arm.backend.status()["held"]
        a = arm.get_observation().q
        time.sleep(0.3)
        np.testing.assert_allclose(arm.get_observation().q, a, atol=2e-3)     # held, not still moving


def test_server_holds_when_client_goes_quiet(server):
    with client(server.endpoint, watchdog_thread=False) as arm:   # only the server's watchdog acts
        q = arm.get_observation().q
        t_last = drive(arm, q + 0.6, 0.3)[-1].t
        while not arm.backend.status()["held"]:
            assert time.monotonic() - t_last < 1.0
            time.sleep(0.02)
        assert time.monotonic() - t_last >= 0.2 - 0.01
        assert arm.backend.status()["holds"] == 1
        a = arm.get_observation().q
        time.sleep(0.3)
        b = arm.get_observation().q
        np.testing.assert_allclose(b, a, atol=2e-3)
        assert np.max(np.abs(b - q)) < 0.55                    # stopped short of the goal


def test_client_watchdog_trips_on_the_real_link(server):
    """It trips within a bound once the stream stops, and only after T without a fresh target: on a
    loaded machine a target may be refused (stale observation), which does not feed the watchdog."""
    with client(server.endpoint, watchdog_timeout=0.2) as arm:
        q = arm.get_observation().q
        fed = [c.t for c in drive(arm, q + 0.4, 0.2) if c.refused is None]
        while arm.watchdog_trips == 0:
            assert time.monotonic() - fed[-1] < 0.2 + 0.3          # generous bound on a shared machine
            time.sleep(0.005)
        assert np.diff(fed + [time.monotonic()]).max() >= 0.2 - 0.01


@pytest.mark.parametrize("latency,jitter", [(0.01, 0.005), (0.08, 0.04), (0.15, 0.03)])
def test_latency_below_T_still_reaches_goal_without_jumps(server, latency, jitter):
    with FaultLink(server.endpoint, latency_s=latency, jitter_s=jitter) as link:
        with client(link.endpoint, timeout_s=1.0, stale_after=0.2, watchdog_timeout=0.2) as arm:
            q = arm.get_observation().q
            goal = q + np.r_[0.25, -0.15, 0.0, 0.2, 0.0, 0.0, 0.0]
            cmds = drive(arm, goal, 2.5)
            sent = np.array([c.sent for c in cmds])
            assert np.max(np.abs(np.diff(sent, axis=0))) <= 0.05 + 1e-9
            assert sum(c.refused is not None for c in cmds) <= 2
            time.sleep(latency + jitter + 0.3)
            np.testing.assert_allclose(arm.get_observation().q, goal, atol=0.01)


def test_latency_above_T_holds_then_resumes_when_fresh(server):
    with FaultLink(server.endpoint, latency_s=0.0) as link:
        with client(link.endpoint, timeout_s=1.0, stale_after=0.2, watchdog_timeout=0.2) as arm:
            q = arm.get_observation().q
            goal = q + np.r_[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
            drive(arm, goal, 0.3)
            link.set(latency_s=0.35)
            cmds = drive(arm, goal, 1.2)
            late = cmds[len(cmds) // 2:]
            assert all(c.refused == "stale_observation" for c in late)
            held = arm.get_observation().q
            time.sleep(0.5)
            assert np.max(np.abs(arm.get_observation().q - held)) < 0.01          # it holds
            assert abs(held[0] - goal[0]) > 0.05
            link.set(latency_s=0.0)
            time.sleep(0.5)
            cmds = drive(arm, goal, 2.0)
            assert cmds[-1].refused is None
            sent = np.array([c.sent for c in cmds])
            assert np.max(np.abs(np.diff(sent, axis=0))) <= 0.05 + 1e-9
            time.sleep(0.3)
            assert arm.get_observation().q[0] == pytest.approx(goal[0], abs=0.01)


def test_no_step_above_the_cap_across_a_hold_and_a_watchdog_trip(server):
    """Every target the arm is told is within the cap of the one before it, counting what a hold or
    the watchdog holds at: after a hold the next target is capped from the held one. A hold itself
    holds where the arm is measured, so the step *into* a hold is not a motion and is not capped.
    Every command and hold is logged in order (a watchdog trip under load can come mid-stream)."""
    with client(server.endpoint, watchdog_timeout=0.2, watchdog_thread=True) as arm:
        told = []                                                   # (kind, target) in the order sent
        backend_hold, backend_command = arm.backend.hold, arm.backend.command
        arm.backend.hold = lambda: told.append(("hold", backend_hold())) or told[-1][1]
        arm.backend.command = lambda q: told.append(("cmd", np.array(q))) or backend_command(q)
        q = arm.get_observation().q
        goal = q + np.r_[0.8, -0.4, 0.0, 0.3, 0.0, 0.0, 0.0]
        drive(arm, goal, 0.4)
        arm.hold()
        drive(arm, goal, 0.4)
        trips = arm.watchdog_trips
        t0 = time.monotonic()
        while arm.watchdog_trips == trips and time.monotonic() - t0 < 2.0:   # go quiet: the watchdog holds
            time.sleep(0.01)
        assert arm.watchdog_trips > trips
        drive(arm, goal, 0.4)
        kinds = [k for k, _ in told]
        assert kinds.count("hold") >= 2 and kinds[-1] == "cmd"
        steps = [np.abs(q - prev).max() for (_, prev), (kind, q) in zip(told, told[1:]) if kind == "cmd"]
        assert max(steps) <= SafetyConfig().max_delta + 1e-9, np.round(steps, 4).tolist()
