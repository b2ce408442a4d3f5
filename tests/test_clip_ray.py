"""CLIP across workers (`clip train --workers N`, Ray Train) and `clip embed --ray`.

- the distributed step (two gloo processes, no Ray): the global batch's loss and gradient, and the
  batch-norm running statistics, equal one process's on the same batch, with shards of unequal size;
- Ray Train (one single-node Ray started for the module with `ray start --head`, stopped at its end
  even when a test fails), one fit: 2 workers give one process's losses on the same global batches
  and write a checkpoint after the epoch; the workers killed then are restarted by Ray Train, which
  resumes from the newest checkpoint (model, optimiser, both random generators);
- `clip embed --ray` stores the serial path's embeddings bit for bit;
- the one-worker path's modules import no Ray; bad `--workers` / `--batch-size` are refused before
  torch loads.
"""
from __future__ import annotations

import contextlib
import copy
import io
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
import torch

from ray_processes import free_ports, ours, procs, stop_processes
from robot_irl.cli import main
from robot_irl.retrieval.captions import CaptionFacts, captions
from robot_irl.retrieval.encoders import load_encoder
from robot_irl.retrieval.train import (TrainConfig, apply_shift, epoch_plan, prepare_pairs, shift_offsets,
                                       train_clip)

ROOT = Path(__file__).resolve().parents[1]
ARCH = "robot-irl-rn-64"      # the default: a ResNet image tower, so batch norm is part of what is checked
CFG3 = TrainConfig(epochs=3, batch_size=8, lr=1e-3, warmup_steps=2, seed=0)   # the Ray Train fit: 6 steps
CFG1 = TrainConfig(epochs=1, batch_size=8, lr=1e-3, warmup_steps=2, seed=0)   # its first 2 steps, one process


def _scene(f: CaptionFacts, rng: np.random.Generator) -> np.ndarray:
    im = np.full((48, 64, 3), 200, np.uint8)
    x = (14 if f.goal == "left" else 50) + int(rng.integers(-3, 4))
    y = 24 + int(rng.integers(-5, 6))
    colour = (220, 30, 30) if f.colour == "red" else (30, 30, 220)
    im[y - 7:y + 7, x - 7:x + 7] = colour
    if f.shape == "ball":
        im[y - 7:y - 4, x - 7:x - 4] = 200
    return im


def _pairs() -> tuple[np.ndarray, list[list[str]], list[tuple]]:
    """16 pairs of 8 variants: batches of 8 hold each variant once, 2 steps per epoch."""
    rng = np.random.default_rng(0)
    variants = [CaptionFacts("push", s, c, g) for s in ("cube", "ball") for c in ("red", "blue")
                for g in ("left", "right")]
    facts = [variants[i % len(variants)] for i in range(16)]
    return np.stack([_scene(f, rng) for f in facts]), [captions(f) for f in facts], [f.key() for f in facts]


@pytest.fixture(scope="module")
def pairs():
    return _pairs()


@pytest.fixture
def one_thread():
    """torch on 1 thread, as the workers run, for the test; the suite's setting restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def start():
    return load_encoder(ARCH, seed=0)


# ---- the distributed step, two gloo processes ---------------------------------------------------
def _step_worker(rank: int, world: int, port: int, folder: str) -> None:
    """One process of a 2-process gloo group: one global_step (lr 0, so the gradient stays to read)."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from robot_irl.retrieval.dist_clip import global_batchnorm, global_step, shard, shard_sizes

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        model, x, t = torch.load(Path(folder) / "in.pt", weights_only=False)
        core = global_batchnorm(model).train()
        ddp = DistributedDataParallel(core)
        opt = torch.optim.SGD(core.parameters(), lr=0.0)
        mine = shard(len(x), world, rank)
        loss = global_step(ddp, core, opt, x[mine], t[mine], shard_sizes(len(x), world), rank, 100.0)
        grads = {n: p.grad.clone() for n, p in core.named_parameters() if p.grad is not None}
        # a fresh process: also the place to see that the one-worker path's modules import no Ray
        from robot_irl.retrieval import cli, embed_batch, library_clip  # noqa: F401
        torch.save((loss, grads, {n: b.clone() for n, b in core.named_buffers()}, "ray" in sys.modules),
                   Path(folder) / f"out{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_global_batch_loss_gradient_and_batchnorm_equal_one_process(pairs, start, tmp_path, one_thread):
    """Also: the modules of the one-worker path import no Ray (checked in the worker processes)."""
    images, caps, keys = pairs
    data = prepare_pairs(start, images, caps, keys)
    batch = list(range(7))                     # 7 pairs on 2 workers: shards of 4 and 3
    x = data.normalise(data.pixels[batch].float())
    t = data.tokens[[ids[0] for ids in data.cap_ids[:7]]]
    model = copy.deepcopy(start.model).train()
    torch.save((model, x, t), tmp_path / "in.pt")

    img_f, txt_f, scale = model(x, t)[:3]
    from open_clip import ClipLoss
    loss = ClipLoss()(img_f, txt_f, scale)
    loss.backward()
    loss = float(loss)
    want = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}

    port = free_ports(1)[0]
    torch.multiprocessing.start_processes(_step_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True,
                                          start_method="spawn")
    for rank in (0, 1):
        got_loss, grads, buffers, imported_ray = torch.load(tmp_path / f"out{rank}.pt", weights_only=False)
        assert not imported_ray
        assert got_loss == pytest.approx(loss, rel=1e-5)
        assert set(grads) == set(want)
        for n, g in want.items():   # the global batch's gradient: not 1/N of it, not a worker's own
            assert float((grads[n] - g).norm()) <= 1e-3 * float(g.norm()) + 1e-7, n
        for n, b in model.named_buffers():   # running statistics of the global batch
            torch.testing.assert_close(buffers[n], b, rtol=1e-5, atol=1e-6, msg=n)


# ---- Ray: one single-node runtime for the module ------------------------------------------------
@dataclass
class Head:
    address: str
    temp_dir: str                # the Ray's own temp dir: its processes name it
    env: dict[str, str]          # what a driver needs: this Ray's token, the worktree on PYTHONPATH


@pytest.fixture(scope="module")
def ray_head():
    """`ray start --head` on 127.0.0.1 with 2 CPUs, its own temp dir and token."""
    pytest.importorskip("ray", reason="Ray is not installed (robot-irl[ray])")
    pytest.importorskip("ray.train", reason="Ray Train is not installed (robot-irl[ray])")
    temp_dir = tempfile.mkdtemp(prefix="rirl-clip-", dir="/tmp")    # short: Ray's socket paths must fit
    token = Path(temp_dir) / "auth_token"
    token.write_text(secrets.token_hex(32))
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_worker_niceness": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.2"}   # Ray Train's controller polls (and registers reports) this often
    ports = free_ports(10)
    cmd = [str(Path(sys.executable).with_name("ray")), "start", "--head", f"--port={ports[0]}", "--num-cpus=2",
           "--include-dashboard=false", f"--dashboard-port={ports[1]}", f"--ray-client-server-port={ports[2]}",
           f"--temp-dir={temp_dir}", f"--dashboard-agent-listen-port={ports[3]}",
           f"--dashboard-agent-grpc-port={ports[4]}", f"--runtime-env-agent-port={ports[5]}",
           f"--metrics-export-port={ports[6]}", f"--node-manager-port={ports[7]}",
           f"--object-manager-port={ports[8]}", "--node-ip-address=127.0.0.1", "--disable-usage-stats"]
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=150)
        assert done.returncode == 0, done.stdout + done.stderr
        yield Head(f"127.0.0.1:{ports[0]}", temp_dir, env)
    finally:
        stop_processes(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _train_workers(temp_dir: str) -> list[int]:
    """The Ray Train worker processes of this Ray."""
    table = procs()
    return [pid for pid in ours(temp_dir) if table.get(pid, (0, ""))[1].startswith("ray::RayTrainWorker")]


def _kill_the_workers_after_the_first_checkpoint(staging: Path, temp_dir: str, copies: Path, killed: list[int],
                                                 stop: threading.Event) -> None:
    """Once Ray Train has registered the run's first checkpoint (it writes its checkpoint list into
    the run's storage then), SIGKILL the Ray Train workers, as a crash of the group, and copy the
    checkpoints in storage (Ray Train deletes old ones as newer come). Both at once: a survivor
    could still write and report a checkpoint after the copies were taken. Ray Train registers
    reports when its controller polls (every 0.2 s here: RAY_TRAIN_HEALTH_CHECK_INTERVAL_S), so the
    workers may be a checkpoint further on when the kill lands: the restart resumes from the newest
    registered, and the test reads which from the result."""
    pids: list[int] = []
    while not stop.is_set():
        pids = pids or _train_workers(temp_dir)          # found before the checkpoint: killed without a scan
        if pids and any(staging.glob("*/checkpoint_manager_snapshot.json")):
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            killed.extend(pids)
            copies.mkdir()
            for i, state in enumerate(sorted(staging.glob("*/checkpoint_*/state.pt"))):   # names sort by time
                with contextlib.suppress(OSError):       # removed meanwhile: not the newest, not restored
                    shutil.copy(state, copies / f"{i}.pt")
            return
        time.sleep(0.02)


def _checkpoints(folder: Path) -> dict[int, dict]:
    """The copied checkpoints by step; one cut short by the kill (never registered) is left out."""
    out = {}
    for path in folder.glob("*.pt"):
        try:
            state = torch.load(path, weights_only=False)
        except (RuntimeError, EOFError):
            continue
        out[state["step"]] = state
    return out


#: a driver process of its own, for the driver-side resume: the same fit as _drive's, started fresh
_DRIVER = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from test_clip_ray import ARCH, CFG3, _pairs
from robot_irl.retrieval.encoders import load_encoder
from robot_irl.retrieval.train import prepare_pairs
from robot_irl.retrieval.train_ray import train_clip_ray
images, caps, keys = _pairs()
start = load_encoder(ARCH, seed=0)
train_clip_ray(start, prepare_pairs(start, images, caps, keys), config=CFG3, workers=2, storage=Path(sys.argv[1]),
               address=sys.argv[2], progress=False)
"""


def _driver_killed_after_the_first_checkpoint(address: str, env: dict, staging: Path) -> bool:
    """Start the fit in a driver process of its own and SIGKILL that driver once Ray Train has
    registered the run's first checkpoint (its job ends; Ray stops the run's actors with it): an
    interrupted `clip train --workers 2`. Whether the kill came before the fit ended."""
    proc = subprocess.Popen([sys.executable, "-c", _DRIVER, str(staging), address, str(Path(__file__).parent)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 150
        while proc.poll() is None and time.monotonic() < deadline:
            if any(staging.glob("*/checkpoint_manager_snapshot.json")):
                break
            time.sleep(0.05)
        return proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def _drive(address: str, temp_dir: str, folder: str, library: str, env: dict) -> dict:
    """The Ray side of the tests, driven from the test process (torch and the model loaded already; a
    driver process of its own spent 13 s of the module's setup at load 6 importing them): one fit of 3
    epochs on 2 Ray Train workers, killed once the first epoch's checkpoint is registered (Ray Train
    restarts the group from its newest checkpoint, ``FailureConfig(max_failures=1)``), then
    `clip embed --force` of the library as Ray tasks; then the same fit from a driver process killed
    after the first checkpoint, resumed here (``resume=True``); the figures."""
    from robot_irl.library import Library
    from robot_irl.retrieval.embed_batch import embed_library
    from robot_irl.retrieval.train_ray import train_clip_ray

    images, caps, keys = _pairs()
    start = load_encoder(ARCH, seed=0)
    data = prepare_pairs(start, images, caps, keys)
    root = Path(folder)
    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=_kill_the_workers_after_the_first_checkpoint,
                              args=(root / "staging", temp_dir, root / "checkpoints", killed, stop))
    killer.start()
    try:
        fit = train_clip_ray(start, data, config=CFG3, workers=2, storage=root / "staging", address=address,
                             progress=False, out_dir=root / "model")
    finally:
        stop.set()
        killer.join()
    embedded = embed_library(Library.open(library), model=ARCH, ray=address, force=True, progress=False)
    interrupted = _driver_killed_after_the_first_checkpoint(address, env, root / "staging2")
    again = train_clip_ray(start, data, config=CFG3, workers=2, storage=root / "staging2", address=address,
                           resume=True, progress=False, out_dir=root / "model2")
    return {"fit": {"workers": fit.workers, "steps": fit.steps, "losses": fit.step_losses,
                    "resumed_at": fit.resumed_at_step, "model_id": fit.encoder.model_id,
                    "staging_left": (root / "staging").exists()},
            "driver_resume": {"interrupted": interrupted, "steps": again.steps, "losses": again.step_losses,
                              "resumed_at": again.resumed_at_step},
            "killed": killed, "embed": embedded.to_dict()}


@pytest.fixture(scope="module")
def small_library(tmp_path_factory):
    from robot_irl.library import Library
    from robot_irl.record.sim import record_sim

    lib = Library.open(tmp_path_factory.mktemp("embed") / "library", create=True)
    record_sim(lib, "robot_irl/Reach-v0", episodes=3, seed=0, render_size=(64, 48),
               variant={"color": "red", "shape": "cube", "goal_region": "left"})
    return lib


@pytest.fixture(scope="module")
def on_ray(ray_head, small_library, tmp_path_factory):
    """The serial `clip embed` (its stored arrays kept), then the Ray side above, with this Ray's token
    auth; Ray caches auth settings once read, so its own test helper resets them before and after."""
    from ray._private.authentication_test_utils import reset_auth_token_state

    from robot_irl.retrieval.library_index import derived_name

    lib = small_library
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["clip", "embed", "--library", str(lib.path), "--model", ARCH, "--json", "--quiet"]) == 0
    serial = json.loads(out.getvalue())
    name = derived_name(serial["model_id"])
    arrays = {e: lib.episode(e).read_derived(name, 1).arrays for e in lib.ids()}
    folder = tmp_path_factory.mktemp("ray")
    try:
        with pytest.MonkeyPatch.context() as env:
            for key in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH"):
                env.setenv(key, ray_head.env[key])
            reset_auth_token_state()
            got = _drive(ray_head.address, ray_head.temp_dir, str(folder), str(lib.path), ray_head.env)
    finally:
        reset_auth_token_state()
    return {"folder": folder, "serial": serial, "serial_arrays": arrays, "name": name, **got}


def _batch_loss(model: torch.nn.Module, data, cfg: TrainConfig, epoch: int, index: int) -> float:
    """ClipLoss of ``model`` (train mode, as a step sees it) on the global batch that one process's
    generators give at (epoch, index): what a resumed run must compute on its first step."""
    from open_clip import ClipLoss

    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    for e in range(epoch + 1):
        chosen, batches = epoch_plan(data, cfg.batch_size, rng)
        for i, batch in enumerate(batches):
            off = shift_offsets(len(batch), cfg.shift_px, gen)
            if (e, i) == (epoch, index):
                x = data.normalise(apply_shift(data.pixels[torch.tensor(batch)].float(), off, cfg.shift_px))
                m = copy.deepcopy(model).train()
                with torch.no_grad():
                    return float(ClipLoss()(*m(x, data.tokens[[chosen[j] for j in batch]])[:3]))
    raise AssertionError("no such batch")


@pytest.mark.slow   # the module setup: a Ray head, one Ray Train fit (restarted once), a Ray embed
def test_two_ray_train_workers_equal_one_process_checkpoint_and_resume(pairs, start, on_ray, one_thread):
    fit, folder = on_ray["fit"], on_ray["folder"]
    images, caps, keys = pairs
    one = train_clip(start, images, caps, keys=keys, config=CFG1, progress=False)
    # same global batches, same losses: step 0 checks the gathered features and the global batch
    # norm, step 1 the update (one process's and two workers' models after one step; the learning
    # rate of steps 0 and 1 does not depend on the epochs)
    assert fit["workers"] == 2 and one.steps == 2 and fit["steps"] == 6
    np.testing.assert_allclose(fit["losses"][:2], one.step_losses, rtol=2e-4)
    saved = _checkpoints(folder / "checkpoints")
    assert on_ray["killed"] and 2 in saved                          # a Ray Train checkpoint after the epoch
    # the workers killed then: Ray Train restarted the group from its newest registered checkpoint
    # (step 2, or 4 when the kill landed after the next epoch's report), which kept the losses before it
    at = fit["resumed_at"]
    assert at in (2, 4) and at in saved and fit["losses"][:at] == saved[at]["losses"]
    assert saved[2]["losses"] == fit["losses"][:2]
    # its first step after resuming is the checkpoint's model on the batch the restored generators give
    resumed = copy.deepcopy(start.model)
    resumed.load_state_dict(saved[at]["model"])
    data = prepare_pairs(start, images, caps, keys)
    assert fit["losses"][at] == pytest.approx(_batch_loss(resumed, data, CFG3, at // 2, 0), rel=2e-4)
    final = load_encoder(f"local-dir:{folder / 'model'}")          # the driver wrote the model folder
    assert final.model_id == fit["model_id"]
    assert any(not torch.equal(v, saved[at]["model"][k]) for k, v in final.model.state_dict().items())   # trained on
    assert not fit["staging_left"]            # the driver saved the model and removed the run's staging


@pytest.mark.slow   # shares the module's Ray and its fits
def test_an_interrupted_driver_resumes_the_run_from_its_checkpoint(on_ray):
    """`clip train --workers 2` whose driver died after the first epoch's checkpoint, run again with
    ``--resume``: it takes up the staged run at that checkpoint (not from scratch) and trains on to
    the same losses as the uninterrupted fit."""
    got, fit = on_ray["driver_resume"], on_ray["fit"]
    assert got["interrupted"], "the first driver finished before its first checkpoint was seen"
    assert got["resumed_at"] in (2, 4) and got["steps"] == fit["steps"] == 6
    np.testing.assert_allclose(got["losses"], fit["losses"], rtol=2e-4)


@pytest.mark.slow   # shares the Ray Train driver process above
def test_clip_embed_on_ray_equals_serial(small_library, on_ray, capsys):
    lib, serial, got = small_library, on_ray["serial"], on_ray["embed"]
    assert serial["embedded"] == 3 and serial["where"] == "serial" and serial["index_rows"] > 3
    assert got["embedded"] == 3 and got["where"] == "ray" and got["index_rows"] == serial["index_rows"]
    for e in lib.ids():                        # bit-equal: the same function on 1 thread either way
        stored = lib.episode(e).read_derived(on_ray["name"], 1).arrays
        for k, v in on_ray["serial_arrays"][e].items():
            np.testing.assert_array_equal(stored[k], v, err_msg=f"{e} {k}")
    assert main(["clip", "embed", "--library", str(lib.path), "--model", ARCH, "--json", "--quiet"]) == 0
    again = json.loads(capsys.readouterr().out)   # nothing left to embed: skipped, not redone
    assert again["embedded"] == 0 and again["skipped"] == 3


def test_bad_worker_settings_are_refused_before_torch(tmp_path):
    code = ("import sys, json; from robot_irl.cli import main; "
            f"rc = [main(['clip', 'train', '--library', {str(tmp_path / 'none')!r}, *a]) "
            "for a in (['--workers', '0'], ['--workers', '2', '--batch-size', '3'])]; "
            "print(json.dumps([rc, 'torch' in sys.modules]))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [[2, 2], False], done.stderr
    assert "field '--workers'" in done.stderr and "field '--batch-size'" in done.stderr
