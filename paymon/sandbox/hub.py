"""What the emulated services share: one clock, and a way to reach each other in-process.

Time is a setting, not a sleep (moto's state manager): every backend reads `hub.clock`, tests
move it with `hub.clock.advance(600)`, and anything that "arrives later" (a Slack message, a
PagerDuty incident, an event becoming searchable) is stored with the clock time it becomes
visible, and shown by reads once the clock has passed it. Nothing waits in a thread.

When Sentry's alert engine fires, it reaches the Slack and PagerDuty stand-ins through
`hub.backends["slack"]` / `hub.backends["pagerduty"]`, as the real Sentry reaches the real ones.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


class SandboxClock:
    """Wall time plus an offset tests control. `frozen` stops it, for exact assertions."""

    def __init__(self, start: float | None = None, frozen: bool = False):
        self._lock = threading.Lock()
        self._offset = 0.0 if start is None else start - time.time()
        self._frozen_at = (time.time() + self._offset) if frozen else None

    def now(self) -> float:
        with self._lock:
            if self._frozen_at is not None:
                return self._frozen_at
            return time.time() + self._offset

    def advance(self, seconds: float) -> float:
        with self._lock:
            if self._frozen_at is not None:
                self._frozen_at += seconds
            else:
                self._offset += seconds
        return self.now()

    def freeze(self) -> None:
        with self._lock:
            self._frozen_at = time.time() + self._offset

    def unfreeze(self) -> None:
        with self._lock:
            if self._frozen_at is not None:
                self._offset = self._frozen_at - time.time()
                self._frozen_at = None


@dataclass
class Hub:
    clock: SandboxClock = field(default_factory=SandboxClock)
    backends: dict = field(default_factory=dict)
    base_url: str = ""
    """Where the sandbox is served (set once the server has a port): SDK DSNs and links use it."""
    settlers: list = field(default_factory=list)
    """Callables bringing lazily evaluated state up to the clock (Sentry's alert engine judges
    metric alerts on subscription updates only when something looks). `settle()` runs them; the
    server does before every Slack and PagerDuty request, so what Sentry would have posted by now
    is there."""

    def settle(self) -> None:
        for settle in list(self.settlers):
            settle()
