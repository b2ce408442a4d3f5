"""The franka backend against franky-sim (libfranka's protocol on 127.0.0.1, a simulated FR3),
started and killed by the test itself. franky-sim streams at 1 kHz and does not refuse
out-of-limit targets, so this file holds few tests with generous bounds."""
from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from robot_irl.control import ArmConnectionError, SafetyConfig, make_arm
from robot_irl.control.errors import ArmStallError
from robot_irl.control.franka import FR3_HOME, FR3_LIMITS
from robot_irl.control.mpc import keypoints_at, run_learned
from robot_irl.control.runner import run_mpc
from robot_irl.irl import LearnerConfig, fit_cost
from robot_irl.models import KeypointFrame, KinematicDynamics
from test_irl_helpers import l_demos

pytest.importorskip("franky", reason="franky-control not installed (pip install 'robot-irl[franka]')")
pytest.importorskip("franky_sim", reason="franky-sim not installed (pip install franky-sim)")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

FRANKY_SIM = shutil.which("franky-sim", path=str(Path(sys.executable).parent)) or shutil.which("franky-sim")


def _port_busy(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _serve(cmd: list[str]):
    """Start a franky-sim server process, wait until it listens, yield it, always kill it."""
    if _port_busy(1337):
        pytest.skip("127.0.0.1:1337 is taken (another franky-sim or robot server is running)")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if select.select([proc.stdout], [], [], 0.2)[0]:
                line = proc.stdout.readline()
                if "Connect to the server" in line:
                    break
                if line == "":
                    pytest.fail(f"franky-sim exited with code {proc.wait()}")
        else:
            pytest.fail("franky-sim did not come up within 60 s")
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stdout.close()


@pytest.fixture
def franky_sim():
    if FRANKY_SIM is None:
        pytest.skip("franky-sim executable not found")
    # "-s mujoco": franky-sim 1.0.4's default "auto" tries the optional genesis backend first and dies.
    yield from _serve([FRANKY_SIM, "-s", "mujoco", "--hostname", "127.0.0.1"])


@pytest.fixture
def franky_sim_clamped():
    """franky-sim with joint 1 clamped in the MuJoCo scene (tests/franky_clamped_server.py)."""
    yield from _serve([sys.executable, str(Path(__file__).parent / "franky_clamped_server.py")])


@pytest.fixture
def fr3_run(tmp_path):
    """A tiny timedep cost on the FR3's own kinematics: franky-sim's FR3 URDF (shipped with it,
    no meshes), joints renamed to franka_description's ``fr3_joint1..7`` as the backend names them."""
    import franky_sim
    src = Path(franky_sim.__file__).parent / "assets" / "fr3_clean.urdf"
    if not src.is_file():
        pytest.skip(f"franky-sim ships no FR3 URDF at {src}")
    urdf = tmp_path / "fr3.urdf"
    urdf.write_text(src.read_text().replace('name="joint', 'name="fr3_joint'))
    dyn = KinematicDynamics(urdf, [KeypointFrame("ee", "link8", (0.0, 0.0, 0.1)),
                                   KeypointFrame("side", "link8", (0.0, 0.05, 0.1))])
    demos = l_demos(dyn, FR3_HOME, n=2, dx=-0.06, dz=-0.06, rows=6)
    fit_cost(demos, dyn, "timedep", LearnerConfig(outer_iters=20, checkpoint_every=1000, log_every=1000),
             run_dir=tmp_path / "run")
    from robot_irl.irl import load_run
    return load_run(tmp_path / "run")


BOX = {"workspace_lo": (-1.0, -1.0, -0.2), "workspace_hi": (1.0, 1.0, 1.5)}   # a physical arm needs one


def test_franky_sim_connect_read_move_run_then_kill(fr3_run, franky_sim):
    safety = SafetyConfig(max_velocity=0.5, **BOX)
    with make_arm("franka", safety=safety) as arm:
        caps = arm.capabilities
        assert caps.robot == "fr3" and caps.n_dof == 7
        o = arm.get_observation()
        assert np.all(o.q >= FR3_LIMITS[:, 0]) and np.all(o.q <= FR3_LIMITS[:, 1])

        # A joint move, streamed at 10 Hz through the filter.
        goal = o.q + np.r_[0.2, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        for _ in range(25):
            arm.get_observation()
            arm.send_action(goal)
            time.sleep(0.1)
        assert arm.get_observation().q[0] == pytest.approx(goal[0], abs=0.05)

        # franky-sim would follow this out-of-limit target; the filter must not send it.
        bad = arm.get_observation().q.copy()
        bad[3] = 0.5                                       # FR3 joint 4 upper limit is -0.1518
        cmd = arm.send_action(bad)
        assert cmd.sent[3] <= FR3_LIMITS[3, 1] - safety.limit_margin and "joint_limit" in [c.kind for c in cmd.clamps]
        arm.hold()

        # After a hold mid-motion and after a watchdog trip, no step between consecutive targets the
        # arm is told exceeds the cap: the first target after either is capped from what the arm holds.
        # (The hold itself is the measured position, where the lagging arm already is.)
        held = []
        backend_hold = arm.backend.hold
        arm.backend.hold = lambda: held.append(backend_hold()) or held[-1]
        away = arm.get_observation().q + np.r_[-0.3, 0.0, 0.2, 0.0, 0.0, 0.0, 0.0]

        def stream(n: int) -> list[np.ndarray]:
            out = []
            for _ in range(n):
                arm.get_observation()
                out.append(arm.send_action(away).sent)
                time.sleep(0.1)
            return out
        stream(4)
        arm.hold()
        after_hold = [held[-1]] + stream(4)
        time.sleep(0.5)                               # no target: the watchdog thread holds
        assert len(held) == 2, "the watchdog did not hold"
        after_trip = [held[-1]] + stream(4)
        for told in (after_hold, after_trip):
            steps = np.abs(np.diff(np.array(told), axis=0)).max(1)
            assert steps.max() <= safety.max_delta + 1e-9, steps.round(4).tolist()
        arm.backend.hold = backend_hold

        # A short run of the MPC runner with a simple planner (the FR3's own joints).
        start = arm.get_observation().q
        target = start + np.r_[0.0, 0.0, 0.0, -0.15, 0.0, 0.1, 0.0]
        rec = run_mpc(arm, lambda q, g, h: np.tile(np.clip(g - q, -0.03, 0.03), (h, 1)), target, rate_hz=10,
                      max_steps=40, done=lambda o: np.max(np.abs(o.q - target)) < 0.03)
        assert rec.reached

        # The learned-cost runner (robot-irl run's loop) on the FR3's kinematics, through the filter.
        start = arm.get_observation().q
        goal = keypoints_at(fr3_run, start) + np.array([-0.06, 0.0, -0.06])
        t0 = time.monotonic()
        learned = run_learned(arm, fr3_run, goal, steps=80, rate_hz=10, tolerance_m=0.005)
        print(f"\nlearned run on franky-sim: final keypoint error {learned.final_err_m * 100:.2f} cm "
              f"in {len(learned)} ticks ({time.monotonic() - t0:.1f} s), {learned.summary()}")
        # franky-sim streams at 1 kHz in real time and its arm lags its targets: a generous bound
        # (the goal starts 8.5 cm away), as the issue asks for these tests.
        assert learned.final_err_m < 0.04 and not learned.arrays()["refused"].any()
        o = arm.get_observation()                     # franky's own FK agrees with the model's keypoints
        fk_gap = np.linalg.norm(o.ee_pos - keypoints_at(fr3_run, o.q)[0])
        print(f"franky EE vs model 'ee' keypoint: {fk_gap * 100:.2f} cm")
        assert fk_gap < 0.03

        # Kill franky-sim mid-motion: the next calls raise a typed error.
        arm.send_action(target + np.r_[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.2])
        os.killpg(franky_sim.pid, signal.SIGKILL)
        t0 = time.monotonic()
        # A dead controller stops following: the link error or the stall check, whichever comes first.
        with pytest.raises((ArmConnectionError, ArmStallError)) as err:
            while time.monotonic() - t0 < 15:
                arm.get_observation()
                arm.send_action(target)
                time.sleep(0.05)
        elapsed = time.monotonic() - t0
        print(f"\nfranky-sim killed -> {type(err.value).__name__} after {elapsed:.2f} s: {err.value}")
        assert elapsed < 10


def test_franky_sim_clamped_joint_stalls_within_T_and_the_run_episode_opens(franky_sim_clamped, tmp_path):
    """A joint held by a clamp in the scene: the run holds, the stall error comes within T + 0.2 s
    of the lag passing the threshold, the run ends cleanly and its episode opens with --check."""
    import argparse
    import json

    from robot_irl.control.runner import save_run_episode
    from robot_irl.library import Library
    from robot_irl.library import cli as library_cli

    safety = SafetyConfig(max_velocity=0.5, **BOX)
    with make_arm("franka", safety=safety) as arm:
        start = arm.get_observation().q
        goal = start + np.r_[0.4, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]          # joint 1 is clamped at +-0.03 rad
        threshold = arm.safety_filter.stall_threshold[0]
        # An open-loop plan (each delta added to the last target sent) keeps asking past the clamp.
        rec = run_mpc(arm, lambda q, g, h: np.tile([0.05, 0, 0, 0, 0, 0, 0], (h, 1)), goal, rate_hz=10,
                      max_steps=60, base="target")
        assert rec.stopped is not None and "stall" in rec.stopped and "fr3_joint1" in rec.stopped
        a = rec.arrays()
        q1, gap = a["q"][:, 0], np.abs(a["sent"][:, 0] - a["q"][:, 0])
        # The stall began at the first tick from which joint 1 lagged beyond the threshold and no
        # longer moved (by a quarter of it, the filter's own progress rule) until the end.
        still = [i for i in range(len(q1)) if gap[i] > threshold
                 and np.all(np.abs(q1[i:] - q1[i]) <= 0.25 * threshold)]
        began = still[0]
        stalled_after = rec.t[-1] + 0.1 - rec.t[began]          # raised on the tick after the last row
        print(f"\nclamped joint: stalled from tick {began}, error after {stalled_after:.2f} s")
        tick = float(np.max(np.diff(rec.t)))                     # the slowest tick (late under load)
        assert stalled_after <= safety.stall_after + 0.2 + tick   # T + 0.2 s, at the ticks' resolution
        assert np.max(np.abs(a["q"][:, 0] - start[0])) < 0.05     # the clamp held the joint
        held = arm.get_observation().q
        time.sleep(0.5)
        assert np.max(np.abs(arm.get_observation().q - held)) < 0.01   # it holds
    lib = Library.open(tmp_path / "lib", create=True)
    ep = save_run_episode(lib, rec, robot="fr3", task="clamped", arm_name="franka")
    p = argparse.ArgumentParser()
    library_cli.register(p.add_subparsers(dest="cmd"))
    args = p.parse_args(["demos", "show", ep.id, "--check", "--library", str(tmp_path / "lib")])
    assert args.func(args) == 0
    assert Library.open(tmp_path / "lib").episode(ep.id).meta["extra"]["stopped"].startswith("stall")
