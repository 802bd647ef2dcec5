"""The webhook probe's deliveries: the synthetic subscription's stored state, read back from Lemon
Squeezy and replayed as a signed `subscription_updated`; and the stop after a few failed deliveries.

A probe that changes nothing (issue 12 item 6; reference lemonsqueezy.md §3 "Webhook latency probe")
    The app's handler upserts what a `subscription_updated` says. The probe used to say `status:
    active` whatever the synthetic subscription's state was, so a `past_due` or `cancelled`
    synthetic subscription came out of every run `active`. Now the body's `data` is exactly what
    Lemon Squeezy answers for `GET /v1/subscriptions/{id}`: the same resource object a real
    `subscription_updated` carries (verified-2026-12 §16), so the upsert writes what is stored.
    `meta` is the webhook envelope: `event_name`, `test_mode` (the object's own), a fresh
    `webhook_id` per delivery (the app dedupes on it, and a repeated one would time the duplicate
    shortcut), and `custom_data.user_id`, the synthetic user's id, which the checkout set and Lemon
    Squeezy repeats in every subscription webhook (the API's answer has no custom data).

Only the synthetic user's subscription (`check_synthetic`)
    Before anything is sent, the answer must be the synthetic user's, as monitoring.yaml's
    `webhook_probe.synthetic_user` declares it: the checkout's e-mail (`attributes.user_email`) and
    the store (`attributes.store_id`). A mistyped PAYMON_SYNTHETIC_SUBSCRIPTION_ID would otherwise
    re-apply a real customer's subscription through the app's full handler. Nor is a test-mode
    object ever replayed to production (a handler may take `test_mode: true` for the fatal "Test
    mode detected in production"). The customer's address is never printed: it is personal data.

Stop after a few failures (`FailureBudget`)
    A failed delivery may be an error the app logs, and "Webhook Processing Failure" pages at more
    than 5 in 10 minutes. The probe stops at `stop_after_failures` non-2xx answers (monitoring.yaml),
    counted over the run, not only in a row: the alert counts every one. With requests in flight at
    once (the open-loop schedule), a request is not sent while those in flight could take the
    failures past the budget, so the budget holds exactly. Timeouts are latency samples, not answers.

May import: paymon.errors, paymon.config, paymon.probes.latency.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections import Counter
from typing import TYPE_CHECKING

from paymon.config.settings import LemonSqueezySettings
from paymon.errors import AuthError, PaymonError, ServiceError, SettingsError, TargetUnavailable
from paymon.probes.latency import HttpSender, HttpTarget, Outcome

if TYPE_CHECKING:
    import httpx

    from paymon.config.spec import SyntheticUserSpec

EVENT = "subscription_updated"
JSONAPI = "application/vnd.api+json"
# Reads of the synthetic subscription retry 429 and 5xx this long at most (Lemon Squeezy documents
# no Retry-After: the waits double from 1 s). One read per check: far below its 300 a minute.
READ_DEADLINE_S = 30.0


class NotTheSyntheticSubscription(SettingsError):
    """PAYMON_SYNTHETIC_SUBSCRIPTION_ID names a subscription the probe must not replay."""


class WebhookProbeStopped(PaymonError):
    """The probe reached its budget of failed deliveries and sent no more."""

    def __init__(self, url: str, budget: FailureBudget):
        self.url = url
        self.sent = budget.sent
        self.failures = budget.failures
        self.statuses = dict(budget.statuses)
        self.limit = budget.limit
        answers = ", ".join(f"HTTP {status} x{count}" for status, count in sorted(self.statuses.items()))
        super().__init__(f"{url} answered {answers}: the webhook probe stopped after {self.failures} non-2xx "
                         f"answer(s) of {self.sent} delivery(ies) sent (at most {self.limit} per run, monitoring.yaml "
                         "webhook_probe.stop_after_failures)")


# --- signing -------------------------------------------------------------------------------------

def sign(body: bytes, secret: str) -> str:
    """X-Signature: lowercase hex HMAC-SHA256 of the exact body bytes (reference §1.2). Written here,
    not imported from the sandbox app, so a bug there cannot agree with itself."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def webhook_headers(body: bytes, signature: str | None, base: dict[str, str] | None = None) -> dict[str, str]:
    headers = {**(base or {}), "Content-Type": "application/json", "X-Event-Name": EVENT}
    if signature is not None:
        headers["X-Signature"] = signature
    return headers


# --- the stored state, from Lemon Squeezy --------------------------------------------------------

def read_subscription(settings: LemonSqueezySettings, subscription_id: str, *,
                      transport: httpx.BaseTransport | None = None, timeout_s: float = 10.0,
                      deadline_s: float = READ_DEADLINE_S, sleep=time.sleep) -> dict:
    """`GET /v1/subscriptions/{id}`: the subscription resource object (the answer's `data`)."""
    import httpx

    url = f"{settings.base_url}/v1/subscriptions/{subscription_id}"
    headers = {"Accept": JSONAPI, "Content-Type": JSONAPI,
               "Authorization": f"Bearer {settings.api_key.get_secret_value()}"}
    waited, wait = 0.0, 1.0
    with httpx.Client(timeout=timeout_s, transport=transport, follow_redirects=False) as client:
        while True:
            try:
                response = client.get(url, headers=headers)
            except httpx.TransportError as exc:
                raise ServiceError(f"Lemon Squeezy API {settings.base_url}: cannot reach it "
                                   f"({type(exc).__name__})") from None
            if response.status_code != 429 and response.status_code < 500:
                break
            if waited + wait > deadline_s:
                raise ServiceError(f"Lemon Squeezy API {url} answered {response.status_code} for "
                                   f"{waited:g}s: cannot read the synthetic subscription")
            sleep(wait)
            waited, wait = waited + wait, wait * 2
    if response.status_code in (401, 403):
        raise AuthError(f"Lemon Squeezy refused LEMONSQUEEZY_API_KEY ({response.status_code}) reading "
                        f"subscription {subscription_id}: set a live-mode API key of the store")
    if response.status_code == 404:
        raise TargetUnavailable(
            f"Lemon Squeezy has no subscription {subscription_id} for this key (404): check "
            "PAYMON_SYNTHETIC_SUBSCRIPTION_ID, and that LEMONSQUEEZY_API_KEY is a live-mode key (a test key "
            "sees only test-mode objects)")
    if response.status_code != 200:
        raise TargetUnavailable(f"Lemon Squeezy API {url} answered {response.status_code}")
    try:
        data = response.json()["data"]
    except (ValueError, KeyError, TypeError):
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("attributes"), dict):
        raise TargetUnavailable(f"Lemon Squeezy API {url}: the answer holds no subscription object")
    return data


def check_synthetic(resource: dict, subscription_id: str, user: SyntheticUserSpec) -> None:
    """The resource is subscription `subscription_id` of the synthetic user, live; else
    NotTheSyntheticSubscription, one line naming what differs (never the customer's address)."""
    attributes = resource.get("attributes") or {}
    where = (f"PAYMON_SYNTHETIC_SUBSCRIPTION_ID={subscription_id} is not the synthetic user's subscription, "
             "so the webhook probe sends nothing")
    declared = "monitoring.yaml webhook_probe.synthetic_user"
    if resource.get("type") != "subscriptions" or str(resource.get("id")) != str(subscription_id):
        raise NotTheSyntheticSubscription(
            f"{where}: Lemon Squeezy answered {resource.get('type')!r} {resource.get('id')!r}")
    email = str(attributes.get("user_email") or "")
    if email.strip().lower() != user.email.strip().lower():
        whose = "another customer's" if email else "empty"
        raise NotTheSyntheticSubscription(f"{where}: its user_email is {whose}, expected {user.email} ({declared}.email)")
    if attributes.get("store_id") != user.store_id:
        raise NotTheSyntheticSubscription(
            f"{where}: store_id expected {user.store_id} ({declared}.store_id), actual {attributes.get('store_id')}")
    if attributes.get("test_mode") is not False:
        raise NotTheSyntheticSubscription(
            f"{where}: it is a test-mode object (test_mode {attributes.get('test_mode')!r}); replayed to "
            "production it could raise \"Test mode detected in production\"")


def replay_body(resource: dict, user_id: str, webhook_id: str | None = None) -> bytes:
    """`subscription_updated` carrying `resource` as its `data`, serialised once (sign these bytes)."""
    attributes = resource.get("attributes") or {}
    payload = {"meta": {"event_name": EVENT, "test_mode": bool(attributes.get("test_mode")),
                        "webhook_id": webhook_id or str(uuid.uuid4()), "custom_data": {"user_id": user_id}},
               "data": resource}
    return json.dumps(payload, separators=(",", ":")).encode()


@dataclasses.dataclass(frozen=True)
class SyntheticSubscription:
    """The synthetic subscription as Lemon Squeezy holds it, checked to be the synthetic user's."""

    id: str
    resource: dict
    user_id: str

    @property
    def status(self) -> str | None:
        return self.resource["attributes"].get("status")

    def body(self, webhook_id: str | None = None) -> bytes:
        return replay_body(self.resource, self.user_id, webhook_id)


def synthetic_subscription(settings: LemonSqueezySettings, subscription_id: str, user: SyntheticUserSpec,
                           **read) -> SyntheticSubscription:
    """Read the subscription and check it is the synthetic user's (reads: `read_subscription`'s options)."""
    resource = read_subscription(settings, subscription_id, **read)
    check_synthetic(resource, subscription_id, user)
    return SyntheticSubscription(str(subscription_id), resource, user.user_id)


# --- the failure budget --------------------------------------------------------------------------

class FailureBudget:
    """At most `limit` non-2xx answers per run, counting the requests still in flight (thread-safe)."""

    def __init__(self, limit: int):
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self.limit = limit
        self.sent = 0
        self.failures = 0
        self.statuses: Counter[int] = Counter()
        self._in_flight = 0
        self._lock = threading.Lock()

    @property
    def spent(self) -> bool:
        with self._lock:
            return self.failures >= self.limit

    def before_send(self) -> bool:
        """Whether the next request may go: not once `limit` failed, nor, after a failure, while the
        requests in flight could fail past it. True counts the request as sent and in flight."""
        with self._lock:
            if self.failures >= self.limit or (self.failures and self.failures + self._in_flight >= self.limit):
                return False
            self.sent += 1
            self._in_flight += 1
            return True

    def after(self, outcome: Outcome) -> None:
        with self._lock:
            self._in_flight -= 1
            if not outcome.ok and outcome.status is not None:  # an answer, and not a 2xx one
                self.failures += 1
                self.statuses[outcome.status] += 1


class SignedWebhookSender(HttpSender):
    """HttpSender with a fresh delivery per request: the replayed body with a new webhook id, signed.

    Each request is a new delivery, so the app runs its full path. Signing happens inside the timed
    call; it costs microseconds. Once `budget` says stop, it raises WebhookProbeStopped, which ends
    the schedule (paymon.probes.latency.run_schedule raises what a sender raises)."""

    def __init__(self, client, target: HttpTarget, secret: str, subscription: SyntheticSubscription,
                 budget: FailureBudget, modelled=None):
        super().__init__(client, target, modelled)
        self._secret = secret
        self._subscription = subscription
        self.budget = budget

    def request_target(self) -> HttpTarget:
        body = self._subscription.body()
        return dataclasses.replace(self.target, body=body,
                                   headers=webhook_headers(body, sign(body, self._secret), self.target.headers))

    def __call__(self) -> Outcome:
        if not self.budget.before_send():
            raise WebhookProbeStopped(self.target.url, self.budget)
        outcome = Outcome(ok=False, error="not sent")
        try:
            outcome = super().__call__()
        finally:
            self.budget.after(outcome)
        if self.budget.spent:
            raise WebhookProbeStopped(self.target.url, self.budget)
        return outcome
