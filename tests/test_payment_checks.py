"""checks/test_payment_endpoints.py fails on the broken app it guards against, run the way users run
it (`pytest --sandbox-world FILE`, in a subprocess), restricted to that file to stay fast.

Latency cases run on the sandbox app's modelled latency (the run's own sandbox reports it instead
of sleeping it; paymon.probes.latency.ModelledClock), so they use the real budgets in no wall time;
one case (marked wall_time) keeps an app that really sleeps, with budgets scaled to tens of ms.
"""

from __future__ import annotations

import copy
import json
import re

import pytest
import yaml

from paymon.sandbox.world import golden_world
from tests.conftest import REPO

CHECKS = "checks/test_payment_endpoints.py"
PRO, PAYG = "/api/checkout/pro", "/api/checkout/payg"


def _world(**knobs) -> dict:
    world = golden_world()
    world["app"]["knobs"].update(copy.deepcopy(knobs))
    return world


@pytest.fixture
def scaled_spec(tmp_path):
    """monitoring.yaml with `budgets` {transaction: (warning, critical)} replaced."""

    def write(budgets: dict[str, tuple[int, int]]) -> str:
        spec = yaml.safe_load((REPO / "monitoring.yaml").read_text())
        for budget in spec["performance"]["budgets"]:
            if budget["transaction"] in budgets:
                budget["warning"], budget["critical"] = budgets[budget["transaction"]]
        path = tmp_path / "scaled-monitoring.yaml"
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        return f"--spec={path}"

    return write


def test_golden_app_passes_every_payment_check(run_suite):
    run = run_suite(CHECKS)  # the sandbox defaults, as the gate runs them
    assert run.returncode == 0, run.output
    assert run.passed == {
        f"test_endpoint_p95[{path}]" for path in
        (PRO, PAYG, "/api/webhooks/lemonsqueezy", "/api/subscription/payg/create")
    } | {"test_webhook_rejects_forged_signature", "test_not_in_test_mode", "test_no_test_mode_event_in_production"}


def test_slow_checkout_fails_naming_endpoint_p95_and_budget(run_suite):
    # The run's own sandbox reports its app's latency instead of sleeping it, so the real budgets
    # (critical > 1000 ms) are judged in no wall time and whatever the machine's load.
    world = _world(latency_ms={"default": {"p50": 3, "p95": 6}, PRO: {"p50": 1100, "p95": 1400}})
    run = run_suite(f"{CHECKS}::test_endpoint_p95[{PRO}]", world=world)
    assert run.returncode == 1, run.output
    message = run.failures[f"test_endpoint_p95[{PRO}]"]
    assert "critical" in message and PRO in message
    p95 = re.search(rf"{re.escape(PRO)}: p95 ([0-9.]+) ms", message)
    assert p95 and float(p95.group(1)) >= 1100, message
    assert "p95 > critical 1000 ms with 95% confidence" in message
    assert "warning > 500 ms, critical > 1000 ms" in message


def test_warning_latency_passes_with_a_visible_warning(run_suite):
    # At the sandbox's 25/s: 600 ms of work keeps ~15 requests in flight, which the open-loop
    # probe's 26 slots (25/s x 1000 ms critical, + 1) carry without queueing.
    world = _world(latency_ms={"default": {"p50": 3, "p95": 6}, PAYG: {"p50": 600, "p95": 750}})
    run = run_suite(f"{CHECKS}::test_endpoint_p95[{PAYG}]", world=world)
    assert run.returncode == 0, run.output
    assert run.passed == {f"test_endpoint_p95[{PAYG}]"}
    assert "PaymentProbeWarning" in run.output
    p95 = re.search(rf"warning: {re.escape(PAYG)}: p95 ([0-9.]+) ms", run.output)
    assert p95 and 500 < float(p95.group(1)) < 1000, run.output
    assert "WARNING" in run.output.upper()


@pytest.mark.wall_time
def test_slow_checkout_fails_on_the_wall_clock_too(run_suite, scaled_spec):
    """An app that really takes the time (`latency_mode: wait`, as a served sandbox and the real app
    do): the probe's wall-clock path gives the same verdict. Budgets scaled to tens of ms: proving
    "p95 > 1000 ms" for real would take over 20 s of sleeping."""
    world = _world(latency_ms={"default": {"p50": 3, "p95": 6}, PRO: 50}, latency_mode="wait")
    run = run_suite(f"{CHECKS}::test_endpoint_p95[{PRO}]", scaled_spec({PRO: (10, 40)}),
                    "--probe-samples=20", "--probe-rate=8", world=world)
    assert run.returncode == 1, run.output
    message = run.failures[f"test_endpoint_p95[{PRO}]"]
    p95 = re.search(rf"{re.escape(PRO)}: p95 ([0-9.]+) ms", message)
    assert p95 and float(p95.group(1)) >= 50, message  # the 50 ms sleep plus the request
    assert "p95 > critical 40 ms with 95% confidence" in message


def test_too_few_samples_is_inconclusive_and_says_how_many(run_suite):
    """The sandbox could take any number of samples: too few cannot check (the run fails)."""
    run = run_suite(f"{CHECKS}::test_endpoint_p95[{PAYG}]", "--probe-samples=10", "--probe-rate=100")
    message = run.failures[f"test_endpoint_p95[{PAYG}]"]
    assert "could not check: inconclusive" in message and "no upper bound for p95 from 10 samples" in message
    assert "--probe-samples=" in message


def test_live_canary_warns_when_it_cannot_tell_and_fails_on_what_it_proves(run_suite, scaled_spec):
    """`--target live` at the gate profile's sample size (3) against an app that really takes 50 ms:
    against the real budget (critical 1000 ms) 3 samples prove nothing, so the check passes with a
    visible warning naming n and the samples that would settle it; against a budget it provably
    breaks (critical 40 ms: every sample over it) the canary fails."""
    from paymon.sandbox.server import SandboxServer

    world = _world(latency_ms={"default": {"p50": 3, "p95": 6}, PRO: 50})
    with SandboxServer(world) as server:  # latency_mode "wait", as a served sandbox and the real app
        env = {"PAYMON_APP_URL": server.describe()["app"]["base_url"]}
        check = f"{CHECKS}::test_endpoint_p95[{PRO}]"
        unsure = run_suite(check, "--target=live", "--probe-rate=20", env=env)
        proven = run_suite(check, "--target=live", "--probe-rate=20", scaled_spec({PRO: (10, 40)}), env=env)
    assert unsure.returncode == 0, unsure.output
    assert unsure.passed == {f"test_endpoint_p95[{PRO}]"} and "PaymentProbeWarning" in unsure.output
    warning = re.search(rf"inconclusive at n=3: {re.escape(PRO)}: p95 .*", unsure.output)
    assert warning, unsure.output
    assert "samples in total would settle it" in warning.group(0) and "--probe-samples=" in warning.group(0)
    assert proven.returncode == 1, proven.output
    message = proven.failures[f"test_endpoint_p95[{PRO}]"]
    assert "Failed: critical: " in message and "p95 > critical 40 ms with 95% confidence" in message


@pytest.mark.parametrize("live", [False, True], ids=["sandbox-gate", "live-canary"])
@pytest.mark.parametrize("latencies_ms", [[100.0] * 100, [700.0] * 100, [1500.0] * 20, [100.0] * 20, []],
                         ids=["pass", "warning", "critical", "inconclusive", "every-request-failed"])
def test_probe_cli_and_check_agree_on_the_same_samples(latencies_ms, live, monkeypatch, capsys):
    """The same samples judged by `paymon probe` (with --canary for live) and by test_endpoint_p95
    (against that target kind) give the same outcome: the exit code and the check's result."""
    import warnings
    from concurrent.futures import Future
    from types import SimpleNamespace

    from checks.test_payment_endpoints import PaymentProbeWarning, test_endpoint_p95
    from fixtures.app import AppSettings
    from paymon import cli
    from paymon.config.spec import load_spec
    from paymon.probes.latency import OK, Attempt, Budget, Outcome, summarize

    budget = next(b for b in load_spec(REPO / "monitoring.yaml").performance.budgets if b.transaction == PRO)
    attempts = [Attempt(i, i, i + ms / 1000, OK) for i, ms in enumerate(latencies_ms)] or \
        [Attempt(0, 0, 0.01, Outcome(ok=False, status=500))] * 20
    report = summarize(attempts, rate=1, budget=Budget.from_spec(budget))

    monkeypatch.setattr("paymon.cli.probe.probe_http", lambda *args, **kwargs: report)
    code = cli.main(["probe", "http://app.invalid" + PRO, "--method", "POST", "--budget", PRO,
                     "--spec", str(REPO / "monitoring.yaml"), "--json", *(["--canary"] if live else [])])
    cli_outcome = json.loads(capsys.readouterr().out)["outcome"]

    request = SimpleNamespace(node=SimpleNamespace(user_properties=[]))
    app = AppSettings("http://app.invalid", live, 20, 1.0, canary=live)
    done = Future()
    done.set_result(report)
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        try:
            test_endpoint_p95(budget=budget, payment_app=app, p95_runs={PRO: done}, webhook_replay=None, spec=None,
                              probe_pool=None, request=request, record_property=lambda name, value: None)
            failed = False
        except pytest.fail.Exception:
            failed = True
    verdicts = {value for name, value in request.node.user_properties if name == "verdict"}
    check_outcome = ("could not check" if "could not check" in verdicts else "fail" if failed
                     else "warning" if "warning" in verdicts else "pass")
    assert check_outcome == cli_outcome
    assert code == {"pass": 0, "warning": 0, "fail": 1, "could not check": 3}[check_outcome]
    assert any(isinstance(w.message, PaymentProbeWarning) for w in warned) == (check_outcome == "warning")


def test_broken_signature_check_and_test_mode_fail_their_checks(run_suite):
    world = _world(skip_signature_verification=True, test_mode=True)
    run = run_suite(f"{CHECKS}::test_webhook_rejects_forged_signature", f"{CHECKS}::test_not_in_test_mode",
                    world=world)
    assert run.returncode == 1, run.output
    webhook = run.failures["test_webhook_rejects_forged_signature"]
    for kind in ("X-Signature from a wrong secret", "tampered body (signature of the original)",
                 "missing X-Signature", "non-hex X-Signature", "short X-Signature"):
        assert f"{kind}: status expected 401, actual 200" in webhook
    assert "X-Signature from a wrong secret: the delivery was processed by the app" in webhook
    assert "tampered body (signature of the original): the delivery was processed by the app" in webhook
    test_mode = run.failures["test_not_in_test_mode"]
    assert f"{PRO}: test_mode expected false, actual true" in test_mode
    assert f"{PAYG}: test_mode expected false, actual true" in test_mode


def test_live_sends_two_mis_signed_deliveries_rotating_the_second():
    from checks.test_payment_endpoints import malformed_deliveries

    body = b'{"meta":{"webhook_id":"w1"},"data":{}}'
    seconds = {malformed_deliveries(body, "s", True, f"{n:012x}")[1][0] for n in range(8)}
    assert all(len(malformed_deliveries(body, "s", True, f"{n:012x}")) == 2 for n in range(8))
    assert len(seconds) == 4  # every kind comes round
    assert len(malformed_deliveries(body, "s", False, "0" * 12)) == 5


def test_live_without_app_url_could_not_check(run_suite):
    run = run_suite(f"{CHECKS}::test_not_in_test_mode", "--target=live")
    assert run.returncode != 0
    assert "could not check: PAYMON_APP_URL is not set" in run.failures["test_not_in_test_mode"]


def test_silent_rejection_and_past_test_mode_fail_their_checks(run_suite):
    """The app rejects forged signatures but never logs the warning; it ran in test mode 3 h ago
    (since fixed, so its checkouts say test_mode false): each fails its own check, by name."""
    from paymon.sandbox.faults import apply_fault

    world = apply_fault(apply_fault(golden_world(), "signature-warning-not-sent"), "test-mode-event")
    run = run_suite(f"{CHECKS}::test_webhook_rejects_forged_signature", f"{CHECKS}::test_not_in_test_mode",
                    f"{CHECKS}::test_no_test_mode_event_in_production", world=world)
    assert run.returncode == 1, run.output
    assert run.passed == {"test_not_in_test_mode"}
    webhook = run.failures["test_webhook_rejects_forged_signature"]
    assert ('"Invalid webhook signature" warnings in Sentry (production) after 5 rejected probe(s): '
            "expected 5 within 5s, actual 0") in webhook
    assert "status expected 401" not in webhook  # the rejections themselves were right
    event = run.failures["test_no_test_mode_event_in_production"]
    assert "Test Mode Detected in Production: open issue" in event and "expected none (resolved)" in event


def test_the_mis_signed_budget_counts_the_security_alerts_own_window_test_events_included():
    """Before sending mis-signed probes, paymon counts what the security alert counts: its query
    over its 5 minutes, drill events too (they page like any other)."""
    from checks.test_payment_endpoints import _alert_count_now
    from paymon.sandbox.server import SandboxServer
    from paymon.clients.sentry.client import SentryClient
    from paymon.config.spec import load_spec
    from paymon.config.target import Target
    from tests.conftest import REPO

    spec = load_spec(REPO / "monitoring.yaml")
    alert = spec.alert(spec.webhook_security.alert)
    warning = {"level": "warning", "environment": "production", "message": "Invalid webhook signature"}
    with SandboxServer(golden_world()) as server:
        target = Target("sandbox", sandbox=server.describe(), org=spec.organization, project=spec.project)
        with SentryClient(target.sentry(), deadline=5) as client:
            server.sentry.store_events([warning] * 2, received=server.clock.now() - 600)  # outside the window
            server.sentry.store_events([warning, {**warning, "tags": {"test": "true"}}])
            server.sentry.store_event({**warning, "level": "error"})  # not the alert's level
            assert _alert_count_now(client, alert) == 2


# --- the webhook probe changes nothing (issue 12 item 6) -------------------------------------------

WEBHOOK_P95 = f"{CHECKS}::test_endpoint_p95[/api/webhooks/lemonsqueezy]"


def test_a_failing_webhook_endpoint_stops_the_probe_and_fails_naming_endpoint_and_status(run_suite):
    """The webhook endpoint answers 500: the probe stops at monitoring.yaml's stop_after_failures (2:
    the warm-up and the first measured delivery), well below "Webhook Processing Failure"'s > 5."""
    from paymon.sandbox.faults import apply_fault

    run = run_suite(WEBHOOK_P95, world=apply_fault(golden_world(), "webhook-500"))
    assert run.returncode == 1, run.output
    message = run.failures["test_endpoint_p95[/api/webhooks/lemonsqueezy]"]
    assert "/api/webhooks/lemonsqueezy answered HTTP 500 x2: the webhook probe stopped after 2 non-2xx answer(s) " \
           "of 2 delivery(ies) sent (at most 2 per run" in message
    assert "could not check" not in message


def test_a_past_due_synthetic_subscription_passes_the_webhook_checks(run_suite):
    """Lemon Squeezy and the app both hold the synthetic subscription past_due: the probes replay
    that (tests/test_webhook_probe.py shows the stored state is unchanged after them)."""
    world = golden_world()
    next(r for r in world["app"]["subscriptions"] if r["id"] == "1287450")["status"] = "past_due"
    run = run_suite(WEBHOOK_P95, f"{CHECKS}::test_webhook_rejects_forged_signature", world=world)
    assert run.returncode == 0, run.output


def test_live_without_the_lemonsqueezy_key_cannot_check_the_webhook_probe(run_suite):
    env = {"PAYMON_APP_URL": "http://127.0.0.1:9", "LEMONSQUEEZY_WEBHOOK_SECRET": "whsec-0123456789",
           "PAYMON_SYNTHETIC_SUBSCRIPTION_ID": "1287450"}
    run = run_suite(WEBHOOK_P95, "--target=live", env=env)
    assert run.returncode == 3, run.output
    assert "could not check: LEMONSQUEEZY_API_KEY is not set" in run.failures[
        "test_endpoint_p95[/api/webhooks/lemonsqueezy]"]


def test_live_the_signature_check_sends_what_fits_under_both_alerts_and_waits_for_room():
    """"Invalid webhook signature" warnings match "Webhook Processing Failure" too (every level, any
    message naming a webhook). Live, the signature check sends as many mis-signed deliveries as
    keep the security alert at most 3 (its > 5) and the webhook-failure alert, with the signed
    delivery, at its > 5; when neither has room (a run just before this one) it waits, on the
    clock, for the older events to leave the windows, and only a window that stays full is
    "could not check"."""
    from checks.test_payment_endpoints import _wait_for_room
    from paymon.clients.sentry.client import SentryClient
    from paymon.config.spec import load_spec
    from paymon.config.target import Target
    from paymon.sandbox.hub import SandboxClock
    from paymon.sandbox.server import SandboxServer

    spec = load_spec(REPO / "monitoring.yaml")
    security = spec.alert(spec.webhook_security.alert)
    failure = {"level": "error", "environment": "production", "message": "Webhook processing failed: HTTP 500",
               "tags": {"webhook": "true"}}
    warning = {"level": "warning", "environment": "production", "message": "Invalid webhook signature"}
    world = golden_world()
    world["app"]["history"] = {}
    with SandboxServer(world, clock=SandboxClock(frozen=True)) as server:
        target = Target("sandbox", sandbox=server.describe(), org=spec.organization, project=spec.project)
        clock = server.clock
        with SentryClient(target.sentry(), deadline=5) as client:
            def room(**kwargs):
                return _wait_for_room(client, spec, security, 2, sleep=clock.advance, clock=clock.now, **kwargs)

            server.sentry.store_events([failure] * 4, received=clock.now() - 700)  # outside its 10 min
            assert room()[0] == 2
            server.sentry.store_events([failure, warning])  # webhook failure: 2 of its 5; security: 1 of 3
            assert room()[0] == 2
            server.sentry.store_event({**warning, "level": "info"})  # every level counts there: 3 + 1 signed
            assert room()[0] == 1
            # A run just before: the windows are full. Its events age out on the clock: room again.
            start = clock.now()
            server.sentry.store_events([warning] * 2)
            assert room()[0] >= 1
            assert clock.now() - start >= security.window - 60  # it waited for the window, polling
            # Events keep arriving for longer than the window: nothing is sent, and it says why.
            steady = [0]

            def busy(seconds):
                clock.advance(seconds)
                server.sentry.store_events([failure] * 3)
                steady[0] += 1

            server.sentry.store_events([failure] * 5)
            sent, why = _wait_for_room(client, spec, security, 2, sleep=busy, clock=clock.now)
    assert sent == 0 and steady[0] >= 10
    assert '"Webhook Processing Failure" counts in the last 10 min, still after waiting out its window' in why
