"""Benchmark `--ray` against the serial path on this machine: sim recording, keypoint
extraction, an IRL settings sweep (`train --sweep`: 8 trials, Ray Tune) and dynamics exploration
(`dynamics collect`), serial vs Ray with 2 workers vs Ray with 1 worker, same seeds, results
checked equal; and embedding frames with the library CLIP (torch, which already uses both cores serially):
serial at default threads and on 1 thread vs Ray tasks on 1 thread each. The embedding workload
runs the encoder through ``RayCluster.map`` (as `clip embed --ray` does, per episode).

Extraction runs serially twice: with OpenCV and the video decoder at their default thread pools
(what `robot-irl extract` does: the baseline) and on one thread each (what a one-CPU Ray task runs,
``robot_irl.core.threads``); ``efficiency_extract`` is the second against Ray per worker.
Work that runs on one core per item scales with workers; the engine's own cost shows in the
1-worker run (on the same runtime, each task asking for all its CPUs: one runs at a time, the next
queued in Ray as on a one-CPU cluster). Ray's start-up is measured apart
(it is paid once per command, not per item). Every run is warmed first (imports, the sim scene),
serial and Ray alike (each Ray run just before it, on a few items: an x1 run's tasks leave x2 to
start fresh workers), so the figures are the steady per-item cost a long batch sees.
The sweep's Ray runs include Tune's start of its trial processes (their imports: a Tuner starts
fresh worker processes each time), which a longer sweep amortises.
Each side of a workload runs ``--repeats`` times (the sweep ``--sweep-repeats``), interleaved
(serial, Ray x2, Ray x1, serial, ...), and the medians are reported, every run's time beside them
(``*_runs_s``): single timings of these few-second workloads moved by 25 % between runs.
Per-unit costs feed notes/scale.md: CPU-seconds of the serial process (``time.process_time``, all
its threads) per rendered frame, per extracted frame, per embedded image (1 thread) and per IRL
trial, which a
busy machine does not inflate the way it inflates wall time; wall-clock per unit beside them.

    nice .venv/bin/python scripts/bench_scale.py                    # record 8, extract 16, sweep 8 trials x 400 iterations
    .venv/bin/python scripts/bench_scale.py --record 4 --extract 8 --sweep-iters 30  # quicker
    nice -n 5 .venv/bin/python scripts/bench_scale.py --skip sweep,collect,embed    # record and extract only

Last line: one JSON object (speedup_record, speedup_extract, speedup_sweep, speedup_embed,
efficiency_embed, overhead_1worker (the worst of record, extract, sweep and embed), speedup_collect
and overhead_1worker_collect apart (tiny tasks, not an acceptance workload), ...).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robot_irl.cli import build_parser
from robot_irl.core.cluster import RayCluster
from robot_irl.core.threads import set_cpu_budget
from robot_irl.keypoints.cli import extract_task
from robot_irl.irl.cli import sweep_setup, sweep_trial
from robot_irl.irl.sweep import expand, parse_sweep, run_ray, run_serial, trial_name
from robot_irl.keypoints.episodes import store
from robot_irl.library import Library
from robot_irl.models.collect import ExplorePlan, explore_episode
from robot_irl.models.collect import release_env as release_explore_env
from robot_irl.record.sim_batch import SimPlan, release_env, stage_sim_episode

PLAN = SimPlan(env_id="robot_irl/Place-v0", render_size=(320, 240))
EMBED_MODEL = "robot-irl-clip-64"   # the library's own CLIP (notes/retrieval.md)
EMBED_CHUNK = 250                   # frames per Ray task (and per serial batch: the same batches)


COMMIT_S: list[float] = []   # the driver's time per commit (the single writer's cost per episode)


def _timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    COMMIT_S.append(time.perf_counter() - t)
    return out


def _workers(cluster: RayCluster, n: int | None) -> dict:
    """``RayCluster.map`` options for ``n`` workers (None: every CPU). One worker: each task asks
    for all the runtime's CPUs, so one runs at a time while the next ones wait queued in Ray, as on
    a one-CPU cluster (a window of one in flight would also serialise the driver's submit and commit
    with the work, which no one-worker cluster does)."""
    return {} if n is None else {"num_cpus": cluster.cpus / n}


def _record(lib: Library, seeds: range, cluster: RayCluster | None, in_flight: int | None) -> None:
    """Record ``seeds`` into ``lib`` (serially when ``cluster`` is None)."""
    run_dir = lib.staging_dir / "bench"
    run_dir.mkdir(exist_ok=True)
    if cluster is None:   # record_sim_batch's serial loop, keeping this process's warm env between runs
        for s in seeds:
            _timed(lib.commit_staged, run_dir / stage_sim_episode(str(lib.path), str(run_dir), PLAN, s))
    else:
        report = cluster.map(stage_sim_episode, seeds, key=str, args=lambda s: (str(lib.path), str(run_dir), PLAN, s),
                             commit=lambda k, eid: _timed(lib.commit_staged, run_dir / eid), progress=False,
                             **_workers(cluster, in_flight))
        assert not report.failed, report.summary()


def _extract(episodes: list, cluster: RayCluster | None, in_flight: int | None) -> dict:
    """Extract and store ``episodes``; the stored keypoints by episode id."""
    args = build_parser().parse_args(["extract", "x", "--quiet"])
    by_id = {ep.id: ep for ep in episodes}
    got = {}

    def commit(eid: str, result: tuple) -> None:
        raw, cleaned, _ = result
        _timed(store, by_id[eid], raw, cleaned, "cam0")
        got[eid] = cleaned.xyz

    if cluster is None:
        for ep in episodes:
            commit(ep.id, extract_task(str(ep.path), args, None, None, False))
    else:
        report = cluster.map(extract_task, episodes, key=lambda ep: ep.id,
                             args=lambda ep: (str(ep.path), args, None, None, False), commit=commit,
                             progress=False, **_workers(cluster, in_flight))
        assert not report.failed, report.summary()
    return got


@dataclass
class Runs:
    """One side's repeated runs: wall seconds, this process's CPU-seconds (all its threads; the
    serial sides' cost, since Ray's work is in other processes) and what each run returned."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    results: list = field(default_factory=list)

    @property
    def s(self) -> float:
        return float(np.median(self.wall))

    @property
    def cpu_s(self) -> float:
        return float(np.median(self.cpu))


def _rounds(sides: dict[str, Callable[[int], Any]], repeats: int,
            warm: dict[str, Callable[[int], Any]] | None = None) -> dict[str, Runs]:
    """Every side run ``repeats`` times, interleaved (a b c, a b c, ...), each called with the
    round's index: a change in the machine's load between rounds then falls on every side alike,
    and the medians compare like with like (a single timing of a 4-s workload moved by 25 % between
    runs minutes apart on this machine, notes/scale.md). ``warm[side](round)``, untimed, runs just
    before a side's timed run: Ray x1's tasks (all the CPUs each) leave Ray x2 to start fresh worker
    processes, whose imports the first x2 run after them paid (3.2-3.5 s warm vs 4.5-5.3 s next to
    an x1 run: notes/scale.md); a batch of one setting keeps its workers warm after its first tasks."""
    runs = {k: Runs() for k in sides}
    for r in range(repeats):
        for k, side in sides.items():
            if warm and k in warm:
                warm[k](r)
            t, c = time.perf_counter(), time.process_time()
            out = side(r)
            runs[k].wall.append(time.perf_counter() - t)
            runs[k].cpu.append(time.process_time() - c)
            runs[k].results.append(out)
    return runs


def _figures(name: str, runs: dict[str, Runs]) -> dict:
    """Each side's median seconds (``{name}_{side}_s``) and every run (``..._runs_s``)."""
    out = {}
    for side, r in runs.items():
        out[f"{name}_{side}_s"] = round(r.s, 2)
        out[f"{name}_{side}_runs_s"] = [round(w, 2) for w in r.wall]
    return out


def _record_workload(root: Path, n: int, cluster: RayCluster, workers: int,
                     repeats: int) -> tuple[dict, list, Library]:
    """Recording ``n`` sim episodes serially (this process's warm env, as `record --source sim`
    without --ray), as Ray tasks on every worker, and on Ray x1; every episode recorded, and the
    first serial run's library."""
    libs: dict[str, Library] = {}

    def side(mode: str, in_flight: int | None) -> Callable[[int], None]:
        def run(r: int) -> None:
            libs[f"{mode}{r}"] = lib = Library.open(root / f"{mode}{r}", create=True)
            _record(lib, range(n), None if mode == "serial" else cluster, in_flight)
        return run

    warm = Library.open(root / "warm", create=True)   # imports and scenes, on seeds the timed runs do not use
    _record(warm, range(1000, 1001), None, None)

    def warm_ray(mode: str, in_flight: int | None) -> Callable[[int], None]:   # every worker warm
        return lambda r: _record(Library.open(root / f"warm-{mode}{r}", create=True),
                                 range(1001, 1001 + 2 * workers), cluster, in_flight)

    COMMIT_S.clear()
    runs = _rounds({"serial": side("serial", None), "ray": side("ray", None), "ray1": side("ray1", 1)}, repeats,
                   warm={"ray": warm_ray("ray", None), "ray1": warm_ray("ray1", 1)})
    release_env()
    frames = sum(ep.frame_count("cam0") for ep in libs["serial0"].select())
    same = all(_same_episodes(libs["serial0"], lib) for k, lib in libs.items() if k != "serial0")
    r = runs
    print(f"record {n} episodes ({frames} frames), median of {repeats}: serial {r['serial'].s:.2f} s, "
          f"Ray x{workers} {r['ray'].s:.2f} s, Ray x1 {r['ray1'].s:.2f} s, identical {same}")
    fig = {"record_episodes": n, "record_frames": frames, **_figures("record", runs),
           "speedup_record": round(r["serial"].s / r["ray"].s, 3),
           "overhead_1worker_record": round(r["ray1"].s / r["serial"].s, 3),
           "cpu_s_per_rendered_frame": round(r["serial"].cpu_s / frames, 4),
           "wall_s_per_rendered_frame": round(r["serial"].s / frames, 4), "identical_record": same,
           "driver_commit_ms_record": round(1000 * float(np.median(COMMIT_S)), 2)}
    episodes = [ep for lib in [warm, *libs.values()] for ep in lib.select()]
    return fig, episodes, libs["serial0"]


def _extract_workload(episodes: list, cluster: RayCluster, workers: int, repeats: int) -> dict:
    """Extraction serially (OpenCV and the decoder at their default threads: what `extract` runs; and
    on one thread each, as a one-CPU task runs them) vs Ray tasks of one CPU each and Ray x1."""
    frames = sum(ep.frame_count("cam0") for ep in episodes)

    def one_thread(r: int) -> dict:
        set_cpu_budget(1)
        try:
            return _extract(episodes, None, None)
        finally:
            set_cpu_budget(None)

    _extract(episodes[:1], None, None)
    COMMIT_S.clear()
    runs = _rounds({"serial": lambda r: _extract(episodes, None, None), "serial_1thread": one_thread,
                    "ray": lambda r: _extract(episodes, cluster, None),
                    "ray1": lambda r: _extract(episodes, cluster, 1)}, repeats,
                   warm={"ray": lambda r: _extract(episodes[:2 * workers], cluster, None),
                         "ray1": lambda r: _extract(episodes[:2 * workers], cluster, 1)})
    ref = runs["serial"].results[0]
    same = all(np.array_equal(ref[k], got[k], equal_nan=True)
               for r in runs.values() for got in r.results for k in ref)
    r = runs
    print(f"extract {len(episodes)} episodes ({frames} frames), median of {repeats}: serial {r['serial'].s:.2f} s "
          f"({r['serial'].cpu_s:.2f} CPU-s), serial 1 thread {r['serial_1thread'].s:.2f} s "
          f"({r['serial_1thread'].cpu_s:.2f} CPU-s), Ray x{workers} {r['ray'].s:.2f} s, Ray x1 {r['ray1'].s:.2f} s, "
          f"identical {same}")
    return {
        "extract_episodes": len(episodes), "extract_frames": frames, **_figures("extract", runs),
        "speedup_extract": round(r["serial"].s / r["ray"].s, 3),
        "efficiency_extract": round(r["serial_1thread"].s / (workers * r["ray"].s), 3),
        "overhead_1worker_extract": round(r["ray1"].s / r["serial"].s, 3),
        "cpu_s_per_extracted_frame": round(r["serial"].cpu_s / frames, 4),
        "cpu_s_per_extracted_frame_1thread": round(r["serial_1thread"].cpu_s / frames, 4),
        "wall_s_per_extracted_frame": round(r["serial"].s / frames, 4), "identical_extract": same,
        "driver_commit_ms_extract": round(1000 * float(np.median(COMMIT_S)), 2),
    }


def _noop(x: int) -> int:
    """An empty task: what the engine costs per item, from submission to the driver's commit."""
    return x


def embed_chunk(frames: np.ndarray, threads: int) -> np.ndarray:
    """The library CLIP's image embeddings of ``frames`` on ``threads`` torch threads, with the
    process's encoder (``embed_batch.process_encoder``, as `clip embed` tasks use: built once per
    process; random init: speed does not depend on the weights)."""
    import torch

    from robot_irl.retrieval.embed_batch import process_encoder
    torch.set_num_threads(threads)
    with torch.inference_mode():
        return process_encoder(EMBED_MODEL, None, 0).encode_images(frames, batch_size=EMBED_CHUNK)


def _embed(frames: np.ndarray, cluster: RayCluster | None, threads: int, in_flight: int | None) -> np.ndarray:
    chunks = [frames[i:i + EMBED_CHUNK] for i in range(0, len(frames), EMBED_CHUNK)]
    if cluster is None:
        return np.concatenate([embed_chunk(c, threads) for c in chunks])
    refs = {str(i): c for i, c in enumerate(chunks)}
    report = cluster.map(embed_chunk, list(refs), key=str, args=lambda k: (refs[k], 1), progress=False,
                         **_workers(cluster, in_flight))
    assert not report.failed, report.summary()
    return np.concatenate([report.done[str(i)] for i in range(len(chunks))])


def _embed_workload(n: int, cluster: RayCluster, workers: int, repeats: int) -> dict:
    """Embedding ``n`` frames with torch: serial at default threads, serial on 1 thread, Ray tasks on 1
    thread each, and Ray x1."""
    import torch
    default_threads = torch.get_num_threads()
    images = np.random.default_rng(0).integers(0, 256, (n, 96, 96, 3), dtype=np.uint8)

    def serial(threads: int) -> Callable[[int], np.ndarray]:
        def run(r: int) -> np.ndarray:
            try:
                return _embed(images, None, threads, None)
            finally:
                torch.set_num_threads(default_threads)
        return run

    embed_chunk(images[:EMBED_CHUNK], default_threads)
    runs = _rounds({"serial": serial(default_threads), "serial_1thread": serial(1),
                    "ray": lambda r: _embed(images, cluster, 1, None),
                    "ray1": lambda r: _embed(images, cluster, 1, 1)}, repeats,
                   warm={"ray": lambda r: _embed(images[:2 * workers * EMBED_CHUNK], cluster, 1, None),
                         "ray1": lambda r: _embed(images[:2 * workers * EMBED_CHUNK], cluster, 1, 1)})
    one = runs["serial_1thread"].results[0]
    same = all(np.array_equal(got, one) for k in ("serial_1thread", "ray", "ray1") for got in runs[k].results)
    diff = float(max(np.abs(got - runs["serial"].results[0]).max() for r in runs.values() for got in r.results))
    r = runs
    print(f"embed {n} frames ({EMBED_MODEL}), median of {repeats}: serial {r['serial'].s:.2f} s "
          f"({default_threads} threads), serial 1 thread {r['serial_1thread'].s:.2f} s, Ray x{workers} "
          f"{r['ray'].s:.2f} s, Ray x1 {r['ray1'].s:.2f} s; max |diff| {diff:.2g}, Ray = serial 1-thread "
          f"exactly: {same}")
    return {
        "embed_frames": n, "embed_threads_default": default_threads, **_figures("embed", runs),
        "speedup_embed": round(r["serial"].s / r["ray"].s, 3),
        "efficiency_embed": round(r["serial_1thread"].s / (workers * r["ray"].s), 3),
        "overhead_1worker_embed": round(r["ray1"].s / r["serial_1thread"].s, 3),
        "cpu_s_per_embedded_image": round(r["serial_1thread"].cpu_s / n, 5),
        "wall_s_per_embedded_image": round(r["serial_1thread"].s / n, 5), "embed_max_abs_diff": diff,
        "identical_embed": same,
    }

def _sweep_inputs(lib: Library, iters: int):
    """An 8-trial grid (cost x lr x seed) over the library's recorded episodes (sim truth keypoints:
    train on all but the last three, validation on two, test on the last)."""
    n = len(lib.ids())
    args = build_parser().parse_args(["train", "--demos", "", "--library", str(lib.path), "--keypoints", "truth",
                                      "--val", f"{n - 3},{n - 2}", "--test", str(n - 1), "--out", "x"])
    spec = parse_sweep({"report_every": 10, "params": {"cost": ["timedep", "weighted"], "lr": [0.05, 0.02],
                                                       "seed": [0, 1], "iters": iters}})
    _, setup, _ = sweep_setup(args, spec.report_every)
    trials = expand(spec)
    return spec, setup, [(trial_name(i, len(trials)), t) for i, t in enumerate(trials)]


def _sweep(out: Path, spec, setup, trials, cluster: RayCluster | None, in_flight: int | None) -> dict:
    """Run the trials (serially, or as Ray Tune trials); each trial's final figures."""
    if cluster is None:
        results = run_serial(sweep_trial, setup, trials, out, progress=False)
    else:
        results = run_ray(cluster, sweep_trial, setup, trials, out, spec, progress=False, max_concurrent=in_flight)
    assert all(r.status == "done" for r in results), [(r.name, r.error) for r in results]
    return {r.name: r.figures for r in results}


def _collect(plan: ExplorePlan, episodes: int, cluster: RayCluster | None, in_flight: int | None) -> np.ndarray:
    """Run ``episodes`` exploration episodes; their keypoint rows, in episode order."""
    if cluster is None:
        x = [explore_episode(plan, e)["x"] for e in range(episodes)]
    else:
        report = cluster.map(explore_episode, range(episodes), key=str, args=lambda e: (plan, e), progress=False,
                             **_workers(cluster, in_flight))
        assert not report.failed, report.summary()
        x = [report.done[str(e)]["x"] for e in range(episodes)]
    return np.array(x)


def _same_episodes(a: Library, b: Library) -> bool:
    sa, sb = ({ep.meta["seed"]: ep for ep in lib.select()} for lib in (a, b))
    if sorted(sa) != sorted(sb):
        return False
    for s in sa:
        x, y = sa[s].arrays("state"), sb[s].arrays("state")
        if not all(np.array_equal(x[k], y[k], equal_nan=True) for k in x):
            return False
    return True


def _sweep_workload(root: Path, lib: Library, iters: int, cluster: RayCluster, workers: int, repeats: int) -> dict:
    """The 8-trial sweep serially (warmed by one trial: imports, TensorBoard) and as Ray Tune trials
    (each Tuner starts its trial processes: counted, a longer sweep amortises it)."""
    spec, setup, trials = _sweep_inputs(lib, iters)
    _sweep(root / "sweep-warm", spec, setup, trials[:1], None, None)

    def side(mode: str, in_flight: int | None) -> Callable[[int], dict]:
        return lambda r: _sweep(root / f"sweep-{mode}{r}", spec, setup, trials,
                                None if mode == "serial" else cluster, in_flight)

    runs = _rounds({"serial": side("serial", None), "ray": side("ray", None), "ray1": side("ray1", 1)}, repeats)
    ref = runs["serial"].results[0]
    same = all(got == ref for r in runs.values() for got in r.results)
    r = runs
    print(f"sweep {len(trials)} trials x {iters} iterations, median of {repeats}: serial {r['serial'].s:.2f} s, "
          f"Ray x{workers} {r['ray'].s:.2f} s, Ray x1 {r['ray1'].s:.2f} s, identical {same}")
    return {
        "sweep_trials": len(trials), "sweep_iters": iters, **_figures("sweep", runs),
        "speedup_sweep": round(r["serial"].s / r["ray"].s, 3),
        "overhead_1worker_sweep": round(r["ray1"].s / r["serial"].s, 3),
        "cpu_s_per_irl_trial": round(r["serial"].cpu_s / len(trials), 2), "identical_sweep": same,
    }


def _collect_workload(n: int, cluster: RayCluster, workers: int, repeats: int) -> dict:
    """Dynamics exploration: ``n`` episodes serially (warmed by one: the scene) and as Ray tasks."""
    plan = ExplorePlan(seed=0)
    _collect(ExplorePlan(seed=99), 1, None, None)
    runs = _rounds({"serial": lambda r: _collect(plan, n, None, None),
                    "ray": lambda r: _collect(plan, n, cluster, None),
                    "ray1": lambda r: _collect(plan, n, cluster, 1)}, repeats,
                   warm={"ray": lambda r: _collect(ExplorePlan(seed=99), 2 * workers, cluster, None),
                         "ray1": lambda r: _collect(ExplorePlan(seed=99), 2 * workers, cluster, 1)})
    release_explore_env()
    ref = runs["serial"].results[0]
    same = all(np.array_equal(got, ref) for r in runs.values() for got in r.results)
    r = runs
    print(f"collect {n} exploration episodes, median of {repeats}: serial {r['serial'].s:.2f} s, "
          f"Ray x{workers} {r['ray'].s:.2f} s, Ray x1 {r['ray1'].s:.2f} s, identical {same}")
    return {
        "collect_episodes": n, **_figures("collect", runs),
        "speedup_collect": round(r["serial"].s / r["ray"].s, 3),
        "overhead_1worker_collect": round(r["ray1"].s / r["serial"].s, 3),
        "cpu_s_per_explore_episode": round(r["serial"].cpu_s / n, 4), "identical_collect": same,
    }


WORKLOADS = ("extract", "sweep", "collect", "embed")   # recording always runs: the others use its episodes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--record", type=int, default=8, help="sim episodes to record (default 8)")
    ap.add_argument("--extract", type=int, default=16, help="episodes to extract (default 16)")
    ap.add_argument("--embed", type=int, default=5000, help="frames to embed (default 5000)")
    ap.add_argument("--sweep-iters", type=int, default=400,
                    help="outer iterations per sweep trial (default 400: what `robot-irl train` runs by default)")
    ap.add_argument("--collect", type=int, default=40, help="exploration episodes (default 40)")
    ap.add_argument("--workers", type=int, default=2, help="Ray workers (default 2)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="timed runs of each side of record, extract, collect and embed, interleaved; medians "
                         "reported (default 3)")
    ap.add_argument("--sweep-repeats", type=int, default=1,
                    help="timed runs of each side of the sweep (default 1: ~8 minutes a round here)")
    ap.add_argument("--skip", default="", metavar="LIST",
                    help=f"comma-separated workloads not to run, of {','.join(WORKLOADS)} (a short measurement of "
                         "one; the acceptance run skips none)")
    a = ap.parse_args()
    skip = {w for w in a.skip.split(",") if w}
    if skip - set(WORKLOADS):
        ap.error(f"--skip {a.skip!r}: expected a comma-separated list of {', '.join(WORKLOADS)}")
    if a.record < 4:
        ap.error("--record must be at least 4 (the sweep trains, validates and tests on them)")
    if a.repeats < 1 or a.sweep_repeats < 1:
        ap.error("--repeats and --sweep-repeats must be at least 1")
    root = Path(tempfile.mkdtemp(prefix="bench_scale_"))
    res: dict = {"cores": os.cpu_count(), "workers": a.workers, "repeats": a.repeats,
                 "sweep_repeats": a.sweep_repeats, "load_avg_start": round(os.getloadavg()[0], 2),
                 "skipped": sorted(skip)}
    try:
        t = time.perf_counter()
        cluster = RayCluster.start(num_cpus=a.workers)
        res["ray_start_s"] = round(time.perf_counter() - t, 2)   # paid once per command, apart from the work
        try:
            cluster.map(_noop, range(20), key=str, progress=False)
            t = time.perf_counter()
            cluster.map(_noop, range(200), key=str, progress=False)
            res["ray_task_overhead_ms"] = round(1000 * (time.perf_counter() - t) / 200, 2)   # submit to commit
            fig, episodes, lib = _record_workload(root, a.record, cluster, a.workers, a.repeats)
            res.update(fig)
            if "extract" not in skip:   # extraction over the recorded episodes
                res.update(_extract_workload(episodes[:a.extract], cluster, a.workers, a.repeats))
            if "sweep" not in skip:
                res.update(_sweep_workload(root, lib, a.sweep_iters, cluster, a.workers, a.sweep_repeats))
            if "collect" not in skip:
                res.update(_collect_workload(a.collect, cluster, a.workers, a.repeats))
            if "embed" not in skip:
                res.update(_embed_workload(a.embed, cluster, a.workers, a.repeats))
        finally:
            cluster.close()
        res["overhead_1worker"] = max(res[f"overhead_1worker_{w}"] for w in ("record", "extract", "sweep", "embed")
                                      if f"overhead_1worker_{w}" in res)
        res["load_avg_end"] = round(os.getloadavg()[0], 2)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
