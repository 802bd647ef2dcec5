"""The guide's post-deployment and ongoing reviews over a `ReviewSession` (session.py; it never
starts a sandbox: the edges do): the backtest of each alert over real history (backtest.py,
replay.py), thresholds (quarterly), alert effectiveness (monthly), failure trends (weekly), and the
alerts that fired for real (real_alerts.py). run.py is what the command and the checks call.

May import: paymon.errors, config, clients, rules, findings, delivery, probes.
"""
