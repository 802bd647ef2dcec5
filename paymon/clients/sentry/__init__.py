"""Sentry's web API: the client with its retry and pagination (client.py), the reads paymon makes
(api.py) and the writes `paymon apply` makes (writer.py).

May import: paymon.errors, paymon.config.
"""
