"""`demos replay --sim`: re-executing recorded actions in the sim reproduces the recorded keypoints."""
from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from robot_irl.errors import InputError
from robot_irl.library import Library
from robot_irl.library.cli import register as register_demos
from robot_irl.record.resim import _resim_env, resim
from test_record_arm import recorded  # noqa: F401  (module fixture: one kinesthetic arm episode)
from test_record_sim import sim_lib  # noqa: F401  (module fixture: two Place-v0 expert episodes)


@pytest.mark.parametrize("actions", ["target", "delta"])
def test_sim_episode_reexecutes_exactly(sim_lib: Library, actions: str) -> None:  # noqa: F811
    ep = sim_lib.select("source:sim")[0]
    rep = resim(ep, actions=actions)
    assert rep.steps == len(ep.arrays("state")["timestamp"]) - 1 and rep.clamped == 0
    assert rep.keypoints == ep.keypoint_spec.names
    assert np.nanmax(rep.kp_err) < 1e-6 and rep.joint_err.max() < 1e-6   # PyBullet is deterministic


def test_changed_actions_show_as_keypoint_error(sim_lib: Library) -> None:  # noqa: F811
    """The measure can fail: shifting one joint's targets by 0.05 rad moves the keypoints."""
    ep = sim_lib.select("source:sim")[0]
    a = {k: v.copy() for k, v in ep.arrays("state").items()}
    a["target_requested"][5:, 0] += 0.05
    rep = _resim_env(ep, a, "target")
    s = rep.summary()
    assert s["keypoints"]["ee"]["max_mm"] > 5.0 and np.nanmax(rep.kp_err[:5]) < 1e-6


def test_arm_episode_reexecutes_through_the_safety_filter(recorded) -> None:  # noqa: F811
    _, ep, _ = recorded
    rep = resim(ep, actions="target")
    s = rep.summary()
    assert rep.where.startswith("pybullet arm (iiwa)") and rep.steps == len(ep.arrays("state")["timestamp"]) - 1
    assert set(s["keypoints"]) == {"ee", "ee_blob"}
    # targets 20 ms apart are tracked with some lag; the arm ends where the demonstration ended
    assert s["keypoints"]["ee"]["max_mm"] < 100.0 and s["keypoints"]["ee"]["final_mm"] < 5.0


def test_replay_sim_cli_and_refusals(sim_lib: Library, capsys: pytest.CaptureFixture) -> None:  # noqa: F811
    parser = argparse.ArgumentParser()
    register_demos(parser.add_subparsers(required=True))
    ep = sim_lib.select("source:sim")[0]
    args = parser.parse_args(["demos", "replay", ep.id, "--sim", "--json", "--library", str(sim_lib.path)])
    assert args.func(args) == 0
    rep = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rep["episode"] == ep.id and rep["keypoints"]["obj"]["max_mm"] == 0.0
    args = parser.parse_args(["demos", "replay", ep.id, "--sim", "--library", str(sim_lib.path)])
    assert args.func(args) == 0 and "final mm" in capsys.readouterr().out
    with pytest.raises(InputError) as e:
        resim(ep, actions="torque")
    assert e.value.field == "--actions"
