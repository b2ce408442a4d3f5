import numpy as np
import pytest
import torch

from robot_irl.models import LearnedDynamics, train_dynamics
from robot_irl.models.learned import DynamicsTrainConfig
from test_irl_helpers import IIWA_Q0, iiwa


def _episodes(n=24, T=8, seed=0):
    m = iiwa()
    rng = np.random.default_rng(seed)
    q0 = torch.tensor(IIWA_Q0, dtype=torch.float64) + torch.as_tensor(rng.normal(0, 0.2, (n, 7)))
    u = torch.as_tensor(rng.normal(0, 0.05, (n, T - 1, 7)))
    r = m.rollout(q0, u)
    return m, r.x.numpy(), r.q.numpy(), u.numpy()


def test_learned_dynamics_fits_and_reports_heldout_errors(tmp_path):
    m, x, q, u = _episodes()
    cfg = DynamicsTrainConfig(hidden=32, ensemble=2, epochs=60, batch=64, multistep=5, structure="delta")
    model, metrics = train_dynamics(x, q, u, lower=m.lower, upper=m.upper, cfg=cfg)
    step = 100 * np.linalg.norm(x[:, 1:] - x[:, :-1], axis=-1).mean()
    assert metrics["one_step_err_cm"] < 0.5 * step       # better than predicting no motion
    assert metrics["multistep_err_cm"] >= 0 and metrics["multistep_steps"] == 5
    path = model.save(tmp_path / "dyn.pt")
    again = LearnedDynamics.load(path)
    q0, x0, uu = (torch.as_tensor(a) for a in (q[:2, 0], x[:2, 0], u[:2]))
    assert torch.allclose(model.rollout(q0, uu, x0).x, again.rollout(q0, uu, x0).x)


def test_fk_structure_fits_keypoints_as_a_function_of_the_joints(tmp_path):
    m, x, q, u = _episodes()
    cfg = DynamicsTrainConfig(hidden=32, ensemble=2, epochs=60, batch=64, multistep=5, lr=5e-3)
    model, metrics = train_dynamics(x, q, u, lower=m.lower, upper=m.upper, cfg=cfg)
    assert model.fk
    spread = 100 * np.linalg.norm(x - x.reshape(-1, 2, 3).mean(0), axis=-1).mean()
    assert metrics["one_step_err_cm"] < 0.5 * spread     # better than predicting the mean keypoints
    # state-consistent: the keypoints of a row depend only on that row's joints
    q0 = torch.as_tensor(q[:1, 0])
    a = torch.as_tensor(u[:1, :3])
    b = a.clone()
    b[:, 0] += 0.02
    b[:, 1] -= 0.02
    ra, rb = model.rollout(q0, a), model.rollout(q0, b)
    assert torch.allclose(ra.x[:, 2:], rb.x[:, 2:]) and not torch.allclose(ra.x[:, 1], rb.x[:, 1])
    again = LearnedDynamics.load(model.save(tmp_path / "fk.pt"))
    assert again.fk and torch.allclose(again.rollout(q0, a).x, ra.x)


@pytest.mark.parametrize("structure", ["fk", "fk_joint", "delta"])
def test_learned_action_jacobian_matches_autograd(structure):
    m, x, q, u = _episodes(n=6)
    model, _ = train_dynamics(x, q, u, lower=m.lower, upper=m.upper,
                              cfg=DynamicsTrainConfig(hidden=16, ensemble=2, epochs=2, holdout=0.0, structure=structure))
    q0, x0 = torch.as_tensor(q[:1, 0]), torch.as_tensor(x[:1, 0])
    u1 = torch.as_tensor(u[:1, :1])
    J = model.rollout(q0, u1, x0, jacobian=True).jac[0, 0]
    Jn = torch.autograd.functional.jacobian(lambda a: model.rollout(q0, a, x0).x[0, 1].reshape(-1), u1)
    assert torch.allclose(J, Jn.reshape(6, 7), atol=1e-8)
    if structure == "fk_joint":  # two rows: the second row's Jacobian goes through the learned transition
        u2 = torch.as_tensor(u[:1, :2])
        J2 = model.rollout(q0, u2, x0, jacobian=True).jac[0, 1]
        Jn2 = torch.autograd.functional.jacobian(lambda a: model.rollout(q0, a, x0).x[0, 2].reshape(-1), u2)
        assert torch.allclose(J2, Jn2.reshape(6, 2, 7)[:, 1], atol=1e-8)


def test_fk_joint_learns_how_the_arm_really_tracks(tmp_path):
    """Joints that lag (q' = q + 0.7 u): fk_joint learns it, fk assumes q' = q + u."""
    m = iiwa()
    rng = np.random.default_rng(1)
    n, T = 24, 8
    q = [torch.tensor(IIWA_Q0, dtype=torch.float64) + torch.as_tensor(rng.normal(0, 0.2, (n, 7)))]
    u = torch.as_tensor(rng.normal(0, 0.05, (n, T - 1, 7)))
    for t in range(T - 1):
        q.append(q[-1] + 0.7 * u[:, t])
    Q = torch.stack(q, 1)
    x = m.keypoints(Q).numpy()
    errs = {}
    for structure in ("fk", "fk_joint"):
        cfg = DynamicsTrainConfig(hidden=32, ensemble=2, epochs=60, batch=64, multistep=5, lr=5e-3, structure=structure)
        model, metrics = train_dynamics(x, Q.numpy(), u.numpy(), lower=m.lower, upper=m.upper, cfg=cfg)
        errs[structure] = metrics["joint_one_step_err_rad"]
    lag = 0.3 * u.abs().mean().item()                      # what assuming q' = q + u gets wrong
    assert errs["fk"] == pytest.approx(lag, rel=0.2)
    assert errs["fk_joint"] < 0.3 * errs["fk"]
    again = LearnedDynamics.load(model.save(tmp_path / "fkj.pt"))
    q0, uu = Q[:2, 0], u[:2]
    assert torch.allclose(again.rollout(q0, uu).q, model.rollout(q0, uu).q)
    assert "r(q, u)" in again.learns()


def test_unknown_structure_is_refused():
    from robot_irl.errors import InputError

    with pytest.raises(InputError, match="structure"):
        LearnedDynamics(7, 2, -np.ones(7), np.ones(7), DynamicsTrainConfig(structure="rnn"))
