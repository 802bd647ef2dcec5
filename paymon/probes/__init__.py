"""Timed requests against the payment app on a fixed schedule, and the p95 with its confidence
interval judged against the warning and critical budgets (latency.py).

May import: paymon.errors, paymon.config.
"""
