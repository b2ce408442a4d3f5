"""`--ray` on a real two-node Ray cluster (a head with 2 CPUs and a second node with 1 on
127.0.0.1, both started with `ray start` for this module and stopped at its end even when a test
fails): sim recording and keypoint extraction give exactly the serial path's results, and a worker
killed mid-extraction is retried while the library holds each result once."""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from robot_irl.cli import main
from robot_irl.library import Library
from robot_irl.record.sim_batch import SimPlan, record_sim_batch
from ray_processes import free_ports, procs, stop_processes

pytest.importorskip("ray", reason="Ray is not installed (robot-irl[ray])")

ROOT = Path(__file__).resolve().parents[1]
PLAN = SimPlan(env_id="robot_irl/Place-v0", render_size=(320, 240))
SERIAL_SEEDS = range(9)   # seeds 0-7 extract; 8 gets a broken video in the extraction test
VOLATILE_META = {"id", "created", "start_time", "end_time", "cameras", "streams"}   # times, ids, chunk layout


@dataclass
class Cluster:
    address: str
    temp_dir: str
    env: dict[str, str]          # the environment a driver needs (token auth with this cluster's token)
    serial: Library              # 9 sim episodes recorded by the serial path

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        """``robot-irl ARGS --ray ADDRESS`` as its own process: a driver like a user's."""
        return subprocess.run([sys.executable, "-m", "robot_irl.cli", *args, "--ray", self.address], env=self.env,
                              capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A two-node cluster on 127.0.0.1 with token authentication (its own token), and the serial
    path's library (recorded while the nodes start)."""
    temp_dir = tempfile.mkdtemp(prefix="rirl-ray-", dir="/tmp")   # short: Ray's socket paths must fit
    token = Path(temp_dir) / "auth_token"
    token.write_text(secrets.token_hex(32))
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_worker_niceness": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    ray_bin = str(Path(sys.executable).with_name("ray"))
    (gcs, client, dash, agent1, agent2, grpc1, grpc2, rte1, rte2, metrics1, metrics2, nm1, nm2, om1, om2) = \
        free_ports(15)
    common = ["--node-ip-address=127.0.0.1", "--disable-usage-stats"]
    head = [ray_bin, "start", "--head", f"--port={gcs}", "--num-cpus=2", "--include-dashboard=false",
            f"--dashboard-port={dash}", f"--ray-client-server-port={client}", f"--temp-dir={temp_dir}",
            f"--dashboard-agent-listen-port={agent1}", f"--dashboard-agent-grpc-port={grpc1}",
            f"--runtime-env-agent-port={rte1}", f"--metrics-export-port={metrics1}",
            f"--node-manager-port={nm1}", f"--object-manager-port={om1}", *common]
    second = [ray_bin, "start", f"--address=127.0.0.1:{gcs}", "--num-cpus=1",
              f"--dashboard-agent-listen-port={agent2}", f"--dashboard-agent-grpc-port={grpc2}",
              f"--runtime-env-agent-port={rte2}", f"--metrics-export-port={metrics2}",
              f"--node-manager-port={nm2}", f"--object-manager-port={om2}", *common]
    started: list[subprocess.CompletedProcess] = []

    def start() -> None:
        for cmd in (head, second):
            started.append(subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=150))
            if started[-1].returncode != 0:
                return

    booting = threading.Thread(target=start)   # the nodes boot while the serial library is recorded
    try:
        booting.start()
        serial = _serial_library(tmp_path_factory)
        booting.join()
        for done in started:
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        assert len(started) == 2
        yield Cluster(f"127.0.0.1:{gcs}", temp_dir, env, serial)
    finally:
        booting.join()
        stop_processes(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _serial_library(tmp_path_factory) -> Library:
    """9 sim episodes recorded in this process (the serial path)."""
    lib = Library.open(tmp_path_factory.mktemp("ray") / "serial", create=True)
    report = record_sim_batch(lib, PLAN, SERIAL_SEEDS, progress=False)
    assert report.exit_code == 0, report.summary()
    return lib


def _by_seed(lib: Library) -> dict[int, object]:
    return {ep.meta["seed"]: ep for ep in lib.select()}


def _assert_same_episode(a, b) -> None:
    x, y = a.arrays("state"), b.arrays("state")
    assert x.keys() == y.keys()
    for k in x:
        assert np.array_equal(x[k], y[k], equal_nan=True), k
    assert np.array_equal(np.stack(list(a.video_frames("cam0"))), np.stack(list(b.video_frames("cam0"))))
    assert {k: v for k, v in a.meta.items() if k not in VOLATILE_META} == \
        {k: v for k, v in b.meta.items() if k not in VOLATILE_META}
    assert a.meta["cameras"]["cam0"]["model"] == b.meta["cameras"]["cam0"]["model"]


def test_sim_recording_on_two_nodes_equals_serial(cluster, tmp_path):
    path = tmp_path / "ray"
    done = cluster.cli("record", "--source", "sim", "--library", str(path), "--episodes", "6", "--seed", "0")
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"Ray cluster at {cluster.address}: 3 CPU(s)" in done.stderr
    assert "recorded 6 of 6" in done.stderr
    lib, serial = Library.open(path), _by_seed(cluster.serial)
    got = _by_seed(lib)
    assert sorted(got) == list(range(6)) and len(lib.ids()) == 6
    for seed, ep in got.items():
        _assert_same_episode(ep, serial[seed])
    run_dirs = list(lib.staging_dir.glob(".record-*"))
    assert [p.name for p in run_dirs[0].iterdir()] == ["seeds.json"]   # nothing left staged
    # --resume (here, without the cluster): every seed is committed, nothing is recorded again
    report = record_sim_batch(lib, PLAN, range(6), resume=True, progress=False)
    assert report.done == {} and not report.failed
    assert len(Library.open(path).ids()) == 6


def _kill_one_task_worker(temp_dir: str, name: str, killed: list[int], stop: threading.Event) -> None:
    """Kill the first worker process seen running ``name`` in this cluster (SIGKILL, as a crash)."""
    title = f"ray::{name}"
    while not stop.is_set() and not killed:
        table = procs()
        raylets = {pid for pid, (_, cmd) in table.items() if temp_dir in cmd and "raylet" in cmd}
        for pid, (ppid, cmd) in table.items():
            if cmd.startswith(title) and ppid in raylets:
                time.sleep(0.1)          # mid-task: it has opened the episode and is extracting
                if procs().get(pid, (0, ""))[1].startswith(title):   # still on it (an idle worker reads ray::IDLE)
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return
        time.sleep(0.05)


def test_extraction_on_two_nodes_survives_a_killed_worker_and_equals_serial(cluster, tmp_path, capsys):
    serial_path, ray_path = tmp_path / "serial", tmp_path / "ray"
    broken = _by_seed(cluster.serial)[8].id
    for path in (serial_path, ray_path):   # one episode whose video does not decode: its error, by its id
        shutil.copytree(cluster.serial.path, path)
        chunk = path / "episodes" / broken / "cameras" / "cam0" / "chunk-000000.mkv"
        chunk.write_bytes(bytes(chunk.stat().st_size))   # same size (the library checks sizes), no video
    assert main(["extract", str(serial_path), "--quiet"]) == 1
    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=_kill_one_task_worker, args=(cluster.temp_dir, "extract_task", killed, stop))
    killer.start()
    try:
        done = cluster.cli("extract", str(ray_path), "--quiet")
    finally:
        stop.set()
        killer.join()
    assert killed, "no extraction worker was seen to kill"
    assert done.returncode == 1, done.stderr[-3000:]
    assert f"extracted 8 of 9; 1 failed: {broken} (" in done.stderr
    assert f"failed: {broken}: " in done.stderr
    serial, got = Library.open(serial_path), Library.open(ray_path)
    assert sorted(got.ids()) == sorted(serial.ids())
    for ep in got.select():
        if ep.id == broken:
            assert ep.derived() == {}
            continue
        assert ep.derived() == {"keypoints": [1]}                      # one result, once
        assert not [p for p in (ep.path / "derived" / "keypoints").iterdir() if p.name.startswith(".")]
        a, b = ep.read_derived("keypoints"), serial.episode(ep.id).read_derived("keypoints")
        assert a.arrays.keys() == b.arrays.keys()
        for k in a.arrays:
            assert np.array_equal(a.arrays[k], b.arrays[k], equal_nan=True), (ep.id, k)
        assert a.meta == b.meta
        assert main(["demos", "show", ep.id, "--library", str(ray_path), "--check"]) == 0
    capsys.readouterr()
    # --resume (serially): the 8 done are skipped, only the broken one is tried (and fails) again
    assert main(["extract", str(ray_path), "--quiet", "--resume"]) == 1
    err = capsys.readouterr().err
    assert "--resume: 8 of 9 episode(s) already hold keypoints; skipped" in err
    assert f"failed: {broken}: " in err



@pytest.fixture
def driver_env(cluster, monkeypatch):
    """This test process as the driver (it has torch and Ray imported already; a driver subprocess
    would import both again, the larger part of these tests' time) with the cluster's token auth;
    Ray caches auth settings once read, so its own test helper resets them, before and after."""
    from ray._private.authentication_test_utils import reset_auth_token_state

    for key in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.setenv(key, cluster.env[key])
    reset_auth_token_state()
    yield cluster
    monkeypatch.undo()
    reset_auth_token_state()


def test_a_task_sizes_opencv_to_the_cpus_it_was_given(driver_env):
    """OpenCV ignores Ray's OMP_NUM_THREADS: left alone, each one-CPU worker ran OpenCV's pool over
    every core (extraction workers used ~1.5 cores each). A task's pools follow its CPUs."""
    import cv2

    from robot_irl.core.cluster import RayCluster

    with RayCluster.start(driver_env.address) as cluster:
        one = cluster.map(cv2.getNumThreads, range(3), key=str, args=lambda i: (), progress=False)
        two = cluster.map(cv2.getNumThreads, range(2), key=str, args=lambda i: (), progress=False, num_cpus=2)
    assert sorted(one.done.values()) == [1, 1, 1] and sorted(two.done.values()) == [2, 2]


def test_dynamics_collect_on_two_nodes_equals_serial(driver_env, tmp_path, capsys):
    from robot_irl.models.collect import collect_exploration

    out = tmp_path / "explore.npz"
    assert main(["dynamics", "collect", "--episodes", "6", "--rows", "4", "--extra", "1", "--seed", "2",
                 "--out", str(out), "--quiet", "--ray", driver_env.address]) == 0
    assert f"Ray cluster at {driver_env.address}: 3 CPU(s)" in capsys.readouterr().err
    got = dict(np.load(out))
    serial = collect_exploration(episodes=6, rows=4, extra=1, seed=2)
    assert got.keys() == serial.keys()
    for k in serial:
        assert np.array_equal(got[k], serial[k]), k


def test_grid_sweep_on_two_nodes_equals_serial(driver_env, tmp_path, capsys):
    """A 4-trial grid (FIFO) as Ray Tune trials: every trial's losses, validation curve and cost
    weights equal the serial sweep's, and so the best trial and its test figures."""
    import torch

    from test_irl_helpers import IIWA_Q0, IIWA_URDF, iiwa, l_demos

    demos = l_demos(iiwa(), IIWA_Q0, n=4)
    data = tmp_path / "demos.npz"
    np.savez(data, keypoints=demos.keypoints, timestamps=demos.timestamps[0], q0=np.array(IIWA_Q0))
    sweep = tmp_path / "sweep.yaml"
    # two trials at once (one trial process fewer than the cluster's 3 CPUs: each imports torch and Tune)
    sweep.write_text("search: grid\nscheduler: fifo\nreport_every: 2\nmax_concurrent: 2\n"
                     "params:\n  cost: [timedep, weighted]\n  seed: [0, 1]\n  lr: 0.05\n  inner_steps: 1\n  iters: 4\n")
    argv = ["train", "--sweep", str(sweep), "--demos", str(data), "--urdf", IIWA_URDF, "--keypoint-frames",
            "a@lbr_iiwa_link_7:0,0,0.05;b@lbr_iiwa_link_7:0,0,0.1", "--val", "2", "--test", "3", "--json", "--quiet"]
    capsys.readouterr()
    assert main([*argv, "--out", str(tmp_path / "ray"), "--ray", driver_env.address]) == 0
    printed = capsys.readouterr()
    assert f"Ray cluster at {driver_env.address}: 3 CPU(s)" in printed.err
    assert main([*argv, "--out", str(tmp_path / "serial")]) == 0
    got, want = (json.loads((tmp_path / k / "trials.json").read_text()) for k in ("ray", "serial"))
    assert got["best"] == want["best"] and len(got["trials"]) == 4
    for a, b in zip(got["trials"], want["trials"]):
        assert (a["name"], a["params"], a["status"]) == (b["name"], b["params"], "done")
        assert a["figures"] == b["figures"] and a["curve"] == b["curve"]
        wa, wb = (torch.load(Path(t["run"]) / "weights.pt", weights_only=True) for t in (a, b))
        assert wa["history"] == wb["history"]
        assert all(torch.equal(wa["state"][k], wb["state"][k]) for k in wb["state"])
    ray_m, serial_m = (json.loads((tmp_path / k / "metrics.json").read_text()) for k in ("ray", "serial"))
    assert ray_m == serial_m
    assert json.loads(printed.out)["best_trial"] == got["best"]    # stdout: the JSON alone (Tune prints nothing)
    assert (tmp_path / "ray" / "tune" / "tune").is_dir()              # Tune's own files in the sweep folder


def test_asha_sweep_on_ray_stops_poor_trials_early_and_picks_the_best_on_validation(driver_env, tmp_path, capsys):
    """ASHA on the validation IRL loss: 4 trials one at a time (deterministic rungs), two at a learning
    rate too small to learn (1e-6: validation loss 631 at the first rung, against 481 for lr 0.05).
    Each of those reaches the first rung (iteration 2) below the median of the trials recorded there
    before it and is stopped; the two that learn run to the end. The best is the finished trial with
    the lowest validation loss, scored on test; every trial folder is a run folder (finished ones
    open, stopped ones are marked incomplete with the command that finishes them)."""
    from robot_irl.irl import load_run
    from robot_irl.runs import IncompleteRunError, RunDir
    from test_irl_helpers import IIWA_Q0, IIWA_URDF, iiwa, l_demos

    demos = l_demos(iiwa(), IIWA_Q0, n=4)
    data = tmp_path / "demos.npz"
    np.savez(data, keypoints=demos.keypoints, timestamps=demos.timestamps[0], q0=np.array(IIWA_Q0))
    sweep = tmp_path / "asha.yaml"
    sweep.write_text("search: grid\nscheduler: asha\nasha: {grace_period: 2, reduction_factor: 2}\nreport_every: 2\n"
                     "max_concurrent: 1\nparams:\n  cost: timedep\n  lr: [0.05, 0.000001]\n  seed: [0, 1]\n"
                     "  inner_steps: 1\n  iters: 6\n")
    out = tmp_path / "asha"
    capsys.readouterr()
    assert main(["train", "--sweep", str(sweep), "--demos", str(data), "--urdf", IIWA_URDF, "--keypoint-frames",
                 "a@lbr_iiwa_link_7:0,0,0.05;b@lbr_iiwa_link_7:0,0,0.1", "--val", "2", "--test", "3", "--json",
                 "--quiet", "--out", str(out), "--ray", driver_env.address]) == 0
    printed = json.loads(capsys.readouterr().out)
    got = json.loads((out / "trials.json").read_text())
    assert [(t["params"]["lr"], t["status"]) for t in got["trials"]] == \
        [(0.05, "done"), (0.05, "done"), (1e-06, "stopped"), (1e-06, "stopped")]
    for t in got["trials"]:
        iters = [i for i, _ in t["curve"]]
        if t["status"] == "done":
            assert iters == [2, 4, 6] and t["figures"]["iterations"] == 6
            load_run(t["run"])                                   # a finished run folder opens
            assert json.loads((Path(t["run"]) / "metrics.json").read_text())["val_irl_loss"] == t["val_irl_loss"]
        else:                                                    # stopped at the first rung: fewer iterations
            assert iters == [2] and t["figures"] == {} and t["val_irl_loss"] == t["curve"][-1][1]
            assert RunDir(t["run"]).incomplete()["resume"] == f"robot-irl train --out {t['run']} --resume"
            with pytest.raises(IncompleteRunError):
                load_run(t["run"])
        assert (Path(t["run"]) / "config.json").is_file()
    done = [t for t in got["trials"] if t["status"] == "done"]
    stopped_at_rung = [t["curve"][0][1] for t in got["trials"] if t["status"] == "stopped"]
    assert min(stopped_at_rung) > max(t["curve"][0][1] for t in done)   # stopped on validation loss, not at random
    best = min(done, key=lambda t: t["val_irl_loss"])
    metrics = json.loads((out / "metrics.json").read_text())
    assert got["best"] == best["name"] == metrics["best_trial"] == printed["best_trial"]
    assert metrics["best_val_irl_loss"] == best["val_irl_loss"]
    assert (metrics["trials_done"], metrics["trials_stopped"], metrics["trials_failed"]) == (2, 2, 0)
    assert {"test_irl_loss", "test_final_err_cm"} <= metrics.keys()
