"""The ur backend. URSim cannot run here, so most tests put FAKES AT THE SDK BOUNDARY (stand-ins
for ur-rtde's RTDEControlInterface / RTDEReceiveInterface, injected through URConfig.sdk); they
check our side of the contract: a 500 Hz servoJ stream, interpolation, the RTDE watchdog, teach
mode and error mapping. ``test_ursim_*`` talks to a real URSim and runs only when URSIM_HOST is set."""
from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from robot_irl.control import ArmConnectionError, ArmStateError, SafetyConfig, make_arm
from robot_irl.control.ur import UR_HOME, URConfig

pytestmark = pytest.mark.timeout(30)


class FakeArmState:
    def __init__(self) -> None:
        self.q = UR_HOME.copy()
        self.connected = True
        self.calls: list[tuple] = []
        self.servo: list[tuple[float, np.ndarray]] = []
        self.kicks = 0
        self.fail_servo = False
        self.lock = threading.Lock()


class FakeControl:
    """Fake of rtde_control.RTDEControlInterface (the calls the backend makes)."""

    def __init__(self, state: FakeArmState, host: str, frequency: float) -> None:
        self.s, self.dt = state, 1.0 / frequency

    def initPeriod(self):
        return time.monotonic()

    def waitPeriod(self, t_start):
        time.sleep(max(0.0, t_start + self.dt - time.monotonic()))

    def servoJ(self, q, velocity, acceleration, dt, lookahead_time, gain):
        if self.s.fail_servo:
            raise RuntimeError("RTDE control script is not running")
        with self.s.lock:
            self.s.q = np.asarray(q, float)
            self.s.servo.append((time.monotonic(), self.s.q.copy()))

    def setWatchdog(self, min_frequency):
        self.s.calls.append(("setWatchdog", min_frequency))

    def kickWatchdog(self):
        self.s.kicks += 1

    def servoStop(self):
        self.s.calls.append(("servoStop",))

    def teachMode(self):
        self.s.calls.append(("teachMode",))

    def endTeachMode(self):
        self.s.calls.append(("endTeachMode",))

    def disconnect(self):
        self.s.calls.append(("disconnect",))


class FakeReceive:
    """Fake of rtde_receive.RTDEReceiveInterface."""

    def __init__(self, state: FakeArmState, host: str, frequency: float) -> None:
        self.s = state

    def isConnected(self):
        return self.s.connected

    def getActualQ(self):
        with self.s.lock:
            return list(self.s.q)

    def getActualQd(self):
        return [0.0] * 6

    def getActualTCPPose(self):
        return [0.4, 0.1, 0.3, 0.0, 0.0, 0.0]

    def disconnect(self):
        pass


BOX = {"workspace_lo": (-1.5, -1.5, -0.5), "workspace_hi": (1.5, 1.5, 1.5)}   # a physical arm needs one


def fake_arm(**safety):
    state = FakeArmState()
    cfg = URConfig(sdk=(lambda h, f: FakeControl(state, h, f), lambda h, f: FakeReceive(state, h, f)))
    return make_arm("ur", cfg, safety=SafetyConfig(**{**BOX, **safety})), state


def test_fake_sdk_servoj_stream_at_native_rate_with_interpolation():
    arm, s = fake_arm()
    with arm:
        assert arm.capabilities.native_rate_hz == 500 and arm.capabilities.n_dof == 6
        q0 = arm.get_observation().q
        goal = q0 + 0.04
        for _ in range(5):
            arm.get_observation()
            arm.send_action(goal)
            time.sleep(0.1)
        t = np.array([x[0] for x in s.servo])
        qs = np.array([x[1] for x in s.servo])
        rate = (len(t) - 1) / (t[-1] - t[0])
        assert rate > 250                          # nominal 500 Hz; generous on a shared machine
        assert np.max(np.abs(np.diff(qs, axis=0))) < 0.04 / 2           # interpolated, never one jump
        np.testing.assert_allclose(qs[-1], goal, atol=1e-9)
        assert ("setWatchdog", 10.0) in s.calls and s.kicks >= len(s.servo) - 1
    assert ("servoStop",) in s.calls and ("disconnect",) in s.calls


def test_fake_sdk_teach_mode():
    arm, s = fake_arm()
    with arm:
        arm.send_action(arm.get_observation().q)
        arm.teach(True)
        assert s.calls[-2:] == [("servoStop",), ("teachMode",)]
        with pytest.raises(ArmStateError, match="teach"):
            arm.send_action(arm.get_observation().q)
        arm.teach(False)
        assert ("endTeachMode",) in s.calls
        assert arm.send_action(arm.get_observation().q).refused is None


def test_fake_sdk_errors_are_typed():
    arm, s = fake_arm()
    with arm:
        q = arm.get_observation().q
        arm.send_action(q)
        s.fail_servo = True
        time.sleep(0.05)
        with pytest.raises(ArmConnectionError, match="servoJ stream failed"):
            arm.send_action(q)
        s.connected = False
        with pytest.raises(ArmConnectionError, match="connection lost"):
            arm.get_observation()


@pytest.mark.ursim
@pytest.mark.skipif(not os.environ.get("URSIM_HOST"), reason="needs a URSim reachable at URSIM_HOST")
def test_ursim_connect_read_and_small_move():
    pytest.importorskip("rtde_control", reason="ur-rtde not installed (pip install 'robot-irl[ur]')")
    with make_arm("ur", URConfig(host=os.environ["URSIM_HOST"]), safety=SafetyConfig(speed_scale=0.2, **BOX)) as arm:
        q0 = arm.get_observation().q
        goal = q0 + np.r_[0.05, 0, 0, 0, 0, 0]
        for _ in range(40):
            arm.get_observation()
            arm.send_action(goal)
            time.sleep(0.05)
        assert arm.get_observation().q[0] == pytest.approx(goal[0], abs=0.01)
