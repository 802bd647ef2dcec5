"""State of the emulated Lemon Squeezy account: the store's checkouts, subscriptions, usage records
and API keys, and what the API answers about them.

One account serves two clients: the sandbox payment app (in process: it creates checkouts and
reports usage, and its reconciliation job walks the subscriptions) and paymon (over HTTP, through
`responses.py`: `GET /v1/subscriptions/{id}`, `GET /v1/users/me`). Its world is `world["app"]`
(the app's store and subscriptions) plus `world["app"]["lemonsqueezy"]`:

    subscriptions       [{"id", "status", "variant_id", "subscription_item_id", ...}]: what LS
                        holds; any attribute of the subscription object may be given (`user_email`,
                        `customer_id`, `updated_at`, `test_mode`, ...), the rest is derived. Default:
                        the app's own rows (no discrepancy)
    usage               {subscription item id: quantity} billed so far
    api_keys            [{"key", "test_mode"}]: default one live key, DEFAULT_API_KEY
    knobs               rate_limit_per_minute (default 300)

Behaviour, with its source (reference lemonsqueezy.md; verified-2026-12.md §16):
- `Authorization: Bearer <key>`; a missing or unknown key is 401 (api/getting-started).
- A test key sees only test-mode objects, a live key only live ones; the other mode's object is
  404 (api/getting-started "test mode"; reference §2.2).
- 300 calls per minute per key, on the sandbox clock; successful answers carry
  `X-Ratelimit-Limit` and `X-Ratelimit-Remaining`, and past the limit 429 (api/getting-started
  /requests "rate limiting"). No `Retry-After`: none is documented.
- The subscription object's attributes are the documented list (api/subscriptions/the-subscription-
  object): the same resource object a `subscription_*` webhook carries in `data` (§16).
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections import deque
from datetime import datetime, timezone

DEFAULT_API_KEY = "sandbox-lemonsqueezy-api-key"
DEFAULT_RATE_LIMIT = 300  # calls per minute (api/getting-started/requests)
API_HOST = "https://api.lemonsqueezy.com"

# status -> status_formatted, as the docs' subscription object lists the statuses
STATUS_FORMATTED = {"on_trial": "On Trial", "active": "Active", "paused": "Paused", "past_due": "Past Due",
                    "unpaid": "Unpaid", "cancelled": "Cancelled", "expired": "Expired"}
# The app's own columns: not Lemon Squeezy's (it has no idea of the app's user ids or tiers).
APP_ONLY_KEYS = ("user_id", "tier")
_RELATIONSHIPS = ("store", "customer", "order", "order-item", "product", "variant", "subscription-items",
                  "subscription-invoices")
_EPOCH = "2026-03-02T09:14:07.000000Z"


class UsageReportingError(Exception):
    """Lemon Squeezy refused a usage record (the app's `usage_error_rate`)."""

    def __init__(self, status: int, detail: str):
        super().__init__(f"{status} {detail}")
        self.status, self.detail = status, detail


class Unauthenticated(Exception):
    """401: no key, or not one of the account's."""


class RateLimited(Exception):
    """429: the key's 300 calls of the last minute are spent."""


class NotFound(Exception):
    """404: no such object in this key's mode."""


class LemonSqueezyBackend:
    """The account: checkouts (`POST /v1/checkouts`), usage records (`POST /v1/usage-records`),
    subscriptions (read by the reconciliation job in process and by paymon over HTTP)."""

    def __init__(self, store: dict, clock, subscriptions: list[dict] | None = None, usage: dict | None = None,
                 api_keys: list[dict] | None = None, knobs: dict | None = None):
        self.store = store
        self.clock = clock
        self.checkouts: dict[str, dict] = {}
        self.subscriptions: dict[str, dict] = {str(s["id"]): dict(s) for s in subscriptions or []}
        self.usage: dict[int, int] = {int(k): int(v) for k, v in (usage or {}).items()}
        self.usage_records: list[dict] = []
        keys = api_keys if api_keys is not None else [{"key": DEFAULT_API_KEY, "test_mode": False}]
        self.api_keys: dict[str, bool] = {str(k["key"]): bool(k.get("test_mode", False)) for k in keys}
        self.rate_limit = int((knobs or {}).get("rate_limit_per_minute", DEFAULT_RATE_LIMIT))
        self._calls: dict[str, deque] = {}
        self._lock = threading.Lock()
        self.reads: list[tuple[str, str, int]] = []
        """(method, path, status) of every API request paymon made, as the account's API log."""

    @property
    def default_api_key(self) -> str:
        return next((k for k, test in self.api_keys.items() if not test), next(iter(self.api_keys), ""))

    # --- what the app does in process ---------------------------------------------------------------

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

    def create_usage_record(self, subscription_item_id: int, quantity: int, fail: bool) -> dict:
        if fail:
            raise UsageReportingError(429, "Too Many Attempts.")
        record = {"type": "usage-records", "id": str(len(self.usage_records) + 1),
                  "attributes": {"subscription_item_id": subscription_item_id, "quantity": quantity,
                                 "action": "increment"}}
        self.usage_records.append(record)
        self.usage[int(subscription_item_id)] = self.usage.get(int(subscription_item_id), 0) + int(quantity)
        return record

    # --- the API, as responses.py serves it ---------------------------------------------------------

    def authenticate(self, authorization: str | None) -> tuple[str, bool]:
        """(key, test_mode) for `Authorization: Bearer <key>`; Unauthenticated otherwise."""
        scheme, _, key = (authorization or "").partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or key not in self.api_keys:
            raise Unauthenticated()
        return key, self.api_keys[key]

    def take_call(self, key: str) -> int:
        """Count one call against the key's minute; the calls left (X-Ratelimit-Remaining), or RateLimited."""
        now = self.clock.now()
        with self._lock:
            calls = self._calls.setdefault(key, deque())
            while calls and calls[0] <= now - 60:
                calls.popleft()
            if len(calls) >= self.rate_limit:
                raise RateLimited()
            calls.append(now)
            return self.rate_limit - len(calls)

    def subscription(self, subscription_id: str, test_mode: bool, base: str = API_HOST) -> dict:
        """The subscription resource object as this key's mode sees it (the API's and the webhook's `data`)."""
        row = self.subscriptions.get(str(subscription_id))
        if row is None or bool(row.get("test_mode", False)) != test_mode:
            raise NotFound()
        return subscription_object(row, self.store, base)

    def record_read(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self.reads.append((method, path, status))


def _iso(value) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return datetime.fromtimestamp(float(value), timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def subscription_object(row: dict, store: dict, base: str = API_HOST) -> dict:
    """A JSON:API `subscriptions` resource object from a stored row: the documented attributes
    (api/subscriptions/the-subscription-object), `relationships` and `links` under `base`."""
    sid = str(row["id"])
    number = int(sid) if sid.isdigit() else 0
    status = row.get("status") or "active"
    created = _iso(row.get("created_at")) or _EPOCH
    updated = _iso(row.get("updated_at")) or created
    item_id = row.get("subscription_item_id")
    usage_based = bool(row.get("is_usage_based", False))
    domain = store.get("domain", "store.lemonsqueezy.com")
    url_signature = hashlib.sha256(f"{sid}:{updated}".encode()).hexdigest()
    attributes = {
        "store_id": store.get("id"),
        "customer_id": row.get("customer_id"),
        "order_id": row.get("order_id"),
        "order_item_id": row.get("order_item_id"),
        "product_id": row.get("product_id"),
        "variant_id": row.get("variant_id"),
        "product_name": row.get("product_name", ""),
        "variant_name": row.get("variant_name", ""),
        "user_name": row.get("user_name", ""),
        "user_email": row.get("user_email", ""),
        "status": status,
        "status_formatted": STATUS_FORMATTED.get(status, status.replace("_", " ").title()),
        "card_brand": row.get("card_brand", "visa"),
        "card_last_four": row.get("card_last_four", "4242"),
        "payment_processor": row.get("payment_processor", "stripe"),
        "pause": row.get("pause"),
        "cancelled": status == "cancelled",
        "trial_ends_at": _iso(row.get("trial_ends_at")),
        "billing_anchor": row.get("billing_anchor", 2),
        "first_subscription_item": None if item_id is None else {
            "id": int(item_id), "subscription_id": number, "price_id": row.get("price_id"),
            "quantity": 0 if usage_based else 1, "is_usage_based": usage_based,
            "created_at": created, "updated_at": created},
        "urls": {
            "update_payment_method": f"https://{domain}/subscription/{sid}/payment-details?signature={url_signature}",
            "customer_portal": f"https://{domain}/billing?signature={url_signature}",
            "customer_portal_update_subscription": f"https://{domain}/billing/{sid}/update?signature={url_signature}",
        },
        "renews_at": _iso(row.get("renews_at")),
        "ends_at": _iso(row.get("ends_at")),
        "created_at": created,
        "updated_at": updated,
        "test_mode": bool(row.get("test_mode", False)),
    }
    self_link = f"{base}/v1/subscriptions/{sid}"
    return {"type": "subscriptions", "id": sid, "attributes": attributes,
            "relationships": {name: {"links": {"related": f"{self_link}/{name}",
                                               "self": f"{self_link}/relationships/{name}"}}
                              for name in _RELATIONSHIPS},
            "links": {"self": self_link}}
