"""CLIP across workers (`clip train --workers N`, Ray Train) and `clip embed --ray`.

- the distributed step (two gloo processes, no Ray): the global batch's loss and gradient, and the
  batch-norm running statistics, equal one process's on the same batch, with shards of unequal size;
- Ray Train (one single-node Ray started for the module with `ray start --head`, stopped at its end
  even when a test fails): 2 workers give one process's losses on the same global batches, write a
  checkpoint, and `resume` continues from it (model, optimiser, both random generators);
- `clip embed --ray` stores the serial path's embeddings bit for bit;
- with one worker nothing imports Ray; bad `--workers` / `--batch-size` are refused before torch.
"""
from __future__ import annotations

import copy
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from robot_irl.cli import main
from robot_irl.retrieval.captions import CaptionFacts, captions
from robot_irl.retrieval.encoders import load_encoder
from robot_irl.retrieval.train import (TrainConfig, apply_shift, epoch_plan, prepare_pairs, shift_offsets,
                                       train_clip)

ROOT = Path(__file__).resolve().parents[1]
ARCH = "robot-irl-rn-64"      # the default: a ResNet image tower, so batch norm is part of what is checked


def _scene(f: CaptionFacts, rng: np.random.Generator) -> np.ndarray:
    im = np.full((48, 64, 3), 200, np.uint8)
    x = (14 if f.goal == "left" else 50) + int(rng.integers(-3, 4))
    y = 24 + int(rng.integers(-5, 6))
    colour = (220, 30, 30) if f.colour == "red" else (30, 30, 220)
    im[y - 7:y + 7, x - 7:x + 7] = colour
    if f.shape == "ball":
        im[y - 7:y - 4, x - 7:x - 4] = 200
    return im


@pytest.fixture(scope="module")
def pairs():
    """16 pairs of 8 variants: batches of 8 hold each variant once, 2 steps per epoch."""
    rng = np.random.default_rng(0)
    variants = [CaptionFacts("push", s, c, g) for s in ("cube", "ball") for c in ("red", "blue")
                for g in ("left", "right")]
    facts = [variants[i % len(variants)] for i in range(16)]
    return np.stack([_scene(f, rng) for f in facts]), [captions(f) for f in facts], [f.key() for f in facts]


@pytest.fixture(scope="module")
def start():
    return load_encoder(ARCH, seed=0)


# ---- the distributed step, two gloo processes ---------------------------------------------------
def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


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
        torch.save((loss, grads, {n: b.clone() for n, b in core.named_buffers()}), Path(folder) / f"out{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_global_batch_loss_gradient_and_batchnorm_equal_one_process(pairs, start, tmp_path):
    images, caps, keys = pairs
    data = prepare_pairs(start, images, caps, keys)
    batch = list(range(7))                     # 7 pairs on 2 workers: shards of 4 and 3
    x = data.normalise(data.pixels[batch].float())
    t = data.tokens[[ids[0] for ids in data.cap_ids[:7]]]
    model = copy.deepcopy(start.model).train()
    torch.save((model, x, t), tmp_path / "in.pt")

    torch.set_num_threads(1)
    img_f, txt_f, scale = model(x, t)[:3]
    from open_clip import ClipLoss
    loss = ClipLoss()(img_f, txt_f, scale)
    loss.backward()
    loss = float(loss)
    want = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}

    port = _free_ports(1)[0]
    torch.multiprocessing.start_processes(_step_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True,
                                          start_method="spawn")
    for rank in (0, 1):
        got_loss, grads, buffers = torch.load(tmp_path / f"out{rank}.pt", weights_only=False)
        assert got_loss == pytest.approx(loss, rel=1e-5)
        assert set(grads) == set(want)
        for n, g in want.items():   # the global batch's gradient: not 1/N of it, not a worker's own
            assert float((grads[n] - g).norm()) <= 1e-4 * float(g.norm()) + 1e-8, n
        for n, b in model.named_buffers():   # running statistics of the global batch
            torch.testing.assert_close(buffers[n], b, rtol=1e-5, atol=1e-6, msg=n)


# ---- Ray: one single-node runtime for the module ------------------------------------------------
def _ours(temp_dir: str) -> set[int]:
    """This Ray's processes: those naming its temp dir, and their descendants."""
    procs = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            procs[int(d.name)] = (ppid, cmd)
    mine = {pid for pid, (_, cmd) in procs.items() if temp_dir in cmd}
    while True:
        kids = {pid for pid, (ppid, _) in procs.items() if ppid in mine} - mine
        if not kids:
            return mine
        mine |= kids


def _stop(temp_dir: str) -> None:
    """Stop exactly this Ray's processes (never `ray stop`: it stops every Ray on the machine)."""
    for sig, wait in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 2.0)):
        pids = _ours(temp_dir)
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        end = time.monotonic() + wait
        while time.monotonic() < end and _ours(temp_dir):
            time.sleep(0.1)


@pytest.fixture(scope="module")
def ray_head():
    """`ray start --head` on 127.0.0.1 with 2 CPUs, its own temp dir and token; the address."""
    pytest.importorskip("ray", reason="Ray is not installed (robot-irl[ray])")
    pytest.importorskip("ray.train", reason="Ray Train is not installed (robot-irl[ray])")
    temp_dir = tempfile.mkdtemp(prefix="rirl-clip-", dir="/tmp")    # short: Ray's socket paths must fit
    token = Path(temp_dir) / "auth_token"
    token.write_text(secrets.token_hex(32))
    env_add = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    env = {**os.environ, **env_add,
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    ports = _free_ports(10)
    cmd = [str(Path(sys.executable).with_name("ray")), "start", "--head", f"--port={ports[0]}", "--num-cpus=2",
           "--include-dashboard=false", f"--dashboard-port={ports[1]}", f"--ray-client-server-port={ports[2]}",
           f"--temp-dir={temp_dir}", f"--dashboard-agent-listen-port={ports[3]}",
           f"--dashboard-agent-grpc-port={ports[4]}", f"--runtime-env-agent-port={ports[5]}",
           f"--metrics-export-port={ports[6]}", f"--node-manager-port={ports[7]}",
           f"--object-manager-port={ports[8]}", "--node-ip-address=127.0.0.1", "--disable-usage-stats"]
    saved = {k: os.environ.get(k) for k in env_add}
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=150)
        assert done.returncode == 0, done.stdout + done.stderr
        os.environ.update(env_add)            # this process's drivers join with the head's token
        yield f"127.0.0.1:{ports[0]}"
    finally:
        import ray
        if ray.is_initialized():
            ray.shutdown()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        _stop(temp_dir)
        import shutil
        shutil.rmtree(temp_dir, ignore_errors=True)


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


@pytest.mark.slow
def test_two_ray_train_workers_equal_one_process_checkpoint_and_resume(pairs, start, ray_head, tmp_path):
    from robot_irl.retrieval.train_ray import STATE_FILE, train_clip_ray

    images, caps, keys = pairs
    data = prepare_pairs(start, images, caps, keys)
    torch.set_num_threads(1)
    cfg2 = TrainConfig(epochs=2, batch_size=8, lr=1e-3, warmup_steps=2, seed=0)
    cfg1 = TrainConfig(**{**cfg2.__dict__, "epochs": 1})
    one = train_clip(start, images, caps, keys=keys, config=cfg1, progress=False)
    storage = tmp_path / "staging"

    a = train_clip_ray(start, data, config=cfg1, workers=2, storage=storage, address=ray_head, progress=False,
                       keep_staging=True)
    # same global batches, same losses: step 0 checks the gathered features and global batch norm,
    # step 1 the update (one process's and two workers' models after one step)
    assert a.workers == 2 and a.steps == one.steps == 2
    np.testing.assert_allclose(a.step_losses, one.step_losses, rtol=2e-4)
    checkpoints = sorted(storage.glob("run/checkpoint_*/" + STATE_FILE))
    assert checkpoints, "no Ray Train checkpoint written"
    assert torch.load(checkpoints[-1], weights_only=False)["step"] == 2

    out = tmp_path / "model"
    b = train_clip_ray(start, data, config=cfg2, workers=2, storage=storage, resume=True, address=ray_head,
                       progress=False, out_dir=out)
    assert b.resumed_at_step == 2 and b.steps == 4 and b.step_losses[:2] == a.step_losses
    # its first step after resuming is the checkpoint's model on the batch the restored generators give
    assert b.step_losses[2] == pytest.approx(_batch_loss(a.encoder.model, data, cfg2, 1, 0), rel=2e-4)
    assert load_encoder(f"local-dir:{out}").model_id == b.encoder.model_id != a.encoder.model_id
    assert not storage.exists()               # the driver saved the model and removed the run's staging


@pytest.fixture(scope="module")
def small_library(tmp_path_factory):
    from robot_irl.library import Library
    from robot_irl.record.sim import record_sim

    lib = Library.open(tmp_path_factory.mktemp("embed") / "library", create=True)
    record_sim(lib, "robot_irl/Reach-v0", episodes=3, seed=0, render_size=(64, 48),
               variant={"color": "red", "shape": "cube", "goal_region": "left"})
    return lib


@pytest.mark.slow
def test_clip_embed_on_ray_equals_serial(small_library, ray_head, capsys):
    from robot_irl.retrieval.library_index import derived_name

    lib = small_library
    base = ["clip", "embed", "--library", str(lib.path), "--model", ARCH, "--json", "--quiet"]
    assert main(base) == 0
    serial = json.loads(capsys.readouterr().out)
    assert serial["embedded"] == 3 and serial["where"] == "serial" and serial["index_rows"] > 3
    name = derived_name(serial["model_id"])
    want = {e: lib.episode(e).read_derived(name, 1).arrays for e in lib.ids()}

    assert main(base + ["--force", f"--ray={ray_head}"]) == 0
    on_ray = json.loads(capsys.readouterr().out)
    assert on_ray["embedded"] == 3 and on_ray["where"] == "ray" and on_ray["index_rows"] == serial["index_rows"]
    for e in lib.ids():
        got = lib.episode(e).read_derived(name, 1).arrays
        for k, v in want[e].items():
            np.testing.assert_array_equal(got[k], v, err_msg=f"{e} {k}")

    assert main(base) == 0                     # nothing left to embed: skipped, not redone
    again = json.loads(capsys.readouterr().out)
    assert again["embedded"] == 0 and again["skipped"] == 3


def test_one_worker_imports_no_ray_and_bad_settings_are_refused(tmp_path):
    code = ("import sys; from robot_irl.retrieval import library_clip, embed_batch, dist_clip, train; "
            "from robot_irl.retrieval import cli; print('ray' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "False", done.stderr
    for argv, field in ((["--workers", "0"], "--workers"), (["--workers", "2", "--batch-size", "3"], "--batch-size")):
        done = subprocess.run([sys.executable, "-m", "robot_irl.cli", "clip", "train", "--library",
                               str(tmp_path / "none"), *argv], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and field in done.stderr and "torch" not in done.stderr, done.stderr
