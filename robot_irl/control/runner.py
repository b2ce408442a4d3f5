"""Receding-horizon runner: plan, apply the first step, re-plan, at a fixed rate, on any Arm.

Each tick reads the arm, asks ``plan(q, goal, horizon)`` for joint deltas ``[H, n]``, turns the
first delta into an absolute target and sends it through the arm's safety filter. The delta is
added to the measured ``q`` by default (``base="measured"``): on an arm whose tracking lags (a
Franka under franky's dynamics limits), adding it to the last target sent, as the sim envs do
(``base="target"``), integrates the lag and makes a state-feedback planner oscillate. The record keeps what
was requested and what was sent at every step, so a run can be compared with the demos."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robot_irl.control.arm import Arm
from robot_irl.control.clock import Rate
from robot_irl.control.errors import ArmStallError
from robot_irl.control.types import Observation
from robot_irl.errors import InputError

Planner = Callable[[np.ndarray, Any, int], np.ndarray]


@dataclass
class RunRecord:
    """One row per control step, on the arm's clock."""

    t: list[float] = field(default_factory=list)
    q: list[np.ndarray] = field(default_factory=list)
    dq: list[np.ndarray] = field(default_factory=list)
    ee_pos: list[np.ndarray] = field(default_factory=list)
    delta: list[np.ndarray] = field(default_factory=list)
    requested: list[np.ndarray] = field(default_factory=list)
    sent: list[np.ndarray] = field(default_factory=list)
    clamps: list[tuple[str, ...]] = field(default_factory=list)
    refused: list[str | None] = field(default_factory=list)
    plan_s: list[float] = field(default_factory=list)
    late_s: list[float] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)     # camera frames, one per tick when a camera is set
    frame_t: list[float] = field(default_factory=list)
    reached: bool = False
    stopped: str | None = None      # why the run ended early (e.g. a stall), else None

    def __len__(self) -> int:
        return len(self.t)

    def arrays(self) -> dict[str, np.ndarray]:
        n = len(self.q[0]) if self.q else 0
        stack = lambda xs, width: np.asarray(xs, float).reshape(len(xs), width)
        return {"t": np.asarray(self.t), "q": stack(self.q, n), "dq": stack(self.dq, n),
                "ee_pos": stack(self.ee_pos, 3), "delta": stack(self.delta, n),
                "requested": stack(self.requested, n), "sent": stack(self.sent, n),
                "clamped": np.array([bool(c) for c in self.clamps]),
                "refused": np.array([r is not None for r in self.refused]),
                "plan_s": np.asarray(self.plan_s), "late_s": np.asarray(self.late_s)}

    def summary(self) -> dict[str, float]:
        a = self.arrays()
        return {"steps": len(self), "reached": float(self.reached), "stopped": self.stopped,
                "clamped_steps": int(a["clamped"].sum()), "refused_steps": int(a["refused"].sum()),
                "max_sent_step_rad": float(np.max(np.abs(np.diff(a["sent"], axis=0)))) if len(self) > 1 else 0.0,
                "plan_ms_p50": float(np.median(a["plan_s"]) * 1e3) if len(self) else 0.0,
                "late_ms_p99": float(np.percentile(a["late_s"], 99) * 1e3) if len(self) else 0.0}


def run_mpc(arm: Arm, plan: Planner, goal: Any, *, horizon: int = 10, rate_hz: float = 10.0, max_steps: int = 200,
            done: Callable[[Observation], bool] | None = None, base: str = "measured",
            camera: Callable[[], np.ndarray] | None = None) -> RunRecord:
    """Drive a connected ``arm`` toward ``goal`` until ``done(obs)`` or ``max_steps`` ticks.
    ``camera()``, if given, grabs one frame per tick right after the target is sent (stamped on
    the arm clock), so the video runs at the control rate. A stall (the arm does not follow; it
    is already holding) ends the run cleanly with ``rec.stopped`` saying why; the rows so far are kept."""
    if horizon < 1 or max_steps < 1 or rate_hz <= 0:
        raise InputError(f"horizon={horizon}, max_steps={max_steps}, rate_hz={rate_hz}", field="runner",
                         expected="horizon >= 1, max_steps >= 1, rate_hz > 0")
    if base not in ("measured", "target"):
        raise InputError(f"base={base!r}", field="base", expected="'measured' or 'target'")
    n = arm.capabilities.n_dof
    rec = RunRecord()
    target = arm.get_observation().q.copy()
    rate = Rate(rate_hz, arm.clock)
    late = 0.0
    for _ in range(max_steps):
        obs = arm.get_observation()
        if done is not None and done(obs):
            rec.reached = True
            break
        t0 = time.perf_counter()
        deltas = np.asarray(plan(obs.q.copy(), goal, horizon), dtype=float)
        plan_s = time.perf_counter() - t0
        if deltas.ndim != 2 or deltas.shape[1] != n or deltas.shape[0] < 1:
            raise InputError(f"planner returned shape {deltas.shape}", field="plan",
                             expected=f"joint deltas [H >= 1, {n}]")
        try:
            cmd = arm.send_action((obs.q if base == "measured" else target) + deltas[0])
        except ArmStallError as e:
            rec.stopped = f"stall: {e}"
            return rec
        target = cmd.sent.copy()
        for name, value in (("t", cmd.t), ("q", obs.q), ("dq", obs.dq),
                            ("ee_pos", obs.ee_pos if obs.ee_pos is not None else np.full(3, np.nan)),
                            ("delta", deltas[0]), ("requested", cmd.requested), ("sent", cmd.sent),
                            ("clamps", tuple(c.kind for c in cmd.clamps)), ("refused", cmd.refused),
                            ("plan_s", plan_s), ("late_s", late)):
            getattr(rec, name).append(value)
        if camera is not None:
            rec.frame_t.append(arm.clock.now())
            rec.frames.append(camera())
        late = rate.wait()
    else:
        obs = arm.get_observation()
        rec.reached = done is not None and done(obs)
    return rec


def save_run_episode(library, rec: RunRecord, *, robot: str, task: str, arm_name: str,
                     extra: dict[str, Any] | None = None, columns: dict[str, tuple[Any, np.ndarray]] | None = None,
                     camera: tuple[str, Any] | None = None, keypoint_spec: Any = None):
    """Record a run as a library episode (source ``arm``, kind ``run``: demo queries leave it out
    unless they ask for ``kind:run``; stream ``state`` with the requested and sent targets) so
    ``robot-irl demos show`` replays it next to the demos.

    ``columns``: more per-row columns, name -> (Column, values [T, ...]) (e.g. keypoints);
    ``camera``: (name, CameraModel or None) of ``rec.frames``, written lossless (ffv1)."""
    from robot_irl.library import Column
    a = rec.arrays()
    more = dict(columns or {})
    for name, (_, values) in more.items():
        if len(values) != len(rec):
            raise InputError(f"column {name} has {len(values)} rows", field="columns", expected=f"{len(rec)} rows")
    if camera is not None and not rec.frames:
        raise InputError("a camera was named but the run recorded no frames", field="camera",
                         expected="a run made with run_mpc(camera=...)")
    n = a["q"].shape[1]
    rate = 1.0 / float(np.median(np.diff(a["t"]))) if len(rec) > 1 else 1.0
    cols = {"joint_pos": Column((n,), "float64", "rad"), "joint_vel": Column((n,), "float64", "rad/s"),
            "ee_pos": Column((3,), "float64", "m"), "action_delta": Column((n,), "float64", "rad"),
            "target_requested": Column((n,), "float64", "rad"), "target_sent": Column((n,), "float64", "rad"),
            "clamped": Column((), "bool"), "refused": Column((), "bool"),
            **{name: col for name, (col, _) in more.items()}}
    extra = {**(extra or {}), **({"stopped": rec.stopped} if rec.stopped else {})}
    with library.writer(task=task, source="arm", kind="run", fps=rate, robot=robot, env=arm_name,
                        tags=["run"], extra=extra, keypoint_spec=keypoint_spec) as w:
        t0 = a["t"][0] if len(rec) else 0.0
        if camera is not None:
            name, model = camera
            h, wd = rec.frames[0].shape[:2]
            w.add_camera(name, (wd, h), codec="ffv1", model=model)
            for t, frame in zip(rec.frame_t, rec.frames):
                w.write_frame(name, frame, float(t - t0))
        w.add_stream("state", cols)
        for i in range(len(rec)):
            w.write_row("state", float(a["t"][i] - t0), joint_pos=a["q"][i], joint_vel=a["dq"][i],
                        ee_pos=a["ee_pos"][i], action_delta=a["delta"][i], target_requested=a["requested"][i],
                        target_sent=a["sent"][i], clamped=bool(a["clamped"][i]), refused=bool(a["refused"][i]),
                        **{name: values[i] for name, (_, values) in more.items()})
        return w.commit(success=rec.reached)
