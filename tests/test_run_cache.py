"""paymon.clients.run_cache: configuration reads made once per run, shared by xdist workers."""

from __future__ import annotations

import pytest

from paymon.errors import AuthError, EndpointMissing, ServiceError
from paymon.clients.run_cache import CachedReads, RunCache
from paymon.findings.snapshot import SentrySnapshot
from paymon.config.spec import load_spec
from tests.conftest import REPO


class Counting:
    def __init__(self):
        self.calls = []

    def read(self, key, value=None, error=None):
        self.calls.append(key)
        if error is not None:
            raise error
        return value


def test_one_process_reads_once():
    cache, source = RunCache(), Counting()
    assert cache.get("a", lambda: source.read("a", [1, 2])) == [1, 2]
    assert cache.get("a", lambda: source.read("a", [3])) == [1, 2]
    assert source.calls == ["a"]


def test_processes_sharing_a_directory_read_once(tmp_path):
    first, second, source = RunCache(tmp_path), RunCache(tmp_path), Counting()
    assert first.get("sentry.workflows", lambda: source.read("w", [{"id": "1"}])) == [{"id": "1"}]
    assert second.get("sentry.workflows", lambda: source.read("w", [])) == [{"id": "1"}]
    assert source.calls == ["w"]


@pytest.mark.parametrize("error", [AuthError("the token lacks alerts:read"), ServiceError("503 after 30 s"),
                                   EndpointMissing("gone", status=410)])
def test_a_failed_read_is_shared_as_the_same_error(tmp_path, error):
    first, second, source = RunCache(tmp_path), RunCache(tmp_path), Counting()
    with pytest.raises(type(error), match=str(error)):
        first.get("k", lambda: source.read("k", error=error))
    with pytest.raises(type(error), match=str(error)) as raised:
        second.get("k", lambda: source.read("k", error=error))
    assert source.calls == ["k"]  # one retry deadline per run, not one per worker
    assert getattr(raised.value, "status", None) == getattr(error, "status", None)


def test_only_the_named_reads_are_cached(tmp_path):
    class Reader:
        calls = 0

        def channels(self):
            Reader.calls += 1
            return [{"id": "C1", "name": "payments-alerts"}]

        def history(self, channel, oldest):
            Reader.calls += 1
            return [{"ts": str(oldest)}]

    reader = CachedReads(Reader(), RunCache(tmp_path), "slack", ["channels"])
    other = CachedReads(Reader(), RunCache(tmp_path), "slack", ["channels"])
    assert reader.channels() == other.channels()
    reader.history("C1", 1.0)
    other.history("C1", 1.0)
    assert Reader.calls == 3  # channels once; history (fresh data) every time


def test_two_snapshots_sharing_a_cache_call_sentry_once(tmp_path):
    """What `pytest -n 2` does: two workers, one directory, each area read once in all."""
    from paymon.sandbox.server import SandboxServer
    from paymon.sandbox.world import golden_world
    from paymon.clients.sentry.client import SentryClient
    from paymon.config.target import Target

    spec = load_spec(REPO / "monitoring.yaml")
    with SandboxServer(golden_world("workflow")) as server:
        target = Target("sandbox", sandbox=server.describe(), org=spec.organization, project=spec.project)
        backend = server.sentry
        with SentryClient(target.sentry()) as one, SentryClient(target.sentry()) as two:
            first = SentrySnapshot(one, spec, RunCache(tmp_path))
            first_findings = [first.alert_findings(a) for a in spec.alerts] + [first.dashboard_findings(),
                                                                               first.cron_findings()]
            calls = len(backend.requests)
            second = SentrySnapshot(two, spec, RunCache(tmp_path))
            second_findings = [second.alert_findings(a) for a in spec.alerts] + [second.dashboard_findings(),
                                                                                 second.cron_findings()]
            assert len(backend.requests) == calls
    assert calls > 0
    assert [[f.line() for f in fs] for fs in first_findings] == [[f.line() for f in fs] for fs in second_findings]
