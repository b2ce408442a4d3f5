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
serial and Ray alike, so the figures are the steady per-item cost a long batch sees.
The sweep's Ray runs include Tune's start of its trial processes (their imports: a Tuner starts
fresh worker processes each time), which a longer sweep amortises.
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
from pathlib import Path

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


def _record(lib: Library, seeds: range, cluster: RayCluster | None, in_flight: int | None) -> float:
    """Seconds to record ``seeds`` into ``lib`` (serial when ``cluster`` is None)."""
    run_dir = lib.staging_dir / "bench"
    run_dir.mkdir(exist_ok=True)
    t = time.perf_counter()
    if cluster is None:   # record_sim_batch's serial loop, keeping this process's warm env between runs
        for s in seeds:
            _timed(lib.commit_staged, run_dir / stage_sim_episode(str(lib.path), str(run_dir), PLAN, s))
    else:
        report = cluster.map(stage_sim_episode, seeds, key=str, args=lambda s: (str(lib.path), str(run_dir), PLAN, s),
                             commit=lambda k, eid: _timed(lib.commit_staged, run_dir / eid), progress=False,
                             **_workers(cluster, in_flight))
        assert not report.failed, report.summary()
    return time.perf_counter() - t


def _extract(episodes: list, cluster: RayCluster | None, in_flight: int | None) -> tuple[float, dict]:
    """Seconds to extract and store ``episodes``; the stored keypoints by episode id."""
    args = build_parser().parse_args(["extract", "x", "--quiet"])
    by_id = {ep.id: ep for ep in episodes}
    got = {}

    def commit(eid: str, result: tuple) -> None:
        raw, cleaned, _ = result
        _timed(store, by_id[eid], raw, cleaned, "cam0")
        got[eid] = cleaned.xyz

    t = time.perf_counter()
    if cluster is None:
        for ep in episodes:
            commit(ep.id, extract_task(str(ep.path), args, None, None, False))
    else:
        report = cluster.map(extract_task, episodes, key=lambda ep: ep.id,
                             args=lambda ep: (str(ep.path), args, None, None, False), commit=commit,
                             progress=False, **_workers(cluster, in_flight))
        assert not report.failed, report.summary()
    return time.perf_counter() - t, got


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


def _embed(frames: np.ndarray, cluster: RayCluster | None, threads: int, in_flight: int | None) -> tuple[float, np.ndarray]:
    chunks = [frames[i:i + EMBED_CHUNK] for i in range(0, len(frames), EMBED_CHUNK)]
    t = time.perf_counter()
    if cluster is None:
        out = [embed_chunk(c, threads) for c in chunks]
    else:
        refs = {str(i): c for i, c in enumerate(chunks)}
        report = cluster.map(embed_chunk, list(refs), key=str, args=lambda k: (refs[k], 1), progress=False,
                             **_workers(cluster, in_flight))
        assert not report.failed, report.summary()
        out = [report.done[str(i)] for i in range(len(chunks))]
    return time.perf_counter() - t, np.concatenate(out)


def _extract_workload(episodes: list, cluster: RayCluster, workers: int) -> dict:
    """Extraction serially (OpenCV and the decoder at their default threads: what `extract` runs; and
    on one thread each, as a one-CPU task runs them) vs Ray tasks of one CPU each and Ray x1."""
    frames = sum(ep.frame_count("cam0") for ep in episodes)
    _extract(episodes[:1], None, None)
    _extract(episodes[:2 * workers], cluster, None)
    COMMIT_S.clear()
    c = time.process_time()
    e_serial, got_serial = _extract(episodes, None, None)
    cpu_serial = time.process_time() - c
    set_cpu_budget(1)
    try:
        c = time.process_time()
        e_serial1, got_serial1 = _extract(episodes, None, None)
        cpu_serial1 = time.process_time() - c
    finally:
        set_cpu_budget(None)
    e_ray, got_ray = _extract(episodes, cluster, None)
    e_ray1, got_ray1 = _extract(episodes, cluster, 1)
    commit_ms = 1000 * float(np.median(COMMIT_S))
    same = all(np.array_equal(got_serial[k], got[k], equal_nan=True)
               for got in (got_serial1, got_ray, got_ray1) for k in got_serial)
    print(f"extract {len(episodes)} episodes ({frames} frames): serial {e_serial:.2f} s ({cpu_serial:.2f} CPU-s), "
          f"serial 1 thread {e_serial1:.2f} s ({cpu_serial1:.2f} CPU-s), Ray x{workers} {e_ray:.2f} s, "
          f"Ray x1 {e_ray1:.2f} s, identical {same}")
    return {
        "extract_episodes": len(episodes), "extract_frames": frames, "extract_serial_s": round(e_serial, 2),
        "extract_serial_1thread_s": round(e_serial1, 2), "extract_ray_s": round(e_ray, 2),
        "extract_ray1_s": round(e_ray1, 2), "speedup_extract": round(e_serial / e_ray, 3),
        "efficiency_extract": round(e_serial1 / (workers * e_ray), 3),
        "overhead_1worker_extract": round(e_ray1 / e_serial, 3),
        "cpu_s_per_extracted_frame": round(cpu_serial / frames, 4),
        "cpu_s_per_extracted_frame_1thread": round(cpu_serial1 / frames, 4),
        "wall_s_per_extracted_frame": round(e_serial / frames, 4), "identical_extract": same,
        "driver_commit_ms_extract": round(commit_ms, 2),
    }


def _embed_workload(n: int, cluster: RayCluster, workers: int) -> dict:
    """Embedding ``n`` frames with torch: serial at default threads, serial on 1 thread, Ray tasks on 1
    thread each, and Ray x1."""
    import torch
    default_threads = torch.get_num_threads()
    images = np.random.default_rng(0).integers(0, 256, (n, 96, 96, 3), dtype=np.uint8)
    _embed(images[:2 * workers * EMBED_CHUNK], cluster, 1, None)
    embed_chunk(images[:EMBED_CHUNK], default_threads)
    m_serial, emb_serial = _embed(images, None, default_threads, None)
    c = time.process_time()
    m_serial1, emb_serial1 = _embed(images, None, 1, None)
    cpu_embed = time.process_time() - c
    torch.set_num_threads(default_threads)
    m_ray, emb_ray = _embed(images, cluster, 1, None)
    m_ray1, _ = _embed(images, cluster, 1, 1)
    diff = float(max(np.abs(emb_ray - emb_serial1).max(), np.abs(emb_ray - emb_serial).max()))
    print(f"embed {n} frames ({EMBED_MODEL}): serial {m_serial:.2f} s ({default_threads} threads), "
          f"serial 1 thread {m_serial1:.2f} s, Ray x{workers} {m_ray:.2f} s, Ray x1 {m_ray1:.2f} s; "
          f"max |diff| {diff:.2g}, Ray = serial 1-thread exactly: {np.array_equal(emb_ray, emb_serial1)}")
    return {
        "embed_frames": n, "embed_threads_default": default_threads, "embed_serial_s": round(m_serial, 2),
        "embed_serial_1thread_s": round(m_serial1, 2), "embed_ray_s": round(m_ray, 2),
        "embed_ray1_s": round(m_ray1, 2), "speedup_embed": round(m_serial / m_ray, 3),
        "efficiency_embed": round(m_serial1 / (workers * m_ray), 3),
        "overhead_1worker_embed": round(m_ray1 / m_serial1, 3),
        "cpu_s_per_embedded_image": round(cpu_embed / n, 5),
        "wall_s_per_embedded_image": round(m_serial1 / n, 5), "embed_max_abs_diff": diff,
        "identical_embed": bool(np.array_equal(emb_ray, emb_serial1)),
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


def _sweep(out: Path, spec, setup, trials, cluster: RayCluster | None, in_flight: int | None) -> tuple[float, dict]:
    """Seconds to run the trials (serially, or as Ray Tune trials); each trial's final figures."""
    t = time.perf_counter()
    if cluster is None:
        results = run_serial(sweep_trial, setup, trials, out, progress=False)
    else:
        results = run_ray(cluster, sweep_trial, setup, trials, out, spec, progress=False, max_concurrent=in_flight)
    assert all(r.status == "done" for r in results), [(r.name, r.error) for r in results]
    return time.perf_counter() - t, {r.name: r.figures for r in results}


def _collect(plan: ExplorePlan, episodes: int, cluster: RayCluster | None, in_flight: int | None) -> tuple[float, np.ndarray]:
    """Seconds to run ``episodes`` exploration episodes; their keypoint rows, in episode order."""
    t = time.perf_counter()
    if cluster is None:
        x = [explore_episode(plan, e)["x"] for e in range(episodes)]
    else:
        report = cluster.map(explore_episode, range(episodes), key=str, args=lambda e: (plan, e), progress=False,
                             **_workers(cluster, in_flight))
        assert not report.failed, report.summary()
        x = [report.done[str(e)]["x"] for e in range(episodes)]
    return time.perf_counter() - t, np.array(x)


def _same_episodes(a: Library, b: Library) -> bool:
    sa, sb = ({ep.meta["seed"]: ep for ep in lib.select()} for lib in (a, b))
    if sorted(sa) != sorted(sb):
        return False
    for s in sa:
        x, y = sa[s].arrays("state"), sb[s].arrays("state")
        if not all(np.array_equal(x[k], y[k], equal_nan=True) for k in x):
            return False
    return True


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
    ap.add_argument("--skip", default="", metavar="LIST",
                    help=f"comma-separated workloads not to run, of {','.join(WORKLOADS)} (a short measurement of "
                         "one; the acceptance run skips none)")
    a = ap.parse_args()
    skip = {w for w in a.skip.split(",") if w}
    if skip - set(WORKLOADS):
        ap.error(f"--skip {a.skip!r}: expected a comma-separated list of {', '.join(WORKLOADS)}")
    if a.record < 4:
        ap.error("--record must be at least 4 (the sweep trains, validates and tests on them)")
    root = Path(tempfile.mkdtemp(prefix="bench_scale_"))
    res: dict = {"cores": os.cpu_count(), "workers": a.workers, "load_avg_start": round(os.getloadavg()[0], 2),
                 "skipped": sorted(skip)}
    try:
        libs = {m: Library.open(root / m, create=True) for m in ("serial", "ray", "ray1", "warm")}
        # warm the serial path (imports, scene) on seeds the timed runs do not use
        _record(libs["warm"], range(1000, 1001), None, None)
        seeds = range(a.record)
        c = time.process_time()
        t_serial = _record(libs["serial"], seeds, None, None)
        cpu_record = time.process_time() - c
        release_env()
        frames = sum(ep.frame_count("cam0") for ep in libs["serial"].select())
        if "sweep" not in skip:   # the sweep, serially (warmed by one trial: imports, TensorBoard)
            spec, setup, trials = _sweep_inputs(libs["serial"], a.sweep_iters)
            _sweep(root / "sweep-warm", spec, setup, trials[:1], None, None)
            c = time.process_time()
            s_serial, fig_serial = _sweep(root / "sweep-serial", spec, setup, trials, None, None)
            cpu_sweep = time.process_time() - c
        if "collect" not in skip:   # dynamics exploration, serially (warmed by one episode: the scene)
            plan = ExplorePlan(seed=0)
            _collect(ExplorePlan(seed=99), 1, None, None)
            c = time.process_time()
            c_serial, x_serial = _collect(plan, a.collect, None, None)
            cpu_collect = time.process_time() - c
            release_explore_env()
        t = time.perf_counter()
        cluster = RayCluster.start(num_cpus=a.workers)
        res["ray_start_s"] = round(time.perf_counter() - t, 2)
        try:
            cluster.map(_noop, range(20), key=str, progress=False)
            t = time.perf_counter()
            cluster.map(_noop, range(200), key=str, progress=False)
            res["ray_task_overhead_ms"] = round(1000 * (time.perf_counter() - t) / 200, 2)   # submit to commit
            _record(libs["warm"], range(1001, 1001 + 2 * a.workers), cluster, None)   # every worker warm
            COMMIT_S.clear()
            t_ray = _record(libs["ray"], seeds, cluster, None)
            t_ray1 = _record(libs["ray1"], seeds, cluster, 1)
            commit_record_ms = 1000 * float(np.median(COMMIT_S))
            COMMIT_S.clear()
            same_rec = _same_episodes(libs["serial"], libs["ray"]) and _same_episodes(libs["serial"], libs["ray1"])
            print(f"record {a.record} episodes ({frames} frames): serial {t_serial:.2f} s, Ray x{a.workers} "
                  f"{t_ray:.2f} s, Ray x1 {t_ray1:.2f} s, identical {same_rec}")
            res.update({
                "record_episodes": a.record, "record_frames": frames, "record_serial_s": round(t_serial, 2),
                "record_ray_s": round(t_ray, 2), "record_ray1_s": round(t_ray1, 2),
                "speedup_record": round(t_serial / t_ray, 3), "overhead_1worker_record": round(t_ray1 / t_serial, 3),
                "cpu_s_per_rendered_frame": round(cpu_record / frames, 4),
                "wall_s_per_rendered_frame": round(t_serial / frames, 4), "identical_record": same_rec,
                "driver_commit_ms_record": round(commit_record_ms, 2),
            })
            if "extract" not in skip:   # extraction over the recorded episodes (repeated to --extract episodes)
                pool = libs["serial"].select() + libs["ray"].select() + libs["ray1"].select() + libs["warm"].select()
                res.update(_extract_workload(pool[:a.extract], cluster, a.workers))
            if "sweep" not in skip:   # the sweep as Ray Tune trials (each Tuner starts its trial processes: counted)
                s_ray, fig_ray = _sweep(root / "sweep-ray", spec, setup, trials, cluster, None)
                s_ray1, fig_ray1 = _sweep(root / "sweep-ray1", spec, setup, trials, cluster, 1)
                same_sweep = fig_ray == fig_serial and fig_ray1 == fig_serial
                print(f"sweep {len(trials)} trials x {a.sweep_iters} iterations: serial {s_serial:.2f} s, "
                      f"Ray x{a.workers} {s_ray:.2f} s, Ray x1 {s_ray1:.2f} s, identical {same_sweep}")
                res.update({
                    "sweep_trials": len(trials), "sweep_iters": a.sweep_iters, "sweep_serial_s": round(s_serial, 2),
                    "sweep_ray_s": round(s_ray, 2), "sweep_ray1_s": round(s_ray1, 2),
                    "speedup_sweep": round(s_serial / s_ray, 3), "overhead_1worker_sweep": round(s_ray1 / s_serial, 3),
                    "cpu_s_per_irl_trial": round(cpu_sweep / len(trials), 2), "identical_sweep": same_sweep,
                })
            if "collect" not in skip:   # dynamics exploration episodes as Ray tasks
                _collect(ExplorePlan(seed=99), 2 * a.workers, cluster, None)
                c_ray, x_ray = _collect(plan, a.collect, cluster, None)
                c_ray1, x_ray1 = _collect(plan, a.collect, cluster, 1)
                same_collect = np.array_equal(x_ray, x_serial) and np.array_equal(x_ray1, x_serial)
                print(f"collect {a.collect} exploration episodes: serial {c_serial:.2f} s, Ray x{a.workers} "
                      f"{c_ray:.2f} s, Ray x1 {c_ray1:.2f} s, identical {same_collect}")
                res.update({
                    "collect_episodes": a.collect, "collect_serial_s": round(c_serial, 2),
                    "collect_ray_s": round(c_ray, 2), "collect_ray1_s": round(c_ray1, 2),
                    "speedup_collect": round(c_serial / c_ray, 3), "overhead_1worker_collect": round(c_ray1 / c_serial, 3),
                    "cpu_s_per_explore_episode": round(cpu_collect / a.collect, 4), "identical_collect": same_collect,
                })
            if "embed" not in skip:
                res.update(_embed_workload(a.embed, cluster, a.workers))
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
