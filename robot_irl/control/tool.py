"""Hold the tool as the demos ended it: extra residuals for the reach that lands a run, from the arm's URDF.

Learned image keypoints pin where the flange is but barely how it is turned or how high it is: at
96 px a turn of the last link or a centimetre of height moves no keypoint by more than a pixel or
two. Runs to target images on Place-v0 (dev seed 0, 20 goals, front + top cameras) ended with the
flange 0.6-2.6 cm from the expert's, yet a third of them turned 20-44 degrees about the vertical (the
object hangs 2.8 cm off the flange's axis: set down 3-7 cm from its goal), and a reach landed on the
keypoints alone aimed the flange 1-1.5 cm low, so the held object met the table early and dragged.

What every demo agrees on at its end, though, the arm's own URDF can say from the demos' recorded
joints: :meth:`ToolHold.from_demos` keeps the tool link's orientation (when the demos end within
``max_turn_rad`` of each other) and its height (within ``max_height_m``) as residuals beside the
keypoints' in :func:`robot_irl.control.mpc.solve_reach`: the link's axes as points ``REACH_M`` along
each, less its origin, and the origin's height. Demos that end the tool in different ways give no
hold; nothing is learned for it and no scene geometry (table, object) enters.

Where the hold cannot be kept — the goal asks a joint past the safety filter's range with the tool held
as the demos held it — :meth:`ToolHold.tilt_to` turns the tool just enough to put the *held point*
(the tool centre point: where the gripper holds an object, from the arm's configuration) where the
reach on the arm's whole range would have put it. Why: on Place-v0 the scripted demos end the iiwa's
elbow at its hard limit on a fifth of the goals; a run, kept 0.05 rad inside, set the object down
1.6-2.5 cm off with the tool vertical, and the learned keypoints (96 px) cannot see the small tilt
that fixes it (notes/keypoints.md, session 11).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.optimize import least_squares

from robot_irl.errors import InputError
from robot_irl.models.frames import KeypointFrame
from robot_irl.models.kinematic import KinematicDynamics

#: length (m) of each axis point: a turn of 0.1 rad moves it 1 cm, on the scale of the keypoints' residuals
REACH_M = 0.1
#: how much more a hold residual counts than one keypoint coordinate (both in metres). Against two
#: dozen learned keypoints a weight of 1 let the reach trade the tool's height for them: the held
#: object met the table centimetres early and dragged (dev seed 0). Chosen on dev seeds 0-1 (Place-v0,
#: front + top learned keypoints, 20 goals each) among 1 / 5 / 15: success 57.5 / 82.5 / 80 %.
WEIGHT = 5.0
#: weights of :meth:`ToolHold.tilt_to`'s residuals (all in metres): the held point first, then the
#: tool's turn from the held orientation (least tilt among the poses that put the point there), then
#: the joints' distance from the start (least motion among those)
TILT_WEIGHTS = (10.0, 0.3, 0.01)


def tool_link(urdf: str | Path, joints: list[str]) -> str:
    """The link the last of ``joints`` moves (the tool flange of a serial arm)."""
    import pytorch_kinematics as pk

    chain = pk.build_chain_from_urdf(Path(urdf).read_bytes())
    for name in chain.get_frame_names(exclude_fixed=False):
        frame = chain.find_frame(name)
        if frame.joint is not None and frame.joint.name == joints[-1]:
            return frame.link.name
    raise InputError(f"no link is moved by joint {joints[-1]!r}", file=urdf, field="joints",
                     expected="the run's joints, as named in the arm's URDF")


class ToolHold:
    """Residuals that keep the tool link as the demos kept it: turned as ``axes [3, 3]`` (rows: the
    link's x, y, z axes in the base frame) and, with ``height``, its origin at that height (m).

    ``urdf``/``joints``: the arm the run's model was fitted on (a learned model stores both).
    ``residual(q)`` gives ``(r [R], J [R, n])``: each axis as a point ``REACH_M`` along it, less the
    link's origin, against its target (9 rows), and the origin's height against ``height`` (1 row),
    all times ``weight``. ``held_point``: the tool centre point in the link's frame (m), where the
    gripper holds an object; None: the tool is never tilted off the hold (:meth:`tilt_to`)."""

    def __init__(self, urdf: str | Path, joints: list[str], axes: np.ndarray | None, height: float | None = None,
                 *, link: str | None = None, weight: float = WEIGHT, held_point: Any = None) -> None:
        if axes is None and height is None:
            raise InputError("a tool hold with neither an orientation nor a height", field="hold_tool",
                             expected="axes [3, 3] and/or a height (m)")
        link = link or tool_link(urdf, list(joints))
        frames = [KeypointFrame("tool", link, (0.0, 0.0, 0.0))] + [
            KeypointFrame(f"tool+{a}", link, tuple(REACH_M * float(i == j) for j in range(3)))
            for i, a in enumerate("xyz")]
        self.link = link
        self.model = KinematicDynamics(urdf, frames, joints=list(joints))
        self.axes = None if axes is None else torch.as_tensor(np.asarray(axes, float) * REACH_M).reshape(9)
        self.height = None if height is None else float(height)
        self.weight = float(weight)
        self.held_point = _point(held_point)

    @classmethod
    def from_demos(cls, urdf: str | Path, joints: list[str], q_ends: Any, *, max_turn_rad: float = 0.1,
                   max_height_m: float = 0.01, weight: float = WEIGHT, link: str | None = None,
                   held_point: Any = None) -> "ToolHold | None":
        """What the demos agree on at their ends (model joints ``q_ends``, one row per demo): the
        tool's orientation when every demo ends within ``max_turn_rad`` of their mean, its height when
        every one ends within ``max_height_m`` of theirs; None when they agree on neither (a task
        whose demos end the tool in different ways has nothing to hold)."""
        q_ends = np.asarray(q_ends, dtype=float)
        if q_ends.ndim != 2 or not len(q_ends) or q_ends.shape[1] != len(joints):
            raise InputError(f"demo end joints of shape {list(q_ends.shape)}", field="demo_end_joints",
                             expected=f"one row of {len(joints)} joints ({', '.join(joints)}) per demo")
        probe = cls(urdf, joints, np.eye(3), link=link, held_point=held_point)
        poses = np.stack([probe._pose(q)[0].numpy() for q in q_ends])   # [N, 4, 3]
        axes = poses[:, 1:] / REACH_M
        u, _, vt = np.linalg.svd(axes.mean(0))           # the rotation nearest the demos' mean
        mean = u @ vt
        turn = [_angle(a, mean) for a in axes]
        z = poses[:, 0, 2]
        if max(turn) > max_turn_rad and float(np.abs(z - z.mean()).max()) > max_height_m:
            return None
        probe.axes = torch.as_tensor(mean * REACH_M).reshape(9) if max(turn) <= max_turn_rad else None
        probe.height = float(z.mean()) if float(np.abs(z - z.mean()).max()) <= max_height_m else None
        probe.weight = float(weight)
        return probe

    def _pose(self, q: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """The link's origin and its axis points less the origin ``[4, 3]`` (row 0: the origin) and
        their Jacobian ``[4, 3, n]``."""
        n = self.model.n_joints
        x, J = self.model.keypoints(torch.as_tensor(q, dtype=self.model.dtype).reshape(1, n), jacobian=True)
        x, J = x[0], J[0].reshape(4, 3, n)
        return torch.cat([x[:1], x[1:] - x[:1]]), torch.cat([J[:1], J[1:] - J[:1]])

    def residual(self, q: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(target - now [R], d now / dq [R, n])`` at model joints ``q [n]``, times ``weight``."""
        x, J = self._pose(np.asarray(q, dtype=float).reshape(-1))
        r, rows = [], []
        if self.axes is not None:
            r.append(self.axes - x[1:].reshape(9))
            rows.append(J[1:].reshape(9, -1))
        if self.height is not None:
            r.append(torch.as_tensor([self.height], dtype=x.dtype) - x[0, 2:3])
            rows.append(J[0, 2:3])
        return self.weight * torch.cat(r), self.weight * torch.cat(rows)

    def held_at(self, q: np.ndarray) -> np.ndarray:
        """Where the held point is at model joints ``q`` (base frame, m)."""
        x, _ = self._pose(np.asarray(q, dtype=float).reshape(-1))
        return (x[0] + x[1:].T @ torch.as_tensor(self._held() / REACH_M, dtype=x.dtype)).numpy()

    def _held(self) -> np.ndarray:
        if self.held_point is None:
            raise InputError("the tool hold has no held point", field="held_point",
                             expected="the tool centre point in the tool link's frame (x, y, z in m)")
        return self.held_point

    def tilt_to(self, q: np.ndarray, target: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
        """Model joints within ``[lower, upper]`` near ``q`` that put the held point on ``target`` (base
        frame, m), turning the tool as little from the held orientation as that allows (weights
        :data:`TILT_WEIGHTS`). Bounded least squares (trust region reflective): a damped step clamped
        to the box, as :func:`robot_irl.control.mpc.solve_reach` takes, stalled 2-6 cm short here with
        the elbow on its bound (dev seeds 0 and 2, session 10)."""
        if self.axes is None:
            raise InputError("the tool hold keeps no orientation to tilt from", field="hold_tool",
                             expected="a hold whose demos agree on the tool's orientation")
        w_point, w_turn, w_move = TILT_WEIGHTS
        held = self._held() / REACH_M
        axes = self.axes.numpy()
        start = np.clip(np.asarray(q, dtype=float), lower, upper)

        last: dict[str, Any] = {}

        def residual(qq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            """Residuals and Jacobian at ``qq``, kept for the solver's jac call at the same point."""
            if last.get("q") is None or not np.array_equal(last["q"], qq):
                x, J = (t.numpy() for t in self._pose(qq))
                point, J_point = x[0] + held @ x[1:], J[0] + np.einsum("a,acn->cn", held, J[1:])
                r = np.concatenate([w_point * (point - target), w_turn * (x[1:].reshape(9) - axes),
                                    w_move * (qq - start)])
                jac = np.concatenate([w_point * J_point, w_turn * J[1:].reshape(9, -1), w_move * np.eye(len(qq))])
                last.update(q=qq.copy(), out=(r, jac))
            return last["out"]

        return least_squares(lambda qq: residual(qq)[0], start, jac=lambda qq: residual(qq)[1], bounds=(lower, upper),
                             method="trf", xtol=1e-10, ftol=1e-12, max_nfev=200).x

    def turned_rad(self, q: np.ndarray) -> float:
        """How far the tool is turned from the held orientation at model joints ``q`` (rad; nan
        when no orientation is held)."""
        if self.axes is None:
            return float("nan")
        now = self._pose(np.asarray(q, dtype=float))[0][1:].numpy() / REACH_M
        return _angle(now, self.axes.reshape(3, 3).numpy() / REACH_M)

    def to_dict(self) -> dict[str, Any]:
        """What is held, for a run's summary."""
        return {"link": self.link, "orientation": None if self.axes is None else
                (self.axes.reshape(3, 3).numpy() / REACH_M).round(4).tolist(),
                "height_m": self.height, "weight": self.weight,
                "held_point": None if self.held_point is None else self.held_point.round(4).tolist()}


def _point(p: Any) -> np.ndarray | None:
    """A held point as three finite metres, or None."""
    if p is None:
        return None
    a = np.asarray(p, dtype=float)
    if a.shape != (3,) or not np.all(np.isfinite(a)):
        raise InputError(f"held point {p!r}", field="held_point",
                         expected="the tool centre point in the tool link's frame: three finite numbers (m)")
    return a


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    """Rotation angle (rad) between two orientations given as axis rows."""
    return float(np.arccos(np.clip((np.trace(a @ b.T) - 1.0) / 2.0, -1.0, 1.0)))
