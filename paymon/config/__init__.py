"""What a run expects and where it points: monitoring.yaml read into a `Spec` (spec.py), each
service's settings from the environment (settings.py: tokens as secrets, base URLs) and the
`Target` that bundles them (target.py: live, or a sandbox the edge started).

May import: paymon.errors only. Everything else imports this.
"""
