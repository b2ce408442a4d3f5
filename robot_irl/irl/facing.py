"""Hold the facing of a link that carries only two keypoints: a virtual third point for the planner.

Two keypoints on one rigid link fix its pose up to a roll about the line through them. A cost on
those keypoints alone is indifferent to that roll, so a plan to a new goal takes whatever roll the
Gauss-Newton steps drift into: on Place-v0 (iiwa: the wrist marker and the flange blob on link 7,
7.6 cm apart) plans to the left goals tilted the flange by up to 50 degrees, the marker then faced
the table, its video lost it for the last 35-60 % of the run, and runs that reached their goal
failed on video (notes/irl.md). The demos (and any tool held level) keep that roll as it was.

So the planner adds, per such link, a virtual keypoint off the line (``REACH_M`` from the pair's
midpoint, along the link axis most perpendicular to it) whose goal keeps the link's roll: the
smallest rotation that turns the pair's start direction into its goal direction, applied to where
the virtual point sat at the start. It is weighted per row as the mean of the learned weights of
that row, so it closes its gap at the pace the learned cost sets for the real keypoints. Nothing is
learned for it, and it cannot change where the real keypoints go when their goal is reachable with
the start's roll (its goal is consistent with theirs); it only chooses among the poses that reach
them. Kinematic dynamics only (a learned keypoint model predicts its own keypoints and no others).
"""
from __future__ import annotations

from typing import Any

import torch

from robot_irl.models.frames import KeypointFrame

#: distance (m) of the virtual point from the pair's midpoint: a roll of 0.1 rad moves it 1 cm
REACH_M = 0.1


def facing_pairs(frames: list[KeypointFrame]) -> list[tuple[int, int]]:
    """Index pairs of the keypoints that are the only two on their link (at distinct offsets)."""
    by_link: dict[str, list[int]] = {}
    for i, f in enumerate(frames):
        by_link.setdefault(f.link, []).append(i)
    return [(a, b) for a, b in (v for v in by_link.values() if len(v) == 2)
            if any(abs(p - q) > 1e-9 for p, q in zip(frames[a].offset, frames[b].offset))]


def virtual_frame(a: KeypointFrame, b: KeypointFrame) -> KeypointFrame:
    """A point on the link of ``a`` and ``b``, ``REACH_M`` off their midpoint, perpendicular to their line."""
    pa, pb = torch.tensor(a.offset, dtype=torch.float64), torch.tensor(b.offset, dtype=torch.float64)
    d = (pb - pa) / torch.linalg.norm(pb - pa)
    axis = torch.eye(3, dtype=torch.float64)[int(torch.argmin(d.abs()))]
    n = axis - (axis @ d) * d
    c = (pa + pb) / 2 + REACH_M * n / torch.linalg.norm(n)
    return KeypointFrame(f"{a.name}+{b.name}:facing", a.link, tuple(float(v) for v in c))


def facing_dynamics(dyn: Any) -> tuple[Any, list[tuple[int, int]]] | None:
    """The kinematic model ``dyn`` with one virtual keypoint per pair (appended after its own, in
    pair order) and the pairs; None when ``dyn`` is not kinematic or has no such pair."""
    from robot_irl.models.kinematic import KinematicDynamics

    if not isinstance(dyn, KinematicDynamics):
        return None
    pairs = facing_pairs(dyn.frames)
    if not pairs:
        return None
    extra = [virtual_frame(dyn.frames[a], dyn.frames[b]) for a, b in pairs]
    aug = KinematicDynamics(dyn.urdf, dyn.frames + extra, joints=dyn.joints,
                            fixed_joint_values=dyn.fixed_joint_values, dtype=dyn.dtype)
    return aug, pairs


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / torch.linalg.norm(v, dim=-1, keepdim=True).clamp(min=1e-12)


def least_rotation(d0: torch.Tensor, d1: torch.Tensor) -> torch.Tensor:
    """Rotation matrices ``[B, 3, 3]`` turning unit vectors ``d0 [B, 3]`` into ``d1`` about their
    common normal (Rodrigues); the identity where they already agree. Opposite vectors have no
    unique least rotation: they get a half turn about an axis perpendicular to ``d0``."""
    v = torch.cross(d0, d1, dim=-1)
    c = (d0 * d1).sum(-1)
    vx = torch.zeros(*v.shape[:-1], 3, 3, dtype=v.dtype)
    vx[..., 0, 1], vx[..., 0, 2], vx[..., 1, 0] = -v[..., 2], v[..., 1], v[..., 2]
    vx[..., 1, 2], vx[..., 2, 0], vx[..., 2, 1] = -v[..., 0], -v[..., 1], v[..., 0]
    eye = torch.eye(3, dtype=v.dtype).expand_as(vx)
    R = eye + vx + vx @ vx / (1 + c).clamp(min=1e-9)[..., None, None]
    flip = c < -1 + 1e-6
    if bool(flip.any()):
        e = torch.eye(3, dtype=v.dtype)[torch.argmin(d0[flip].abs(), -1)]
        n = _unit(e - (e * d0[flip]).sum(-1, keepdim=True) * d0[flip])
        R[flip] = 2 * n[..., :, None] * n[..., None, :] - eye[flip]
    return R


def facing_goals(start: torch.Tensor, goal: torch.Tensor, pairs: list[tuple[int, int]]) -> torch.Tensor:
    """Goals ``[B, P, 3]`` (m) of the virtual points: ``start [B, K + P, 3]`` the augmented model's
    keypoints at the start joints, ``goal [B, K, 3]`` the real keypoints' goals. Each virtual point
    keeps its place relative to its pair, turned by the least rotation of the pair's direction."""
    K = goal.shape[1]
    out = []
    for p, (a, b) in enumerate(pairs):
        R = least_rotation(_unit(start[:, b] - start[:, a]), _unit(goal[:, b] - goal[:, a]))
        rel = start[:, K + p] - (start[:, a] + start[:, b]) / 2
        out.append((goal[:, a] + goal[:, b]) / 2 + (R @ rel[..., None]).squeeze(-1))
    return torch.stack(out, 1)


def facing_weights(W: torch.Tensor, n_pairs: int) -> torch.Tensor:
    """``W [H, D]`` with ``3 * n_pairs`` columns appended, each the row's mean learned weight."""
    return torch.cat([W, W.mean(-1, keepdim=True).expand(-1, 3 * n_pairs)], -1)
