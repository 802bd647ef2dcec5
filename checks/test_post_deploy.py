"""§7 Post-Deployment "Monitor alerts for first 24 hours (T+1hr, T+4hr, T+24hr)": the post-deploy
profile (GitLab jobs post-deploy-1h, -4h, -24h) reads what the hours since the latest deploy did.

The deploy is the newest one Sentry records for the project in monitoring.yaml's environment (its
releases and their deploys). Over the hours since it, per alert of monitoring.yaml: which fired, by
Sentry's own record (incidents, open periods, new issues of a per-issue alert), and how its payment
errors compare with the same number of hours just before the deploy. monitoring.yaml `post_deploy`
says what fails: an error count up more than `error_increase.ratio` times (and at least
`min_after`), an alert of a `fail_on_fired` severity (fatal, critical: they page) that fired; an
alert of another severity that fired is a warning. No deploy recorded is "could not check", never a
pass. Attached: the table (CSV) and, with --alluredir, the before/after chart. Read-only.

§7 Post-Deployment "Review payment dashboard metrics daily for first week": the daily job
(`dashboard-review`) runs each dashboard widget's own query per UTC day since the latest deploy,
within `post_deploy.dashboard_review.first_days` of it (later: skipped, the first week is over).
A widget with no data on a whole day since the deploy fails (unless `may_be_empty`); a day past a
widget's threshold markers warns / fails; a widget on a dataset Sentry does not serve here (trace
metrics) warns "could not check". Attached per widget: the table (CSV) and, with --alluredir, the
per-day plot.
"""

import time
import warnings

import pytest

from fixtures.outcome import PostDeployWarning, fail_with

pytestmark = pytest.mark.area("post-deploy")


def _run_now(sandbox, sandbox_server) -> float:
    """The run's clock: the sandbox's in a sandbox run, else the wall clock."""
    if sandbox is None:
        return time.time()
    from fixtures.drill import _sandbox_control

    return _sandbox_control(sandbox_server, sandbox).now()


def _attach(report, request) -> None:
    import allure
    from allure_commons.types import AttachmentType

    from paymon.reporting.post_deploy_charts import attachments

    draw = bool(getattr(request.config.option, "allure_report_dir", None))
    for item in attachments(report, draw):
        allure.attach(item.body, name=item.name,
                      attachment_type=AttachmentType.PNG if item.kind == "png" else AttachmentType.CSV)


@pytest.mark.criterion("Monitor alerts for first 24 hours (T+1hr, T+4hr, T+24hr)")
def test_alerts_and_payment_errors_since_the_deploy(sentry_client, sentry, spec, sandbox, sandbox_server, request,
                                                    record_property):
    from paymon.findings.post_deploy import findings, watch

    report = watch(sentry_client, spec, {a.name: sentry.alert(a.name) for a in spec.alerts},
                   _run_now(sandbox, sandbox_server))
    record_property("deploy", report.deploy.describe())
    record_property("hours_since_deploy", round(report.hours, 2))
    for watched in report.alerts:
        record_property(f"events_before_after[{watched.name}]", f"{watched.before} -> {watched.after}")
    _attach(report, request)
    failures, soft = findings(report, spec)
    fail_with(failures)
    if soft:
        request.node.user_properties.append(("verdict", "warning"))
        for finding in soft:
            warnings.warn(PostDeployWarning(f"warning: {finding.line()}"), stacklevel=1)


@pytest.mark.criterion("Review payment dashboard metrics daily for first week")
def test_dashboard_metrics_reviewed_daily_in_the_first_week(sentry_client, spec, sandbox, sandbox_server, request,
                                                            record_property):
    import allure
    from allure_commons.types import AttachmentType

    from paymon.findings import dashboard_review
    from paymon.reporting.post_deploy_charts import review_attachments

    now = _run_now(sandbox, sandbox_server)
    deploy, not_now = dashboard_review.deploy_to_review(sentry_client, spec, now)
    if not_now:
        pytest.skip(not_now)
    review = dashboard_review.review(sentry_client, spec, deploy, now)
    record_property("deploy", deploy.describe())
    record_property("days_since_deploy", round((now - deploy.finished) / 86400, 2))
    draw = bool(getattr(request.config.option, "allure_report_dir", None))
    for item in review_attachments(review, spec, draw):
        allure.attach(item.body, name=item.name,
                      attachment_type=AttachmentType.PNG if item.kind == "png" else AttachmentType.CSV)
    failures, soft = dashboard_review.findings(review, spec)
    fail_with(failures)
    if soft:
        request.node.user_properties.append(("verdict", "warning"))
        for finding in soft:
            warnings.warn(PostDeployWarning(f"warning: {finding.line()}"), stacklevel=1)
