"""Timed requests against the payment app on a fixed schedule, and the p95 with its confidence
interval judged against the warning and critical budgets (latency.py); the webhook probe's
deliveries, replaying the synthetic subscription as Lemon Squeezy holds it and stopping after a few
failures (webhook.py).

May import: paymon.errors, paymon.config.
"""
