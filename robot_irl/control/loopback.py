"""Client of the arm server (:mod:`robot_irl.control.server`): the same :class:`ArmBackend` calls,
carried over ZeroMQ. Targets are streamed without waiting for replies and observations stream
back, so the loop rate never depends on the round trip; link faults surface as typed errors:
:class:`ArmDisconnectedError` when the peer's connection drops (server killed),
:class:`ArmTimeoutError` when it stays silent longer than ``timeout_s`` (server frozen)."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass

import numpy as np
import zmq
from zmq.utils.monitor import recv_monitor_message

from robot_irl.control.backend import ArmBackend
from robot_irl.control.errors import ArmConnectionError, ArmDisconnectedError, ArmStateError, ArmTimeoutError
from robot_irl.control.server import ArmServerProcess, ServerConfig
from robot_irl.control.types import Capabilities, Observation


@dataclass
class LoopbackConfig:
    """``endpoint``: a running server (``tcp://127.0.0.1:PORT``); None starts a private one for
    ``robot`` and stops it on disconnect. ``timeout_s``: silence that counts as a dead link."""

    endpoint: str | None = None
    robot: str = "iiwa"
    timeout_s: float = 0.5
    hold_after: float = 0.2
    publish_hz: float = 250.0


class LoopbackBackend(ArmBackend):
    def __init__(self, config: LoopbackConfig | None = None) -> None:
        self.config = config or LoopbackConfig()
        self._server: ArmServerProcess | None = None
        self._sock: zmq.Socket | None = None
        self._monitor: zmq.Socket | None = None
        self._next_id = 0
        self._obs: Observation | None = None
        self._obs_rx = 0.0          # when the latest observation was received (monotonic)
        self._replies: dict[int, dict] = {}
        self._lost = False

    # --- lifecycle ---
    def connect(self) -> Capabilities:
        endpoint = self.config.endpoint
        if endpoint is None:
            self._server = ArmServerProcess(ServerConfig(robot=self.config.robot, hold_after=self.config.hold_after,
                                                         publish_hz=self.config.publish_hz)).start()
            endpoint = self._server.endpoint
        ctx = zmq.Context.instance()
        self._sock = ctx.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.SNDHWM, 100)
        self._monitor = self._sock.get_monitor_socket(zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED)
        self._sock.connect(endpoint)
        self.endpoint = endpoint
        reply = self._request("hello")
        self.default_home = np.asarray(reply["home"], float)
        return Capabilities.from_dict(reply["capabilities"])

    def disconnect(self) -> None:
        if self._sock is not None:
            self._sock.disable_monitor()
            self._monitor.close(0)
            self._sock.close(0)
            self._sock = self._monitor = None
        if self._server is not None:
            self._server.close()
            self._server = None

    # --- ArmBackend calls ---
    def read(self) -> Observation:
        self._pump(0.0)
        if self._obs is None:
            self._wait_for(lambda: self._obs is not None, "the first observation")
        elif time.monotonic() - self._obs_rx > self.config.timeout_s:
            raise ArmTimeoutError(f"no observation from the arm server at {self.endpoint} "
                                  f"for {self.config.timeout_s} s (frozen or unreachable)")
        return self._obs

    def command(self, q: np.ndarray) -> None:
        self._pump(0.0)
        self._send({"op": "cmd", "q": np.asarray(q, float).tolist()})

    def hold(self) -> np.ndarray | None:
        held = self._request("hold").get("held")
        return None if held is None else np.asarray(held, float)

    def stop(self) -> np.ndarray | None:
        held = self._request("stop").get("held")
        return None if held is None else np.asarray(held, float)

    def set_teach_mode(self, on: bool) -> None:
        self._request("teach", on=bool(on))

    def forward_kinematics(self, q: np.ndarray) -> np.ndarray:
        return np.asarray(self._request("fk", q=np.asarray(q, float).tolist())["ee"], float)

    def status(self) -> dict:
        """The server's view: ``held`` (its own watchdog or a hold), ``holds``, ``commands``."""
        return self._request("status")

    # --- transport ---
    def _send(self, msg: dict) -> None:
        if self._sock is None:
            raise ArmStateError("loopback arm is not connected")
        self._check_link()
        try:
            self._sock.send(json.dumps(msg).encode(), zmq.NOBLOCK)
        except zmq.Again:
            raise ArmTimeoutError(f"send queue to {self.endpoint} is full (server not reading)") from None

    def _request(self, op: str, **kw) -> dict:
        self._next_id += 1
        rid = self._next_id
        self._send({"op": op, "id": rid, **kw})
        self._wait_for(lambda: rid in self._replies, f"an answer to '{op}'")
        reply = self._replies.pop(rid)
        if not reply.get("ok"):
            raise ArmConnectionError(f"arm server refused '{op}': {reply.get('error')}")
        return reply

    def _wait_for(self, done, what: str) -> None:
        since = time.monotonic()
        while not done():
            left = self.config.timeout_s - (time.monotonic() - since)
            if left <= 0:
                raise ArmTimeoutError(f"arm server at {self.endpoint} did not send {what} "
                                      f"within {self.config.timeout_s} s (frozen or unreachable)")
            self._pump(left)

    def _pump(self, timeout_s: float) -> bool:
        """Receive everything pending (waiting up to ``timeout_s`` for the first message); keep the
        latest observation and file replies by id. True when something arrived."""
        got = False
        poller = zmq.Poller()
        poller.register(self._sock, zmq.POLLIN)
        poller.register(self._monitor, zmq.POLLIN)
        wait_ms = timeout_s * 1e3
        while True:
            events = dict(poller.poll(wait_ms))
            if self._monitor in events:
                self._check_link()
            if self._sock not in events:
                return got
            while self._sock.poll(0):
                msg = json.loads(self._sock.recv())
                if msg.get("type") == "obs":
                    self._obs = Observation(t=msg["t"], q=np.asarray(msg["q"]), dq=np.asarray(msg["dq"]),
                                            ee_pos=np.asarray(msg["ee"]))
                    self._obs_rx = time.monotonic()
                else:
                    self._replies[msg["id"]] = msg
            got = True
            wait_ms = 0

    def _check_link(self) -> None:
        while self._monitor is not None and self._monitor.poll(0):
            if recv_monitor_message(self._monitor)["event"] == zmq.EVENT_DISCONNECTED:
                self._lost = True
        if self._lost:
            raise ArmDisconnectedError(f"arm server at {self.endpoint} closed the connection")
