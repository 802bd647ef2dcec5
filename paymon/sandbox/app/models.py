"""State of the reference payment app: its database (SQLite: subscriptions, usage, processed
webhooks), the in-process Lemon Squeezy stand-in it creates checkouts and reports usage with, its
Sentry instrumentation (the real sentry-sdk, `telemetry.py`), the reconciliation job, and the
world's recent past, replayed into Sentry when the sandbox starts.

Shape of `world["app"]` (see `worlds/app.json`):

    environment     "production"                the app's deployment environment
    store           {"id", "slug", "domain"}     the LS store checkouts are created in
    variants        {"pro": id, "payg": id}      LS variant per tier
    subscriptions   [{"id", "user_id", "tier", "status", "variant_id", "subscription_item_id",
                      "is_usage_based", "updated_at"}]      the app's DB table (id: LS's, a string);
                    a row may carry Lemon Squeezy's attributes too ("user_email", "customer_id", ...),
                    which only the LS account keeps
    usage           [{"subscription_item_id", "quantity", "at"}]  billable units the app recorded
    lemonsqueezy    {"subscriptions": [{"id", "status", "variant_id", "subscription_item_id", ...}],
                     "usage": {subscription item id: quantity}, "api_keys", "knobs"}   what LS holds
                    (paymon.sandbox.lemonsqueezy, also served as its API); default: the same as the
                    app's rows (no discrepancy)
    history         what happened before the sandbox started, replayed at start (into Sentry, and
                    for usage reports into the DB and LS too), reconciliation runs first:
                    traffic         {"per_endpoint": n, "over": "1h"}   sampled request transactions
                                    ("latency_ms": {endpoint: {p50, p95}}: those requests were that
                                    slow, whatever the app's latency knob says now)
                    subscriptions_gauge {"every": "1h", "over": "24h"}  the hourly gauge
                                    `subscriptions.active` per tier (a trace metric)
                    usage_reports   {"count": n, "over": "24h"}        PAYG usage reports to LS
                                    ("none_on_utc_day_ago": k: none in the whole UTC day k days
                                    before the clock's, the job was down)
                    reconciliation  ["ok" | "error" | "missed", ...]   the job's last runs at the
                                    cron schedule's ticks, oldest first (missed: Sentry records a
                                    missed check-in)
                    test_mode_hours_ago  [h, ...]     the start-up guard fired h hours ago
                    resolved_issues ["text", ...]     issues whose title holds one were resolved
                                                      afterwards (a fix deployed)
                    deploys, payment_errors           the app's deploys (recorded in Sentry's
                                                      releases) and checkout failures around them
                                                      (paymon/sandbox/app/deploys.py)
    knobs           webhook_secret               the LS signing secret the app verifies with
                    test_mode                    LEMONSQUEEZY_TEST_MODE: checkouts are test-mode
                    answer_test_mode             the checkout answer carries `test_mode` (the reference
                                                 app's does; lemonsqueezy.md reads it "if the app returns it")
                    skip_signature_verification  a broken app: accepts any X-Signature
                    error_rate                   fraction of requests answering 500, from Random(seed)
                    fail_endpoints               {endpoint path: status}: every request there (a
                                                 webhook: every verified one) fails with that
                                                 status, its error captured to Sentry as an
                                                 unhandled exception in the route would be (the
                                                 webhook's tagged webhook=true, which §1 Alert 2 counts)
                    seed                         for latency and error draws
                    latency_ms                   {endpoint path: ms | {"p50", "p95"}} (or one value
                                                 for every endpoint): the app's simulated work
                    latency_mode                 "wait" (default: the request takes that long, as the
                                                 real app's do) or "report" (it answers at once and
                                                 only reports the work, in Server-Timing and its
                                                 transaction's duration: paymon's in-process suite
                                                 probes on that modelled time, see
                                                 paymon.probes.latency.ModelledClock)
                    traces_sample_rate           §2 tracesSampleRate (production: 0.1)
                    tag_payment_flow             §2 beforeSendTransaction tags payment routes
                    log_invalid_signature        send the "Invalid webhook signature" warning
                    usage_error_rate             fraction of usage reports LS refuses (429)
                    cron_secret                  bearer token of POST /api/cron/reconcile
                    cron_schedule, cron_slug     when the reconciliation job runs, its monitor
                    cron_upsert                  check-ins carry monitor_config (SDK upsert)
                    db                           "memory" (default) or "file" (a temp file)
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import hmac
import json
import math
import os
import random
import tempfile
import threading
import uuid
from dataclasses import dataclass

from paymon.sandbox.app.db import AppDB
from paymon.sandbox.app.deploys import replay_deploys
from paymon.sandbox.app.telemetry import AppTelemetry
from paymon.sandbox.hub import Hub
from paymon.sandbox.lemonsqueezy.models import APP_ONLY_KEYS, LemonSqueezyBackend, UsageReportingError

CHECKOUT_PRO = "/api/checkout/pro"
CHECKOUT_PAYG = "/api/checkout/payg"
WEBHOOK = "/api/webhooks/lemonsqueezy"
PAYG_CREATE = "/api/subscription/payg/create"
ENDPOINTS = (CHECKOUT_PRO, CHECKOUT_PAYG, WEBHOOK, PAYG_CREATE)

RECONCILE = "/api/cron/reconcile"

INVALID_SIGNATURE = "Invalid webhook signature"
TEST_MODE_IN_PRODUCTION = "Test mode detected in production"
USAGE_REPORTING_FAILED = "Usage reporting failed"
RECONCILIATION_DISCREPANCIES = "reconciliation discrepancies detected"
USAGE_REPORT_TRANSACTION = "usage-report"
SYNTHETIC_USER = "paymon-synthetic"

DEFAULT_KNOBS = {
    "webhook_secret": "sandbox-lemonsqueezy-webhook-secret",
    "test_mode": False,
    "answer_test_mode": True,
    "skip_signature_verification": False,
    "error_rate": 0.0,
    "fail_endpoints": {},
    "seed": 0,
    "latency_ms": 0,
    "latency_mode": "wait",
    "traces_sample_rate": 1.0,
    "tag_payment_flow": True,
    "log_invalid_signature": True,
    "usage_error_rate": 0.0,
    "cron_secret": "sandbox-cron-secret",
    "cron_schedule": "0 2 * * *",
    "cron_slug": "reconciliation-daily",
    "cron_upsert": False,
    "db": "memory",
}

# z of the standard normal at 0.95: a lognormal with median p50 has p95 = p50 * exp(1.645 * sigma).
_Z95 = 1.6448536269514722


def lemonsqueezy_signature(raw_body: bytes, secret: str) -> str:
    """Lowercase hex HMAC-SHA256 of the raw body (reference §1.2)."""
    return hmac.new(secret.encode("utf-8"), raw_body, hashlib.sha256).hexdigest()


def verify_signature(raw_body: bytes, x_signature: str | None, secret: str) -> bool:
    """Constant-time check that cannot raise: compares bytes (compare_digest raises on non-ASCII str)."""
    if not x_signature or not secret:
        return False
    expected = lemonsqueezy_signature(raw_body, secret).encode("ascii")
    given = x_signature.strip().lower().encode("utf-8", "replace")
    return hmac.compare_digest(expected, given)


class SignatureCompareError(Exception):
    """The `signature_compare_throws` knob's crash: the handler answers 500."""


def _node_hex_decode(text: str) -> bytes:
    """Node's Buffer.from(text, "hex"): whole hex pairs up to the first invalid character."""
    decoded = bytearray()
    for i in range(0, len(text) - 1, 2):
        try:
            decoded.append(int(text[i:i + 2], 16))
        except ValueError:
            break
    return bytes(decoded)


@dataclass(frozen=True)
class Latency:
    """A latency distribution in ms: fixed, or lognormal through (p50, p95)."""

    p50: float
    sigma: float = 0.0

    @classmethod
    def from_spec(cls, spec) -> Latency:
        if spec is None:
            return cls(0.0)
        if isinstance(spec, (int, float)) and not isinstance(spec, bool):
            if spec < 0:
                raise ValueError("latency must be >= 0 ms")
            return cls(float(spec))
        if isinstance(spec, dict) and "p50" in spec:
            p50, p95 = float(spec["p50"]), float(spec.get("p95", spec["p50"]))
            if p50 <= 0 or p95 < p50:
                raise ValueError("latency needs 0 < p50 <= p95")
            return cls(p50, math.log(p95 / p50) / _Z95)
        raise ValueError(f"latency must be ms or {{'p50', 'p95'}}, got {spec!r}")

    def draw(self, rng: random.Random) -> float:
        if self.sigma == 0.0:
            return self.p50
        return self.p50 * math.exp(rng.gauss(0.0, self.sigma))


def find_discrepancies(app_rows: list[dict], app_usage: dict[int, int], ls_rows: dict[str, dict],
                       ls_usage: dict[int, int]) -> list[dict]:
    """The reconciliation job's comparison (reference §3): status mismatch, usage mismatch and
    orphaned subscriptions, one dict per finding {kind, subscription_id, app, lemonsqueezy}."""
    found = []
    known = {str(r["id"]): r for r in app_rows if r.get("status") != "pending"}
    for subscription_id, row in known.items():
        ls = ls_rows.get(subscription_id)
        if ls is None:
            found.append({"kind": "orphaned subscription", "subscription_id": subscription_id,
                          "app": row.get("status"), "lemonsqueezy": "missing"})
            continue
        if ls.get("status") != row.get("status"):
            found.append({"kind": "status mismatch", "subscription_id": subscription_id,
                          "app": row.get("status"), "lemonsqueezy": ls.get("status")})
        item = row.get("subscription_item_id")
        if row.get("is_usage_based") and item is not None:
            ours, theirs = app_usage.get(int(item), 0), ls_usage.get(int(item), 0)
            if ours != theirs:
                found.append({"kind": "usage mismatch", "subscription_id": subscription_id,
                              "app": ours, "lemonsqueezy": theirs})
    for subscription_id, ls in ls_rows.items():
        if subscription_id not in known:
            found.append({"kind": "orphaned subscription", "subscription_id": subscription_id,
                          "app": "missing", "lemonsqueezy": ls.get("status")})
    return found


def _seconds(value, default: float) -> float:
    from paymon.config.spec import parse_duration

    return float(parse_duration(value)) if value is not None else default


class AppBackend:
    """The app's state and behaviour; `AppResponse` turns HTTP into calls on it."""

    def __init__(self, world: dict | None = None, hub: Hub | None = None):
        world = copy.deepcopy(world or {})
        self.hub = hub or Hub()
        self.environment = world.get("environment", "production")
        self.store = world.get("store", {"id": 48213, "domain": "towerofbabel.lemonsqueezy.com"})
        self.variants = world.get("variants", {"pro": 512337, "payg": 512341})
        self.knobs = {**DEFAULT_KNOBS, **world.get("knobs", {})}
        self.history = world.get("history") or {}
        self._latency = self._latencies(self.knobs["latency_ms"])
        self._rng = random.Random(self.knobs.get("seed", 0))
        self._lock = threading.Lock()
        self._db_file = None
        if self.knobs.get("db") == "file":
            handle, self._db_file = tempfile.mkstemp(prefix="paymon-app-", suffix=".sqlite3")
            os.close(handle)
        self.db = AppDB(self._db_file)
        for row in world.get("subscriptions", []):
            self.db.upsert_subscription(row)
        for row in world.get("usage", []):
            self.db.add_usage(row["subscription_item_id"], row["quantity"], row.get("at", 0.0), reported=True)
        self.rejected: int = 0                 # webhooks refused for their signature
        self.requests: dict[str, int] = {}     # endpoint -> count
        ls = world.get("lemonsqueezy") or {}
        # By default LS holds what the app holds: the world's rows with LS's attributes (the e-mail
        # and customer of the checkout, ...), without the app's own columns (its user id, tier).
        mirrored = [{k: v for k, v in r.items() if k not in APP_ONLY_KEYS}
                    for r in world.get("subscriptions", []) if r.get("status") != "pending"]
        self.lemonsqueezy = LemonSqueezyBackend(
            self.store, self.hub.clock, ls.get("subscriptions", mirrored),
            ls.get("usage", self.db.usage_totals()), ls.get("api_keys"), ls.get("knobs"))
        self.telemetry = AppTelemetry(self.hub, self.environment, float(self.knobs["traces_sample_rate"]),
                                      bool(self.knobs["tag_payment_flow"]))
        self.started = False

    # --- the DB, as the tests and checks read it ---------------------------------------------------

    @property
    def subscriptions(self) -> dict[str, dict]:
        return {row["id"]: row for row in self.db.subscriptions()}

    @property
    def usage(self) -> list[dict]:
        return self.db.usage()

    @property
    def processed(self) -> dict[str, dict]:
        return self.db.processed_webhooks()

    # --- knobs ------------------------------------------------------------------------------------

    @staticmethod
    def _latencies(spec) -> dict[str, Latency]:
        if isinstance(spec, dict) and "p50" not in spec:
            default = Latency.from_spec(spec.get("default"))
            return {endpoint: Latency.from_spec(spec[endpoint]) if endpoint in spec else default
                    for endpoint in ENDPOINTS}
        return dict.fromkeys(ENDPOINTS, Latency.from_spec(spec))

    @property
    def webhook_secret(self) -> str:
        return self.knobs["webhook_secret"]

    @property
    def cron_secret(self) -> str:
        return self.knobs["cron_secret"]

    @property
    def reports_latency_only(self) -> bool:
        return self.knobs.get("latency_mode") == "report"

    @property
    def test_mode(self) -> bool:
        return bool(self.knobs["test_mode"])

    def forced_failure(self, endpoint: str) -> int | None:
        """The `fail_endpoints` status of this endpoint, its error captured as the route's would be."""
        status = (self.knobs.get("fail_endpoints") or {}).get(endpoint)
        if status is None:
            return None
        if endpoint == WEBHOOK:
            self.report(f"Webhook processing failed: HTTP {int(status)}", "error", {"webhook": "true"})
        else:
            self.report(f"{endpoint} failed: HTTP {int(status)}", "error", {})
        return int(status)

    def draw_work(self, endpoint: str) -> tuple[float, bool]:
        """(seconds of simulated work, whether this request fails with 500) for one request."""
        with self._lock:
            self.requests[endpoint] = self.requests.get(endpoint, 0) + 1
            delay = self._latency[endpoint].draw(self._rng) / 1000.0
            rate = float(self.knobs.get("error_rate") or 0.0)
            fails = rate > 0 and self._rng.random() < rate
        return delay, fails

    # --- Sentry, through the app's sentry-sdk -----------------------------------------------------

    def report(self, message: str, level: str, tags: dict) -> None:
        """What the app's Sentry SDK sends; nothing when the world has no Sentry."""
        self.telemetry.capture_message(message, level, tags)

    def start(self) -> None:
        """The app's start-up, once every service of the world exists: the test-mode guard, then
        the world's history replayed into Sentry (and flushed, so the first read sees it)."""
        if self.started:
            return
        self.started = True
        if self.telemetry.sentry is None:
            return
        self.replay_history()
        if self.test_mode and self.environment == "production":
            self.report(TEST_MODE_IN_PRODUCTION, "fatal", {"startup": "true"})
        self.telemetry.flush()

    def stop(self) -> None:
        """Flush and close the app's SDK; a temp-file DB is unlinked (its open connection, still
        readable by tests after the server stopped, keeps the data until the process ends)."""
        self.telemetry.close()
        if self._db_file:
            with contextlib.suppress(OSError):
                os.unlink(self._db_file)

    # --- checkouts ----------------------------------------------------------------------------------

    def create_checkout(self, tier: str, user_id: str = SYNTHETIC_USER, email: str | None = None) -> dict:
        if self.test_mode and self.environment == "production":
            self.report(TEST_MODE_IN_PRODUCTION, "fatal", {"payment_flow": "checkout"})
        custom = {"user_id": user_id, "tier": tier}
        if email:
            custom["email"] = email
        with self._lock:
            checkout = self.lemonsqueezy.create_checkout(self.variants[tier], custom, self.test_mode)
        answer = {"url": checkout["attributes"]["url"], "test_mode": checkout["attributes"]["test_mode"],
                  "checkout_id": checkout["id"]}
        if not self.knobs.get("answer_test_mode", True):
            del answer["test_mode"]
        return answer

    def create_payg_subscription(self, user_id: str = SYNTHETIC_USER) -> dict:
        """A PAYG checkout plus the app's pending row for the user: one row per user, however often."""
        result = self.create_checkout("payg", user_id)
        with self._lock:
            row = self.db.pending_payg(user_id)
            if row is None:
                row = self.db.upsert_subscription({
                    "id": f"pending-{user_id}", "user_id": user_id, "tier": "payg", "status": "pending",
                    "variant_id": self.variants["payg"], "subscription_item_id": None,
                    "is_usage_based": True, "updated_at": None})
            result["subscription"] = {"id": row["id"], "status": row["status"], "tier": "payg"}
        return result

    # --- webhooks -----------------------------------------------------------------------------------

    def signature_ok(self, raw_body: bytes, x_signature: str | None) -> bool:
        if self.knobs.get("skip_signature_verification"):
            return True
        if self.knobs.get("signature_compare_throws") and x_signature is not None:
            # The classic Node handler: timingSafeEqual(Buffer.from(sig, "hex"), digest) throws on a
            # length mismatch, so a short or non-hex header becomes a 500 instead of a 401.
            if len(_node_hex_decode(x_signature)) != hashlib.sha256().digest_size:
                raise SignatureCompareError("RangeError: Input buffers must have the same byte length")
        return verify_signature(raw_body, x_signature, self.webhook_secret)
        return verify_signature(raw_body, x_signature, self.webhook_secret)

    def reject_signature(self) -> None:
        with self._lock:
            self.rejected += 1
        if self.knobs.get("log_invalid_signature", True):
            self.report(INVALID_SIGNATURE, "warning", {"webhook": "true"})

    def process_webhook(self, raw_body: bytes, payload: dict) -> dict:
        """Apply a verified delivery once: dedupe on meta.webhook_id, else sha256 of the body."""
        meta = payload.get("meta") or {}
        data = payload.get("data") or {}
        key = str(meta.get("webhook_id") or "") or "sha256:" + hashlib.sha256(raw_body).hexdigest()
        event = meta.get("event_name")
        if meta.get("test_mode") and self.environment == "production":
            self.report(TEST_MODE_IN_PRODUCTION, "fatal", {"webhook": "true"})
        with self._lock:
            if self.db.processed(key):
                return {"received": True, "duplicate": True}
            subscription_id = self._apply(event, data, meta)
            self.db.mark_processed(key, event, subscription_id)
        return {"received": True, "duplicate": False}

    def _apply(self, event: str | None, data: dict, meta: dict) -> str | None:
        attributes = data.get("attributes") or {}
        if not isinstance(event, str):
            return None
        if event.startswith("subscription_payment_"):  # invoices: data.id is the invoice (§4.7)
            return str(attributes.get("subscription_id")) if attributes.get("subscription_id") else None
        if event.startswith("subscription_") and data.get("id") is not None:
            subscription_id = str(data["id"])
            row = self.db.subscription(subscription_id)
            updated_at = attributes.get("updated_at")
            if row is not None and updated_at and row.get("updated_at") and updated_at < row["updated_at"]:
                return subscription_id  # older than what is stored: out-of-order delivery (§4.6)
            # Our user id comes back in meta.custom_data, set at checkout (verified §16).
            row = row or {"id": subscription_id, "user_id": (meta.get("custom_data") or {}).get("user_id")}
            item = attributes.get("first_subscription_item") or {}
            row.update({k: v for k, v in {
                "status": attributes.get("status"), "variant_id": attributes.get("variant_id"),
                "subscription_item_id": item.get("id"), "is_usage_based": item.get("is_usage_based"),
                "updated_at": updated_at}.items() if v is not None})
            self.db.upsert_subscription(row)
            return subscription_id
        return None

    # --- usage ----------------------------------------------------------------------------------------

    def record_usage(self, subscription_item_id: int, quantity: int) -> dict:
        """Billable units recorded in the app's DB only (not reported to LS)."""
        record = self.db.add_usage(subscription_item_id, quantity, self.hub.clock.now())
        return {k: record[k] for k in ("subscription_item_id", "quantity", "at")}

    def _usage_fails(self) -> bool:
        rate = float(self.knobs.get("usage_error_rate") or 0.0)
        with self._lock:
            return rate > 0 and self._rng.random() < rate

    def report_usage(self, subscription_item_id: int, quantity: int = 1, *, record: bool = True,
                     sampled: bool | None = None) -> bool:
        """Record billable units and report them to LS (`POST /v1/usage-records`), traced as the
        `usage-report` transaction. On failure: the error "Usage reporting failed", tagged
        `usage_reporting=error` (§1 Alert 4). Returns whether LS accepted the record."""
        seq = self.db.add_usage(subscription_item_id, quantity, self.telemetry.now())["seq"] if record else None
        with self.telemetry.transaction(USAGE_REPORT_TRANSACTION, "task", sampled=sampled,
                                        duration_ms=5.0 if self.telemetry.pinned_time is not None else None) as tx:
            fails = self._usage_fails()
            try:
                with self._lock:
                    self.lemonsqueezy.create_usage_record(subscription_item_id, quantity, fails)
            except UsageReportingError as exc:
                if tx is not None:
                    tx.set_status("resource_exhausted" if exc.status == 429 else "internal_error")
                self.report(USAGE_REPORTING_FAILED, "error",
                            {"usage_reporting": "error", "subscription_item_id": str(subscription_item_id),
                             "lemonsqueezy_status": str(exc.status)})
                return False
            if tx is not None:
                tx.set_status("ok")
            if seq is not None:
                self.db.mark_reported(seq)
            return True

    # --- reconciliation (§6 runbook: `npm run reconcile`, daily at ~02:00 UTC) -----------------------

    def monitor_config(self) -> dict | None:
        """The SDK's upsert config, only with knob `cron_upsert`: by default the monitor is set up
        in Sentry (monitoring.yaml's cron section) and the job only checks in, so an upsert cannot
        silently rewrite the schedule someone configured there."""
        if not self.knobs.get("cron_upsert"):
            return None
        return {"schedule": {"type": "crontab", "value": self.knobs["cron_schedule"]}, "timezone": "UTC",
                "checkin_margin": 5, "max_runtime": 30}

    def record_active_subscriptions(self) -> None:
        """The app's hourly gauge `subscriptions.active` per tier (§4 widget 4, "Active Subscriptions
        by Tier"), as `sentry_sdk.metrics.gauge` sends it."""
        tiers: dict[str, int] = {}
        for row in self.db.subscriptions():
            if row.get("status") == "active" and row.get("tier"):
                tiers[row["tier"]] = tiers.get(row["tier"], 0) + 1
        for tier, active in sorted(tiers.items()):
            self.telemetry.gauge("subscriptions.active", active, {"tier": tier})

    def reconcile(self, crash: bool = False, replay_duration_s: float | None = None,
                  monitor_slug: str | None = None, check_in_id: str | None = None) -> dict:
        """The reconciliation job: check in `in_progress`, compare the DB with Lemon Squeezy, report
        any discrepancy ("reconciliation discrepancies detected", tagged reconciliation=true), check
        in `ok`, or `error` if the job itself failed. `replay_duration_s`: a past run (history,
        inside `telemetry.at(start)`), stamped as having taken that long. `monitor_slug` overrides
        the knob `cron_slug` (`paymon sandbox reconcile` passes monitoring.yaml's cron.slug)."""
        slug = monitor_slug or self.knobs["cron_slug"]
        started = self.telemetry.now()

        def later(fraction: float):
            if replay_duration_s is None:
                return contextlib.nullcontext()
            return self.telemetry.at(started + replay_duration_s * fraction)

        def duration() -> float:
            return replay_duration_s if replay_duration_s is not None else max(0.0, self.telemetry.now() - started)

        check_in_id = self.telemetry.checkin(slug, "in_progress", check_in_id=check_in_id,
                                             monitor_config=self.monitor_config())
        try:
            if crash:
                raise RuntimeError("Lemon Squeezy API unavailable (503)")
            with self._lock:
                found = find_discrepancies(self.db.subscriptions(), self.db.usage_totals(),
                                           self.lemonsqueezy.subscriptions, self.lemonsqueezy.usage)
        except Exception as exc:  # the job failed: the monitor sees an error check-in
            with later(1.0):
                self.telemetry.checkin(slug, "error", check_in_id=check_in_id, duration_s=duration())
            return {"status": "error", "error": str(exc), "discrepancies": []}
        if found:
            with later(0.8):
                self._report_discrepancies(found)
        with later(1.0):
            self.telemetry.checkin(slug, "ok", check_in_id=check_in_id, duration_s=duration())
        return {"status": "ok", "discrepancies": found}

    def _report_discrepancies(self, found: list[dict]) -> None:
        kinds = sorted({d["kind"] for d in found})
        # §1 Alert 5: "Warning or Error (depending on discrepancy type)": a status mismatch is a
        # missed webhook (warning); usage and orphans cost money or access (error).
        level = "error" if any(k != "status mismatch" for k in kinds) else "warning"
        with self.telemetry.scope() as scope:
            if scope is None:
                return
            scope.set_extra("discrepancies", found)
            scope.set_tag("reconciliation", "true")
            scope.set_tag("discrepancy_types", ",".join(kinds))
            if self.telemetry.pinned_time is None:
                scope.capture_message(RECONCILIATION_DISCREPANCIES, level=level)
            else:
                scope.capture_event({"message": RECONCILIATION_DISCREPANCIES, "level": level,
                                     "timestamp": self.telemetry._datetime()})

    # --- the world's recent past ---------------------------------------------------------------------

    def _ticks(self, count: int, now: float) -> list[float]:
        """The cron schedule's last `count` ticks before now, oldest first."""
        from paymon.sandbox.sentry.checkins import schedule_tick

        config = {"schedule_type": "crontab", "schedule": self.knobs["cron_schedule"]}
        ticks, moment = [], now
        for _ in range(count):
            tick = schedule_tick(config, moment, -1)
            if tick is None:
                break
            ticks.append(tick)
            moment = tick - 60
        return list(reversed(ticks))

    def replay_history(self) -> None:
        now = self.hub.clock.now()
        rng = random.Random(f"history-{self.knobs.get('seed', 0)}")
        history = self.history
        sentry = self.telemetry.sentry
        runs = list(history.get("reconciliation") or [])
        for tick, status in zip(self._ticks(len(runs), now), runs):
            check_in_id = uuid.UUID(int=rng.getrandbits(128)).hex  # the same world, the same ids
            if status == "missed":  # no run: Sentry's monitor records the missed check-in itself
                sentry.record_checkin({"monitor_slug": self.knobs["cron_slug"], "status": "missed",
                                       "check_in_id": check_in_id, "environment": self.environment},
                                      received=tick + 5 * 60)
                continue
            with self.telemetry.at(tick + 1):
                self.reconcile(crash=status == "error", replay_duration_s=48.0 if status == "ok" else 11.0,
                               check_in_id=check_in_id)
        for hours in history.get("test_mode_hours_ago") or []:
            with self.telemetry.at(now - float(hours) * 3600):
                self.report(TEST_MODE_IN_PRODUCTION, "fatal", {"startup": "true"})
        replay_deploys(self, history, now)  # the app's deploys, and its payment failures around them
        traffic = history.get("traffic") or {}
        rate = float(self.knobs["traces_sample_rate"])
        if traffic and rate > 0:
            over = _seconds(traffic.get("over"), 3600.0)
            then = traffic.get("latency_ms") or {}
            past = self._latencies({**then, "default": None}) if then else {}
            for endpoint in ENDPOINTS:
                latency = past[endpoint] if endpoint in then else self._latency[endpoint]
                for _ in range(int(traffic.get("per_endpoint", 0))):
                    at = now - rng.uniform(5.0, over)
                    duration = latency.draw(rng)
                    with self.telemetry.at(at), self.telemetry.transaction(
                            endpoint, "http.server", duration_ms=duration, sampled=True) as tx:
                        tx.set_http_status(200)
        gauge = history.get("subscriptions_gauge") or {}
        if gauge:
            every = _seconds(gauge.get("every"), 3600.0)
            at = now - _seconds(gauge.get("over"), 86400.0)
            while at < now:
                with self.telemetry.at(at):
                    self.record_active_subscriptions()
                at += every
        usage = history.get("usage_reports") or {}
        items = [r["subscription_item_id"] for r in self.db.subscriptions()
                 if r.get("is_usage_based") and r.get("subscription_item_id") and r["status"] == "active"]
        if usage and items:
            over = _seconds(usage.get("over"), 86400.0)
            count = int(usage.get("count", 0))
            every = max(1, round(1 / rate)) if rate > 0 else None
            down = usage.get("none_on_utc_day_ago")
            down_from = (int(now // 86400) - int(down)) * 86400 if down is not None else None
            for i, at in enumerate(sorted(now - rng.uniform(5.0, over) for _ in range(count))):
                if down_from is not None and down_from <= at < down_from + 86400:
                    continue
                with self.telemetry.at(at):
                    self.report_usage(items[i % len(items)], 1,
                                      sampled=(every is not None and i % every == 0))
        resolved = history.get("resolved_issues") or []
        if resolved and sentry is not None:
            # Someone resolved these afterwards (the fix deployed): the issues stay, their events too.
            self.telemetry.flush()
            sentry.update_issues([i for i in list(sentry.events.issues.values())
                                  if any(text in i.title for text in resolved)], {"status": "resolved"})


def parse_json(raw_body: bytes) -> dict | None:
    try:
        payload = json.loads(raw_body)
    except (ValueError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None
