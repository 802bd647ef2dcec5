"""The offline stand-ins: Sentry's API and ingestion, Slack's Web API, PagerDuty's APIs, a
reference payment app and GitLab's raw-file API (the runbook), each in moto's layout (models / responses / urls), sharing one clock and
the request log (hub.py, core.py), served over real HTTP by server.py. Worlds (world.py, worlds/)
are data; faults.py makes the one-fault worlds; history.py a generated past; control.py the
`/_sandbox/` API other processes drive the clock through.

May import: paymon.errors, paymon.config, paymon.rules. Imported only by the edges (paymon.cli,
fixtures/, checks/, bench/, tests/): the live path never builds a sandbox.
"""
