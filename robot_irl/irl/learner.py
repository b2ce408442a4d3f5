"""The bilevel learner (model-based IRL after Das et al., CoRL 2020).

Outer loop: Adam on the cost parameters, minimising the keypoint distance (IRL loss) between the
trajectories the inner loop produces and the demonstrations. Inner loop (inner.py): a few unrolled,
differentiable gradient-based updates of the action sequence under the cost, relative to each
demo's goal keypoints. All demos go through one batched tensor program per iteration
(``outer_batch="all"``), or, as the released code does, one Adam step per demo per pass
(``"per_demo"``, the ``paper`` recipe; an iteration is then one pass).

A run folder, when given, gets config.json, a checkpoint every ``checkpoint_every`` iterations
(resumable), the final weights, metrics.json, TensorBoard events (losses, weights as an image, a
trajectory plot) and plots/. A non-finite loss or gradient stops training with
:class:`TrainingDiverged`; the checkpoint on disk then holds the last good parameters.
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import math
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from tqdm import tqdm

from robot_irl.core.io import atomic_write_bytes
from robot_irl.errors import RobotIRLError
from robot_irl.irl.batch import Batch, prepare
from robot_irl.irl.config import LearnerConfig
from robot_irl.irl.costs import make_cost
from robot_irl.irl.demos import DemoSet
from robot_irl.irl.inner import optimise_actions
from robot_irl.irl.metrics import irl_loss
from robot_irl.irl.run import TrainedRun
from robot_irl.models.base import KeypointDynamics
from robot_irl.runs import RunDir


class TrainingDiverged(RobotIRLError):
    """The IRL loss (or its gradient) became NaN/inf; the run folder keeps the last good checkpoint."""


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` torch threads and restore the previous setting (tiny tensors: 1 is fastest)."""
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class _Logger:
    """TensorBoard + plots for a run folder; a no-op without one (benchmarks time the bare learner)."""

    def __init__(self, run_dir: Path | None) -> None:
        self.writer = None
        self.run_dir = run_dir
        if run_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(run_dir / "tb"))

    def scalars(self, it: int, **values: float) -> None:
        if self.writer:
            for k, v in values.items():
                self.writer.add_scalar(k, v, it)

    def weights(self, it: int, W: torch.Tensor) -> None:
        if self.writer:
            w = W.detach()
            img = (w - w.min()) / (w.max() - w.min()).clamp(min=1e-12)
            self.writer.add_image("cost/weights_rows_x_coords", img[None].float(), it)

    def trajectory(self, it: int, pred: torch.Tensor, demo: torch.Tensor, names: list[str] | None = None) -> None:
        if not self.writer:
            return
        fig = trajectory_figure(pred.detach().numpy(), demo.detach().numpy(), names)
        self.writer.add_figure("trajectory", fig, it, close=False)
        plots = self.run_dir / "plots"
        plots.mkdir(parents=True, exist_ok=True)
        fig.savefig(plots / "trajectory.png", dpi=80)
        import matplotlib.pyplot as plt

        plt.close(fig)

    def close(self) -> None:
        if self.writer:
            self.writer.close()


def trajectory_figure(pred: np.ndarray, demo: np.ndarray, names: list[str] | None = None):
    """x-z and x-y views of predicted (lines) vs demonstrated (crosses) keypoints, cm, demo 0; one
    colour per keypoint, the legend beside the axes (never over the paths)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = names or [f"kp{k}" for k in range(demo.shape[2])]
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.5))
    for ax, (a, b, lab) in zip(axes, [(0, 2, "x-z"), (0, 1, "x-y")]):
        for k in range(demo.shape[2]):
            c = f"C{k % 10}"
            ax.plot(100 * pred[0, :, k, a], 100 * pred[0, :, k, b], "o-", ms=3, color=c, label=f"{names[k]} optimised")
            ax.plot(100 * demo[0, :, k, a], 100 * demo[0, :, k, b], "x", color=c, label=f"{names[k]} demo")
        ax.set_title(lab + " (cm)")
        ax.set_aspect("equal", adjustable="datalim")
    axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    fig.tight_layout()
    return fig


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


#: how an interrupted fit_cost(run_dir=...) from Python is finished (what its incomplete marker says)
API_RESUME = "fit_cost(..., run_dir=..., resume=True) with the same demos"


def fit_cost(demos: DemoSet, dynamics: KeypointDynamics, cost_type: str, config: LearnerConfig | None = None, *,
             run_dir: str | Path | None = None, eval_demos: DemoSet | None = None, progress: bool = False,
             resume: bool = False, demo_info: dict[str, Any] | None = None,
             on_log: Callable[[int, TrainedRun], None] | None = None, on_log_every: int | None = None,
             eval_name: str = "test") -> TrainedRun:
    """Learn a cost of ``cost_type`` (costs.py) whose optimised trajectories reproduce ``demos``.

    ``eval_demos`` are planned and scored every ``log_every`` iterations (TensorBoard only) and at the
    end (metrics). With ``run_dir`` the run is saved there (and resumed from its checkpoint if
    ``resume``). ``on_log(iteration, trained_run)`` is called after every ``on_log_every`` (default
    ``log_every``) outer steps and after the last one, with the run holding the current cost (for
    diagnostics that look inside it, e.g. latent maps); it must not modify the cost. ``eval_name``
    names the ``eval_demos`` figures (``test_*``; a sweep's trials pass ``"val"``: they are scored on
    validation demos and never see the test demos). Returns the :class:`TrainedRun`.
    """
    cfg = config or LearnerConfig()
    with torch_threads(cfg.num_threads):
        torch.manual_seed(cfg.seed)
        b = prepare(demos, dynamics, cfg.rows, cfg)
        H, D = b.horizon, b.target.shape[-1]
        cost = make_cost(cost_type, D, H, nonneg=cfg.nonneg, init=cfg.init_weight, kernels=cfg.rbf_kernels,
                         width=cfg.rbf_width, centres=cfg.rbf_centres, norm=cfg.cost_norm, dtype=dynamics.dtype)
        info = {"source": demos.source, "names": demos.names, **(demo_info or {})}
        tr = TrainedRun("mbirl", dynamics, cfg, cost=cost, demo_info=info)
        rd = Path(run_dir) if run_dir is not None else None
        ev = prepare(eval_demos, dynamics, H + 1, cfg) if eval_demos is not None else None
        params = [p for p in cost.parameters() if p.requires_grad]
        history: list[float] = []
        start = 0
        owns_marker = False
        if params:
            opt = torch.optim.Adam(params, lr=cfg.lr)
            # "per_demo": one Adam step per demo per pass (the released code), else one on all of them
            parts = [_demo(b, i) for i in range(len(b.q0))] if cfg.outer_batch == "per_demo" else [b]
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(cfg.outer_iters * len(parts), 1),
                                                               eta_min=cfg.lr * cfg.lr_final_frac)
            ckpt = rd / "checkpoint.pt" if rd is not None else None
            if rd is not None:
                marker = RunDir(rd).incomplete()
                if marker is None or marker.get("resume") == API_RESUME:
                    # Called from Python: until the last save below, the folder holds start weights,
                    # which load_run must refuse (the CLI marks its folders itself, with its command).
                    RunDir(rd).begin(what=f"training ({cost_type} cost)", clear=False, resume=API_RESUME)
                    owns_marker = True
                tr.save(rd)
                if resume and ckpt.is_file():
                    st = torch.load(ckpt, weights_only=True)
                    cost.load_state_dict(st["cost"])
                    opt.load_state_dict(st["opt"])
                    sched.load_state_dict(st["sched"])
                    start, history = int(st["iteration"]), list(st["history"])
            log = _Logger(rd)
            kp_names = [f.name for f in (getattr(dynamics, "frames", None) or [])] or None

            def state(it: int) -> dict[str, Any]:
                return {"iteration": it, "cost": {k: v.detach().clone() for k, v in cost.state_dict().items()},
                        "opt": opt.state_dict(), "sched": sched.state_dict(), "history": list(history)}

            good = state(start)
            bar = tqdm(range(start, cfg.outer_iters), desc=f"mbirl {cost_type}", disable=not progress,
                       dynamic_ncols=True)
            try:
                for it in bar:
                    losses = []
                    for sub in parts:
                        W = cost.weights(H)
                        _, r = optimise_actions(dynamics, W, sub.q0, sub.goal, H, cfg.inner, scale=cfg.length_scale,
                                                x0=sub.x0, create_graph=True)
                        loss = irl_loss(cfg.length_scale * r.x.reshape(sub.target.shape), sub.target, sub.mask).mean()
                        opt.zero_grad()
                        loss.backward()
                        finite = math.isfinite(loss.item()) and all(torch.isfinite(p.grad).all() for p in params)
                        if not finite:
                            if ckpt is not None:
                                _save_checkpoint(ckpt, good)
                            where = f"; last good checkpoint (iteration {good['iteration']}) kept in {ckpt}" if ckpt else ""
                            raise TrainingDiverged(f"{cost_type} training diverged: loss {loss.item()} at iteration {it}"
                                                   f"{where}; lower --lr or the inner step size")
                        if len(parts) == 1:
                            good = state(it)  # parameters that produced a finite loss and gradient
                        opt.step()
                        sched.step()
                        cost.project_()
                        losses.append(loss.item())
                    if len(parts) > 1:
                        good = state(it + 1)  # a whole pass of finite steps
                    history.append(float(np.mean(losses)))
                    bar.set_postfix(loss=f"{history[-1]:.3g}")
                    if log.writer and (it % cfg.log_every == 0 or it == cfg.outer_iters - 1):
                        log.scalars(it, **{"loss/train": history[-1]})
                        if ev is not None:
                            log.scalars(it, **{"loss/eval" if eval_name == "test" else f"loss/{eval_name}":
                                               _eval_loss(tr, ev)})
                        log.weights(it, W)
                    if ckpt is not None and ((it + 1) % cfg.checkpoint_every == 0 or it == cfg.outer_iters - 1):
                        _save_checkpoint(ckpt, state(it + 1))
                        log.trajectory(it, r.x, sub.demo_m, kp_names)
                    if on_log is not None and ((it + 1) % (on_log_every or cfg.log_every) == 0
                                               or it == cfg.outer_iters - 1):
                        on_log(it + 1, tr)
            finally:
                log.close()
        tr.history = history
        tr.metrics = summarise(tr, demos, eval_demos, eval_name)
        if rd is not None:
            tr.save(rd)
            if owns_marker:
                RunDir(rd).finish()
        return tr


def _demo(b: Batch, i: int) -> Batch:
    """Demo ``i`` of a batch, as a batch of one."""
    return Batch(*(getattr(b, f.name)[i:i + 1] for f in dataclasses.fields(b)))


def _eval_loss(tr: TrainedRun, ev: Batch) -> float:
    with torch.no_grad():
        _, r = tr.plan_tensors(ev.q0, ev.goal_m, ev.horizon, ev.x0)
        s = tr.config.length_scale
        return irl_loss(s * r.x.reshape(ev.target.shape), ev.target, ev.mask).mean().item()


def summarise(tr: TrainedRun, train: DemoSet, test: DemoSet | None, test_name: str = "test") -> dict[str, Any]:
    """Flat metrics: train_* and (with held-out demos) test_* (or ``test_name``_*) figures."""
    out: dict[str, Any] = {}
    for name, ds in (("train", train), (test_name, test)):
        if ds is None:
            continue
        m = tr.evaluate(ds)
        out.update({f"{name}_irl_loss": m["irl_loss"], f"{name}_final_err_cm": m["final_err_cm"],
                    f"{name}_path_err_cm": m["path_err_cm"], f"{name}_per_step_err_cm": m["per_step_err_cm"]})
    if tr.history:
        out["iterations"] = len(tr.history)
    return out
