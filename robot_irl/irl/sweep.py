"""IRL settings sweeps (`robot-irl train --sweep sweep.yaml`): which trials, how they run, which wins.

A sweep file says what to vary and how to search (YAML)::

    search: grid            # grid: every combination | random: `samples` draws (seeded by `seed`)
    samples: 8              # random only
    seed: 0                 # random only: the draws
    scheduler: fifo         # fifo: every trial runs to the end | asha: early stopping (needs --ray)
    asha: {grace_period: 50, reduction_factor: 2}   # outer iterations
    report_every: 10        # outer iterations between validation reports
    max_concurrent: 4       # with --ray: at most this many trials at once (default: one per CPU)
    params:                 # a list: those values; a scalar: fixed; random search also takes
      cost: [timedep, weighted]         #   {log_uniform: [lo, hi]} or {uniform: [lo, hi]} for floats
      lr: [0.05, 0.02]
      inner_steps: [5, 10]
      inner_step_size: 0.5
      seed: [0, 1]
      iters: 200

The trials are expanded here, on the driver, the same way with and without Ray (grid order, or the
random draws of ``seed``), so a trial is the same trial whichever path runs it; each runs the same
function (``robot_irl.irl.cli.sweep_trial``) into its own run folder. Without Ray they run one after
another in this process; with a :class:`robot_irl.core.cluster.RayCluster`, Ray Tune runs them (one
CPU each; ASHA on the validation IRL loss when asked, else FIFO), its own files under the sweep
folder (``tune/``), never ``~/ray_results``. The best trial is chosen on the validation demos only;
the caller scores it on the test demos afterwards, so no choice ever sees them.

This module reads YAML and numpy only at import (the file is checked before torch or Ray load).
"""
from __future__ import annotations

import itertools
import json
import math
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from robot_irl.errors import InputError, RobotIRLError

if TYPE_CHECKING:
    from robot_irl.core.cluster import RayCluster

SEARCHES = ("grid", "random")
SCHEDULERS = ("fifo", "asha")
COSTS = ("default", "weighted", "timedep", "rbf")   # the learned costs (baselines have no IRL loss to stop on)
# swept setting -> (type, what it is); the names are `robot-irl train` options
PARAMS: dict[str, tuple[type, str]] = {
    "cost": (str, f"one of {list(COSTS)}"),
    "lr": (float, "a learning rate > 0 (outer Adam, --lr)"),
    "inner_step_size": (float, "a step size > 0 (inner loop, --inner-step-size)"),
    "inner_steps": (int, "an integer >= 1 (--inner-steps)"),
    "seed": (int, "an integer (--seed)"),
    "iters": (int, "an integer >= 1 (outer iterations, --iters)"),
}
TOP_KEYS = ("search", "samples", "seed", "scheduler", "asha", "report_every", "max_concurrent", "params")
RANGES = ("log_uniform", "uniform")
METRIC = "val_irl_loss"


@dataclass
class SweepSpec:
    """A checked sweep file."""

    params: dict[str, Any]                  # name -> list of values, or {"log_uniform"|"uniform": [lo, hi]}
    search: str = "grid"
    samples: int = 1
    seed: int = 0
    scheduler: str = "fifo"
    grace_period: int = 50
    reduction_factor: float = 2.0
    report_every: int = 10
    max_concurrent: int | None = None       # with Ray: trials at once (None: as many as the CPUs take)
    file: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrialResult:
    """One trial as the driver saw it: its settings, its validation figures and how it ended."""

    name: str
    params: dict[str, Any]
    run: str                                 # its run folder
    status: str = "done"                     # done | stopped (early, by ASHA) | failed
    figures: dict[str, float] = field(default_factory=dict)   # val_* / train_* at its end (done)
    curve: list[tuple[int, float]] = field(default_factory=list)   # (iteration, val IRL loss) reports
    error: str = ""

    @property
    def val_loss(self) -> float:
        if self.status == "done" and METRIC in self.figures:
            return float(self.figures[METRIC])
        return self.curve[-1][1] if self.curve else math.nan


def _fail(spec_file: str, key: str, message: str, expected: str) -> InputError:
    return InputError(message, file=spec_file, field=key, expected=expected)


def _check_value(file: str, key: str, name: str, v: Any) -> Any:
    kind, what = PARAMS[name]
    if kind is str:
        if v not in COSTS:
            raise _fail(file, key, f"{v!r} is not a learned cost", what)
        return v
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (kind is int and not float(v).is_integer()):
        raise _fail(file, key, f"{v!r} is not {'an integer' if kind is int else 'a number'}", what)
    v = kind(v)
    if (name in ("lr", "inner_step_size") and not v > 0) or (name in ("inner_steps", "iters") and v < 1):
        raise _fail(file, key, f"{v!r} is out of range", what)
    return v


def parse_sweep(data: Any, file: str = "sweep.yaml") -> SweepSpec:
    """Check a sweep file's contents (see the module docstring); every error names the file and the key."""
    if not isinstance(data, dict):
        raise _fail(file, "(top level)", "not a mapping", f"keys among {list(TOP_KEYS)}")
    unknown = sorted(set(data) - set(TOP_KEYS))
    if unknown:
        raise _fail(file, unknown[0], "unknown key", f"keys among {list(TOP_KEYS)}")
    search = data.get("search", "grid")
    if search not in SEARCHES:
        raise _fail(file, "search", f"{search!r} is not a search", f"one of {list(SEARCHES)}")
    scheduler = data.get("scheduler", "fifo")
    if scheduler not in SCHEDULERS:
        raise _fail(file, "scheduler", f"{scheduler!r} is not a scheduler", f"one of {list(SCHEDULERS)}")
    ints = {}
    for key, default, lo in (("samples", 1, 1), ("seed", 0, 0), ("report_every", 10, 1)):
        v = data.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise _fail(file, key, f"{v!r}", f"an integer >= {lo}")
        ints[key] = v
    concurrent = data.get("max_concurrent")
    if concurrent is not None and (isinstance(concurrent, bool) or not isinstance(concurrent, int) or concurrent < 1):
        raise _fail(file, "max_concurrent", f"{concurrent!r}", "an integer >= 1 (trials at once with --ray)")
    if "samples" in data and search != "random":
        raise _fail(file, "samples", "given for a grid search", "samples only with search: random")
    asha = data.get("asha", {}) or {}
    if not isinstance(asha, dict) or set(asha) - {"grace_period", "reduction_factor"}:
        raise _fail(file, "asha", f"{asha!r}", "a mapping with grace_period and/or reduction_factor")
    if asha and scheduler != "asha":
        raise _fail(file, "asha", "given with scheduler: fifo", "asha settings only with scheduler: asha")
    grace = asha.get("grace_period", 50)
    if isinstance(grace, bool) or not isinstance(grace, int) or grace < 1:
        raise _fail(file, "asha.grace_period", f"{grace!r}", "an integer >= 1 (outer iterations)")
    factor = asha.get("reduction_factor", 2)
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or factor <= 1:
        raise _fail(file, "asha.reduction_factor", f"{factor!r}", "a number > 1")
    raw = data.get("params")
    if not isinstance(raw, dict) or not raw:
        raise _fail(file, "params", "missing or empty", f"a mapping of settings among {list(PARAMS)}")
    params: dict[str, Any] = {}
    for name, v in raw.items():
        key = f"params.{name}"
        if name not in PARAMS:
            raise _fail(file, key, "not a setting a sweep varies", f"one of {list(PARAMS)}")
        if isinstance(v, dict):
            if search != "random" or len(v) != 1 or next(iter(v)) not in RANGES or PARAMS[name][0] is not float:
                raise _fail(file, key, f"{v!r}", "a list of values (ranges {log_uniform|uniform: [lo, hi]} only "
                            "for lr / inner_step_size with search: random)")
            (kind, bounds), = v.items()
            if not isinstance(bounds, list) or len(bounds) != 2:
                raise _fail(file, f"{key}.{kind}", f"{bounds!r}", "[lo, hi]")
            lo, hi = (_check_value(file, f"{key}.{kind}", name, b) for b in bounds)
            if not lo < hi:
                raise _fail(file, f"{key}.{kind}", f"[{lo}, {hi}]", "lo < hi")
            params[name] = {kind: [lo, hi]}
            continue
        values = v if isinstance(v, list) else [v]
        if not values:
            raise _fail(file, key, "an empty list", "at least one value")
        params[name] = [_check_value(file, f"{key}[{i}]", name, x) for i, x in enumerate(values)]
    return SweepSpec(params=params, search=search, samples=ints["samples"], seed=ints["seed"], scheduler=scheduler,
                     grace_period=grace, reduction_factor=float(factor), report_every=ints["report_every"],
                     max_concurrent=concurrent, file=file)


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and check a sweep file (YAML); no torch, no Ray."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise InputError("sweep file not found", file=p, field="--sweep", expected="a YAML sweep file")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        raise InputError(f"not valid YAML ({e})", file=p, field="--sweep", expected="a YAML sweep file") from None
    return parse_sweep(data, str(p))


def expand(spec: SweepSpec) -> list[dict[str, Any]]:
    """The trials' settings: every combination (grid, in the file's key order, last key fastest), or
    ``samples`` draws (random: lists drawn uniformly, ranges as given, from ``seed``)."""
    names = list(spec.params)
    if spec.search == "grid":
        return [dict(zip(names, combo)) for combo in itertools.product(*(spec.params[n] for n in names))]
    rng = np.random.default_rng(spec.seed)
    out = []
    for _ in range(spec.samples):
        trial = {}
        for n in names:
            v = spec.params[n]
            if isinstance(v, dict):
                (kind, (lo, hi)), = v.items()
                x = math.exp(rng.uniform(math.log(lo), math.log(hi))) if kind == "log_uniform" else rng.uniform(lo, hi)
                trial[n] = float(x)
            else:
                x = v[int(rng.integers(len(v)))]
                trial[n] = x.item() if hasattr(x, "item") else x
        out.append(trial)
    return out


def trial_name(i: int, n: int) -> str:
    return f"t{i:0{max(2, len(str(n - 1)))}d}"


def select_best(results: list[TrialResult]) -> TrialResult:
    """The finished trial with the lowest validation IRL loss (ties: the first). Test figures play
    no part: trials are never scored on the test demos."""
    done = [r for r in results if r.status == "done" and math.isfinite(r.val_loss)]
    if not done:
        raise RobotIRLError("no trial finished with a finite validation loss: "
                            + "; ".join(f"{r.name} {r.status}{': ' + r.error if r.error else ''}" for r in results))
    return min(done, key=lambda r: r.val_loss)


# ---- running the trials -------------------------------------------------------------------------
Task = Callable[..., dict]   # task(setup, params, run_dir, report) -> final figures (val_*, train_*)


def run_serial(task: Task, setup: dict, trials: list[tuple[str, dict]], out: Path, *, progress: bool = True,
               stream: TextIO | None = None) -> list[TrialResult]:
    """The trials one after another in this process (FIFO); a failing trial is reported and the others go on."""
    from tqdm.auto import tqdm

    stream = stream or sys.stderr
    results = []
    bar = tqdm(trials, desc="trials", unit="trial", disable=not progress, file=stream, dynamic_ncols=True)
    for name, params in bar:
        r = TrialResult(name, params, str(out / "trials" / name))
        try:
            r.figures = task(setup, params, r.run, lambda m, r=r: r.curve.append((int(m["iteration"]), float(m[METRIC]))))
        except Exception as e:   # noqa: BLE001 (a trial's error is reported with its name; the others go on)
            r.status, r.error = "failed", f"{type(e).__name__}: {e}"
            with tqdm.external_write_mode(file=stream):
                print(f"failed: {name}: {r.error}", file=stream)
        results.append(r)
        bar.set_postfix(best=f"{min((x.val_loss for x in results if x.status == 'done'), default=math.nan):.3g}")
    bar.close()
    return results


def _tune_trial(config: dict, task: Task, setup: dict, out: str, stream: bool) -> None:
    """One Tune trial: the task, then its final figures marked ``final``. With ``stream`` (a scheduler
    that stops trials: ASHA) each validation loss goes to Tune as it comes; without (FIFO: nothing
    acts on them) they travel with the final figures as ``curve``, since every ``tune.report`` is a
    round trip to the driver that the trial waits on (~0.1 s each on 2 cores: 8 trials x 40 reports
    added ~30 s to a one-worker sweep, notes/scale.md).
    The report after the last iteration is not sent: the final one carries it once the run folder
    is finished (a scheduler stopping the trial at it — ASHA does at ``max_t`` — would leave the
    folder unfinished)."""
    from ray import tune

    curve: list[list[float]] = []

    def report(m: dict) -> None:
        if m.get("last"):
            return
        if stream:
            tune.report({k: v for k, v in m.items() if k != "last"})
        else:
            curve.append([int(m["iteration"]), float(m[METRIC])])

    name, params = config["trial"]["name"], config["trial"]["params"]
    final = task(setup, params, str(Path(out) / "trials" / name), report)
    tune.report({**final, "iteration": int(final["iterations"]), "final": 1,
                 **({} if stream else {"curve": json.dumps(curve)})})


def run_ray(cluster: RayCluster, task: Task, setup: dict, trials: list[tuple[str, dict]], out: Path,
            spec: SweepSpec, *, progress: bool = True, stream: TextIO | None = None,
            max_concurrent: int | None = None, max_iters: int | None = None) -> list[TrialResult]:
    """The trials as Ray Tune trials on ``cluster`` (one CPU each): FIFO, or ASHA on the validation
    IRL loss (time = outer iterations). Tune writes under ``out/tune`` and prints nothing; one bar
    over the trials (at most ``max_concurrent`` at once, else the sweep file's, else as many as the
    CPUs take). A trial whose worker dies is run again once (its folder cleared). Trials reuse
    their worker processes (``reuse_actors``): a new process per trial costs seconds of imports."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")   # with verbose=0 the legacy reporter prints nothing
    os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from tqdm.auto import tqdm

    stream = stream or sys.stderr
    by_name = {name: TrialResult(name, params, str(out / "trials" / name)) for name, params in trials}
    bar = tqdm(total=len(trials), desc="trials", unit="trial", disable=not progress, file=stream, dynamic_ncols=True)

    class _Progress(tune.Callback):
        """Validation reports into each trial's curve, the bar moved as trials end."""

        def on_trial_result(self, iteration, trials, trial, result, **info):
            r = by_name[trial.config["trial"]["name"]]
            if result.get("final"):
                r.figures = {k: v for k, v in result.items() if k.startswith(("val_", "train_")) or k == "iterations"}
                r.curve.extend((int(i), float(v)) for i, v in json.loads(result.get("curve", "[]")))
                r.curve.append((int(result["iteration"]), float(result[METRIC])))
            elif METRIC in result:
                r.curve.append((int(result["iteration"]), float(result[METRIC])))

        def on_trial_recover(self, iteration, trials, trial, **info):   # run again after its worker died
            by_name[trial.config["trial"]["name"]].curve.clear()

        def on_trial_complete(self, iteration, trials, trial, **info):
            r = by_name[trial.config["trial"]["name"]]
            if not r.figures:
                r.status = "stopped"
            bar.update(1)

        def on_trial_error(self, iteration, trials, trial, **info):
            r = by_name[trial.config["trial"]["name"]]
            r.status = "failed"
            bar.update(1)

    if spec.scheduler == "asha":   # max_t: the longest trial's outer iterations (ASHA's last rung below it)
        iters = max_iters or max(int(p.get("iters", 0)) for _, p in trials) or 10**6
        scheduler = ASHAScheduler(time_attr="iteration", max_t=iters, grace_period=spec.grace_period,
                                  reduction_factor=spec.reduction_factor)
    else:
        scheduler = FIFOScheduler()
    trainable = tune.with_resources(tune.with_parameters(_tune_trial, task=task, setup=setup, out=str(out),
                                                         stream=spec.scheduler == "asha"), {"cpu": 1})
    tuner = tune.Tuner(
        trainable,
        param_space={"trial": tune.grid_search([{"name": n, "params": p} for n, p in trials])},
        tune_config=tune.TuneConfig(metric=METRIC, mode="min", scheduler=scheduler, num_samples=1, reuse_actors=True,
                                    max_concurrent_trials=max_concurrent or spec.max_concurrent,
                                    trial_dirname_creator=lambda t: t.config["trial"]["name"],
                                    trial_name_creator=lambda t: t.config["trial"]["name"]),
        run_config=tune.RunConfig(name="tune", storage_path=str((out / "tune").resolve()), verbose=0,
                                  callbacks=[_Progress()], failure_config=tune.FailureConfig(max_failures=1)))
    try:
        grid = tuner.fit()
    finally:
        bar.close()
    for res in grid:
        if res.error is not None:
            r = by_name[res.config["trial"]["name"]]
            r.status, r.error = "failed", _error_text(res.error)
            print(f"failed: {r.name}: {r.error}", file=stream)
    return [by_name[n] for n, _ in trials]


def _error_text(err: BaseException) -> str:
    """A trial's own exception (not Tune's wrapper), as one line."""
    cause = getattr(err, "cause", None) or err
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[-1] if text else ''}"


# ---- reporting ----------------------------------------------------------------------------------
def table_rows(results: list[TrialResult], best: str | None) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of the summary table (validation figures; the best trial starred)."""
    names = sorted({k for r in results for k in r.params}, key=list(PARAMS).index)
    head = ["trial", *names, "status", "val_irl_loss", "val_final_err_cm", "iterations"]
    rows = []
    for r in results:
        it = r.figures.get("iterations", r.curve[-1][0] if r.curve else "")
        rows.append([r.name + (" *" if r.name == best else ""), *(r.params.get(n, "") for n in names), r.status,
                     r.val_loss, r.figures.get("val_final_err_cm", math.nan), it])
    return head, rows


def plot_sweep(results: list[TrialResult], best: str | None, path: Path) -> Path:
    """PNG: every trial's validation IRL loss over outer iterations (left) and at its end (right), the
    best trial drawn bold; early-stopped trials end where ASHA stopped them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from robot_irl.core.io import atomic_write_bytes

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    for i, r in enumerate(results):
        if r.curve:
            it, loss = zip(*r.curve)
            a.plot(it, loss, ("o-" if r.status == "done" else "o:"), ms=3, color=f"C{i % 10}",
                   lw=2.5 if r.name == best else 1, label=r.name)
    a.set_xlabel("outer iteration")
    a.set_ylabel("validation IRL loss")
    a.set_yscale("log")
    a.set_title("validation loss per trial")
    if len(results) <= 12:
        a.legend(fontsize=7, ncol=2)
    vals = [r.val_loss for r in results]
    colors = ["C3" if r.name == best else ("0.6" if r.status == "done" else "0.85") for r in results]
    b.bar(range(len(results)), [v if math.isfinite(v) else 0 for v in vals], color=colors)
    b.set_xticks(range(len(results)), [r.name for r in results], rotation=90, fontsize=7)
    b.set_yscale("log")
    b.set_title("final validation loss (red: best; light: stopped/failed)")
    fig.tight_layout()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buf.getvalue())
    return path
