"""What was read vs what monitoring.yaml expects, as findings (alert or object, field, expected,
actual; model.py). An empty list is a pass.

    snapshot.py      one Sentry organisation, read once per run and judged area by area
    alerts.py        the six alerts, the p95 alerts, §3 routing, copies that disagree
    dashboards.py    the "Payment Monitoring" dashboard      crons.py   the reconciliation monitor
    integrations.py  the Slack and PagerDuty integrations    readiness.py  channels and service ready
    production.py    what Sentry has seen of the payment app (test mode, usage failures, p95, cron)

May import: paymon.errors, paymon.config, paymon.clients, paymon.rules.
"""
