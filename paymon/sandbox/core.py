"""What every emulated HTTP service does alike (moto's `core`): its entry in the server (`Service`),
injected failures and a log of the requests it served. A backend that mixes in `HttpFaults` keeps `self._lock`, `self._failures`,
`self._requests`, `self._rng` and `self.error_rate` (its world's `knobs.error_rate`), set in its
`reset()`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from paymon.sandbox.hub import Hub


@dataclass(frozen=True)
class Service:
    """One emulated service as the sandbox server mounts it; each service package defines its
    `SERVICE`, and `paymon.sandbox.server.SERVICES` lists them."""

    prefix: str  # "" = the root
    backend_factory: Callable[[dict, Hub], object]
    """Builds the service's backend from its part of the world; the hub is shared by all."""
    app_factory: Callable[[object], object]
    world_part: str | None = None
    """The world's key it is built from, when not its own name (the Lemon Squeezy API serves the
    payment app's account: `world["app"]`)."""


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: str
    status: int


@dataclass
class InjectedFailure:
    status: int
    path: re.Pattern | None = None
    method: str | None = None
    times: int | None = 1  # None: every matching request, until reset()

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        return self.path is None or self.path.search(path) is not None


class HttpFaults:
    def inject_failure(self, status: int, path: str | None = None, method: str | None = None,
                       times: int | None = 1) -> None:
        """Make the next `times` requests whose path matches the regex `path` (None: any) answer
        `status` (times=None: until reset())."""
        with self._lock:
            self._failures.append(InjectedFailure(int(status), re.compile(path) if path else None,
                                                  method, None if times is None else int(times)))

    def take_failure(self, method: str, path: str) -> int | None:
        """The status an injected failure or the random `error_rate` imposes on this request."""
        with self._lock:
            for failure in self._failures:
                if failure.matches(method, path):
                    if failure.times is not None:
                        failure.times -= 1
                        if failure.times <= 0:
                            self._failures.remove(failure)
                    return failure.status
            if self.error_rate and self._rng.random() < self.error_rate:
                return 503
        return None

    def record_request(self, method: str, path: str, query: str, status: int) -> None:
        with self._lock:
            self._requests.append(RecordedRequest(method, path, query, status))

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def request_count(self, path: str | None = None, method: str | None = None, status: int | None = None) -> int:
        """How many requests were served whose path matches the regex `path` (and method/status)."""
        pattern = re.compile(path) if path else None
        return sum(1 for r in self.requests
                   if (pattern is None or pattern.search(r.path))
                   and (method is None or r.method == method.upper())
                   and (status is None or r.status == status))
