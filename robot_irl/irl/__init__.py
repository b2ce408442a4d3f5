"""Model-based inverse RL (after Das et al., CoRL 2020): costs, bilevel learner, baselines, runs.

Entry points::

    run = fit_cost(demos, dynamics, "timedep", LearnerConfig(), run_dir="runs/x")
    actions, keypoints = plan(run, q0, goal_keypoints)
    run = load_run("runs/x")
"""
from robot_irl.irl.baselines import fit_bc, fit_feature_matching
from robot_irl.irl.config import LearnerConfig
from robot_irl.irl.costs import COST_TYPES, Cost, make_cost
from robot_irl.irl.demos import DemoSet, load_keypoint_file
from robot_irl.irl.inner import InnerConfig, optimise_actions
from robot_irl.irl.latents import cost_latents
from robot_irl.irl.learner import TrainingDiverged, fit_cost
from robot_irl.irl.metrics import trajectory_metrics
from robot_irl.irl.run import TrainedRun, load_run, plan

__all__ = ["COST_TYPES", "Cost", "DemoSet", "InnerConfig", "LearnerConfig", "TrainedRun", "TrainingDiverged", "cost_latents",
           "fit_bc", "fit_cost", "fit_feature_matching", "load_keypoint_file", "load_run", "make_cost",
           "optimise_actions", "plan", "trajectory_metrics"]
