"""§2 "Performance Alert Thresholds", measured: each payment endpoint's p95 against its budget; and
the app's webhook and test-mode behaviour (§1 Alerts 3 and 6, §7 "Confirm webhook processing
working correctly").

The probe (paymon.probes.latency) sends requests on a fixed open-loop schedule (each at its time,
a few in flight at most) and judges p95 with a 95% confidence interval; `decide` turns the verdict
into the outcome, as `paymon probe` does: critical fails, warning passes with a visible warning. A
run too small to decide cannot check in the sandbox (which could have taken more samples); live,
the probe is a canary of 20 requests that fails only on what it proves, so "inconclusive at n=20"
passes with a visible warning naming the samples that would settle it. Checkout probes create
live checkout objects (never opened or paid). The webhook probes change nothing (issue 12 item 6):
they replay the synthetic subscription as Lemon Squeezy holds it (read with LEMONSQUEEZY_API_KEY,
refused unless it is the synthetic user's, monitoring.yaml `webhook_probe`), freshly signed each
time (reference §3), and the p95 probe stops at `webhook_probe.stop_after_failures` non-2xx answers,
failing with the endpoint and the statuses it saw, well before "Webhook Processing Failure" could fire.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from concurrent.futures import ThreadPoolExecutor, wait

import httpx
import pytest

from fixtures.app import could_not_check
from paymon.errors import PaymonError, SettingsError, TargetUnavailable
from paymon.probes.latency import (
    COULD_NOT_CHECK,
    FAIL,
    WARNING,
    Budget,
    Decision,
    HttpTarget,
    LatencyReport,
    decide,
    decide_pooled,
    pooled_p95,
    probe_http,
)
from paymon.findings.production import alert_query, count, test_mode_findings, wait_for_events
from paymon.probes.webhook import FailureBudget, SignedWebhookSender, WebhookProbeStopped, sign, webhook_headers
# What a run sends is declared once, where its cost is computed (paymon/delivery/actions.py).
from paymon.delivery.actions import MISSIGNED_PER_RUN, PROBE_WARMUP, WEBHOOK
from paymon.delivery.actions import SIGNED_DELIVERIES_PER_RUN as SIGNED_DELIVERIES
from paymon.delivery.actions import TEST_MODE_CHECKOUTS as CHECKOUTS
from fixtures.outcome import PaymentProbeWarning, fail_with, overridden

WRONG_SECRET = "not-the-secret"  # valid 64-hex signature that does not match (reference §1.3, §3)
# Reference §3: the security alert fires at > 5 "Invalid webhook signature" warnings in 5 min,
# across every paymon run; live, send only while count + planned <= 3, at most 2 per run (the
# wrong secret, plus one of the other malformed kinds in rotation). The sandbox (a fresh one per
# run) gets every kind; 5 warnings stay at the alert's threshold, not over it.
MISSIGNED_CEILING = 3
SANDBOX_MISSIGNED_CEILING = 5
TIMEOUT_S = 10.0
# How long the "Invalid webhook signature" warning may take to become searchable in Sentry after a
# rejected probe: live ingestion takes seconds (60 s is the guide's Slack deadline, §3); the
# sandbox ingests at once, so 5 s is plenty and a missing warning fails fast.
SIGNATURE_WARNING_DEADLINE_S = {True: 60.0, False: 5.0}
SKEW_S = 120  # clocks of paymon and Sentry may differ (reference §4.9)
INVALID_SIGNATURE = "Invalid webhook signature"  # the warning the app logs (guide §1 Alert 3)


def _json_target(payment_app, path: str) -> HttpTarget:
    return HttpTarget(payment_app.url(path), method="POST", timeout_s=TIMEOUT_S,
                      headers={**payment_app.headers, "Content-Type": "application/json"},
                      body=b'{"user_id":"paymon-synthetic"}')


def _probe(budget_spec, payment_app, webhook_replay, spec):
    """One endpoint's run; SettingsError if the webhook probe lacks its secret, key or subscription
    (or it is not the synthetic user's); WebhookProbeStopped when the webhook failed too often."""
    budget = Budget.from_spec(budget_spec)
    path = budget_spec.transaction
    schedule = {"samples": payment_app.samples, "rate": payment_app.rate, "max_in_flight": payment_app.max_in_flight,
                "budget": budget, "modelled": payment_app.probe_clock(), "warmup": PROBE_WARMUP}
    if path != WEBHOOK:
        return probe_http(_json_target(payment_app, path), **schedule)
    secret, subscription = payment_app.require_secret(), webhook_replay.subscription()
    target = HttpTarget(payment_app.url(path), method="POST", timeout_s=TIMEOUT_S, headers=payment_app.headers)
    failures = FailureBudget(spec.webhook_probe.stop_after_failures)  # the warm-up's delivery counts too

    def signed(client, template, modelled):  # a fresh, signed delivery per request
        return SignedWebhookSender(client, template, secret, subscription, failures, modelled)

    return probe_http(target, sender=signed, **schedule)


@pytest.fixture(scope="session")
def p95_runs(request, payment_app, webhook_replay, spec) -> dict:
    """Every selected endpoint probed at once, each on its own schedule and in-flight slots (at most
    `max_in_flight` per endpoint): the run takes as long as one endpoint's, not the sum.
    transaction -> Future."""
    budgets = {item.callspec.params["budget"].transaction: item.callspec.params["budget"]
               for item in request.session.items
               if getattr(item, "originalname", None) == "test_endpoint_p95" and hasattr(item, "callspec")}
    with ThreadPoolExecutor(max_workers=max(1, len(budgets)), thread_name_prefix="paymon-probe") as pool:
        runs = {transaction: pool.submit(_probe, budget, payment_app, webhook_replay, spec)
                for transaction, budget in budgets.items()}
        wait(runs.values())
    return runs


def _ms(value) -> str:
    return "n/a" if value is None else f"{value:.1f} ms"


@pytest.mark.area("endpoints")
@pytest.mark.criterion("Performance monitoring enabled for payment endpoints")
def test_endpoint_p95(budget, payment_app, p95_runs, webhook_replay, spec, probe_pool, request, record_property):
    """The endpoint's measured p95 is within its §2 budget, with 95% confidence."""
    run, stopped = p95_runs.get(budget.transaction), None
    try:
        report = run.result() if run is not None else _probe(budget, payment_app, webhook_replay, spec)
    except SettingsError as exc:
        could_not_check(request, exc)
    except WebhookProbeStopped as exc:
        stopped = exc
    if stopped is not None:  # a certain failure, reported at once: no p95 to judge
        record_property("webhook_deliveries_sent", stopped.sent)
        record_property("webhook_deliveries_failed", stopped.failures)
        pytest.fail(f"{stopped}; \"{spec.webhook_probe.alert}\" counts each error the app logs for one",
                    pytrace=False)
    request.node.latency_report = report  # drawn as the Allure latency histogram (fixtures/reporting.py)
    low, high = report.p95_ci_ms
    for name, value in (("samples", report.samples), ("errors", report.errors), ("p50_ms", report.p50_ms),
                        ("p95_ms", report.p95_ms), ("p99_ms", report.p99_ms),
                        ("p95_ci_low_ms", low), ("p95_ci_high_ms", high), ("rate_per_s", report.rate),
                        ("p95_verdict", report.verdict)):
        record_property(name, round(value, 3) if isinstance(value, float) else value)
    # Live, the probe is a canary (a few requests, each a live object): it fails only on what it proves.
    decision = decide(report, canary=payment_app.canary)
    if probe_pool is not None:  # a canary with the run history: earlier runs' samples count too
        earlier, runs = probe_pool(budget.transaction)
        if earlier:
            pooled = pooled_p95([*(v for v in report.sorted_ms if math.isfinite(v)), *earlier], runs + 1,
                                Budget.from_spec(budget))
            for name, value in (("pooled_samples", pooled.samples), ("pooled_runs", pooled.runs),
                                ("pooled_p95_ms", pooled.p95_ms), ("pooled_verdict", pooled.verdict)):
                record_property(name, value)
            decision = decide_pooled(decision, pooled)
    record_property("p95_outcome", decision.outcome)
    message = p95_message(budget, report, decision)
    if decision.outcome == FAIL:
        pytest.fail(message, pytrace=False)
    if decision.outcome == COULD_NOT_CHECK:
        could_not_check(request, PaymonError(message))
    if decision.outcome == WARNING:
        request.node.user_properties.append(("verdict", "warning"))
        warnings.warn(PaymentProbeWarning(message), stacklevel=1)


def p95_message(budget, report: LatencyReport, decision: Decision) -> str:
    """`<headline>: <endpoint>: p95 ... against budget ...: <reason>`, why, how to settle it, notes."""
    summary = (f"{budget.transaction}: p95 {_ms(report.p95_ms)} (p50 {_ms(report.p50_ms)}, p99 {_ms(report.p99_ms)}, "
               f"{report.samples} samples at {report.rate:g}/s) against budget warning > {budget.warning:g} ms, "
               f"critical > {budget.critical:g} ms: {report.reason}")
    why = f" ({decision.why})" if decision.why else ""
    hint = f"; rerun with --probe-samples={report.samples_needed}" if report.samples_needed else ""
    notes = "".join(f"\n  note: {note}" for note in report.notes)  # not "- ": that marks a finding
    return f"{decision.headline}: {summary}{why}{hint}{notes}"


# --- webhook signature ---------------------------------------------------------------------------------

def _alert_count_now(sentry_client, alert) -> int:
    """The alert's own count now: its query over its window (monitoring.yaml), every event
    included, test-tagged ones too, as the real alert counts them."""
    return count(sentry_client, "errors", alert_query(alert), alert.environment, period_s=alert.window)


ROOM_POLL_S = 30.0


def _wait_for_room(sentry_client, spec, security, wanted: int, *, sleep=time.sleep,
                   clock=time.monotonic) -> tuple[int, str]:
    """(how many mis-signed probes may be sent now, and if none, why). Each adds a warning to the
    security alert (kept at most MISSIGNED_CEILING, under its > 5) and to the webhook-failure alert,
    which also gets the correctly signed delivery's event if it fails. While neither has room for
    one, poll until the older events leave the longer of the two windows."""
    processing = spec.alert(spec.webhook_probe.alert)
    allowed = math.floor(processing.threshold) if processing.comparator == ">" else math.ceil(processing.threshold) - 1
    give_up = clock() + max(security.window or 0, processing.window or 0)
    while True:
        recent = _alert_count_now(sentry_client, security)
        seen = _alert_count_now(sentry_client, processing)
        room = min(wanted, MISSIGNED_CEILING - recent, allowed - seen - SIGNED_DELIVERIES)
        if room >= 1 or clock() >= give_up:
            break
        sleep(ROOM_POLL_S)
    why = (f"{recent} 'Invalid webhook signature' warning(s) in the last {security.window // 60} min and {seen} "
           f'event(s) "{processing.name}" counts in the last {processing.window // 60} min, still after waiting '
           f"out its window: one more mis-signed probe could page (security: > {security.threshold:g}, "
           f"webhook failure: > {processing.threshold:g})")
    return max(room, 0), why


def _post(client: httpx.Client, url: str, body: bytes, headers: dict) -> httpx.Response:
    try:
        return client.post(url, content=body, headers=headers)
    except httpx.TransportError as exc:
        raise TargetUnavailable(f"{url}: {type(exc).__name__}: {exc}") from None


def _app_backend(sandbox_server):
    return None if sandbox_server is None else sandbox_server.backends.get("app")


@pytest.mark.area("endpoints")
@pytest.mark.alert_events
@pytest.mark.criterion("Confirm webhook processing working correctly")
def test_webhook_rejects_forged_signature(payment_app, webhook_replay, request, sandbox_server, spec):
    """Mis-signed deliveries (a wrong secret, a tampered body, a missing, non-hex or short header;
    live: the wrong secret plus one of the others in rotation, sent only while neither the security
    alert nor the webhook-failure alert could pass its threshold) get 401, not 500, and are not
    processed; the correctly signed delivery then gets 2xx and is processed (once); each
    rejection's "Invalid webhook signature" warning arrives in Sentry (polled within a deadline)."""
    try:
        secret, subscription = payment_app.require_secret(), webhook_replay.subscription()
        sentry_client = request.getfixturevalue("sentry_client")
    except SettingsError as exc:
        could_not_check(request, exc)
    body = subscription.body()  # the synthetic subscription as Lemon Squeezy holds it
    malformed = malformed_deliveries(body, secret, payment_app.live, payment_app.run_id)
    alert = spec.alert(spec.webhook_security.alert)
    if payment_app.live:
        # Earlier runs' probes (a synthetic run just before this gate) may still be in the alerts'
        # windows: send as many as fit, and wait for room (it frees as they age out) rather than
        # fail a gate on paymon's own traffic; only a window that stays full is "could not check".
        room, crowded = _wait_for_room(sentry_client, spec, alert, len(malformed))
        if room < 1:
            could_not_check(request, TargetUnavailable(crowded))
        malformed = malformed[:room]
    else:  # the sandbox is a fresh world per run: every kind, and a full window is a fault
        recent = _alert_count_now(sentry_client, alert)
        if recent + len(malformed) > SANDBOX_MISSIGNED_CEILING:
            could_not_check(request, TargetUnavailable(
                f"{recent} 'Invalid webhook signature' warning(s) in the last 5 minutes; sending "
                f"{len(malformed)} more could page the security team (> 5 in 5 min)"))

    warning_query, since = alert_query(alert), time.time() - SKEW_S
    before = count(sentry_client, "errors", warning_query, alert.environment, start=since)
    webhook_id = json.loads(body)["meta"]["webhook_id"]
    url, app = payment_app.url(WEBHOOK), _app_backend(sandbox_server)
    problems, rejected = [], 0
    with httpx.Client(timeout=TIMEOUT_S) as client:
        for label, sent, signature in malformed:
            response = _post(client, url, sent, webhook_headers(sent, signature, payment_app.headers))
            if response.status_code != 401:
                problems.append(f"{label}: status expected 401, actual {response.status_code}")
            else:
                rejected += 1
            if app is not None and json.loads(sent)["meta"]["webhook_id"] in app.processed:
                problems.append(f"{label}: the delivery was processed by the app")
        response = _post(client, url, body, webhook_headers(body, sign(body, secret), payment_app.headers))
        if not 200 <= response.status_code < 300:
            problems.append(f"correctly signed delivery: status expected 2xx, actual {response.status_code}")
        elif _json(response).get("duplicate") is True:
            problems.append("correctly signed delivery was answered as a duplicate: a mis-signed one was processed")
        elif app is not None and webhook_id not in app.processed:
            problems.append("correctly signed delivery got 2xx but was not processed")
    if rejected:
        deadline = SIGNATURE_WARNING_DEADLINE_S[payment_app.live]
        seen, waited = wait_for_events(sentry_client, warning_query, alert.environment, since, before + rejected,
                                       deadline)
        if seen < before + rejected:
            problems.append(f'"{INVALID_SIGNATURE}" warnings in Sentry ({alert.environment}) after {rejected} '
                            f"rejected probe(s): expected {before + rejected} within {deadline:g}s, actual {seen} "
                            f"({before} before the probes) — the app does not log the rejection, so "
                            f'"{alert.name}" can never fire')
    if problems:
        pytest.fail(f"{WEBHOOK}: {len(problems)} problem(s)\n" + "\n".join(f"  - {p}" for p in problems),
                    pytrace=False)


def malformed_deliveries(body: bytes, secret: str, live: bool, run_id: str) -> list[tuple[str, bytes, str | None]]:
    """(label, body, X-Signature) of the mis-signed deliveries this run sends. Each must get 401 and
    change nothing; none may crash the handler (a length-mismatch compare that throws is a 500).
    The tampered body carries a new webhook id only: a handler that wrongly accepts it re-applies
    the synthetic subscription's stored state, so even that failure changes nothing."""
    payload = json.loads(body)
    payload["meta"]["webhook_id"] = f"{payload['meta']['webhook_id']}-tampered"
    tampered = json.dumps(payload, separators=(",", ":")).encode()
    kinds = [
        ("tampered body (signature of the original)", tampered, sign(body, secret)),
        ("missing X-Signature", body, None),
        ("non-hex X-Signature", body, "z" * 64),
        ("short X-Signature", body, sign(body, secret)[:16]),
    ]
    wrong_secret = ("X-Signature from a wrong secret", body, sign(body, WRONG_SECRET))
    if not live:
        return [wrong_secret, *kinds]
    # Live: MISSIGNED_PER_RUN (2): the wrong secret and one more kind per production run, rotating.
    return [wrong_secret, kinds[int(run_id, 16) % len(kinds)]][:MISSIGNED_PER_RUN]


def _json(response: httpx.Response) -> dict:
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# --- test mode -----------------------------------------------------------------------------------------

@pytest.mark.area("production-health")
@pytest.mark.criterion("Test mode not detected in production (§6)")
def test_no_test_mode_event_in_production(sentry_client, spec, request, positive_control):
    """No unresolved issue of "Test mode detected in production" events (alert 6's filter, fatal)
    in production, from Sentry's issues API. Read-only. None counts only once the same search shows
    this run's own test event (or any issue of the project): else "could not check" (issue 13 item
    5). A remedy deploy may override it (`--override test-mode: REASON`): the finding becomes a
    warning that records the reason."""
    findings = test_mode_findings(sentry_client, spec, positive_control)
    if findings and overridden(request, "test-mode", findings):
        return
    fail_with(findings)


@pytest.mark.area("endpoints")
@pytest.mark.criterion("Test mode not detected in production (§6)")
def test_not_in_test_mode(payment_app, spec, request):
    """Each checkout endpoint creates a live checkout: `test_mode: false` (the guide's worst failure:
    every payment would be a test transaction, no revenue). One live checkout each, never opened.
    An answer without `test_mode` is monitoring.yaml's interpretation (lemonsqueezy.md reads it
    "if the app returns it"): it warns unless `interpretations.test_mode.checkout_answer` is required."""
    from fixtures.outcome import fail_or_warn_interpretation
    from paymon.findings.model import Finding

    problems, unanswered = [], []
    with httpx.Client(timeout=TIMEOUT_S) as client:
        for path in CHECKOUTS:
            target = _json_target(payment_app, path)
            try:
                response = client.post(target.url, content=target.body, headers=target.headers)
            except httpx.TransportError as exc:
                raise TargetUnavailable(f"{target.url}: {type(exc).__name__}: {exc}") from None
            if not 200 <= response.status_code < 300:
                raise TargetUnavailable(f"{path} answered {response.status_code}: cannot read its mode")
            mode = _json(response).get("test_mode")
            if mode is None:
                unanswered.append(Finding(path, "test_mode", "false", "missing", "field", "the checkout answer"))
            elif mode is not False:
                problems.append(f"{path}: test_mode expected false, actual {_show(mode)}")
    if problems:
        pytest.fail("Test mode detected in production: every payment would be a test transaction\n"
                    + "\n".join(f"  - {p}" for p in problems), pytrace=False)
    fail_or_warn_interpretation(request, spec, "test_mode.checkout_answer", unanswered)


def _show(value) -> str:
    return "missing" if value is None else str(value).lower()
