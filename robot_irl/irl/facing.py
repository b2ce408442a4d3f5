"""Hold the facing of a link that carries only two keypoints: a virtual third point for the planner.

Two keypoints on one rigid link fix its pose up to a roll about the line through them. A cost on
those keypoints alone is indifferent to that roll, so a plan to a new goal takes whatever roll the
Gauss-Newton steps drift into: on Place-v0 (iiwa: the wrist marker and the flange blob on link 7,
7.6 cm apart) plans to the left goals tilted the flange by up to 50 degrees, the marker then faced
the table, its video lost it for the last 35-60 % of the run, and runs that reached their goal
failed on video (notes/irl.md). The demos (and any tool held level) keep that roll as it was.

So the planner adds, per such link, a virtual keypoint off the line (``REACH_M`` from the pair's
midpoint, along the link axis most perpendicular to it) and one more residual of the Gauss-Newton
inner step (``roll_rows``): how far that point has rolled about the pair's line from where it would
be had the link only turned by the least rotation taking the pair's start direction to its current
one — the roll the learned keypoints leave free. Nothing is learned for it; it only
chooses among the poses that follow the learned path. Kinematic dynamics and the ``gn`` inner only
(a learned keypoint model predicts its own keypoints and no others; ``gd`` plans without it).
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


def roll_rows(start: torch.Tensor, pairs: list[tuple[int, int]], n_keypoints: int, W: torch.Tensor,
              scale: float):
    """The inner step's extra residuals (``inner.ExtraRows``) that hold each pair's roll as it was
    at ``start [B, K + P, 3]`` (m; the facing model's keypoints at the start joints).

    Per row and pair: ``v`` = virtual point - the pair's midpoint; ``v*`` = its start value turned
    by the least rotation of the pair's start direction into its direction now; the residual is
    ``(v - v*)`` along ``d x v*`` (``d`` the pair's direction): ``REACH_M`` x the roll angle, zero
    for any translation or turn of the pair's line. Why not the virtual point's position as a
    fourth keypoint with a goal: the Gauss-Newton step weighs every row it is given alike, and a
    point rigidly tied to the learned ones, closing its own gap at its own rate, fought them (plans
    2-12 cm off the expert's mid-path, dev seed 0); this residual only sees the roll they leave free.
    Weighted per row as the mean of that row's learned weights (``W [H, D]``)."""
    K = n_keypoints
    v0 = torch.stack([start[:, K + p] - (start[:, a] + start[:, b]) / 2 for p, (a, b) in enumerate(pairs)], 1)
    d0 = torch.stack([_unit(start[:, b] - start[:, a]) for a, b in pairs], 1)       # [B, P, 3]
    We = W.mean(-1, keepdim=True).expand(-1, len(pairs))

    def rows(x: torch.Tensor, J: torch.Tensor):
        B, H, n = x.shape[0], x.shape[1], J.shape[-1]
        X, Jk = x.reshape(B, H, -1, 3), J.reshape(B, H, -1, 3, n)
        es, js = [], []
        for p, (a, b) in enumerate(pairs):
            d = _unit(X[:, :, b] - X[:, :, a])
            R = least_rotation(d0[:, None, p].expand(B, H, 3), d)
            want = (R @ (scale * v0[:, None, p, :, None])).squeeze(-1)
            axis = _unit(torch.cross(d, want, dim=-1))
            v = X[:, :, K + p] - (X[:, :, a] + X[:, :, b]) / 2
            Jv = Jk[:, :, K + p] - (Jk[:, :, a] + Jk[:, :, b]) / 2
            es.append(((v - want) * axis).sum(-1))
            js.append((axis[..., None] * Jv).sum(-2))
        return torch.stack(es, -1), torch.stack(js, -2), We

    return rows
