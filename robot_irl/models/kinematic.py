"""Kinematic keypoint dynamics from any URDF: ``q' = clip(q + u)``, keypoints by forward kinematics.

Forward kinematics is pytorch-kinematics' batched tree FK (all frames in one pass, one level of the
tree per batched matmul). Keypoint Jacobians are computed in closed form from the same pass
(``z_j x (p - o_j)`` for a revolute joint, ``z_j`` for a prismatic one) with plain tensor ops, so
they stay differentiable: the learner's outer loop backpropagates through inner steps that use
them without any double-backward through FK.
"""
from __future__ import annotations

import contextlib
import math
import io
from pathlib import Path
from typing import Any

import torch

from robot_irl.errors import InputError, UnknownNameError
from robot_irl.models.base import KeypointDynamics, Rollout
from robot_irl.models.frames import KeypointFrame, frames_from_dicts


def _load_chain(urdf: Path, dtype: torch.dtype):
    import pytorch_kinematics as pk

    if not urdf.is_file():
        raise InputError("URDF file not found", file=urdf, field="urdf", expected="a readable .urdf file")
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # the parser warns about every unknown tag
            return pk.build_chain_from_urdf(urdf.read_bytes()).to(dtype=dtype)
    except Exception as e:  # the parser raises many types; the user only needs to know the file is bad
        raise InputError(f"cannot parse URDF ({type(e).__name__}: {e})", file=urdf, field="urdf",
                         expected="a valid URDF robot description") from None


class KinematicDynamics(KeypointDynamics):
    """Keypoints rigidly attached to links of a URDF robot.

    ``joints``: the actuated joints (the action's order); by default every movable joint that moves
    any keypoint, in URDF order. Other movable joints are held at ``fixed_joint_values`` (default 0
    clipped into their limits).
    """

    kind = "kinematic"

    def __init__(self, urdf: str | Path, frames: list[KeypointFrame], *, joints: list[str] | None = None,
                 fixed_joint_values: dict[str, float] | None = None, dtype: torch.dtype = torch.float64) -> None:
        if not frames:
            raise InputError("no keypoint frames given", field="keypoint_frames", expected="at least one")
        self.urdf = Path(urdf).resolve()
        self.frames = list(frames)
        self.dtype = dtype
        chain = _load_chain(self.urdf, dtype)
        self.chain = chain
        frame_names = list(chain.frame_to_idx)
        kp_frame = []
        for f in self.frames:
            if f.link not in chain.frame_to_idx:
                raise UnknownNameError("link", f.link, frame_names, file=self.urdf)
            kp_frame.append(chain.frame_to_idx[f.link])
        all_joints = chain.get_joint_parameter_names()
        joint_frame = {j: int((chain.joint_indices == i).nonzero()[0]) for i, j in enumerate(all_joints)}
        ancestors = [set(int(i) for i in chain.parents_indices[fi]) for fi in kp_frame]
        if joints is None:
            joints = [j for j in all_joints if any(joint_frame[j] in a for a in ancestors)]
            if not joints:
                raise InputError("no movable joint moves any keypoint", file=self.urdf, field="keypoint_frames",
                                 expected="keypoints on links downstream of a movable joint")
        for j in joints:
            if j not in joint_frame:
                raise UnknownNameError("joint", j, all_joints, file=self.urdf)
        self.joints = list(joints)
        self.n_joints = len(self.joints)
        self.n_keypoints = len(self.frames)
        self._act_idx = torch.tensor([all_joints.index(j) for j in self.joints])
        low, high = chain.get_joint_limits()
        self.lower = torch.tensor([low[all_joints.index(j)] for j in self.joints], dtype=dtype)
        self.upper = torch.tensor([high[all_joints.index(j)] for j in self.joints], dtype=dtype)
        fixed = dict(fixed_joint_values or {})
        for name in fixed:
            if name not in joint_frame:
                raise UnknownNameError("joint", name, all_joints, file=self.urdf)
        base = []
        for i, j in enumerate(all_joints):
            v = float(fixed.get(j, 0.0))
            base.append(min(max(v, low[i]), high[i]))
        self.fixed_joint_values = {j: base[i] for i, j in enumerate(all_joints) if j not in self.joints}
        self._q_full = torch.tensor(base, dtype=dtype)
        self._kp_frame = torch.tensor(kp_frame)
        self._offsets = torch.tensor([f.offset for f in self.frames], dtype=dtype)  # [K, 3]
        self._dof_frame = torch.tensor([joint_frame[j] for j in self.joints])
        self._axes = chain.axes[self._act_idx]  # [n, 3] in the joint frame
        types = chain.joint_type_indices[self._dof_frame]
        self._revolute = (types == 1).reshape(-1, 1, 1, 1)
        # moves[j, k] = 1 when actuated joint j is an ancestor of keypoint k's link
        self._moves = torch.tensor([[float(joint_frame[j] in a) for a in ancestors] for j in self.joints], dtype=dtype)

        self._serial = _SerialChainFK.build(self, chain, all_joints, kp_frame, base)

    # --- kinematics -------------------------------------------------------------------------
    def _fk(self, q: torch.Tensor) -> torch.Tensor:
        full = self._q_full.expand(q.shape[0], -1).clone()
        full[:, self._act_idx] = q
        return self.chain.forward_kinematics_tensor(full, analytical_grad=False)  # [F, B, 4, 4]

    def keypoints(self, q: torch.Tensor, *, jacobian: bool = False):
        """Keypoints ``[..., K, 3]`` (metres) and, if asked, their Jacobian ``[..., K*3, n]``."""
        shape = q.shape[:-1]
        if self._serial is not None:
            p, z, o = self._serial(q.reshape(-1, self.n_joints), jacobian)
        else:
            T = self._fk(q.reshape(-1, self.n_joints))
            Tk = T[self._kp_frame]  # [K, B, 4, 4]
            p = (Tk[..., :3, :3] @ self._offsets[:, None, :, None]).squeeze(-1) + Tk[..., :3, 3]  # [K, B, 3]
            if jacobian:
                Td = T[self._dof_frame]  # [n, B, 4, 4]
                z = (Td[..., :3, :3] @ self._axes[:, None, :, None]).squeeze(-1)  # [n, B, 3]
                o = Td[..., :3, 3]
        x = p.transpose(0, 1).reshape(*shape, self.n_keypoints, 3)
        if not jacobian:
            return x
        zk = z[:, None].expand(-1, self.n_keypoints, -1, -1)
        lin = torch.where(self._revolute, torch.cross(zk, p[None] - o[:, None], dim=-1), zk)
        J = lin * self._moves[:, :, None, None]  # [n, K, B, 3]
        J = J.permute(2, 1, 3, 0).reshape(*shape, self.n_keypoints * 3, self.n_joints)
        return x, J

    def start_keypoints(self, q0: torch.Tensor, x0: torch.Tensor | None = None) -> torch.Tensor:
        return self.keypoints(q0)

    def rollout(self, q0: torch.Tensor, u: torch.Tensor, x0: torch.Tensor | None = None, *,
                jacobian: bool = False) -> Rollout:
        qs = [q0]
        q = q0
        for t in range(u.shape[1]):
            q = self.step(q, u[:, t])
            qs.append(q)
        Q = torch.stack(qs, 1)
        if jacobian:
            x, J = self.keypoints(Q, jacobian=True)
            return Rollout(Q, x, J[:, 1:])
        return Rollout(Q, self.keypoints(Q))

    def inverse_kinematics(self, x: torch.Tensor, q_init: torch.Tensor | None = None, *, iters: int = 100,
                           damping: float = 1e-6, restarts: int = 8, tol: float = 1e-3) -> torch.Tensor:
        """Joint states ``[B, n]`` whose keypoints best match ``x [B, K, 3]`` (damped least squares),
        e.g. to start the learner from demos that recorded keypoints but no joint state. Without
        ``q_init`` it starts at the middle of the joint ranges; a demo whose keypoints are then
        still farther than ``tol`` (m) off is solved again from ``restarts`` seeded random starts
        within the limits and keeps its best: keypoints extracted from video are not exactly
        consistent with the model (a 1 mm difference in the distance of two keypoints on one
        link), and from the middle start such a target led to a local minimum 15 cm off."""
        B = x.shape[0]
        finite = torch.isfinite(self.lower) & torch.isfinite(self.upper)
        mid = torch.where(finite, (self.lower + self.upper) / 2, torch.zeros_like(self.lower))
        q = self._dls(x, (q_init if q_init is not None else mid).expand(B, -1).clone(), iters, damping)
        if q_init is not None or restarts <= 0:
            return q
        err = self._ik_error(x, q)
        lo = torch.where(finite, self.lower, torch.full_like(self.lower, -math.pi))
        hi = torch.where(finite, self.upper, torch.full_like(self.upper, math.pi))
        gen = torch.Generator().manual_seed(0)
        for _ in range(restarts):
            bad = err > tol
            if not bad.any():
                break
            start = lo + (hi - lo) * torch.rand(int(bad.sum()), self.n_joints, generator=gen, dtype=self.dtype)
            q_new = self._dls(x[bad], start, iters, damping)
            e_new = self._ik_error(x[bad], q_new)
            better = e_new < err[bad]
            idx = torch.nonzero(bad).squeeze(-1)[better]
            q[idx], err[idx] = q_new[better], e_new[better]
        return q

    def _dls(self, x: torch.Tensor, q: torch.Tensor, iters: int, damping: float) -> torch.Tensor:
        B = x.shape[0]
        with torch.no_grad():
            for _ in range(iters):
                xk, J = self.keypoints(q, jacobian=True)
                r = (x - xk).reshape(B, -1, 1)
                A = J.transpose(-1, -2) @ J + damping * torch.eye(self.n_joints, dtype=self.dtype)
                q = self.step(q, torch.linalg.solve(A, J.transpose(-1, -2) @ r).squeeze(-1))
        return q

    def _ik_error(self, x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """Largest keypoint distance per demo (NaN keypoints ignored)."""
        with torch.no_grad():
            d = torch.linalg.norm(self.keypoints(q) - x, dim=-1)
        return torch.nan_to_num(d, nan=0.0).amax(-1)

    def to_config(self) -> dict[str, Any]:
        return {"type": self.kind, "urdf": str(self.urdf), "keypoint_frames": [f.to_dict() for f in self.frames],
                "joints": self.joints, "fixed_joint_values": self.fixed_joint_values}

    @classmethod
    def from_config(cls, cfg: dict[str, Any], *, dtype: torch.dtype = torch.float64) -> "KinematicDynamics":
        return cls(cfg["urdf"], frames_from_dicts(cfg["keypoint_frames"]), joints=cfg.get("joints"),
                   fixed_joint_values=cfg.get("fixed_joint_values"), dtype=dtype)


class _SerialChainFK:
    """Keypoints (and joint axes and origins, for the Jacobian) of a serial chain of revolute joints,
    with every constant transform between two actuated joints folded into one matrix.

    Why: the learner backpropagates through ~10 inner steps of FK and Jacobians per outer step, on
    tiny batches, where the cost is the number of autograd ops, not arithmetic. pytorch-kinematics'
    tree FK spends most of its ops on the whole tree (every frame, index/put per level); here it is
    a rotation, two matmuls and an add per actuated joint (measured on the paper's task: see
    notes/irl.md). Used only where it applies (every keypoint and actuated joint on one path from
    the root, all actuated joints revolute) and only after it matched the tree FK at construction;
    otherwise ``None`` and the tree FK is used."""

    def __init__(self, C_R, C_t, axes, cols, kp_seg, kp_off, n_joints: int) -> None:
        self.C_R, self.C_t = C_R, C_t                  # [S, 3, 3], [S, 3]: constant before each joint
        self.axes = axes                               # [S, 3] in the joint's frame
        self.cols = cols                               # q column of each segment's joint
        eye = torch.eye(3, dtype=axes.dtype)
        aaT = axes[:, :, None] * axes[:, None, :]
        K = torch.zeros(len(axes), 3, 3, dtype=axes.dtype)
        K[:, 0, 1], K[:, 0, 2], K[:, 1, 2] = -axes[:, 2], axes[:, 1], -axes[:, 0]
        K = K - K.transpose(1, 2)
        self.rot = (eye - aaT, K, aaT)                 # R(q) = cos q (I - aa^T) + sin q [a]x + aa^T
        self.kp_seg, self.kp_off = kp_seg, kp_off      # keypoint k: after segment kp_seg[k] (-1: base), offset
        self.order = torch.tensor(sorted(range(len(cols)), key=lambda i: cols[i]))  # segments in q order
        self.n_joints = n_joints

    @classmethod
    def build(cls, dyn: "KinematicDynamics", chain, all_joints: list[str], kp_frame: list[int],
              base: list[float]) -> "_SerialChainFK | None":
        dt = dyn.dtype
        deepest = max(kp_frame, key=lambda f: len(chain.parents_indices[f]))
        path = [int(i) for i in chain.parents_indices[deepest]]
        types = chain.joint_type_indices
        jidx = chain._joint_indices_clamped
        offsets = chain._static_offsets.to(dt)
        act = {all_joints.index(j): c for c, j in enumerate(dyn.joints)}
        if any(f not in path for f in kp_frame) or any(int(f) not in path for f in dyn._dof_frame):
            return None
        pending = torch.eye(4, dtype=dt)
        C, axes, cols, at_frame = [], [], [], {}
        for f in path:
            pending = pending @ offsets[f]
            t = int(types[f])
            if t != 0:
                j = int(jidx[f])
                axis = chain.axes[j].to(dt)
                if j in act:
                    if t != 1:
                        return None                    # prismatic actuated joint: the tree FK handles it
                    C.append(pending)
                    axes.append(axis)
                    cols.append(act[j])
                    pending = torch.eye(4, dtype=dt)
                else:                                  # a movable joint held at its fixed value
                    hold = torch.eye(4, dtype=dt)
                    v = torch.tensor(base[j], dtype=dt)
                    if t == 1:
                        a = axis
                        K = torch.tensor([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]], dtype=dt)
                        hold[:3, :3] = torch.eye(3, dtype=dt) + torch.sin(v) * K + (1 - torch.cos(v)) * K @ K
                    else:
                        hold[:3, 3] = axis * v
                    pending = pending @ hold
            at_frame[f] = (len(C) - 1, pending.clone())
        if not C:
            return None
        kp_seg, kp_off = [], []
        for k, f in enumerate(kp_frame):
            seg, tail = at_frame[f]
            kp_seg.append(seg)
            kp_off.append(tail[:3, :3] @ dyn._offsets[k] + tail[:3, 3])
        Cs = torch.stack(C)
        fk = cls(Cs[:, :3, :3], Cs[:, :3, 3], torch.stack(axes), cols, kp_seg, torch.stack(kp_off), dyn.n_joints)
        # Trust it only where it agrees with the tree FK (random joints within the limits).
        g = torch.Generator().manual_seed(0)
        lo = torch.where(torch.isfinite(dyn.lower), dyn.lower, torch.full_like(dyn.lower, -3.0))
        hi = torch.where(torch.isfinite(dyn.upper), dyn.upper, torch.full_like(dyn.upper, 3.0))
        q = lo + (hi - lo) * torch.rand(16, dyn.n_joints, generator=g, dtype=dt)
        T = dyn._fk(q)
        Tk = T[dyn._kp_frame]
        p_ref = (Tk[..., :3, :3] @ dyn._offsets[:, None, :, None]).squeeze(-1) + Tk[..., :3, 3]
        Td = T[dyn._dof_frame]
        z_ref = (Td[..., :3, :3] @ dyn._axes.to(dt)[:, None, :, None]).squeeze(-1)
        p, z, o = fk(q, True)
        tol = 1e-9 if dt == torch.float64 else 1e-4
        ok = all(torch.allclose(a, b, atol=tol, rtol=0) for a, b in ((p, p_ref), (z, z_ref), (o, Td[..., :3, 3])))
        return fk if ok else None

    def __call__(self, q: torch.Tensor, jacobian: bool):
        """``q [B, n]`` -> keypoints ``[K, B, 3]`` and, with ``jacobian``, world axes and origins of the
        actuated joints ``[n, B, 3]`` (q order), else ``None, None``."""
        B = q.shape[0]
        I_aa, K, aaT = self.rot
        c, s = torch.cos(q)[:, self.cols].T, torch.sin(q)[:, self.cols].T  # [S, B]
        Rq = c[..., None, None] * I_aa[:, None] + s[..., None, None] * K[:, None] + aaT[:, None]  # [S, B, 3, 3]
        M = self.C_R[:, None] @ Rq                                                              # [S, B, 3, 3]
        R = torch.eye(3, dtype=q.dtype).expand(B, 3, 3)
        t = torch.zeros(B, 3, dtype=q.dtype)
        Rs, ts = [], []
        for i in range(len(self.cols)):
            t = t + R @ self.C_t[i]
            R = R @ M[i]
            Rs.append(R)
            ts.append(t)
        eye, zero = torch.eye(3, dtype=q.dtype).expand(B, 3, 3), torch.zeros(B, 3, dtype=q.dtype)
        Rk = torch.stack([Rs[i] if i >= 0 else eye for i in self.kp_seg])      # [K, B, 3, 3]
        tk = torch.stack([ts[i] if i >= 0 else zero for i in self.kp_seg])     # [K, B, 3]
        p = (Rk @ self.kp_off[:, None, :, None]).squeeze(-1) + tk
        if not jacobian:
            return p, None, None
        z = (torch.stack(Rs) @ self.axes[:, None, :, None]).squeeze(-1)        # [S, B, 3]
        o = torch.stack(ts)
        return p, z[self.order], o[self.order]
