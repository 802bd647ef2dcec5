"""What Sentry has seen of the payment app, read back through its API (read-only):

    usage_reporting_findings(client, spec)     §1 Alert 4: failure rate of usage reports over 24 h
    test_mode_findings(client, spec)           §1 Alert 6: no open issue of "Test mode detected" events
    reconciliation_findings(client, spec)      §7: the cron's last check-in ok and recent, no open
                                               "reconciliation discrepancies detected" issue
    transaction_findings(client, spec, budget) §2: recent transactions, tagged payment_flow, with
                                               Sentry's own p95 inside the budget
    wait_for_events(client, query, ...)        poll until N matching events arrived (a deadline)

Every function returns Findings (alert/thing, field, expected, actual); an empty list is a pass.
A pass that rests on something *not* being there is first proven able to see it (a positive
control, issue 13 item 5): the same query, over the same project, environment and window, must
return a known-present event, this run's own test-tagged event (`Control.own_events`) or, when the
run sent none, any event or issue of the project (`Control.anything`). Otherwise it is "could not
check" with the reason (TargetUnavailable), never "nothing happened".
Counts come from the Discover/Explore table (`GET organizations/{org}/events/`, `count()`).
Transactions are read as the 2026 API serves them, from the `spans` dataset (`is_transaction:true`,
a transaction is its segment span, `span.duration` its duration); a Sentry that rejects that
(older self-hosted) is asked the legacy `transactions` dataset instead.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import datetime

from paymon.errors import AuthError, EndpointMissing, TargetUnavailable
from paymon.findings.model import Finding
from paymon.clients.sentry.api import configured_project_id, discover_time
from paymon.config.spec import AlertSpec, PerformanceBudget, Spec

SEGMENT_SPANS = ("spans", "is_transaction:true", "p95(span.duration)")
LEGACY_TRANSACTIONS = ("transactions", "", "p95(transaction.duration)")
RECONCILIATION_ISSUE = "reconciliation discrepancies detected"
# paymon's own events (the synthetic checks', the drill's) are tagged test:true, as the guide's
# test alerts are. "Did production see X?" must not count them: a drill that fires "Test mode
# detected in production" on purpose would otherwise fail the next day's gates.
NOT_A_TEST = "!test:true"


def _period(seconds: int) -> str:
    return f"{seconds // 3600}h" if seconds % 3600 == 0 else f"{max(1, seconds // 60)}m"


def _ago(seconds: float) -> str:
    hours = seconds / 3600
    return f"{hours:.1f} h ago" if hours >= 1 else f"{seconds / 60:.0f} min ago"


def events_table(client, dataset: str, fields: list[str], query: str, environment: str | None,
                 period_s: int | None = None, start: float | None = None, end: float | None = None,
                 per_page: int | None = None) -> list[dict]:
    params: dict = {"dataset": dataset, "field": fields, "query": query, "project": configured_project_id(client)}
    if environment:
        params["environment"] = environment
    if start is not None:
        params["start"], params["end"] = discover_time(start), discover_time(end if end is not None else time.time() + 300)
    elif period_s is not None:
        params["statsPeriod"] = _period(period_s)
    if per_page:
        params["per_page"] = per_page
    body = client.get(client.org_path("events"), params=params)
    rows = body.get("data") if isinstance(body, dict) else body
    return list(rows or [])


def count(client, dataset: str, query: str, environment: str | None, **window) -> int:
    rows = events_table(client, dataset, ["count()"], query, environment, **window)
    return int((rows[0].get("count()") or 0) if rows else 0)


def or_terms(query: str) -> list[str]:
    """Split a filter on its top-level ORs (outside quotes and parentheses)."""
    terms, depth, quoted, start, i = [], 0, False, 0, 0
    while i < len(query):
        char = query[i]
        if char == '"':
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        elif not quoted and depth == 0 and query[i:i + 4] == " OR ":
            terms.append(query[start:i].strip())
            start = i = i + 4
            continue
        i += 1
    terms.append(query[start:].strip())
    return [t for t in terms if t]


def alert_query(alert: AlertSpec) -> str:
    """The alert's filter with its level selection, as one Discover query."""
    query = f"({alert.filter})" if alert.filter else ""
    if alert.events.levels:
        levels = alert.events.levels
        level = f"level:{levels[0]}" if len(levels) == 1 else f"level:[{','.join(levels)}]"
        query = f"{level} {query}".strip()
    return query


def transactions_query(client, fields: list[str], query: str, environment: str | None, period_s: int
                       ) -> tuple[list[dict], str]:
    """Rows from the spans dataset (segment spans), else the legacy transactions dataset; the
    duration function is named for the dataset that answered. Returns (rows, p95 field)."""
    last_error = None
    for dataset, base, p95 in (SEGMENT_SPANS, LEGACY_TRANSACTIONS):
        wanted = [p95 if f == "p95" else f for f in fields]
        try:
            return events_table(client, dataset, wanted, f"{base} {query}".strip(), environment,
                                period_s=period_s), p95
        except TargetUnavailable as exc:  # 400: this Sentry does not know the dataset or field
            if isinstance(exc, (AuthError, EndpointMissing)) or "400" not in str(exc):
                raise
            last_error = exc
    raise last_error


# --- positive controls ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Control:
    """A known-present event an empty answer is checked against."""

    terms: str
    """Search terms selecting it ("test:true paymon_run:<run>"; "" = anything)."""
    label: str
    patience_s: float = 0.0
    """How long it may take to become searchable (it was sent moments ago: ingestion)."""

    @classmethod
    def own_events(cls, run_id: str, markers: list[str], patience_s: float = 60.0) -> "Control":
        """This run's test events (paymon.delivery.endtoend: tagged test:true and paymon_run)."""
        return cls(f"test:true paymon_run:{run_id}", f"this run's own test event ({', '.join(markers) or run_id})",
                   patience_s)

    @classmethod
    def anything(cls) -> "Control":
        return cls("", "any event of the project")


def _prove(seen, control: Control, what: str, clock=time.monotonic, sleep=time.sleep) -> int:
    """`seen()` counts the control through the same query; wait up to its patience for it."""
    started = clock()
    while True:
        found = seen()
        if found or clock() - started >= control.patience_s:
            break
        sleep(min(2.0, max(0.0, control.patience_s - (clock() - started))))
    if not found:
        raise TargetUnavailable(
            f"{what} came back empty, and the same query does not show {control.label} either: an empty "
            "answer proves nothing (does the token see the project, is the environment right, are events "
            "arriving?)")
    return found


def prove_events_query(client, dataset: str, environment: str | None, control: Control | None, what: str,
                       **window) -> int:
    """The events query (`dataset`, project, environment, window) shows the control: else could not check."""
    control = control or Control.anything()
    return _prove(lambda: count(client, dataset, control.terms, environment, **window), control, what)


def prove_issue_search(client, environment: str | None, control: Control | None, what: str) -> int:
    """The issue search `unresolved_issues` makes (project, environment, 90 days) shows the control
    (unresolved, as paymon's own test issues are while the run lasts; anything: any issue at all)."""
    control = control or Control.anything()

    def seen() -> int:
        params = {"query": f"is:unresolved {control.terms}".strip() if control.terms else "",
                  "statsPeriod": "90d", "limit": 1, "project": configured_project_id(client)}
        if environment:
            params["environment"] = environment
        return len(client.get(client.org_path("issues"), params=params) or [])

    return _prove(seen, control, what)


# --- §1 Alert 4: usage reporting ------------------------------------------------------------------


@dataclass(frozen=True)
class UsageRate:
    failures: int
    sampled_reports: int
    sample_rate: float
    open_issues: int | None = None
    """Unresolved issues of the failures (asked only when the rate is over the limit)."""

    @property
    def resolved_over_limit(self) -> bool:
        """Over the limit, but every issue of it resolved: what a remedy deploy looks like."""
        return self.open_issues == 0

    @property
    def reports(self) -> float:
        return self.sampled_reports / self.sample_rate

    @property
    def rate(self) -> float | None:
        if self.reports <= 0:
            return None if self.failures == 0 else 1.0
        return min(1.0, self.failures / self.reports)


def usage_rate(client, spec: Spec, control: Control | None = None) -> UsageRate:
    usage = spec.usage_reporting
    alert = spec.alert(usage.alert)
    failures = count(client, "errors", f"{alert_query(alert)} {NOT_A_TEST}", alert.environment,
                     period_s=usage.window)
    if not failures and control is not None:
        prove_events_query(client, "errors", alert.environment, control,
                           f"the '{usage.alert}' events query over {_period(usage.window)}", period_s=usage.window)
    rows, _ = transactions_query(client, ["count()"], f"transaction:{usage.transaction}", alert.environment,
                                 usage.window)
    sampled = int((rows[0].get("count()") or 0) if rows else 0)
    return UsageRate(failures, sampled, spec.performance.traces_sample_rate)


def usage_reporting_findings(client, spec: Spec, control: Control | None = None) -> tuple[list[Finding], UsageRate]:
    """The failure rate over `usage_reporting.window` against its limit. A rate over the limit is a
    finding while an issue of those failures is still unresolved; once all are resolved (the usage
    re-reported, the fix deployed) it is `resolved_over_limit`: the remedy deploy passes, with a
    warning the check gives."""
    usage = spec.usage_reporting
    # No failures is only "no failures" when the same query can see an event: the control.
    measured = usage_rate(client, spec, control or Control.anything())
    window = _period(usage.window)
    if measured.rate is None:
        # Nothing on either side is not "no failures": without reports there is no rate to judge.
        raise TargetUnavailable(
            f"no '{usage.transaction}' transaction and no '{usage.alert}' event in project "
            f"{client.settings.project} ({spec.alert(usage.alert).environment or 'any environment'}) over {window}: "
            "no usage reports to judge a failure rate on (is tracing on, does the token see the project?)")
    if measured.rate <= usage.max_failure_rate:
        return [], measured
    alert = spec.alert(usage.alert)
    open_issues = unresolved_issues(client, issue_terms(alert), alert.environment)
    measured = replace(measured, open_issues=len(open_issues))
    if not open_issues:
        return [], measured
    source = (f"{measured.failures} '{usage.alert}' events / ~{measured.reports:g} reports "
              f"({measured.sampled_reports} sampled '{usage.transaction}' transactions at "
              f"{spec.performance.traces_sample_rate:g}) in {window}; {len(open_issues)} unresolved issue(s): "
              + ", ".join(str(i.get("shortId") or i.get("id")) for i in open_issues))
    return [Finding(usage.alert, f"failure rate over {window}", f"<= {usage.max_failure_rate:.2%}",
                    f"{measured.rate:.2%}", "field", source,
                    "usage LS never recorded is unbilled: §6 Usage Reporting Failure (re-report it, then resolve "
                    "the issue)")], measured


def issue_terms(alert: AlertSpec) -> list[str]:
    """The alert's selection as issue searches, one per ORed term of its filter, each with its level
    selection (what `alert_query` puts first)."""
    level = alert_query(alert).split(" ", 1)[0] if alert.events.levels else ""
    return [f"{level} {term}".strip() for term in or_terms(alert.filter)]


def unresolved_issues(client, terms: list[str], environment: str | None) -> list[dict]:
    """The open issues matching any of `terms` (paymon's own test-tagged ones left out), over
    Sentry's 90 days of retention: an issue still open from then is still open. One search per
    term: issue search does not take every boolean form."""
    issues: dict[str, dict] = {}
    for term in terms:
        params = {"query": f"is:unresolved {NOT_A_TEST} {term}", "statsPeriod": "90d", "limit": 25,
                  "project": configured_project_id(client)}
        if environment:
            params["environment"] = environment
        for issue in client.get(client.org_path("issues"), params=params) or []:
            issues.setdefault(str(issue.get("id")), issue)
    return list(issues.values())


# --- §1 Alert 6: test mode -------------------------------------------------------------------------


def test_mode_findings(client, spec: Spec, control: Control | None = None) -> list[Finding]:
    """Alert 6's events in production that are still an open problem: an unresolved issue of them.

    Judged on what is open, not on a fixed look-back: the guide's remedy (§6 "Test Mode in
    Production": fix the variable, "Redeploy immediately") must pass the gate as soon as the issue
    is resolved (or "resolved in the next release"), not a day later."""
    alert = spec.alert(spec.test_mode.alert)
    issues = unresolved_issues(client, issue_terms(alert), alert.environment)
    if not issues:
        prove_issue_search(client, alert.environment, control, f"the search for open '{alert.name}' issues")
    where = alert.environment or "any environment"
    return [Finding(alert.name, f'open issue {issue.get("shortId") or issue.get("id")} in {where}', "none (resolved)",
                    f'"{issue.get("title")}" {issue.get("status", "unresolved")}', "field",
                    f'{issue.get("count")} event(s), first seen {issue.get("firstSeen")}, last seen '
                    f'{issue.get("lastSeen")}',
                    "production ran in Lemon Squeezy test mode: no revenue (§6 Test Mode in Production: fix "
                    "LEMONSQUEEZY_TEST_MODE, redeploy, then resolve the issue)")
            for issue in issues]


test_mode_findings.__test__ = False  # a library function, not a pytest test


# --- §7: the reconciliation cron ------------------------------------------------------------------


def _epoch(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def reconciliation_findings(client, spec: Spec, now: float | None = None, control: Control | None = None
                            ) -> list[Finding]:
    cron = spec.cron
    name = f"{cron.name} ({cron.slug})"
    # A token that cannot see the project says so here, not as a 403 on the monitor's path.
    configured_project_id(client)
    params = {"per_page": 10}
    if cron.environment:
        params["environment"] = cron.environment
    try:
        # The project's monitor: another project may hold one of the same slug (issue 13 item 4).
        checkins = client.get(client.project_path("monitors", cron.slug, "checkins"), params=params) or []
    except EndpointMissing:
        return [Finding(name, "cron monitor", f"slug {cron.slug!r}", "missing", "field", "monitors")]
    finished = [c for c in checkins if c.get("status") != "in_progress"]
    findings = []
    now = time.time() if now is None else now
    limit = _period(cron.last_checkin_within)
    if not finished:
        findings.append(Finding(name, "last check-in", f"ok within {limit}", "none", "field", "monitor check-ins",
                                "the job has not checked in: is it scheduled, does it call Sentry's cron API?"))
    else:
        last = max(finished, key=lambda c: _epoch(c.get("dateCreated")) or 0)
        at = _epoch(last.get("dateCreated"))
        source = f"check-in {last.get('id')} at {last.get('dateCreated')}"
        if last.get("status") != "ok":
            ok = [c for c in finished if c.get("status") == "ok" and _epoch(c.get("dateCreated"))]
            last_ok = (f"last ok check-in {_ago(now - max(_epoch(c['dateCreated']) for c in ok))}" if ok
                       else f"no ok check-in among the last {len(finished)}")
            findings.append(Finding(name, "last check-in status", "ok", last.get("status"), "field",
                                    f"{source}; {last_ok}",
                                    "§6 Reconciliation: run `npm run reconcile` by hand and read its log"))
        if at is None or now - at > cron.last_checkin_within:
            findings.append(Finding(name, "last check-in age", f"within {limit}",
                                    "unknown" if at is None else _ago(now - at), "field", source,
                                    "the daily 02:00 UTC run did not happen"))
    alert = next((a for a in spec.alerts if "reconciliation" in a.filter.lower()), None)
    terms = or_terms(alert.filter) if alert else [f'message:"*{RECONCILIATION_ISSUE}*"']
    environment = alert.environment if alert else cron.environment
    open_issues = unresolved_issues(client, terms, environment)
    if not open_issues:
        prove_issue_search(client, environment, control, "the search for open reconciliation-discrepancy issues")
    for issue in open_issues:
        findings.append(Finding(
            f'issue {issue.get("shortId") or issue.get("id")} "{issue.get("title")}"', "status", "resolved",
            issue.get("status", "unresolved"), "field",
            f'{issue.get("count")} event(s), last seen {issue.get("lastSeen")}',
            "§6 Reconciliation Discrepancy: investigate, fix the data, resolve the issue"))
    return findings


# --- §2: performance monitoring -------------------------------------------------------------------


@dataclass(frozen=True)
class SentryTransactions:
    tagged: int
    untagged: int
    p95_ms: float | None
    p95_field: str


def transaction_stats(client, spec: Spec, budget: PerformanceBudget) -> SentryTransactions:
    perf = spec.performance
    base = f"transaction:{budget.transaction}"
    rows, p95 = transactions_query(client, ["count()", "p95"], f"{base} payment_flow:true", perf.environment,
                                   perf.recent)
    tagged = int((rows[0].get("count()") or 0) if rows else 0)
    value = rows[0].get(p95) if rows else None
    untagged = 0
    if not tagged:
        rows, _ = transactions_query(client, ["count()"], f"{base} !has:payment_flow", perf.environment, perf.recent)
        untagged = int((rows[0].get("count()") or 0) if rows else 0)
    return SentryTransactions(tagged, untagged, None if value is None else float(value), p95)


def transaction_findings(client, spec: Spec, budget: PerformanceBudget,
                         stats: SentryTransactions | None = None) -> list[Finding]:
    perf = spec.performance
    stats = stats or transaction_stats(client, spec, budget)
    where = f"{perf.environment or 'all environments'}, last {_period(perf.recent)}"
    if not stats.tagged:
        if stats.untagged:
            return [Finding(budget.transaction, "transactions tagged payment_flow:true", "> 0",
                            f"0 (of {stats.untagged} transactions)", "field", where,
                            "§2 beforeSendTransaction does not tag this route: the dashboard and alerts miss it")]
        return [Finding(budget.transaction, "transactions in Sentry", "> 0", 0, "field", where,
                        "§2 performance tracking is off (tracesSampleRate) or the route is not traced")]
    if stats.p95_ms is not None and stats.p95_ms > budget.critical:
        return [Finding(budget.transaction, f"Sentry {stats.p95_field}", f"<= critical {budget.critical:g} ms",
                        f"{stats.p95_ms:.1f} ms", "field", f"{stats.tagged} transactions, {where}",
                        f"warning > {budget.warning:g} ms, critical > {budget.critical:g} ms (§2)")]
    return []


def transaction_warning(stats: SentryTransactions, budget: PerformanceBudget) -> str | None:
    """Above the warning budget but not the critical one: the gate passes, and says so."""
    if stats.tagged and stats.p95_ms is not None and budget.warning < stats.p95_ms <= budget.critical:
        return (f"warning: {budget.transaction}: Sentry {stats.p95_field} {stats.p95_ms:.1f} ms over "
                f"{stats.tagged} transactions is above the warning budget {budget.warning:g} ms "
                f"(critical > {budget.critical:g} ms)")
    return None


# --- polling ---------------------------------------------------------------------------------------


def wait_for_events(client, query: str, environment: str | None, since: float, at_least: int, deadline_s: float,
                    poll_s: float = 0.5, dataset: str = "errors", clock=time.monotonic, sleep=time.sleep
                    ) -> tuple[int, float]:
    """Poll count() of `query` since `since` (epoch) until it reaches `at_least` or the deadline
    passes. Returns (the last count, seconds waited)."""
    started = clock()
    while True:
        seen = count(client, dataset, query, environment, start=since)
        waited = clock() - started
        if seen >= at_least or waited >= deadline_s:
            return seen, waited
        sleep(min(poll_s, max(0.0, deadline_s - waited)))
