"""The services' web APIs, read (and, for remedy and cleanup, written) with retries inside a deadline:

    sentry/      SentryClient (client.py), the endpoints paymon reads (api.py), the writer (writer.py)
    slack.py     SlackReader over slack-sdk: channels, members, history
    pagerduty.py PagerDutyClient over httpx: services, on-calls, incidents, log entries
    runbook.py   the operations runbook's markdown (a repository file, or GitLab's raw-file API)
    run_cache.py configuration reads made once per run, shared by xdist workers

May import: paymon.errors, paymon.config. Never the sandbox: a client only knows a base URL.
"""
