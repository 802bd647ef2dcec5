"""Reads made once per run, however many processes the run has.

Configuration reads (alert rules, the dashboard, Slack channels, the PagerDuty service) answer the
same thing to every check of a run. In one process a dict is enough; under `pytest -n auto` each
xdist worker is a process of its own, and without sharing, every worker would repeat every read
(the API calls per run grow with the workers, and so do the rate-limit hits). `RunCache` keeps
each result, or the reason it could not be read, in a directory all workers of the run share: the
first process to ask reads, under a file lock (as pytest-xdist documents for once-per-session
work); the others wait on the lock and load the stored JSON.

A read that failed is stored as its error, so a dead API costs one retry deadline per run rather
than one per worker, and every check that needs it reports the same "could not check" reason.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from filelock import FileLock

from paymon import errors
from paymon.errors import TargetUnavailable


class RunCache:
    def __init__(self, directory: Path | None = None):
        self.directory = directory
        self._memory: dict[str, dict] = {}
        self._lock = threading.RLock()  # a read may need another (alerts need the project)
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)

    def get(self, key: str, read: Callable[[], Any]) -> Any:
        """`read()`'s result for `key`, read at most once per run; re-raises a stored failure."""
        with self._lock:
            if key not in self._memory:
                self._memory[key] = self._shared(key, read) if self.directory else _attempt(read)
        return _outcome(self._memory[key])

    def _shared(self, key: str, read: Callable[[], Any]) -> dict:
        path = self.directory / _file_name(key)
        with FileLock(str(path) + ".lock"):
            if path.exists():
                return json.loads(path.read_text())
            stored = _attempt(read)
            path.write_text(json.dumps(stored))
            return stored


def _attempt(read: Callable[[], Any]) -> dict:
    try:
        return {"value": read()}
    except TargetUnavailable as exc:
        return {"error": type(exc).__name__, "message": str(exc), "status": getattr(exc, "status", None)}


def _outcome(stored: dict) -> Any:
    if "error" not in stored:
        return stored["value"]
    cls = getattr(errors, stored["error"], TargetUnavailable)
    if not (isinstance(cls, type) and issubclass(cls, TargetUnavailable)):
        cls = TargetUnavailable
    if cls is errors.EndpointMissing:
        raise cls(stored["message"], status=stored.get("status") or 404)
    raise cls(stored["message"])


def _file_name(key: str) -> str:
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", key)[:80]
    return f"{readable}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.json"


class CachedReads:
    """A client whose named read methods go through a `RunCache` (keyed by method and arguments);
    everything else — history, incidents, writes — passes straight through to the client."""

    def __init__(self, client: Any, cache: RunCache, prefix: str, methods: Iterable[str]):
        self._client = client
        self._cache = cache
        self._prefix = prefix
        self._methods = frozenset(methods)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name not in self._methods:
            return attribute

        def cached(*args):
            return self._cache.get(f"{self._prefix}.{name}{json.dumps(args)}", lambda: attribute(*args))

        return cached

    def __repr__(self) -> str:
        return f"CachedReads({self._client!r})"
