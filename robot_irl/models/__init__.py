"""Keypoint dynamics models behind one interface (see base.py): kinematic from any URDF, learned MLP.
Names load on first use (robot_irl.core.lazy): importing the CLI does not load torch."""
from robot_irl.core.lazy import lazy_exports

_EXPORTS = {
    "KeypointDynamics": "base", "Rollout": "base",
    "KeypointFrame": "frames", "frames_from_spec": "frames", "parse_keypoint_frames": "frames",
    "KinematicDynamics": "kinematic",
    "LearnedDynamics": "learned", "dynamics_latents": "learned", "train_dynamics": "learned",
    "DYNAMICS_TYPES": "registry", "dynamics_from_config": "registry",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
