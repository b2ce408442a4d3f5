"""CLIP training data-parallel over Ray Train workers (``robot-irl clip train --workers N``).

Why Ray Train: the library's CLIP trains in one process on one machine; a bigger library (or a
bigger model) needs several processes or nodes, and Ray Train's TorchTrainer gives the process
group (gloo on CPU, NCCL on GPUs), placement, restarts and checkpoint storage without a home-made
launcher. Ray is imported only here, and only when a command asks for more than one worker.

Convention (what "the same training" means): the global batch is ``batch_size`` pairs, as for one
process, split into contiguous shards of batch_size/N per worker; every worker draws the epoch's
captions, batches and shifts from the same seed as one process would (each keeps the generators
of the whole run, uses its own shard), so N workers see the same pairs in the same batches, and
each global step's loss and gradient are the global batch's (dist_clip.py), not a worker's. The
same settings therefore mean the same number of samples seen. The one difference: a global batch
with fewer pairs than workers (the tail of an epoch, only possible when N > 2) is skipped.

Checkpoints: at the end of every epoch worker 0 reports model, optimiser, step counters and both
random generators' state (Ray Train keeps the newest two in the run's storage); ``resume=True``
finds the run by its settings and continues from its newest checkpoint. The run's storage is a
staging folder, ``<library>/staging/.clip-train-<key>/`` (a path every node sees, like the
library); the driver alone writes the model folder, from the final checkpoint, then removes the
staging folder.
"""
from __future__ import annotations

import copy
import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robot_irl.errors import InputError
from robot_irl.retrieval.encoders import ClipEncoder
from robot_irl.retrieval.train import (PairData, TrainConfig, TrainResult, apply_shift, epoch_plan, finish_training,
                                       lr_at, make_optimizer, shift_offsets, steps_per_epoch)

STATE_FILE = "state.pt"
RUN_NAME = "run"
RUN_PREFIX = ".clip-train-"
KEEP_CHECKPOINTS = 2


def run_key(settings: dict[str, Any]) -> str:
    """Names a training run by its settings, so ``--resume`` with the same ones finds its folder."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]


def staging_dir(library_path: str | Path, settings: dict[str, Any]) -> Path:
    return Path(library_path) / "staging" / f"{RUN_PREFIX}{run_key(settings)}"


def train_clip_ray(encoder: ClipEncoder, data: PairData, *, config: TrainConfig, workers: int, storage: Path,
                   resume: bool = False, address: str | None = None, use_gpu: bool | None = None,
                   threads: int = 1, out_dir: str | Path | Callable[[], Path] | None = None, progress: bool = True,
                   info: dict[str, Any] | None = None, keep_staging: bool = False) -> TrainResult:
    """Train a copy of ``encoder``'s model on ``data`` with ``workers`` Ray Train workers (see the
    module docstring); ``storage`` is the run's staging folder. Without ``resume`` an old run
    there is discarded. ``use_gpu`` None: GPUs when the cluster has at least ``workers`` of them.
    The returned result, saved to ``out_dir`` like train_clip's (a callable: called for the folder
    once training is done), is the final checkpoint's model."""
    from robot_irl.core.cluster import RayCluster

    if workers < 2:
        raise InputError(f"workers={workers}", field="--workers", expected="2 or more for Ray Train (1: train_clip)")
    storage = Path(storage)
    if not resume and storage.exists():
        shutil.rmtree(storage)
    storage.mkdir(parents=True, exist_ok=True)
    with RayCluster.start(address) as cluster:
        import ray
        from ray.train import CheckpointConfig, FailureConfig, LoggingConfig, RunConfig, ScalingConfig
        from ray.train.torch import TorchTrainer

        gpus = int(ray.cluster_resources().get("GPU", 0))
        gpu = gpus >= workers if use_gpu is None else use_gpu
        if cluster.cpus < workers and not gpu:
            raise InputError(f"{workers} workers on a Ray of {cluster.cpus} CPU(s)", field="--workers",
                             expected=f"at most {cluster.cpus} (one CPU each)")
        model = copy.deepcopy(encoder.model).cpu()
        loop_config = {"data": ray.put(data), "model": ray.put(model), "train_config": asdict(config),
                       "threads": threads, "progress": progress}
        trainer = TorchTrainer(
            _worker_loop, train_loop_config=loop_config,
            scaling_config=ScalingConfig(num_workers=workers, use_gpu=gpu,
                                         resources_per_worker=None if gpu else {"CPU": 1}),
            run_config=RunConfig(name=RUN_NAME, storage_path=str(storage.resolve()),
                                 checkpoint_config=CheckpointConfig(num_to_keep=KEEP_CHECKPOINTS),
                                 failure_config=FailureConfig(max_failures=1),
                                 logging_config=LoggingConfig(log_level="WARNING")))   # a line per report otherwise
        fit = trainer.fit()
        if fit.error is not None:
            raise fit.error
        if fit.checkpoint is None:
            raise RuntimeError(f"the training run in {storage} reported no checkpoint")
        with fit.checkpoint.as_directory() as d:
            state = torch.load(Path(d) / STATE_FILE, map_location="cpu", weights_only=False)
    model.load_state_dict(state["model"])
    result = TrainResult(encoder=encoder, history=state["history"], stopped_by=state["stopped_by"],
                         steps=state["step"], seconds=state["seconds"],
                         pairs_per_s=state["pairs"] / max(state["seconds"], 1e-9),
                         step_losses=state["losses"], workers=workers, resumed_at_step=state["resumed_at_step"],
                         cpu_seconds=state["cpu_seconds"], pairs_seen=state["pairs"])
    result = finish_training(result, encoder, model, config, len(data), out_dir() if callable(out_dir) else out_dir,
                             {**(info or {}), "workers": workers, "resumed_at_step": state["resumed_at_step"]})
    if not keep_staging:
        shutil.rmtree(storage, ignore_errors=True)
    return result


def _worker_loop(loop_config: dict[str, Any]) -> None:
    """One Ray Train worker: its shard of every global batch, DDP across the workers."""
    import ray
    import ray.train
    import ray.train.torch
    import torch.distributed as dist
    from tqdm.auto import tqdm

    from robot_irl.retrieval.dist_clip import global_batchnorm, global_step, shard, shard_sizes

    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    torch.set_num_threads(loop_config["threads"])
    cfg = TrainConfig(**loop_config["train_config"])
    data: PairData = ray.get(loop_config["data"])
    model = global_batchnorm(copy.deepcopy(ray.get(loop_config["model"])))
    device = ray.train.torch.get_device()

    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    st: dict[str, Any] = {"epoch": 0, "step": 0, "pairs": 0, "seconds": 0.0, "cpu_seconds": 0.0, "history": [],
                          "losses": [], "stopped_by": "epochs"}
    opt_state = None
    checkpoint = ray.train.get_checkpoint()      # the run's newest, when it is resumed
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            saved = torch.load(Path(d) / STATE_FILE, map_location="cpu", weights_only=False)
        model.load_state_dict(saved.pop("model"))
        opt_state = saved.pop("optimizer")
        rng.bit_generator.state = saved.pop("rng")
        gen.set_state(saved.pop("gen"))
        saved.pop("resumed_at_step", None)
        st.update(saved)
    resumed_at = st["step"]
    model.train()
    ddp = ray.train.torch.prepare_model(model)   # DDP (gloo on CPU, NCCL on GPUs), moved to the device
    core = ddp.module if hasattr(ddp, "module") else ddp
    opt = make_optimizer(core, cfg)
    if opt_state is not None:
        opt.load_state_dict(opt_state)
    total_steps = cfg.epochs * steps_per_epoch(len(data), cfg.batch_size)
    start = time.perf_counter() - st["seconds"]
    cpu_before, cpu_start = st["cpu_seconds"], time.process_time()
    bar = tqdm(total=None if cfg.max_seconds is not None else total_steps, initial=st["step"], desc="clip train",
               unit="step", disable=rank != 0 or not loop_config["progress"], mininterval=5.0)
    reported: list[int] = []

    def report() -> None:
        """Every worker reports (Ray Train's barrier); worker 0 brings the checkpoint."""
        st["seconds"] = time.perf_counter() - start
        cpu = torch.tensor([time.process_time() - cpu_start], dtype=torch.float64, device=device)
        dist.all_reduce(cpu)                     # every worker's CPU time since it (re)started
        st["cpu_seconds"] = cpu_before + float(cpu)
        metrics = {"epoch": st["epoch"], "step": st["step"], "loss": st["history"][-1]["loss"] if st["history"] else None}
        with tempfile.TemporaryDirectory() as d:
            if rank == 0:
                torch.save({**st, "model": {k: v.cpu() for k, v in core.state_dict().items()},
                            "optimizer": opt.state_dict(), "rng": rng.bit_generator.state, "gen": gen.get_state(),
                            "resumed_at_step": resumed_at}, Path(d) / STATE_FILE)
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(d) if rank == 0 else None)
        reported.append(st["step"])

    clock = torch.zeros(1, dtype=torch.float64, device=device)
    try:
        for epoch in range(st["epoch"], cfg.epochs):
            chosen, batches = epoch_plan(data, cfg.batch_size, rng)
            losses = []
            for batch in batches:
                # one clock (worker 0's) for all: the same learning rate and the same last step everywhere
                clock.fill_(time.perf_counter() - start)
                dist.broadcast(clock, src=0)
                elapsed = float(clock)
                if cfg.max_seconds is not None and elapsed >= cfg.max_seconds:
                    st["stopped_by"] = "time"
                    break
                off = shift_offsets(len(batch), cfg.shift_px, gen)      # the whole global batch's draws
                if len(batch) < world:
                    continue
                for g in opt.param_groups:
                    g["lr"] = lr_at(cfg, st["step"], total_steps, elapsed)
                mine = shard(len(batch), world, rank)
                idx = torch.tensor(batch[mine])
                x = data.normalise(apply_shift(data.pixels[idx].float(), None if off is None else off[mine],
                                               cfg.shift_px)).to(device)
                t = data.tokens[[chosen[i] for i in batch[mine]]].to(device)
                losses.append(global_step(ddp, core, opt, x, t, shard_sizes(len(batch), world), rank,
                                          cfg.max_logit_scale))
                st["step"] += 1
                st["pairs"] += len(batch)
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.3f}", epoch=epoch, refresh=False)
            st["losses"] = st["losses"] + losses
            if losses:
                st["history"] = st["history"] + [{"epoch": epoch, "loss": float(np.mean(losses)),
                                                  "seconds": time.perf_counter() - start,
                                                  "logit_scale": float(core.logit_scale.detach().exp())}]
            if st["stopped_by"] == "time":
                break
            st["epoch"] = epoch + 1
            report()
        if not reported or reported[-1] != st["step"]:
            report()          # stopped by time mid-epoch, or resumed a run that had nothing left to do
    finally:
        bar.close()
