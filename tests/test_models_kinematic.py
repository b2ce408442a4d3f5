import numpy as np
import pytest
import torch

from robot_irl.errors import InputError, UnknownNameError
from robot_irl.models import KeypointFrame, KinematicDynamics, parse_keypoint_frames
from test_irl_helpers import IIWA_Q0, IIWA_URDF, PANDA_Q0, PANDA_URDF, iiwa, panda


@pytest.mark.parametrize("make,q0", [(iiwa, IIWA_Q0), (panda, PANDA_Q0)])
def test_closed_form_jacobian_matches_autograd(make, q0):
    m = make()
    q = torch.tensor([q0], dtype=torch.float64) + 0.1
    _, J = m.keypoints(q, jacobian=True)
    Jn = torch.autograd.functional.jacobian(lambda v: m.keypoints(v).reshape(-1), q).reshape(m.n_keypoints * 3, -1)
    assert torch.allclose(J[0], Jn, atol=1e-10)


def test_keypoints_sit_at_offsets_along_flange():
    m = iiwa()
    x = m.keypoints(torch.tensor([IIWA_Q0], dtype=torch.float64))[0]
    assert torch.linalg.norm(x[1] - x[0]).item() == pytest.approx(0.05, abs=1e-9)


def test_default_joints_are_those_moving_keypoints():
    m = KinematicDynamics(PANDA_URDF, [KeypointFrame("h", "panda_hand", (0, 0, 0.1))])
    assert m.joints == [f"panda_joint{i}" for i in range(1, 8)]
    assert m.n_joints == 7


def test_rollout_clips_to_joint_limits():
    m = iiwa()
    q0 = torch.tensor([IIWA_Q0], dtype=torch.float64)
    u = torch.full((1, 3, 7), 2.0, dtype=torch.float64)
    r = m.rollout(q0, u)
    assert torch.all(r.q <= m.upper + 1e-12)
    assert torch.allclose(r.q[0, -1], m.upper)


def test_unknown_link_lists_valid_names():
    with pytest.raises(UnknownNameError) as e:
        KinematicDynamics(IIWA_URDF, [KeypointFrame("a", "flange", (0, 0, 0))])
    assert "lbr_iiwa_link_7" in str(e.value)


def test_missing_urdf_is_input_error(tmp_path):
    with pytest.raises(InputError, match="URDF"):
        KinematicDynamics(tmp_path / "nope.urdf", [KeypointFrame("a", "l", (0, 0, 0))])


def test_parse_keypoint_frames_string_and_json(tmp_path):
    fr = parse_keypoint_frames("a@lbr_iiwa_link_7:0,0,0.05;b@lbr_iiwa_link_7:0,0,0.1")
    assert [f.offset for f in fr] == [(0, 0, 0.05), (0, 0, 0.1)]
    p = tmp_path / "f.json"
    p.write_text('[{"name": "a", "link": "panda_hand", "offset": [0, 0, 0.1]}]')
    assert parse_keypoint_frames(str(p))[0].link == "panda_hand"
    with pytest.raises(InputError):
        parse_keypoint_frames("a@link:1,2")


def test_inverse_kinematics_recovers_start():
    m = iiwa()
    x = m.keypoints(torch.tensor([IIWA_Q0], dtype=torch.float64) + 0.05)
    q = m.inverse_kinematics(x, torch.tensor(IIWA_Q0, dtype=torch.float64))
    assert np.allclose(m.keypoints(q).numpy(), x.numpy(), atol=1e-6)


def test_serial_chain_fk_matches_the_tree_fk_and_falls_back_off_one_path():
    """The folded serial FK (what the learner runs) gives the tree FK's keypoints, Jacobian and
    gradients through both; keypoints on two branches (the Panda's fingers) keep the tree FK."""
    dyn = KinematicDynamics(IIWA_URDF, [KeypointFrame("a", "lbr_iiwa_link_7", (0.0, 0.07, -0.005)),
                                        KeypointFrame("b", "lbr_iiwa_link_5", (0.0, 0.1, 0.1))])
    assert dyn._serial is not None
    q = (torch.tensor(IIWA_Q0, dtype=torch.float64) + 0.3 * torch.rand(4, 7, dtype=torch.float64)).requires_grad_()
    out = []
    for serial in (dyn._serial, None):
        dyn._serial = serial
        x, J = dyn.keypoints(q, jacobian=True)
        (g,) = torch.autograd.grad((x ** 2).sum() + (J ** 2).sum(), q)
        out.append((x, J, g))
    for a, b in zip(*out):
        assert torch.allclose(a, b, atol=1e-12, rtol=0)
    fingers = KinematicDynamics(PANDA_URDF, [KeypointFrame("l", "panda_leftfinger", (0.0, 0.0, 0.02)),
                                             KeypointFrame("r", "panda_rightfinger", (0.0, 0.0, 0.02))])
    assert fingers._serial is None
