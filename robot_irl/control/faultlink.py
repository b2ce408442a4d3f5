"""A fault-injecting ZeroMQ proxy for the arm link: put it between a loopback client and an arm
server to add latency and jitter (per message, each direction, order kept as TCP keeps it) or to
freeze the link. Runs in a thread of the calling process, binds 127.0.0.1 only."""
from __future__ import annotations

import random
import threading
import time
from collections import deque

import zmq


class FaultLink:
    def __init__(self, server_endpoint: str, latency_s: float = 0.0, jitter_s: float = 0.0, seed: int = 0) -> None:
        self.latency_s = latency_s
        self.jitter_s = jitter_s
        self.frozen = False
        self._rng = random.Random(seed)
        ctx = zmq.Context.instance()
        self._front = ctx.socket(zmq.ROUTER)
        self._front.setsockopt(zmq.LINGER, 0)
        self._front.bind("tcp://127.0.0.1:0")
        self.endpoint = self._front.getsockopt_string(zmq.LAST_ENDPOINT)
        self._back = ctx.socket(zmq.DEALER)
        self._back.setsockopt(zmq.LINGER, 0)
        self._back.connect(server_endpoint)
        self._client: bytes | None = None
        self._queues: dict[str, deque[tuple[float, bytes]]] = {"up": deque(), "down": deque()}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="faultlink", daemon=True)
        self._thread.start()

    def set(self, latency_s: float | None = None, jitter_s: float | None = None, frozen: bool | None = None) -> None:
        if latency_s is not None:
            self.latency_s = latency_s
        if jitter_s is not None:
            self.jitter_s = jitter_s
        if frozen is not None:
            self.frozen = frozen

    def _due(self, queue: deque) -> float:
        delay = max(0.0, self.latency_s + self._rng.uniform(-self.jitter_s, self.jitter_s))
        due = time.monotonic() + delay
        return max(due, queue[-1][0]) if queue else due     # in order, like a TCP stream

    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self._front, zmq.POLLIN)
        poller.register(self._back, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                events = dict(poller.poll(1))
                if self._front in events:
                    while self._front.poll(0):
                        ident, payload = self._front.recv_multipart()
                        self._client = ident
                        self._queues["up"].append((self._due(self._queues["up"]), payload))
                if self._back in events:
                    while self._back.poll(0):
                        payload = self._back.recv()
                        self._queues["down"].append((self._due(self._queues["down"]), payload))
                if self.frozen:
                    continue
                now = time.monotonic()
                for name, q in self._queues.items():
                    while q and q[0][0] <= now:
                        _, payload = q.popleft()
                        if name == "up":
                            self._back.send(payload, zmq.NOBLOCK)
                        elif self._client is not None:
                            self._front.send_multipart([self._client, payload], zmq.NOBLOCK)
        finally:
            self._front.close(0)
            self._back.close(0)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)

    def __enter__(self) -> "FaultLink":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
