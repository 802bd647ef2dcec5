"""Proving delivery: test events fired with sentry-sdk through the real rules and read back where
people see them (endtoend.py: Slack within 60 s, PagerDuty within 5 min), the drill that trips the
six production alerts themselves (drill.py), when Sentry fired by its own record (fired.py: an
incident's dateDetected, an open period's start, an issue's firstSeen), and cleanup of what paymon
itself left (cleanup.py).

May import: paymon.errors, paymon.config, paymon.clients, paymon.rules.
"""
