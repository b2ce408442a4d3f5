"""Backends by name (``--arm pybullet|loopback|franka|ur``), each with a dataclass config.

:func:`make_arm` is the only way the rest of robot-irl gets an arm, and it always wraps the
backend in :class:`Arm` (safety filter, watchdog, e-stop): no caller can reach a bare backend.
Backends that need an optional SDK import it lazily, so listing names never fails."""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from robot_irl.control.arm import Arm
from robot_irl.control.backend import ArmBackend
from robot_irl.control.calibration import ArmCalibration
from robot_irl.control.clock import Clock, MonotonicClock
from robot_irl.control.estop import EStop
from robot_irl.control.safety import SafetyConfig
from robot_irl.errors import InputError, UnknownNameError


@dataclass(frozen=True)
class BackendEntry:
    config_cls: type
    factory: Callable[[Any, Clock], ArmBackend]
    physical: bool     # a real arm: the runner asks a person before the first move; needs a workspace box


def _pybullet(cfg, clock):
    from robot_irl.control.pybullet_arm import PyBulletBackend
    return PyBulletBackend(cfg, clock)


def _loopback(cfg, clock):
    from robot_irl.control.loopback import LoopbackBackend
    return LoopbackBackend(cfg)


def _franka(cfg, clock):
    from robot_irl.control.franka import FrankaBackend
    return FrankaBackend(cfg)


def _ur(cfg, clock):
    from robot_irl.control.ur import URBackend
    return URBackend(cfg)


def _configs() -> dict[str, BackendEntry]:
    from robot_irl.control.franka import FrankaConfig
    from robot_irl.control.loopback import LoopbackConfig
    from robot_irl.control.pybullet_arm import PyBulletConfig
    from robot_irl.control.ur import URConfig
    return {
        "pybullet": BackendEntry(PyBulletConfig, _pybullet, physical=False),
        "loopback": BackendEntry(LoopbackConfig, _loopback, physical=False),
        "franka": BackendEntry(FrankaConfig, _franka, physical=True),
        "ur": BackendEntry(URConfig, _ur, physical=True),
    }


BACKEND_NAMES = ("pybullet", "loopback", "franka", "ur")


def backend_entry(name: str) -> BackendEntry:
    entries = _configs()
    if name not in entries:
        raise UnknownNameError("arm backend", name, entries)
    return entries[name]


def backend_config(name: str, options: dict[str, Any] | None = None) -> Any:
    """Build backend ``name``'s config from ``options`` (e.g. parsed ``--arm-opt key=value``)."""
    cls = backend_entry(name).config_cls
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = set(options or {}) - fields
    if unknown:
        raise InputError(f"unknown option(s) {sorted(unknown)} for arm '{name}'", field="arm option",
                         expected="one of: " + ", ".join(sorted(fields)))
    return cls(**(options or {}))


def make_arm(name: str, config: Any = None, *, safety: SafetyConfig | None = None,
             calibration: ArmCalibration | None = None, clock: Clock | None = None,
             estop: EStop | None = None, watchdog_thread: bool | None = None) -> Arm:
    """A (not yet connected) :class:`Arm` on backend ``name``; use it in a ``with`` block."""
    entry = backend_entry(name)
    cfg = config if config is not None else entry.config_cls()
    if not isinstance(cfg, entry.config_cls):
        raise InputError(f"config for arm '{name}' is a {type(cfg).__name__}", field="config",
                         expected=entry.config_cls.__name__)
    clock = clock or MonotonicClock()
    return Arm(entry.factory(cfg, clock), safety=safety, calibration=calibration, clock=clock, estop=estop,
               watchdog_thread=watchdog_thread, physical=entry.physical)


def parse_arm_options(pairs: list[str]) -> dict:
    """``--arm-opt KEY=VALUE`` pairs → backend config options (values parsed as JSON when they are)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise InputError(f"'{pair}'", field="--arm-opt", expected="KEY=VALUE")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out
