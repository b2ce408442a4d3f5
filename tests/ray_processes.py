"""The processes of a Ray started by a test: free ports to start it on, and stopping exactly its
processes (never `ray stop`, which stops every Ray on the machine) even when a test fails."""
from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path


def free_ports(n: int) -> list[int]:
    """``n`` ports free on 127.0.0.1 now (each Ray port given, so two clusters never collide)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def procs() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every process we can read."""
    out = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        out[int(d.name)] = (ppid, cmd)
    return out


def ours(temp_dir: str) -> set[int]:
    """This cluster's processes: those naming its temp dir, and their descendants (workers)."""
    table = procs()
    mine = {pid for pid, (_, cmd) in table.items() if temp_dir in cmd}
    grew = True
    while grew:
        kids = {pid for pid, (ppid, _) in table.items() if ppid in mine} - mine
        mine |= kids
        grew = bool(kids)
    return mine


def stop_processes(temp_dir: str) -> None:
    """Stop exactly this cluster's processes (never `ray stop`, which stops every Ray on the machine)."""
    for sig, wait in ((signal.SIGTERM, 1.0), (signal.SIGKILL, 2.0)):
        pids = ours(temp_dir)
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        end = time.monotonic() + wait
        while time.monotonic() < end and any(Path(f"/proc/{p}").exists() and not zombie(p) for p in pids):
            time.sleep(0.1)


def zombie(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie, or gone): a killed process counts as stopped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
