"""Seeded fault injection: which API requests fail, and how.

Draws are a hash of ``(seed, method, n-th request of that method)``, so the same request
sequence per method fails the same way on every run, whatever other methods do meanwhile.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from .rng import hash_of, text_key

FAULT_KINDS = ("500", "502", "503", "reset", "slow", "truncated", "ratelimited_200")
_UNIT = float(1 << 53)


@dataclass(frozen=True)
class FaultSpec:
    """How often and how API requests fail.

    ``rate`` is the probability that a request is faulted; the kind is drawn uniformly from
    ``kinds``. ``slow_seconds`` is real time (not scaled by ``time_scale``). ``methods`` limits
    faults to some Slack methods (``None``: all).
    """

    rate: float = 0.1
    seed: int = 0
    kinds: tuple[str, ...] = FAULT_KINDS
    slow_seconds: float = 0.5
    methods: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(FAULT_KINDS)
        if unknown or not self.kinds:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; choose from {FAULT_KINDS}")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("fault rate must be within [0, 1]")


@dataclass(frozen=True)
class Fault:
    """One drawn fault: its kind and a spare random bit (JSON or empty 5xx body)."""

    kind: str
    flag: bool


class FaultInjector:
    """Decides, per API request, whether and how it fails."""

    def __init__(self, spec: FaultSpec | None) -> None:
        self.spec = spec
        self._lock = threading.Lock()
        self._counters: dict[str, int] = {}

    def draw(self, method: str) -> Fault | None:
        """The fault for the next request of ``method``, or ``None`` (answer normally)."""
        spec = self.spec
        if spec is None or spec.rate <= 0.0:
            return None
        if spec.methods is not None and method not in spec.methods:
            return None
        with self._lock:
            n = self._counters.get(method, 0)
            self._counters[method] = n + 1
        h = hash_of(spec.seed, text_key(method), n)
        if (h >> 11) / _UNIT >= spec.rate:
            return None
        h2 = hash_of(h, 1)
        return Fault(kind=spec.kinds[h2 % len(spec.kinds)], flag=bool((h2 >> 32) & 1))
