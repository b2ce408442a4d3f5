#!/usr/bin/env python
"""The paper's MBIRL benchmark (Das et al., CoRL 2020), rebuilt on pybullet_data's Kuka iiwa.

Start q0 = [0, 0, 0, 1.5708, 0, 1.0367, 0]; two keypoints on the flange (lbr_iiwa_link_7), 5 cm and
10 cm along its z axis; 10 rows (start + 9 joint-delta actions). Six L-shaped demos: goal1 = start
keypoints - 20 cm in x + one N(0, 1 cm) draw; goal2 = goal1 - 30 cm in z + another draw; rows 0-4
go linearly in x to goal1, rows 5-9 linearly in z to goal2. Train on demos 0-2, test on 3-4.

Every cost type and the baselines run through the same harness; CPU seconds (user+sys of this
process, time.process_time) are measured per method around training + evaluation. The paper's own
recipe (plain gradient inner step, 1 inner step, 100 outer iterations) is run too, for reference.
Figures in cm as defined in the issue. Last line: one JSON object.

    .venv/bin/python scripts/bench_irl.py [--seed 0]
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import pybullet_data
import torch

from robot_irl.irl import DemoSet, InnerConfig, LearnerConfig, fit_bc, fit_cost, fit_feature_matching
from robot_irl.models import KinematicDynamics, KeypointFrame

Q0 = [0.0, 0.0, 0.0, 1.5708, 0.0, 1.0367, 0.0]


def make_demos(model: KinematicDynamics, seed: int) -> DemoSet:
    rng = np.random.default_rng(seed)
    x0 = model.keypoints(torch.tensor([Q0], dtype=model.dtype))[0].numpy()
    demos = []
    for _ in range(6):
        g1 = x0.copy()
        g1[:, 0] += -0.20 + 0.01 * rng.standard_normal()
        g2 = g1.copy()
        g2[:, 2] += -0.30 + 0.01 * rng.standard_normal()
        d = np.repeat(x0[None], 10, 0)
        d[:5, :, 0] = np.linspace(x0[:, 0], g1[:, 0], 5)
        d[5:, :, 0] = g1[:, 0]
        d[5:, :, 2] = np.linspace(g1[:, 2], g2[:, 2], 5)
        demos.append(d)
    return DemoSet(np.stack(demos), np.arange(10.0), q0=np.array(Q0), source="bench_irl")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0, help="seed of the demo noise draws")
    args = ap.parse_args()
    torch.set_num_threads(1)
    urdf = os.path.join(pybullet_data.getDataPath(), "kuka_iiwa", "model.urdf")
    frames = [KeypointFrame("flange_5cm", "lbr_iiwa_link_7", (0, 0, 0.05)),
              KeypointFrame("flange_10cm", "lbr_iiwa_link_7", (0, 0, 0.10))]
    model = KinematicDynamics(urdf, frames)
    demos = make_demos(model, args.seed)
    train, test = demos.subset([0, 1, 2]), demos.subset([3, 4])
    cfg = LearnerConfig()
    paper = LearnerConfig(outer_iters=100, lr=1e-2, lr_final_frac=1.0, init_weight=0.01,
                          inner=InnerConfig(method="gd", steps=1, step_size=1e-3))
    methods = {
        "default": lambda: fit_cost(train, model, "default", cfg, eval_demos=test),
        "weighted": lambda: fit_cost(train, model, "weighted", cfg, eval_demos=test),
        "timedep": lambda: fit_cost(train, model, "timedep", cfg, eval_demos=test),
        "rbf": lambda: fit_cost(train, model, "rbf", cfg, eval_demos=test),
        "feature_matching": lambda: fit_feature_matching(train, model, cfg, eval_demos=test),
        "bc": lambda: fit_bc(train, model, cfg, eval_demos=test),
        "paper_gd_weighted": lambda: fit_cost(train, model, "weighted", paper, eval_demos=test),
        "paper_gd_timedep": lambda: fit_cost(train, model, "timedep", paper, eval_demos=test),
        "paper_gd_rbf": lambda: fit_cost(train, model, "rbf", paper, eval_demos=test),
    }
    out: dict[str, float] = {}
    print(f"{'method':<20}{'train loss':>12}{'test loss':>12}{'test final cm':>15}{'test path cm':>14}{'cpu s':>8}")
    for name, fit in methods.items():
        t0 = time.process_time()
        run = fit()
        cpu = time.process_time() - t0
        m = run.metrics
        print(f"{name:<20}{m['train_irl_loss']:>12.3f}{m['test_irl_loss']:>12.3f}{m['test_final_err_cm']:>15.3f}"
              f"{m['test_path_err_cm']:>14.3f}{cpu:>8.2f}")
        out.update({f"{name}_train_loss": m["train_irl_loss"], f"{name}_test_loss": m["test_irl_loss"],
                    f"{name}_test_final_cm": m["test_final_err_cm"], f"{name}_test_path_cm": m["test_path_err_cm"],
                    f"{name}_cpu_s": cpu})
    out["max_cpu_s_per_cost"] = max(out[f"{k}_cpu_s"] for k in ("default", "weighted", "timedep", "rbf"))
    out["inner_steps"] = cfg.inner.steps
    out["outer_iters"] = cfg.outer_iters
    out["seed"] = args.seed
    ok = all(out[f"{k}_test_final_cm"] <= 1.0 and out[f"{k}_test_loss"] <= 30 for k in ("timedep", "rbf")) \
        and out["max_cpu_s_per_cost"] <= 22
    print(f"targets (timedep & rbf: final <= 1.0 cm, loss <= 30, cpu <= 22 s per cost): {'met' if ok else 'NOT met'}")
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
