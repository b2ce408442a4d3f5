"""Latents of trained runs: the learned cost's per-state features, the learned dynamics' hidden units.

Both come from the stages that own the models (``robot_irl.irl.cost_latents``,
``robot_irl.models.dynamics_latents``); this module only finds the run's model and data and turns
them into :class:`Latents` with labels a user can colour by.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from robot_irl.diagnostics.latents import Latents, register_collector
from robot_irl.errors import InputError
from robot_irl.runs import RunDir


def _run_demos(trained: Any, library: str | None) -> tuple[Any, np.ndarray]:
    """The run's recorded demos (file or library query) and each demo's split (train/test/unused)."""
    from robot_irl.irl import load_keypoint_file
    from robot_irl.irl.library_demos import demos_from_library, learned_demos_from_library

    info = trained.demo_info or {}
    if info.get("file"):
        demos = load_keypoint_file(info["file"])
    elif info.get("query") is not None:
        from robot_irl.library import Library

        lib, rows = Library.open(library or info.get("library")), info.get("rows") or 10
        if info.get("keypoints") == "learned":   # remade by the detector of the run's learned dynamics
            demos, _ = learned_demos_from_library(lib, info["query"], rows=rows,
                                                  model=str(getattr(trained.dynamics, "path", "") or "") or None)
        else:
            demos, _ = demos_from_library(lib, info["query"], rows=rows, keypoints=info.get("keypoints", "auto"),
                                          names=info.get("keypoint_names"))
    else:
        raise InputError("the run records no demos", file=Path(trained.path) / "config.json", field="demos",
                         expected="a run trained by `robot-irl train --demos FILE.npz|QUERY`")
    split = np.full(len(demos), "unused", dtype=object)
    split[info.get("test_indices") or []] = "test"
    split[info.get("train_indices") or list(range(len(demos)))] = "train"
    return demos, split.astype(str)


def collect_cost(source: str | Path, *, n_goals: int = 8, goal_noise_m: float = 0.03, seed: int = 0,
                 library: str | None = None) -> Latents:
    """Cost latents of the IRL run at ``source``: every demo of the run (train and test) planned to
    its own goal and ``n_goals - 1`` perturbed goals, one row per planned state (see
    ``robot_irl.irl.cost_latents``), so the map has ``demos x n_goals x horizon`` points.

    Labels: demo, goal, perturbed, split (train/test), step and cost (continuous).
    """
    from robot_irl.irl import cost_latents, load_run

    trained = load_run(source)
    demos, split = _run_demos(trained, library)
    X, labels = cost_latents(trained, demos, n_goals=n_goals, goal_noise_m=goal_noise_m, seed=seed)
    index = {name: i for i, name in enumerate(demos.names)}
    labels = {"demo": labels["demo"], "split": split[[index[d] for d in labels["demo"]]],
              "perturbed": labels["perturbed"].astype(str), "goal": labels["goal"],
              "step": labels["step"], "cost": labels["cost"]}
    return Latents(X=X, labels=labels, name="cost")


def _dynamics_source(source: Path) -> tuple[Path, Path | None]:
    """(model file, the exploration data it was trained on) for a dynamics run, an IRL run with
    learned dynamics, or a model file."""
    if source.is_file():
        return source, None
    cfg = RunDir(source).config()
    if cfg.get("kind") == "dynamics_train":
        data = cfg.get("data")
        return source / "model.pt", Path(data) if data else None
    dyn = cfg.get("dynamics") or {}
    if dyn.get("type") != "learned" or not dyn.get("path"):
        raise InputError(f"run kind {cfg.get('kind')!r} has no learned dynamics model", file=source / "config.json",
                         field="dynamics", expected="a `robot-irl dynamics train` run, or an IRL run trained with "
                                                    "--dynamics learned")
    model = Path(dyn["path"]) if Path(dyn["path"]).is_absolute() else source / dyn["path"]
    return _dynamics_source(model.parent) if (model.parent / "config.json").is_file() else (model, None)


def collect_dynamics(source: str | Path, *, data: str | Path | None = None) -> Latents:
    """Hidden features of the learned dynamics at ``source`` for every transition of its
    exploration data (``data`` overrides the file recorded in the run).

    Labels: episode, segment (``plan`` rows vs the random ``extra`` rows appended to each
    episode), step (row, normalised), action_rad (size of the commanded joint delta) and
    err_cm (the model's one-step keypoint error on that transition: where in the map it is wrong).
    """
    import torch

    from robot_irl.models import LearnedDynamics, dynamics_latents
    from robot_irl.models.cli import load_exploration

    model_path, recorded = _dynamics_source(Path(source))
    data_path = Path(data) if data is not None else recorded
    if data_path is None:
        raise InputError("no exploration data recorded for this model", file=source, field="data",
                         expected="--data FILE.npz written by `robot-irl dynamics collect`")
    d = load_exploration(data_path)
    model = LearnedDynamics.load(model_path)
    x, q, u = np.asarray(d["x"], float), np.asarray(d["q"], float), np.asarray(d["u"], float)
    N, T1 = u.shape[:2]
    xs, qs, us = x[:, :-1].reshape(N * T1, *x.shape[2:]), q[:, :-1].reshape(N * T1, -1), u.reshape(N * T1, -1)
    H = dynamics_latents(model, xs, qs, us)
    with torch.no_grad():
        pred = model.rollout(torch.as_tensor(qs, dtype=model.dtype), torch.as_tensor(us, dtype=model.dtype)[:, None],
                             torch.as_tensor(xs, dtype=model.dtype)).x[:, -1].numpy()
    err = 100 * np.linalg.norm(pred - x[:, 1:].reshape(pred.shape), axis=-1).mean(-1)
    plan_rows = int(d["rows"]) - 1 if "rows" in d else T1
    t = np.tile(np.arange(T1), N)
    seeds = d["seeds"] if "seeds" in d else np.arange(N)
    labels = {"episode": np.repeat(np.asarray(seeds).astype(str), T1),
              "segment": np.where(t < plan_rows, "plan", "extra"),
              "step": t / max(T1 - 1, 1), "action_rad": np.linalg.norm(us, axis=1), "err_cm": err}
    keep = np.isfinite(H).all(1) & np.isfinite(err)
    return Latents(X=H[keep], labels={k: np.asarray(v)[keep] for k, v in labels.items()}, name="dynamics")


register_collector("cost", collect_cost)
register_collector("dynamics", collect_dynamics)
