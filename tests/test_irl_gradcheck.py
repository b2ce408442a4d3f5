"""The core of the method: the outer gradient through the unrolled inner loop is the true gradient.

For every learnable cost, both inner methods and both cost normalisations, autograd's gradient of
the IRL loss with respect to the cost parameters (through ``optimise_actions(create_graph=True)``)
must match float64 central finite differences. Demos and steps are chosen so no joint reaches a
limit (clipping and the active set are piecewise: finite differences straddling a kink would differ).
"""
import pytest
import torch

from robot_irl.irl import LearnerConfig
from robot_irl.irl.batch import prepare
from robot_irl.irl.costs import make_cost
from robot_irl.irl.inner import InnerConfig, optimise_actions
from robot_irl.irl.metrics import irl_loss
from test_irl_helpers import IIWA_Q0, iiwa, l_demos

INNERS = {"gn": InnerConfig(method="gn", steps=3, step_size=0.5),
          "gd": InnerConfig(method="gd", steps=2, step_size=2e-5)}


@pytest.fixture(scope="module")
def setup():
    m = iiwa()
    cfg = LearnerConfig()
    b = prepare(l_demos(m, IIWA_Q0, n=2, rows=5, dx=-0.05, dz=-0.05), m, None, cfg)
    return m, b, cfg.length_scale


def _loss(m, b, scale, cost, inner):
    _, r = optimise_actions(m, cost.weights(b.horizon), b.q0, b.goal, b.horizon, inner, scale=scale, x0=b.x0,
                            create_graph=True)
    return irl_loss(scale * r.x.reshape(b.target.shape), b.target, b.mask).mean()


@pytest.mark.parametrize("norm", ["sum", "mean"])
@pytest.mark.parametrize("inner", sorted(INNERS))
@pytest.mark.parametrize("kind", ["weighted", "timedep", "rbf"])
def test_outer_gradient_matches_finite_differences(setup, kind, inner, norm):
    m, b, scale = setup
    cfg = INNERS[inner]
    cost = make_cost(kind, b.target.shape[-1], b.horizon, norm=norm, centres="integer")
    with torch.no_grad():  # the same effective weights (about 0.3) under either normalisation
        cost.theta.fill_(0.3 * (cost.mean_divisor(b.horizon) if norm == "mean" else 1.0))
    with torch.no_grad():  # distinct weights, so every parameter's gradient differs
        cost.theta.mul_(1 + 0.5 * torch.rand(cost.theta.shape, generator=torch.Generator().manual_seed(0),
                                             dtype=cost.theta.dtype))
    loss = _loss(m, b, scale, cost, cfg)
    (grad,) = torch.autograd.grad(loss, cost.theta)
    fd = torch.zeros_like(grad)
    eps = 1e-6
    with torch.no_grad():
        for i in range(cost.theta.numel()):
            th = cost.theta.view(-1)
            th[i] += eps
            up = _loss(m, b, scale, cost, cfg)
            th[i] -= 2 * eps
            down = _loss(m, b, scale, cost, cfg)
            th[i] += eps
            fd.view(-1)[i] = (up - down) / (2 * eps)
    _, r = optimise_actions(m, cost.weights(b.horizon).detach(), b.q0, b.goal, b.horizon, cfg, scale=scale, x0=b.x0)
    assert bool(((r.q > m.lower + 1e-3) & (r.q < m.upper - 1e-3)).all()), "a joint reached a limit"
    assert fd.abs().max() > 1e-6, "the loss does not depend on the cost: the check would be vacuous"
    rel = (grad - fd).norm() / fd.norm()
    assert rel <= 1e-4, f"{kind}/{inner}/{norm}: relative error {rel:.2e}"
