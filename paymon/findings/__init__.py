"""What was read vs what monitoring.yaml expects, as findings (alert or object, field, expected,
actual; model.py). An empty list is a pass.

    snapshot.py      one Sentry organisation, read once per run and judged area by area
    alerts.py        the six alerts, the p95 alerts, §3 routing, copies that disagree
    dashboards.py    the "Payment Monitoring" dashboard      crons.py   the reconciliation monitor
    integrations.py  the Slack and PagerDuty integrations    readiness.py  channels and service ready
    production.py    what Sentry has seen of the payment app (test mode, usage failures, p95, cron)
    runbook.py       §6's runbook: sections, review date, the alerts' links to it
    channels.py      §3 channel purposes and the on-call person's membership
    incident_log.py  alerts 3 and 5's "incident log entry": Sentry's incident record
    post_deploy.py   §7 post-deployment: the latest deploy, what fired and which errors rose since it

May import: paymon.errors, paymon.config, paymon.clients, paymon.rules.
"""
