import pytest
import torch

from robot_irl.errors import UnknownNameError
from robot_irl.irl.costs import cost_from_config, make_cost


@pytest.mark.parametrize("kind,P", [("default", 1), ("weighted", 1), ("timedep", 9), ("rbf", 5)])
def test_weights_shape_and_rebuild(kind, P):
    c = make_cost(kind, 6, 9)
    assert c.theta.shape == (P, 6)
    assert c.weights().shape == (9, 6)
    c2 = cost_from_config(c.to_config())
    c2.load_state_dict(c.state_dict())
    assert torch.equal(c2.weights(), c.weights())


def test_cost_is_relative_to_goal():
    c = make_cost("timedep", 3, 4)
    x = torch.randn(2, 4, 3, dtype=torch.float64)
    g = torch.randn(2, 3, dtype=torch.float64)
    shift = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    assert torch.allclose(c(x, g), c(x + shift, g + shift))


def test_timedep_interpolates_to_other_horizon():
    c = make_cost("timedep", 1, 3)
    with torch.no_grad():
        c.theta.copy_(torch.tensor([[0.0], [1.0], [2.0]]))
    w = c.weights(5)[:, 0]
    assert w[0].item() == pytest.approx(0.0) and w[-1].item() == pytest.approx(2.0)
    assert torch.all(torch.diff(w) >= 0)


def test_nonneg_projection():
    c = make_cost("rbf", 2, 9, nonneg=True)
    with torch.no_grad():
        c.theta.fill_(-1.0)
    c.project_()
    assert torch.all(c.weights() >= 0)


def test_default_cost_has_nothing_to_learn():
    c = make_cost("default", 6, 9)
    assert not any(p.requires_grad for p in c.parameters())


def test_unknown_cost_type():
    with pytest.raises(UnknownNameError, match="timedep"):
        make_cost("fancy", 6, 9)
