"""Running a batch over a Ray cluster: start or join Ray, map a task over items with one progress
bar, retries and per-item errors, and hand each result to the driver, the library's only writer.

Why one helper: every command with ``--ray`` (extraction, sim recording, ...) needs the same five
things — Ray started the same way (usage reports off, a local runtime sized to the machine or
``ray.init(address=...)``), the dashboard address said when one runs, a worker that dies retried by
Ray, a task's exception reported with the item it belongs to while the others go on
(:class:`robot_irl.core.batch.BatchReport`), and results committed by the driver alone. Ray is
imported here only when a command asks for it: nothing else in robot_irl imports Ray.

    with RayCluster.start(address) as cluster:
        report = cluster.map(work, items, key=lambda it: it.id, commit=store, verb="extracted")

``work`` is a plain module-level function (it is shipped to the workers by reference, so every
node must have robot-irl installed); ``commit(key, result)`` runs on the driver as each result
arrives, inside the item's error scope, so a failed commit is that item's failure too.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TextIO, TypeVar

from robot_irl.core.batch import BatchReport
from robot_irl.errors import InputError

T = TypeVar("T")

LOCAL = "local"                   # `--ray` without an address: a local runtime sized to this machine
TASK_RETRIES = 3                  # a task whose worker process dies is run again up to this often
LOCAL_START_ATTEMPTS = 2


def usage_stats_off() -> None:
    """No usage reports leave the machine from any Ray this process starts (and its workers)."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"


def _import_ray():
    try:
        import ray
    except ImportError:
        raise InputError("Ray is not installed", field="--ray",
                         expected='pip install "robot-irl[ray]" (or run without --ray)') from None
    return ray


@dataclass
class RayCluster:
    """A connection to Ray for one command: the local runtime it started, or a cluster it joined."""

    address: str                  # "local" or the address given
    cpus: int                     # CPUs the cluster offers now
    dashboard_url: str | None     # where the Ray dashboard answers, when one runs
    stream: TextIO | None = None  # where progress and notes go (stderr)

    @classmethod
    def start(cls, address: str | None = None, *, num_cpus: int | None = None,
              stream: TextIO | None = None) -> "RayCluster":
        """``address`` None or "local": a local runtime with ``num_cpus`` (default: every core);
        else join the cluster there (``ray.init(address=...)``; "auto" finds a local ``ray start``)."""
        usage_stats_off()
        local = address in (None, "", LOCAL)
        if local:
            # Ray starts its workers at nice 15, below every ordinary process: on a machine doing anything
            # else the command's own work then waits (bench_scale: one-worker extraction 4.75x the serial
            # loop's time beside other jobs at load 11). A local runtime is the command's, so its workers
            # run at the driver's priority; a cluster from `ray start` takes RAY_worker_niceness from its shell.
            os.environ.setdefault("RAY_worker_niceness", "0")
        if local and "ray" not in sys.modules:
            # token auth on, as Ray's default for a new local runtime, without its warning each time; only
            # before Ray is imported: Ray reads its auth settings once, and a mode set after that mismatches
            # the runtime it starts (a script that imported ray first keeps Ray's own default)
            os.environ.setdefault("RAY_AUTH_MODE", "token")
        ray = _import_ray()
        out = stream or sys.stderr
        if ray.is_initialized():
            ray.shutdown()
        if local:
            ctx = _init_local(ray, num_cpus or os.cpu_count() or 1, out)
        else:
            if num_cpus is not None:
                raise InputError("a cluster's size is set where it is started", field="num_cpus",
                                 expected="no CPU count with --ray ADDRESS")
            try:
                ctx = ray.init(address=address, logging_level="warning")
            except ConnectionError as e:
                raise InputError(f"no Ray cluster answers at {address!r} ({e})", field="--ray",
                                 expected="the address `ray start --head` printed (host:port), or no "
                                          "address for a local runtime") from None
        url = getattr(ctx, "dashboard_url", None) or None
        cpus = int(ray.cluster_resources().get("CPU", 0))
        cluster = cls(LOCAL if local else str(address), cpus, f"http://{url}" if url and "://" not in url else url,
                      stream=out)
        where = "local Ray runtime" if local else f"Ray cluster at {address}"
        print(f"{where}: {cpus} CPU(s)" + (f"; dashboard {cluster.dashboard_url}" if cluster.dashboard_url else ""),
              file=out)
        return cluster

    def __enter__(self) -> "RayCluster":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Leave the cluster (a local runtime stops; a joined cluster keeps running)."""
        ray = _import_ray()
        if ray.is_initialized():
            ray.shutdown()

    def map(self, work: Callable[..., Any], items: Iterable[T], *, key: Callable[[T], str],
            args: Callable[[T], tuple] = lambda it: (it,), commit: Callable[[str, Any], Any] | None = None,
            verb: str = "processed", unit: str = "task", progress: bool = True, num_cpus: float = 1,
            max_in_flight: int | None = None, retries: int = TASK_RETRIES) -> BatchReport:
        """Run ``work(*args(item))`` as one Ray task per item; as results arrive (in completion
        order) the driver calls ``commit(key, result)`` and records what it returns in the report.

        At most ``max_in_flight`` tasks are queued at once (default 4 per CPU), so a million items
        do not fill the object store. A worker that dies is retried ``retries`` times by Ray; an
        exception raised by ``work`` is not retried (it would fail again) and is reported by key.
        """
        ray = _import_ray()
        from tqdm.auto import tqdm

        items = list(items)
        keys = [key(it) for it in items]
        if len(set(keys)) != len(keys):
            raise InputError("items share a key", field="key", expected="one key per item")
        remote = ray.remote(_sized_to_task(work)).options(num_cpus=num_cpus, max_retries=retries, retry_exceptions=False)
        report = BatchReport(verb, stream=self.stream)
        window = max_in_flight or max(1, 4 * max(self.cpus, 1))
        pending: dict[Any, str] = {}
        todo = iter(zip(keys, items))
        out = self.stream or sys.stderr
        bar = tqdm(total=len(items), desc=verb, unit=unit, disable=not progress, file=out, dynamic_ncols=True)
        try:
            while True:
                while len(pending) < window:
                    nxt = next(todo, None)
                    if nxt is None:
                        break
                    pending[remote.remote(*args(nxt[1]))] = nxt[0]
                if not pending:
                    break
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    k = pending.pop(ref)
                    with report.item(k), tqdm.external_write_mode(file=out):   # lines printed above the bar
                        result = _result(ray, ref)
                        report.ok(k, commit(k, result) if commit is not None else result)
                    bar.update(1)
                    bar.set_postfix(failed=len(report.failed), refresh=False)
        except BaseException:
            for ref in pending:          # Ctrl-C on the driver: stop what is queued, commit nothing more
                ray.cancel(ref, force=True)
            raise
        finally:
            bar.close()
        return report


def _sized_to_task(work: Callable[..., Any]) -> Callable[..., Any]:
    """``work`` run with the worker's native thread pools (OpenCV, the video decoder) sized to the
    CPUs Ray assigned the task (:mod:`robot_irl.core.threads`): left at their defaults, every worker
    runs pools over every core, and N one-CPU workers on N cores oversubscribe them. Nothing is
    restored after the task: the worker process is the command's, and the next task sets its own."""
    def task(*args: Any) -> Any:
        import ray

        from robot_irl.core.threads import set_cpu_budget
        set_cpu_budget(ray.get_runtime_context().get_assigned_resources().get("CPU"))
        return work(*args)

    task.__name__ = task.__qualname__ = getattr(work, "__name__", "task")   # Ray names the task by it
    return task


def _init_local(ray, num_cpus: int, out: TextIO):
    """``ray.init`` of a local runtime, once more if it timed out starting: Ray gives its raylet a
    fixed 30 s, which a machine busy with other work can exceed (the second start finds the files
    the first one compiled and cached)."""
    attempt = 1
    while True:
        try:
            return ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level="warning")
        except Exception as e:   # Ray raises a bare Exception for this one
            if "timed out during startup" not in str(e) or attempt >= LOCAL_START_ATTEMPTS:
                raise
            print("the local Ray runtime was slow to start (a busy machine); starting it again", file=out)
            ray.shutdown()
            attempt += 1


def _result(ray, ref) -> Any:
    """``ray.get`` that raises the task's own exception (not Ray's wrapper), so the report reads
    the same as the serial path's; a worker that died past its retries reads as such."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as e:
        cause = getattr(e, "cause", None)
        if isinstance(cause, Exception):
            raise cause from None
        raise
    except ray.exceptions.WorkerCrashedError:
        raise RuntimeError("its worker process died (retried, and died again)") from None


def add_ray_option(parser) -> None:
    """``--ray [ADDRESS]`` for a batch command (argparse)."""
    parser.add_argument("--ray", nargs="?", const=LOCAL, default=None, metavar="ADDRESS",
                        help="run the work as Ray tasks: without ADDRESS on a local Ray runtime sized to this "
                             "machine, with one (host:port from `ray start --head`) on that cluster; every node "
                             "must see the library at the same path. Results are the same as without --ray "
                             "(give it after positional arguments, or as --ray=ADDRESS)")
