"""How many CPUs this process's native thread pools may use: OpenCV's and FFmpeg's decoders.

Why: OpenCV (ArUco detection, colour conversion) and FFmpeg (frame and slice threads in decoding)
each size their thread pool to the machine, whatever the process was given. A Ray task asks for
one CPU; a worker that then runs two or three pools over every core makes N workers on N cores
oversubscribe them (bench_scale: each extraction worker used ~1.5 cores, so 2 workers on 2 cores
gave 1.32x, not 2x). Ray sets ``OMP_NUM_THREADS`` for its workers, which neither library reads.
:meth:`robot_irl.core.cluster.RayCluster.map` calls :func:`set_cpu_budget` with the CPUs Ray
assigned to each task; :mod:`robot_irl.library.decode` reads :func:`cpu_budget` when it opens a
video. Thread counts change speed only: OpenCV's detections and FFmpeg's decoded frames are the
same at any count (bench_scale checks extraction results equal).

Process-wide on purpose: a Ray worker process runs one task at a time and is the command's own.
"""
from __future__ import annotations

_BUDGET: int | None = None   # None: every library sizes its pool itself (a command's own process)


def set_cpu_budget(cpus: float | None) -> None:
    """Size OpenCV's pool and the video decoder's threads to ``cpus`` (at least 1; a fraction
    rounds down), or give them back their own defaults with None."""
    global _BUDGET
    import cv2

    n = None if cpus is None else max(1, int(cpus))
    if n == _BUDGET:
        return
    _BUDGET = n
    cv2.setNumThreads(-1 if n is None else n)   # -1: OpenCV's default (every core)


def cpu_budget() -> int | None:
    """The CPUs this process's pools may use, or None where each library decides."""
    return _BUDGET
