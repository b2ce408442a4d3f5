"""Model-based inverse RL (after Das et al., CoRL 2020): costs, bilevel learner, baselines, runs.

Entry points::

    run = fit_cost(demos, dynamics, "timedep", LearnerConfig(), run_dir="runs/x")
    actions, keypoints = plan(run, q0, goal_keypoints)
    run = load_run("runs/x")

Names load on first use (robot_irl.core.lazy): importing the CLI does not load torch.
"""
from robot_irl.core.lazy import lazy_exports

_EXPORTS = {
    "fit_bc": "baselines", "fit_bc_mlp": "baselines", "fit_feature_matching": "baselines",
    "BCMLPConfig": "bc",
    "LearnerConfig": "config",
    "COST_TYPES": "costs", "Cost": "costs", "make_cost": "costs",
    "DemoSet": "demos", "load_keypoint_file": "demos",
    "InnerConfig": "inner", "optimise_actions": "inner",
    "cost_latents": "latents",
    "TrainingDiverged": "learner", "fit_cost": "learner",
    "trajectory_metrics": "metrics",
    "TrainedRun": "run", "load_run": "run", "plan": "run",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
