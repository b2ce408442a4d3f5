"""Learned keypoint dynamics: an ensemble of small MLPs trained on exploration transitions.

Each member maps (keypoints x, joint state q, joint-delta action u) to the change of keypoints and
joint state over one step; the ensemble mean is the prediction. Inputs and outputs are normalised
with statistics of the training set. The network is tanh, so the Jacobian of the next keypoints
with respect to the action is computed in closed form (plain, differentiable tensor ops), which is
what the learner's Gauss–Newton inner step needs.

``train_dynamics`` fits it from arrays and reports held-out one-step and multi-step (open-loop)
keypoint errors in centimetres, split by episode so held-out transitions come from unseen episodes.
"""
from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robot_irl.core.io import atomic_write_bytes
from robot_irl.errors import InputError
from robot_irl.models.base import KeypointDynamics, Rollout
from robot_irl.models.frames import KeypointFrame, frames_from_dicts


@dataclass
class DynamicsTrainConfig:
    hidden: int = 128
    layers: int = 2
    ensemble: int = 3
    epochs: int = 200
    batch: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-5
    holdout: float = 0.2        # fraction of episodes held out
    multistep: int = 10         # open-loop horizon of the multi-step error
    seed: int = 0
    structure: str = "fk"       # "fk": x = g(q), q' = clip(q + u); "fk_joint": x = g(q) and
    # q' = clip(q + u + r(q, u)), r learned from how the arm really tracked; "delta": (x, q, u) -> (dx, dq)


class _Ensemble(torch.nn.Module):
    """E parallel tanh MLPs as batched weight tensors (one matmul per layer for all members)."""

    def __init__(self, n_in: int, n_out: int, hidden: int, layers: int, members: int) -> None:
        super().__init__()
        sizes = [n_in] + [hidden] * layers + [n_out]
        self.W = torch.nn.ParameterList()
        self.b = torch.nn.ParameterList()
        for a, c in zip(sizes[:-1], sizes[1:]):
            w = torch.empty(members, a, c)
            for e in range(members):
                torch.nn.init.xavier_uniform_(w[e])
            self.W.append(torch.nn.Parameter(w))
            self.b.append(torch.nn.Parameter(torch.zeros(members, 1, c)))

    def forward(self, z: torch.Tensor, *, with_acts: bool = False):
        """``z [E, N, n_in]`` -> ``[E, N, n_out]`` (and the hidden activations)."""
        acts = []
        h = z
        for i, (W, b) in enumerate(zip(self.W, self.b)):
            h = torch.baddbmm(b, h, W)
            if i < len(self.W) - 1:
                h = torch.tanh(h)
                acts.append(h)
        return (h, acts) if with_acts else h

    def input_jacobian(self, acts: list[torch.Tensor], cols: slice) -> torch.Tensor:
        """d out / d z[cols] per sample: ``[E, N, n_out, len(cols)]`` from the stored activations."""
        J = self.W[0][:, cols, :].transpose(1, 2)[:, None]  # [E, 1, h, c]
        for i, a in enumerate(acts):
            J = (1 - a.square())[..., None] * J  # tanh'
            J = torch.einsum("ehk,enhc->enkc", self.W[i + 1], J)
        return J


STRUCTURES = ("fk", "fk_joint", "delta")


class LearnedDynamics(KeypointDynamics):
    """Two structures (``cfg.structure``):

    - ``fk`` (default): keypoints are a learned function of the joint state, ``x_t = g(q_t)``, and
      the joints follow the action, ``q' = clip(q + u)``. The row Jacobian ``d x_t / d u_{t-1} =
      dg/dq (q_t)`` is then exactly the metric the learner's Gauss-Newton inner step assumes, and
      a plan cannot drift in keypoints away from where its joints are. (The ``delta`` model carried
      keypoints forward step by step, so its per-row Jacobian ignored how earlier actions move later
      keypoints: MBIRL through it failed, 25-75 cm transfer path error.)
    - ``fk_joint``: ``fk`` plus a learned joint transition ``q' = clip(q + u + r(q, u))``: a second
      ensemble learns the residual r from exploration data in which the arm tracked its targets
      as it really does (lag, gravity sag, contact), so a plan accounts for where the joints end up,
      not where they were sent. Row Jacobian ``dg/dq (q_t) (I + dr/du)``.
    - ``delta``: the ensemble maps (x, q, u) to (dx, dq); kept for comparison and old model files.
    """

    kind = "learned"

    def __init__(self, n_joints: int, n_keypoints: int, lower: Any, upper: Any,
                 cfg: DynamicsTrainConfig | None = None, dtype: torch.dtype = torch.float64, *,
                 joints: list[str] | None = None, frames: list[KeypointFrame] | None = None,
                 urdf: str | Path | None = None, observation: dict[str, Any] | None = None) -> None:
        self.cfg = cfg or DynamicsTrainConfig()
        if joints is not None and len(joints) != n_joints:
            raise InputError(f"{len(joints)} joint names for {n_joints} joints", field="joints",
                             expected=f"{n_joints} names")
        if frames is not None and len(frames) != n_keypoints:
            raise InputError(f"{len(frames)} keypoint frames for {n_keypoints} keypoints", field="frames",
                             expected=f"{n_keypoints} frames")
        self.joints = None if joints is None else [str(j) for j in joints]
        self.frames = None if frames is None else list(frames)
        self.urdf = None if urdf is None else Path(urdf)
        # keypoints seen by a detector in images (keypoints.learned.observe) sit on no link: their
        # description (detector folder, K, names, camera and depth) stands in for the frames
        self.observation = None if observation is None else dict(observation)
        self.n_joints, self.n_keypoints, self.dtype = n_joints, n_keypoints, dtype
        self.lower = torch.as_tensor(lower, dtype=dtype)
        self.upper = torch.as_tensor(upper, dtype=dtype)
        if self.cfg.structure not in STRUCTURES:
            raise InputError(f"structure={self.cfg.structure!r}", field="structure", expected=f"one of {STRUCTURES}")
        D = n_keypoints * 3
        n_in, n_out = (n_joints, D) if self.fk else (D + 2 * n_joints, D + n_joints)
        self.net = _Ensemble(n_in, n_out, self.cfg.hidden, self.cfg.layers, self.cfg.ensemble).to(dtype)
        self.in_mean = torch.zeros(n_in, dtype=dtype)
        self.in_std = torch.ones(n_in, dtype=dtype)
        self.out_mean = torch.zeros(n_out, dtype=dtype)
        self.out_std = torch.ones(n_out, dtype=dtype)
        self.tnet: _Ensemble | None = None
        if self.cfg.structure == "fk_joint":
            self.tnet = _Ensemble(2 * n_joints, n_joints, self.cfg.hidden, self.cfg.layers, self.cfg.ensemble).to(dtype)
        # joint-transition normalisation: inputs (q, u), outputs the residual r
        self.t_norm = [torch.zeros(2 * n_joints, dtype=dtype), torch.ones(2 * n_joints, dtype=dtype),
                       torch.zeros(n_joints, dtype=dtype), torch.ones(n_joints, dtype=dtype)]
        self.path: Path | None = None

    @property
    def fk(self) -> bool:
        return self.cfg.structure in ("fk", "fk_joint")

    def learns(self) -> str:
        """What this model learns, in words (for tables)."""
        return {"fk": "keypoints g(q); joints q + u", "fk_joint": "keypoints g(q); joints q + u + r(q, u)",
                "delta": "(dx, dq) from (x, q, u)"}[self.cfg.structure]

    def _transition(self, q: torch.Tensor, u: torch.Tensor, jacobian: bool = False):
        """``fk_joint``: next joints and, if asked, ``dq'/du [B, n, n]`` (the clip's kink ignored)."""
        im, istd, om, ostd = self.t_norm
        z = (torch.cat([q, u], -1) - im) / istd
        out, acts = self.tnet(z[None].expand(self.cfg.ensemble, -1, -1), with_acts=True)
        q1 = torch.minimum(torch.maximum(q + u + out.mean(0) * ostd + om, self.lower), self.upper)
        if not jacobian:
            return q1, None
        n = self.n_joints
        Jr = self.tnet.input_jacobian(acts, slice(n, 2 * n)).mean(0) * ostd[:, None] / istd[None, n:]
        return q1, torch.eye(n, dtype=q.dtype) + Jr

    def step(self, q: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return super().step(q, u) if self.tnet is None else self._transition(q, u)[0]

    def keypoints(self, q: torch.Tensor, *, jacobian: bool = False):
        """``fk`` structure: keypoints ``[B, K, 3]`` = g(q) and, if asked, ``dg/dq [B, K*3, n]``."""
        B = q.shape[0]
        z = (q - self.in_mean) / self.in_std
        out, acts = self.net(z[None].expand(self.cfg.ensemble, -1, -1), with_acts=True)
        x = (out.mean(0) * self.out_std + self.out_mean).reshape(B, self.n_keypoints, 3)
        if not jacobian:
            return x
        Jn = self.net.input_jacobian(acts, slice(0, self.n_joints)).mean(0)
        return x, Jn * self.out_std[:, None] / self.in_std[None, :]

    def _predict(self, x: torch.Tensor, q: torch.Tensor, u: torch.Tensor, jacobian: bool = False):
        B, D, n = x.shape[0], self.n_keypoints * 3, self.n_joints
        z = (torch.cat([x.reshape(B, D), q, u], -1) - self.in_mean) / self.in_std
        E = self.cfg.ensemble
        out, acts = self.net(z[None].expand(E, -1, -1), with_acts=True)
        d = out.mean(0) * self.out_std + self.out_mean
        x1 = x + d[:, :D].reshape(B, self.n_keypoints, 3)
        q1 = torch.minimum(torch.maximum(q + d[:, D:], self.lower), self.upper)
        if not jacobian:
            return x1, q1, None
        Jn = self.net.input_jacobian(acts, slice(D + n, D + 2 * n)).mean(0)  # [B, out, n] normalised
        J = Jn[:, :D] * self.out_std[:D, None] / self.in_std[None, D + n:]
        return x1, q1, J

    def start_keypoints(self, q0: torch.Tensor, x0: torch.Tensor | None = None) -> torch.Tensor:
        if x0 is None and self.fk:
            return self.keypoints(q0)
        if x0 is None:
            raise InputError("the learned dynamics needs the observed start keypoints", field="x0",
                             expected="start keypoints [B, K, 3]")
        return x0

    def rollout(self, q0: torch.Tensor, u: torch.Tensor, x0: torch.Tensor | None = None, *,
                jacobian: bool = False) -> Rollout:
        x = self.start_keypoints(q0, x0)
        if self.fk:
            qs, dqdu = [q0], []
            for t in range(u.shape[1]):
                if self.tnet is not None and jacobian:
                    q1, Jq = self._transition(qs[-1], u[:, t], True)
                    qs.append(q1)
                    dqdu.append(Jq)
                else:
                    qs.append(self.step(qs[-1], u[:, t]))
            Q = torch.stack(qs[1:], 1)  # [B, H, n]
            B, H = Q.shape[:2]
            out = self.keypoints(Q.reshape(B * H, -1), jacobian=jacobian)
            xk, J = out if jacobian else (out, None)
            X = torch.cat([x[:, None], xk.reshape(B, H, self.n_keypoints, 3)], 1)
            if jacobian:
                J = J.reshape(B, H, *J.shape[1:])
                if dqdu:  # chain rule through the learned joint transition
                    J = J @ torch.stack(dqdu, 1)
            return Rollout(torch.stack(qs, 1), X, J)
        q = q0
        xs, qs, Js = [x], [q], []
        for t in range(u.shape[1]):
            x, q, J = self._predict(x, q, u[:, t], jacobian)
            xs.append(x)
            qs.append(q)
            Js.append(J)
        return Rollout(torch.stack(qs, 1), torch.stack(xs, 1), torch.stack(Js, 1) if jacobian else None)

    def to_config(self) -> dict[str, Any]:
        return {"type": self.kind, "path": str(self.path) if self.path else None, "n_joints": self.n_joints,
                "n_keypoints": self.n_keypoints}

    def save(self, path: str | Path) -> Path:
        buf = io.BytesIO()
        torch.save({"cfg": asdict(self.cfg), "n_joints": self.n_joints, "n_keypoints": self.n_keypoints,
                    "lower": self.lower, "upper": self.upper, "net": self.net.state_dict(),
                    "norm": [self.in_mean, self.in_std, self.out_mean, self.out_std],
                    "tnet": None if self.tnet is None else self.tnet.state_dict(), "t_norm": self.t_norm,
                    "joints": self.joints, "frames": None if self.frames is None else [f.to_dict() for f in self.frames],
                    "urdf": None if self.urdf is None else str(self.urdf),
                    "observation": None if self.observation is None else json.dumps(self.observation)}, buf)
        atomic_write_bytes(path, buf.getvalue())
        self.path = Path(path).resolve()
        return self.path

    @classmethod
    def load(cls, path: str | Path) -> "LearnedDynamics":
        p = Path(path)
        if not p.is_file():
            raise InputError("learned dynamics weights not found", file=p, field="dynamics.path",
                             expected="a file written by robot-irl dynamics train")
        blob = torch.load(p, weights_only=True)
        cfg = {"structure": "delta", **blob["cfg"]}  # files from before the fk structure are delta models
        frames = blob.get("frames")
        m = cls(blob["n_joints"], blob["n_keypoints"], blob["lower"], blob["upper"], DynamicsTrainConfig(**cfg),
                joints=blob.get("joints"), frames=None if frames is None else frames_from_dicts(frames, file=str(p)),
                urdf=blob.get("urdf"),
                observation=None if blob.get("observation") is None else json.loads(blob["observation"]))
        m.net.load_state_dict(blob["net"])
        m.in_mean, m.in_std, m.out_mean, m.out_std = blob["norm"]
        if m.tnet is not None:
            m.tnet.load_state_dict(blob["tnet"])
            m.t_norm = list(blob["t_norm"])
        m.path = p.resolve()
        return m


def _transitions(x: np.ndarray, q: np.ndarray, u: np.ndarray):
    """Flatten episodes into (x, q, u) -> (dx, dq) pairs, dropping any with a missing value."""
    X = np.concatenate([x[:, :-1].reshape(*u.shape[:2], -1), q[:, :-1], u], -1).reshape(-1, x.shape[2] * 3 + 2 * u.shape[-1])
    Y = np.concatenate([(x[:, 1:] - x[:, :-1]).reshape(*u.shape[:2], -1), q[:, 1:] - q[:, :-1]], -1)
    Y = Y.reshape(-1, Y.shape[-1])
    ok = np.isfinite(X).all(1) & np.isfinite(Y).all(1)
    return X[ok], Y[ok]


def _joint_transitions(q: np.ndarray, u: np.ndarray):
    """(q, u) -> residual q' - q - u of how the joints really followed the action (``fk_joint``)."""
    X = np.concatenate([q[:, :-1], u], -1).reshape(-1, 2 * u.shape[-1])
    Y = (q[:, 1:] - q[:, :-1] - u).reshape(-1, u.shape[-1])
    ok = np.isfinite(X).all(1) & np.isfinite(Y).all(1)
    return X[ok], Y[ok]


def _fit(net: _Ensemble, X: torch.Tensor, Y: torch.Tensor, norm: list[torch.Tensor], cfg: DynamicsTrainConfig) -> None:
    """Minibatch Adam on standardised (X, Y), a separate shuffle per ensemble member."""
    Zn, Yn = (X - norm[0]) / norm[1], (Y - norm[2]) / norm[3]
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    for _ in range(cfg.epochs):
        perm = torch.stack([torch.randperm(len(Zn)) for _ in range(cfg.ensemble)])  # bootstrap-like per member
        for s in range(0, len(Zn), cfg.batch):
            idx = perm[:, s:s + cfg.batch]
            loss = (net(Zn[idx]) - Yn[idx]).square().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()


def _states(x: np.ndarray, q: np.ndarray):
    """Every observed (joint state -> keypoints) pair, for the ``fk`` structure."""
    X, Y = q.reshape(-1, q.shape[-1]), x.reshape(-1, x.shape[2] * 3)
    ok = np.isfinite(X).all(1) & np.isfinite(Y).all(1)
    return X[ok], Y[ok]


def train_dynamics(x: np.ndarray, q: np.ndarray, u: np.ndarray, *, lower: Any, upper: Any,
                   cfg: DynamicsTrainConfig | None = None, joints: list[str] | None = None,
                   frames: list[KeypointFrame] | None = None, urdf: str | Path | None = None,
                   observation: dict[str, Any] | None = None) -> tuple[LearnedDynamics, dict[str, float]]:
    """Fit on episodes ``x [N, T, K, 3]`` (metres), ``q [N, T, n]``, ``u [N, T-1, n]``; returns the
    model and held-out errors (cm): ``one_step_err_cm`` and ``multistep_err_cm`` (open loop, mean
    keypoint distance at step ``cfg.multistep``). ``joints``/``frames``/``urdf``: what the data's
    robot is (from ``collect_exploration``), kept in the model so ``robot-irl run`` can drive it;
    ``observation``: for keypoints seen by a learned detector, its description instead of frames."""
    cfg = cfg or DynamicsTrainConfig()
    x, q, u = (np.asarray(a, dtype=np.float64) for a in (x, q, u))
    if x.ndim != 4 or q.shape[:2] != x.shape[:2] or u.shape[:2] != (x.shape[0], x.shape[1] - 1):
        raise InputError(f"shapes x{x.shape} q{q.shape} u{u.shape} do not match", field="episodes",
                         expected="x [N, T, K, 3], q [N, T, n], u [N, T-1, n]")
    if cfg.structure not in STRUCTURES:
        raise InputError(f"structure={cfg.structure!r}", field="structure", expected=f"one of {STRUCTURES}")
    N = x.shape[0]
    n_val = max(1, int(round(cfg.holdout * N))) if N > 1 else 0
    rng = np.random.default_rng(cfg.seed)
    order = rng.permutation(N)
    val, tr = order[:n_val], order[n_val:]
    Xtr, Ytr = _states(x[tr], q[tr]) if cfg.structure in ("fk", "fk_joint") else _transitions(x[tr], q[tr], u[tr])
    if len(Xtr) < 2:
        raise InputError("too few complete transitions to train on", field="episodes",
                         expected="episodes with observed keypoints")
    torch.manual_seed(cfg.seed)
    model = LearnedDynamics(q.shape[-1], x.shape[2], lower, upper, cfg, joints=joints, frames=frames, urdf=urdf,
                            observation=observation)
    Xt, Yt = torch.as_tensor(Xtr), torch.as_tensor(Ytr)
    model.in_mean, model.in_std = Xt.mean(0), Xt.std(0).clamp(min=1e-6)
    model.out_mean, model.out_std = Yt.mean(0), Yt.std(0).clamp(min=1e-6)
    _fit(model.net, Xt, Yt, [model.in_mean, model.in_std, model.out_mean, model.out_std], cfg)
    if model.tnet is not None:
        Xj, Yj = _joint_transitions(q[tr], u[tr])
        Xj, Yj = torch.as_tensor(Xj), torch.as_tensor(Yj)
        model.t_norm = [Xj.mean(0), Xj.std(0).clamp(min=1e-6), Yj.mean(0), Yj.std(0).clamp(min=1e-6)]
        _fit(model.tnet, Xj, Yj, model.t_norm, cfg)
    return model, (evaluate_dynamics(model, x[val], q[val], u[val], cfg.multistep) if n_val else {})


@torch.no_grad()
def evaluate_dynamics(model: KeypointDynamics, x: np.ndarray, q: np.ndarray, u: np.ndarray,
                      steps: int = 10) -> dict[str, float]:
    """Held-out prediction errors: keypoints (cm) one step and open loop over ``steps`` steps;
    joints (rad, mean absolute) one step."""
    X, Q, U = (torch.as_tensor(np.asarray(a, dtype=np.float64)) for a in (x, q, u))
    N, T = X.shape[:2]
    r1 = model.rollout(Q[:, :-1].reshape(-1, Q.shape[-1]), U.reshape(-1, 1, U.shape[-1]),
                       X[:, :-1].reshape(-1, *X.shape[2:]))
    one = r1.x[:, -1].reshape(X[:, 1:].shape)
    one_err = torch.linalg.norm(one - X[:, 1:], dim=-1)
    joint_err = (r1.q[:, -1].reshape(Q[:, 1:].shape) - Q[:, 1:]).abs()
    h = min(steps, T - 1)
    starts = range(0, T - h)
    ms = []
    for s in starts:
        r = model.rollout(Q[:, s], U[:, s:s + h], X[:, s])
        ms.append(torch.linalg.norm(r.x[:, -1] - X[:, s + h], dim=-1))
    ms_err = torch.stack(ms)
    return {"one_step_err_cm": float(100 * one_err.nanmean()), "multistep_err_cm": float(100 * ms_err.nanmean()),
            "multistep_steps": float(h), "joint_one_step_err_rad": float(joint_err.nanmean())}


@torch.no_grad()
def dynamics_latents(learned_model: LearnedDynamics, x: Any, q: Any, u: Any) -> np.ndarray:
    """Hidden features of a learned dynamics model for transitions (x, q, u), for latent maps.

    ``x [N, K, 3]`` keypoints (metres), ``q [N, n]`` joint state, ``u [N, n]`` joint-delta action
    (numpy or tensors; rows holding NaN give NaN rows — drop them before diagnosing).
    Returns ``[N, E * hidden]`` float64: the last hidden layer's tanh activations (values in
    [-1, 1]) of every ensemble member, concatenated member by member (member e in columns
    ``e*hidden .. (e+1)*hidden - 1``). Members' units are not aligned, so they are concatenated,
    not averaged.
    """
    m = learned_model
    X = torch.as_tensor(np.asarray(x, dtype=np.float64), dtype=m.dtype)
    Q = torch.as_tensor(np.asarray(q, dtype=np.float64), dtype=m.dtype)
    U = torch.as_tensor(np.asarray(u, dtype=np.float64), dtype=m.dtype)
    N = X.shape[0]
    if X.shape[1:] != (m.n_keypoints, 3) or Q.shape != (N, m.n_joints) or U.shape != (N, m.n_joints):
        raise InputError(f"shapes x{tuple(X.shape)} q{tuple(Q.shape)} u{tuple(U.shape)}", field="x, q, u",
                         expected=f"x [N, {m.n_keypoints}, 3], q [N, {m.n_joints}], u [N, {m.n_joints}]")
    z = ((Q if m.fk else torch.cat([X.reshape(N, -1), Q, U], -1)) - m.in_mean) / m.in_std
    _, acts = m.net(z[None].expand(m.cfg.ensemble, -1, -1), with_acts=True)
    h = acts[-1]                                  # [E, N, hidden]
    return h.permute(1, 0, 2).reshape(N, -1).numpy()
