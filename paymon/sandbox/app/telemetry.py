"""The reference app's Sentry instrumentation: the real sentry-sdk, configured as the guide's §2
`Sentry.init` is, sending to the Sentry sandbox.

    telemetry = AppTelemetry(hub, environment="production", traces_sample_rate=1.0, tag_payment_flow=True)
    with telemetry.transaction("/api/checkout/pro", op="http.server") as tx: ...   # one traced request
    telemetry.capture_message("Usage reporting failed", "error", {"usage_reporting": "error"})
    check_in_id = telemetry.checkin("reconciliation-daily", "in_progress", monitor_config={...})
    with telemetry.at(epoch): ...     # the app's past: everything inside is received at `epoch`

The SDK builds every envelope itself (events, transactions with `beforeSendTransaction`'s
`payment_flow` tag, cron check-ins); only the transport is the sandbox's: the app and the Sentry
stand-in share a process, so envelopes go to the stand-in's Relay code path (`SentryBackend.ingest`,
authenticated by the DSN's key) without an HTTP round trip per request. Sent from a background
worker like the SDK's own HTTP transport, so a request never waits for ingestion; `flush()` waits.
`at()` ingests synchronously with a given receive time: how the world's history (last night's
cron run, yesterday's usage reports) is replayed when the sandbox starts.

No Sentry in the world (the app served alone) -> every call is a no-op.
"""

from __future__ import annotations

import contextlib
import threading
from datetime import datetime, timezone

from paymon.sandbox.hub import Hub

# §2 beforeSendTransaction: which transactions get `payment_flow: "true"`.
PAYMENT_FLOW_PREFIXES = ("/api/checkout", "/api/subscription", "/api/webhooks/lemonsqueezy")


def _make_transport_class():
    from sentry_sdk.transport import Transport
    from sentry_sdk.worker import BackgroundWorker

    class InProcessTransport(Transport):
        """Hands the SDK's serialised envelopes to the Sentry stand-in's ingestion."""

        def __init__(self, options, telemetry: AppTelemetry):
            super().__init__(options)
            self._telemetry = telemetry
            self._worker = BackgroundWorker(queue_size=10000)

        def capture_envelope(self, envelope) -> None:
            body = envelope.serialize()
            received = self._telemetry.pinned_time
            if received is not None:
                self._telemetry.ingest(body, received)
            else:
                self._worker.submit(lambda: self._telemetry.ingest(body, None))

        def flush(self, timeout, callback=None) -> None:
            if timeout > 0:
                self._worker.flush(timeout, callback)

        def kill(self) -> None:
            self._worker.kill()

    return InProcessTransport


class AppTelemetry:
    def __init__(self, hub: Hub, environment: str, traces_sample_rate: float = 1.0, tag_payment_flow: bool = True,
                 release: str = "towerofbabel-web@sandbox"):
        self.hub = hub
        self.environment = environment
        self.traces_sample_rate = float(traces_sample_rate)
        self.tag_payment_flow = tag_payment_flow
        self.release = release
        self._client = None
        self._lock = threading.Lock()
        self._pin = threading.local()
        self.dropped = 0  # envelopes the stand-in refused (rate limits, bad keys)

    # --- plumbing ------------------------------------------------------------------------------

    @property
    def sentry(self):
        return self.hub.backends.get("sentry")

    @property
    def pinned_time(self) -> float | None:
        return getattr(self._pin, "at", None)

    @contextlib.contextmanager
    def at(self, epoch: float):
        """Everything sent inside is received (and stamped) at `epoch`, synchronously."""
        previous = self.pinned_time
        self._pin.at = float(epoch)
        try:
            yield
        finally:
            self._pin.at = previous

    def now(self) -> float:
        pinned = self.pinned_time
        return self.hub.clock.now() if pinned is None else pinned

    def ingest(self, body: bytes, received: float | None) -> None:
        from paymon.sandbox.sentry.exceptions import IngestRejected

        sentry = self.sentry
        if sentry is None:
            return
        project = sentry.projects[0]
        key = next(k["public"] for k in sentry.project_keys if str(k["projectId"]) == str(project["id"]))
        headers = {"x-sentry-auth": f"Sentry sentry_key={key}, sentry_version=7, sentry_client=paymon-app"}
        try:
            sentry.ingest(str(project["id"]), body, headers, {}, received=received)
        except IngestRejected:
            self.dropped += 1

    def _before_send_transaction(self, event, hint):
        """The guide's §2 hook: payment routes get `payment_flow: "true"` (unless the world's app
        lost the hook: knob `tag_payment_flow: false`)."""
        name = event.get("transaction") or ""
        if self.tag_payment_flow and any(prefix in name for prefix in PAYMENT_FLOW_PREFIXES):
            event["tags"] = {**(event.get("tags") or {}), "payment_flow": "true"}
        return event

    @property
    def client(self):
        """The app's own sentry-sdk Client (nothing global: paymon's SDK use stays separate)."""
        if self.sentry is None:
            return None
        with self._lock:
            if self._client is None:
                import sentry_sdk

                dsn = self.sentry.dsn()
                transport = _make_transport_class()({"dsn": dsn}, self)
                self._client = sentry_sdk.Client(
                    dsn=dsn, environment=self.environment, release=self.release,
                    traces_sample_rate=self.traces_sample_rate, default_integrations=False,
                    auto_enabling_integrations=False, before_send_transaction=self._before_send_transaction,
                    transport=transport)
            return self._client

    @contextlib.contextmanager
    def scope(self):
        """A scope bound to the app's client (None when there is no Sentry)."""
        import sentry_sdk

        client = self.client
        with sentry_sdk.new_scope() as scope:
            if client is not None:
                scope.set_client(client)
            yield scope if client is not None else None

    def _datetime(self, epoch: float | None = None) -> datetime:
        return datetime.fromtimestamp(self.now() if epoch is None else epoch, tz=timezone.utc)

    # --- what the app sends --------------------------------------------------------------------

    def capture_message(self, message: str, level: str, tags: dict | None = None) -> str | None:
        with self.scope() as scope:
            if scope is None:
                return None
            for key, value in (tags or {}).items():
                scope.set_tag(key, value)
            if self.pinned_time is None:
                return scope.capture_message(message, level=level)
            return scope.capture_event({"message": message, "level": level, "timestamp": self._datetime()})

    @contextlib.contextmanager
    def transaction(self, name: str, op: str, duration_ms: float | None = None, sampled: bool | None = None,
                    tags: dict | None = None):
        """A traced unit of work. With `duration_ms` (history), it is stamped as having ended at the
        pinned time after lasting that long, instead of being timed."""
        import sentry_sdk
        from sentry_sdk.tracing import Transaction

        with self.scope() as scope:
            if scope is None:
                yield None
                return
            kwargs = {}
            if duration_ms is not None:
                kwargs["start_timestamp"] = self._datetime(self.now() - duration_ms / 1000.0)
            transaction = Transaction(name=name, op=op, source="route" if name.startswith("/") else "task",
                                      sampled=sampled, **kwargs)
            for key, value in (tags or {}).items():
                transaction.set_tag(key, value)
            with sentry_sdk.start_transaction(transaction) as tx:
                try:
                    yield tx
                finally:
                    if duration_ms is not None:
                        tx.finish(end_timestamp=self._datetime())

    def checkin(self, slug: str, status: str, check_in_id: str | None = None, duration_s: float | None = None,
                monitor_config: dict | None = None) -> str | None:
        from sentry_sdk.crons import capture_checkin

        with self.scope() as scope:
            if scope is None:
                return None
            return capture_checkin(monitor_slug=slug, check_in_id=check_in_id, status=status, duration=duration_s,
                                   monitor_config=monitor_config)

    def gauge(self, name: str, value: float, attributes: dict | None = None) -> None:
        """A trace metric (`sentry_sdk.metrics.gauge`): the SDK batches it for up to 5 s; a pinned
        (history) one is sent at once, so it is received at the pinned time."""
        import sentry_sdk.metrics

        with self.scope() as scope:
            if scope is None:
                return
            sentry_sdk.metrics.gauge(name, value, attributes=attributes)
        batcher = getattr(self._client, "metrics_batcher", None)
        if batcher is not None and self.pinned_time is not None:
            batcher.flush()

    def flush(self, timeout: float = 5.0) -> None:
        if self._client is not None:
            self._client.flush(timeout=timeout)

    def close(self) -> None:
        if self._client is not None:
            self._client.close(timeout=2.0)
            self._client = None
