"""Re-execute an episode's recorded actions in simulation and measure how far its keypoints land
from the recorded ones: a check that the actions really reproduce the demonstration (a learner
that trains on the actions needs that) and that the sim and the recorder agree.

* Sim episodes (``env`` and ``seed`` in meta): the same env, seed and variant are reset and the
  recorded actions stepped, from ``target_requested`` (absolute targets, turned into the env's
  bounded deltas) or ``action_delta``; the gripper column is replayed as it was.
* Arm episodes (``source`` arm, a robot robot-irl models): the ``pybullet`` arm starts at the first
  recorded joints and gets each row's target at the row's timestamp on a fake clock, through the
  arm's safety filter; keypoints follow from its measured joints by forward kinematics.

Rows are compared by index of the control step (the state after the same number of actions).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robot_irl.errors import InputError
from robot_irl.library import Episode

ACTIONS = ("target", "delta")


@dataclass
class ResimReport:
    episode: str
    where: str                       # what executed the actions
    actions: str                     # "target" or "delta"
    steps: int                       # actions executed
    keypoints: list[str]
    kp_err: np.ndarray               # [T, K] metres, re-executed vs recorded (NaN where not recorded)
    joint_err: np.ndarray            # [T] max over joints, rad
    clamped: int = 0                 # actions the env bounds or the safety filter changed
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Per keypoint: mean, max and final distance (mm); joints: max error (rad)."""
        per = {}
        for k, name in enumerate(self.keypoints):
            e = self.kp_err[:, k]
            f = e[np.isfinite(e)]
            per[name] = None if f.size == 0 else {"mean_mm": round(float(f.mean()) * 1e3, 2),
                                                  "max_mm": round(float(f.max()) * 1e3, 2),
                                                  "final_mm": round(float(f[-1]) * 1e3, 2)}
        return {"episode": self.episode, "where": self.where, "actions": self.actions, "steps": self.steps,
                "clamped": self.clamped, "keypoints": per,
                "joint_err_max_rad": round(float(np.nanmax(self.joint_err)), 5) if self.joint_err.size else None,
                "notes": self.notes}


def _need(a: dict[str, np.ndarray], ep: Episode, cols: tuple[str, ...]) -> None:
    missing = [c for c in cols if c not in a]
    if missing:
        raise InputError(f"stream 'state' has no {missing}", file=ep.path / "meta.json", field="streams.state.columns",
                         expected=f"{list(cols)} (recorded by `record --source sim|arm`)")


def _action_column(a: dict[str, np.ndarray], ep: Episode, actions: str) -> np.ndarray:
    if actions not in ACTIONS:
        raise InputError(f"actions {actions!r}", field="--actions", expected=" or ".join(ACTIONS))
    col = "target_requested" if actions == "target" else "action_delta"
    _need(a, ep, (col, "joint_pos"))
    return a[col]


def resim(ep: Episode, *, actions: str = "target") -> ResimReport:
    """Re-execute ``ep``'s actions in the sim; see the module docstring."""
    if "state" not in ep.streams:
        raise InputError("episode has no 'state' stream", file=ep.path / "meta.json", field="streams",
                         expected="a recorded state stream with actions")
    a = ep.arrays("state")
    if ep.meta.get("env") and ep.meta.get("seed") is not None and ep.source == "sim":
        return _resim_env(ep, a, actions)
    from robot_irl.record.kinematics import RobotKinematics
    if RobotKinematics.available(ep.robot):
        return _resim_arm(ep, a, actions)
    raise InputError(f"source {ep.source!r}, env {ep.meta.get('env')!r}, robot {ep.robot!r}", file=ep.path / "meta.json",
                     field="env", expected="a sim episode (env + seed) or an arm episode of a simulated robot (iiwa, panda)")


def _errors(re_kp: np.ndarray, rec_kp: np.ndarray | None, re_q: np.ndarray, rec_q: np.ndarray) -> tuple:
    kp = np.full(re_kp.shape[:2], np.nan) if rec_kp is None else np.linalg.norm(re_kp - rec_kp, axis=-1)
    return kp, np.max(np.abs(re_q - rec_q), axis=-1)


def _resim_env(ep: Episode, a: dict[str, np.ndarray], actions: str) -> ResimReport:
    import sim
    act = _action_column(a, ep, actions)
    _need(a, ep, ("keypoints_3d",))
    env = sim.make(ep.meta["env"], robot=ep.robot, variant=ep.variant, render_size=(32, 24))
    try:
        obs, info = env.reset(seed=int(ep.meta["seed"]))
        lo, hi = env.action_space.low[:-1], env.action_space.high[:-1]
        grip = a["gripper"] if "gripper" in a else np.zeros(len(act))
        T = len(a["timestamp"])
        kps, qs, clamped, steps = [obs["keypoints"]], [obs["joint_pos"]], 0, 0
        for i in range(T - 1):
            if not np.isfinite(act[i]).all():
                break
            delta = act[i] - info["joint_target"] if actions == "target" else act[i]
            clamped += int(np.any((delta < lo - 1e-9) | (delta > hi + 1e-9)))
            obs, _, _, _, info = env.step(np.append(delta, grip[i] if np.isfinite(grip[i]) else 0.0))
            kps.append(obs["keypoints"])
            qs.append(obs["joint_pos"])
            steps += 1
    finally:
        env.close()
    n = len(kps)
    kp, jq = _errors(np.array(kps), a["keypoints_3d"][:n], np.array(qs), a["joint_pos"][:n])
    return ResimReport(ep.id, f"{ep.meta['env']} seed {ep.meta['seed']}", actions, steps,
                       ep.keypoint_spec.names if ep.keypoint_spec else [str(k) for k in range(kp.shape[1])],
                       kp, jq, clamped)


def _resim_arm(ep: Episode, a: dict[str, np.ndarray], actions: str) -> ResimReport:
    from robot_irl.control import FakeClock, backend_config, make_arm
    from robot_irl.record.kinematics import RobotKinematics
    act = _action_column(a, ep, actions)
    ts, q_rec = a["timestamp"], a["joint_pos"]
    spec = ep.keypoint_spec
    kin = RobotKinematics(ep.robot)
    clock = FakeClock()
    arm = make_arm("pybullet", backend_config("pybullet", {"robot": ep.robot, "start": tuple(map(float, q_rec[0]))}),
                   clock=clock, watchdog_thread=False)
    qs, kps, clamped, steps = [], [], 0, 0
    try:
        with arm:
            t_start = clock.now()
            obs = arm.get_observation()
            for i in range(len(ts)):
                qs.append(obs.q)
                if spec is not None:
                    kps.append(kin.keypoints(obs.q, spec))
                if i == len(ts) - 1 or not np.isfinite(act[i]).all():
                    break
                target = act[i] if actions == "target" else obs.q + act[i]
                cmd = arm.send_action(target)
                clamped += int(bool(cmd.clamps) or cmd.refused is not None)
                clock.advance(max(t_start + ts[i + 1] - clock.now(), 0.0))
                obs = arm.get_observation()
                steps += 1
    finally:
        kin.close()
    n = len(qs)
    re_kp = np.array(kps) if kps else np.zeros((n, 0, 3))
    rec_kp = a["keypoints_3d"][:n] if "keypoints_3d" in a else None
    if rec_kp is not None and rec_kp.shape[1] != re_kp.shape[1]:
        rec_kp = None
    kp, jq = _errors(re_kp, rec_kp, np.array(qs), q_rec[:n])
    notes = [] if rec_kp is not None else ["no recorded keypoints_3d to compare; joints only"]
    return ResimReport(ep.id, f"pybullet arm ({ep.robot}), safety filter on", actions, steps,
                       spec.names if spec is not None else [], kp, jq, clamped, notes)
