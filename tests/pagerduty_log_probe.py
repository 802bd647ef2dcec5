"""A pytest plugin for paymon's own tests: at the end of a plain `pytest` run (the in-process
sandbox), write the sandbox PagerDuty's incidents and log entries to $PAYMON_PD_LOG (JSON), so a
test can read what the run did to PagerDuty after it ended. Used with `-p tests.pagerduty_log_probe`."""

from __future__ import annotations

import json
import os


def pytest_sessionfinish(session) -> None:
    from fixtures.plugin import SANDBOX_KEY

    server, out = session.config.stash.get(SANDBOX_KEY, None), os.environ.get("PAYMON_PD_LOG")
    if server is None or not out:
        return
    backend = server.backend("pagerduty")
    incidents = [{"title": i.title, "urgency": i.urgency, "status": i.status,
                  "entries": [{"type": e.type, "user": e.extra.get("user"), "assignees": e.extra.get("assignees"),
                               "note": e.extra.get("note")} for e in i.log_entries]}
                 for i in backend.incidents]
    with open(out, "w") as handle:
        json.dump(incidents, handle)
