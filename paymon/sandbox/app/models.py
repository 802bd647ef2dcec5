"""State of the reference payment app: its subscriptions, usage, processed webhooks, and the
in-process Lemon Squeezy stand-in it creates checkouts with.

Shape of `world["app"]` (see `worlds/app.json`):

    environment     "production"                the app's deployment environment
    store           {"id", "slug", "domain"}     the LS store checkouts are created in
    variants        {"pro": id, "payg": id}      LS variant per tier
    subscriptions   [{"id", "user_id", "tier", "status", "variant_id", "subscription_item_id",
                      "is_usage_based", "updated_at"}]      the app's DB table (id: LS's, a string)
    usage           [{"subscription_item_id", "quantity", "at"}]  billable units the app recorded
    knobs           webhook_secret               the LS signing secret the app verifies with
                    test_mode                    LEMONSQUEEZY_TEST_MODE: checkouts are test-mode
                    skip_signature_verification  a broken app: accepts any X-Signature
                    error_rate                   fraction of requests answering 500, from Random(seed)
                    seed                         for latency and error draws
                    latency_ms                   {endpoint path: ms | {"p50", "p95"}} (or one value
                                                 for every endpoint): the app's simulated work

Everything is in memory behind one lock: the app is a stand-in, not a database test.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import math
import random
import threading
import uuid
from dataclasses import dataclass

from paymon.sandbox.hub import Hub

CHECKOUT_PRO = "/api/checkout/pro"
CHECKOUT_PAYG = "/api/checkout/payg"
WEBHOOK = "/api/webhooks/lemonsqueezy"
PAYG_CREATE = "/api/subscription/payg/create"
ENDPOINTS = (CHECKOUT_PRO, CHECKOUT_PAYG, WEBHOOK, PAYG_CREATE)

INVALID_SIGNATURE = "Invalid webhook signature"
TEST_MODE_IN_PRODUCTION = "Test mode detected in production"
SYNTHETIC_USER = "paymon-synthetic"

DEFAULT_KNOBS = {
    "webhook_secret": "sandbox-lemonsqueezy-webhook-secret",
    "test_mode": False,
    "skip_signature_verification": False,
    "error_rate": 0.0,
    "seed": 0,
    "latency_ms": 0,
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


class LemonSqueezyStandIn:
    """The bit of `POST /v1/checkouts` the app needs: a persistent checkout with a signed URL."""

    def __init__(self, store: dict, clock):
        self.store = store
        self.clock = clock
        self.checkouts: dict[str, dict] = {}

    def create_checkout(self, variant_id: int, custom: dict, test_mode: bool) -> dict:
        checkout_id = str(uuid.uuid4())
        expires = int(self.clock.now()) + 24 * 3600
        signature = hashlib.sha256(f"{checkout_id}:{expires}".encode()).hexdigest()
        url = (f"https://{self.store.get('domain', 'store.lemonsqueezy.com')}/checkout/custom/{checkout_id}"
               f"?expires={expires}&signature={signature}")
        checkout = {"type": "checkouts", "id": checkout_id,
                    "attributes": {"store_id": self.store.get("id"), "variant_id": variant_id, "url": url,
                                   "test_mode": bool(test_mode), "expires_at": expires,
                                   "checkout_data": {"custom": dict(custom)}}}
        self.checkouts[checkout_id] = checkout
        return checkout


class AppBackend:
    """The app's state and behaviour; `AppResponse` turns HTTP into calls on it."""

    def __init__(self, world: dict | None = None, hub: Hub | None = None):
        world = copy.deepcopy(world or {})
        self.hub = hub or Hub()
        self.environment = world.get("environment", "production")
        self.store = world.get("store", {"id": 48213, "domain": "towerofbabel.lemonsqueezy.com"})
        self.variants = world.get("variants", {"pro": 512337, "payg": 512341})
        self.knobs = {**DEFAULT_KNOBS, **world.get("knobs", {})}
        self._latency = self._latencies(self.knobs["latency_ms"])
        self._rng = random.Random(self.knobs.get("seed", 0))
        self._lock = threading.Lock()
        self.subscriptions: dict[str, dict] = {str(s["id"]): dict(s) for s in world.get("subscriptions", [])}
        self.usage: list[dict] = list(world.get("usage", []))
        self.processed: dict[str, dict] = {}  # dedupe key -> {"event_name", "subscription_id"}
        self.rejected: int = 0                 # webhooks refused for their signature
        self.requests: dict[str, int] = {}     # endpoint -> count
        self.lemonsqueezy = LemonSqueezyStandIn(self.store, self.hub.clock)

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
    def test_mode(self) -> bool:
        return bool(self.knobs["test_mode"])

    def draw_work(self, endpoint: str) -> tuple[float, bool]:
        """(seconds of simulated work, whether this request fails with 500) for one request."""
        with self._lock:
            self.requests[endpoint] = self.requests.get(endpoint, 0) + 1
            delay = self._latency[endpoint].draw(self._rng) / 1000.0
            rate = float(self.knobs.get("error_rate") or 0.0)
            fails = rate > 0 and self._rng.random() < rate
        return delay, fails

    # --- Sentry, reached through the hub ----------------------------------------------------------

    def report(self, message: str, level: str, tags: dict) -> None:
        """What the app's Sentry SDK would send; nothing when the world has no Sentry."""
        sentry = self.hub.backends.get("sentry")
        if sentry is None:
            return
        sentry.store_event({"message": message, "level": level, "environment": self.environment,
                            "platform": "node", "tags": tags, "timestamp": self.hub.clock.now()})

    # --- checkouts ----------------------------------------------------------------------------------

    def create_checkout(self, tier: str, user_id: str = SYNTHETIC_USER, email: str | None = None) -> dict:
        if self.test_mode and self.environment == "production":
            self.report(TEST_MODE_IN_PRODUCTION, "fatal", {"payment_flow": "checkout"})
        custom = {"user_id": user_id, "tier": tier}
        if email:
            custom["email"] = email
        with self._lock:
            checkout = self.lemonsqueezy.create_checkout(self.variants[tier], custom, self.test_mode)
        return {"url": checkout["attributes"]["url"], "test_mode": checkout["attributes"]["test_mode"],
                "checkout_id": checkout["id"]}

    def create_payg_subscription(self, user_id: str = SYNTHETIC_USER) -> dict:
        """A PAYG checkout plus the app's pending row for the user: one row per user, however often."""
        result = self.create_checkout("payg", user_id)
        with self._lock:
            row = next((s for s in self.subscriptions.values()
                        if s["user_id"] == user_id and s["tier"] == "payg" and s["status"] == "pending"), None)
            if row is None:
                row = {"id": f"pending-{user_id}", "user_id": user_id, "tier": "payg", "status": "pending",
                       "variant_id": self.variants["payg"], "subscription_item_id": None,
                       "is_usage_based": True, "updated_at": None}
                self.subscriptions[row["id"]] = row
            result["subscription"] = {"id": row["id"], "status": row["status"], "tier": "payg"}
        return result

    # --- webhooks -----------------------------------------------------------------------------------

    def signature_ok(self, raw_body: bytes, x_signature: str | None) -> bool:
        if self.knobs.get("skip_signature_verification"):
            return True
        return verify_signature(raw_body, x_signature, self.webhook_secret)

    def reject_signature(self) -> None:
        with self._lock:
            self.rejected += 1
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
            if key in self.processed:
                return {"received": True, "duplicate": True}
            subscription_id = self._apply(event, data)
            self.processed[key] = {"event_name": event, "subscription_id": subscription_id}
        return {"received": True, "duplicate": False}

    def _apply(self, event: str | None, data: dict) -> str | None:
        attributes = data.get("attributes") or {}
        if not isinstance(event, str):
            return None
        if event.startswith("subscription_payment_"):  # invoices: data.id is the invoice (§4.7)
            return str(attributes.get("subscription_id")) if attributes.get("subscription_id") else None
        if event.startswith("subscription_") and data.get("id") is not None:
            subscription_id = str(data["id"])
            row = self.subscriptions.get(subscription_id)
            updated_at = attributes.get("updated_at")
            if row is not None and updated_at and row.get("updated_at") and updated_at < row["updated_at"]:
                return subscription_id  # older than what is stored: out-of-order delivery (§4.6)
            row = row or {"id": subscription_id, "user_id": (attributes.get("custom_data") or {}).get("user_id")}
            item = attributes.get("first_subscription_item") or {}
            row.update({k: v for k, v in {
                "status": attributes.get("status"), "variant_id": attributes.get("variant_id"),
                "subscription_item_id": item.get("id"), "is_usage_based": item.get("is_usage_based"),
                "updated_at": updated_at}.items() if v is not None})
            self.subscriptions[subscription_id] = row
            return subscription_id
        return None

    # --- usage ----------------------------------------------------------------------------------------

    def record_usage(self, subscription_item_id: int, quantity: int) -> dict:
        record = {"subscription_item_id": subscription_item_id, "quantity": quantity, "at": self.hub.clock.now()}
        with self._lock:
            self.usage.append(record)
        return record


def parse_json(raw_body: bytes) -> dict | None:
    try:
        payload = json.loads(raw_body)
    except (ValueError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None
