"""A small arm server: one PyBullet arm served over ZeroMQ on 127.0.0.1, so client code for a
simulated and a physical arm is the same, and network faults can be put between the two.

Protocol (JSON frames, DEALER client ↔ ROUTER server): the client sends ``hello`` (reply:
capabilities), then streams ``cmd`` targets without waiting for replies; the server streams ``obs``
(measured state stamped on CLOCK_MONOTONIC) to the client at ``publish_hz``; ``hold``, ``stop``,
``teach``, ``status``, ``fk`` and ``shutdown`` are request/reply with an ``id``.

Like a real controller it has its own watchdog: when no target arrives for ``hold_after`` s it
holds the arm where it is, and says so in ``status``.

Run: ``python -m robot_irl.control.server --robot iiwa --port 0`` (prints ``READY <endpoint>``).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import numpy as np
import zmq

from robot_irl.control.clock import MonotonicClock
from robot_irl.control.errors import ArmConnectionError
from robot_irl.control.pybullet_arm import PyBulletBackend, PyBulletConfig

log = logging.getLogger("robot_irl.control.server")


@dataclass
class ServerConfig:
    robot: str = "iiwa"
    host: str = "127.0.0.1"
    port: int = 0
    publish_hz: float = 250.0
    hold_after: float = 0.2
    native_rate_hz: float = 240.0


class ArmServer:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.clock = MonotonicClock()
        self.backend = PyBulletBackend(PyBulletConfig(robot=config.robot, native_rate_hz=config.native_rate_hz),
                                       self.clock)
        self.ctx = zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SNDHWM, 200)
        self.sock.bind(f"tcp://{config.host}:{config.port}")
        self.endpoint = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.caps = self.backend.connect()
        self.client: bytes | None = None
        self.last_cmd_t: float | None = None
        self.holds = 0
        self.commands = 0
        self.teach = False
        self.running = True

    def serve(self) -> None:
        period = 1.0 / self.config.publish_hz
        next_pub = self.clock.now()
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        try:
            while self.running:
                wait_ms = max(0.0, next_pub - self.clock.now()) * 1e3
                if poller.poll(wait_ms):
                    while self.running and self.sock.poll(0):
                        ident, payload = self.sock.recv_multipart()
                        self._handle(ident, json.loads(payload))
                now = self.clock.now()
                if self.last_cmd_t is not None and now - self.last_cmd_t > self.config.hold_after:
                    log.warning("no target for %.0f ms: holding", 1e3 * (now - self.last_cmd_t))
                    self.backend.hold()
                    self.holds += 1
                    self.last_cmd_t = None
                if now >= next_pub:
                    obs = self.backend.read()
                    if self.client is not None:
                        self._send(self.client, {"type": "obs", "t": obs.t, "q": obs.q.tolist(),
                                                 "dq": obs.dq.tolist(), "ee": obs.ee_pos.tolist()})
                    next_pub = next_pub + period if now - next_pub < period else now + period
        finally:
            self.backend.disconnect()
            self.sock.close(0)

    def _send(self, ident: bytes, msg: dict) -> None:
        try:
            self.sock.send_multipart([ident, json.dumps(msg).encode()], zmq.NOBLOCK)
        except zmq.Again:
            pass   # a client that does not read loses observations, never blocks the arm

    def _handle(self, ident: bytes, msg: dict) -> None:
        op = msg.get("op")
        if op == "cmd":
            if not self.teach:
                self.backend.command(np.asarray(msg["q"], float))
                self.last_cmd_t = self.clock.now()
                self.commands += 1
            return
        reply: dict = {"type": "reply", "id": msg.get("id"), "ok": True}
        if op == "hello":
            self.client = ident
            reply["capabilities"] = self.caps.to_dict()
            reply["home"] = self.backend.default_home.tolist()
        elif op in ("hold", "stop"):
            held = getattr(self.backend, op)()
            reply["held"] = None if held is None else np.asarray(held, float).tolist()
            self.last_cmd_t = None
        elif op == "teach":
            self.teach = bool(msg["on"])
            self.backend.set_teach_mode(self.teach)
            self.last_cmd_t = None
        elif op == "fk":
            reply["ee"] = self.backend.forward_kinematics(np.asarray(msg["q"], float)).tolist()
        elif op == "status":
            now = self.clock.now()
            reply.update(held=self.last_cmd_t is None, holds=self.holds, commands=self.commands,
                         last_cmd_age=None if self.last_cmd_t is None else now - self.last_cmd_t)
        elif op == "shutdown":
            self.running = False
        else:
            reply.update(ok=False, error=f"unknown op {op!r}")
        self._send(ident, reply)


class ArmServerProcess:
    """Start an arm server as a child process on 127.0.0.1 and own it: kill, freeze (SIGSTOP),
    resume (SIGCONT) for fault injection; ``close`` always reaps it. A context manager."""

    def __init__(self, config: ServerConfig | None = None, start_timeout_s: float = 30.0) -> None:
        self.config = config or ServerConfig()
        self.start_timeout_s = start_timeout_s
        self.proc: subprocess.Popen | None = None
        self.endpoint = ""

    def start(self) -> "ArmServerProcess":
        c = self.config
        cmd = [sys.executable, "-m", "robot_irl.control.server", "--robot", c.robot, "--host", c.host,
               "--port", str(c.port), "--publish-hz", str(c.publish_hz), "--hold-after", str(c.hold_after),
               "--native-rate-hz", str(c.native_rate_hz)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                     start_new_session=True)
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.1)
            if ready:
                line = self.proc.stdout.readline()
                if line.startswith("READY "):
                    self.endpoint = line.split()[1]
                    return self
                if line == "":
                    break
        self.close()
        raise ArmConnectionError(f"arm server did not start within {self.start_timeout_s} s")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)

    def freeze(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.alive():
            os.kill(self.pid, signal.SIGCONT)

    def close(self) -> None:
        if self.proc is None:
            return
        if self.alive():
            self.resume()
            self.proc.terminate()
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None

    def __enter__(self) -> "ArmServerProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Serve a PyBullet arm over ZeroMQ (loopback only by default).")
    ap.add_argument("--robot", default="iiwa")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port")
    ap.add_argument("--publish-hz", type=float, default=250.0)
    ap.add_argument("--hold-after", type=float, default=0.2, help="hold when no target for this long (s)")
    ap.add_argument("--native-rate-hz", type=float, default=240.0)
    a = ap.parse_args(argv)
    server = ArmServer(ServerConfig(a.robot, a.host, a.port, a.publish_hz, a.hold_after, a.native_rate_hz))
    signal.signal(signal.SIGTERM, lambda *_: setattr(server, "running", False))
    print(f"READY {server.endpoint}", flush=True)
    server.serve()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
