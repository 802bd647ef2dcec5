"""`apply_plan()`: perform a plan's writes in order, logging each, and account for a failure.

Writes run change by change (alerts first, then the dashboard and the cron monitor). The first
write that fails stops the run: the result says which changes were made, which was cut short (and
which of its writes went through) and which were not started. Nothing is rolled back; the next
`paymon plan` reads the organisation as it is and plans only what is still missing, so re-running
`paymon apply` continues where this one stopped.

Writing needs a token with write scopes. `require_write_scopes()` asks Sentry's API index which
scopes the token has and refuses a read-only one up front, in one line; and paymon never writes
while pytest runs the checks (`refuse_inside_pytest`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from paymon.errors import AuthError, EndpointMissing, PaymonError, SettingsError
from paymon.remedy.model import Change, Plan

WRITE_SCOPES = ("alerts:write", "org:write", "org:admin", "project:write", "project:admin")


class ApplyRefused(SettingsError):
    """Apply will not start (read-only token, inside a pytest run)."""


def refuse_inside_pytest(environ=os.environ) -> None:
    if environ.get("PYTEST_CURRENT_TEST"):
        raise ApplyRefused("paymon apply does not write during a pytest run (the checks only read); "
                           "run it outside pytest")


def require_write_scopes(client) -> None:
    """One line if the token cannot write; silent when Sentry does not say (the writes will)."""
    try:
        index = client.api_index() or {}
    except (EndpointMissing, AuthError):
        return
    scopes = ((index.get("auth") or {}).get("scopes")) if isinstance(index, dict) else None
    if scopes is None:
        return
    if not set(scopes) & set(WRITE_SCOPES):
        raise ApplyRefused("the Sentry token is read-only (scopes: " + ", ".join(sorted(scopes)) + "): paymon "
                           "apply needs alerts:write (or org:write and project:write); the checks keep working "
                           "with the read-only token")


@dataclass
class ApplyResult:
    done: list[Change] = field(default_factory=list)
    partial: Change | None = None
    partial_writes: list[str] = field(default_factory=list)
    not_started: list[Change] = field(default_factory=list)
    error: PaymonError | None = None
    writes: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None

    def summary(self) -> str:
        if self.ok:
            return f"Apply complete: {len(self.done)} changes, {self.writes} API writes."
        lines = [f"Apply stopped: {self.error}",
                 f"Changed ({len(self.done)}): " + (", ".join(c.subject for c in self.done) or "nothing")]
        if self.partial is not None:
            made = "; ".join(self.partial_writes) or "none of its writes"
            lines.append(f"Partly changed: {self.partial.subject} (done: {made})")
        lines.append(f"Not changed ({len(self.not_started)}): "
                     + (", ".join(c.subject for c in self.not_started) or "nothing"))
        lines.append("Re-run `paymon apply`: it plans from what is there now and continues.")
        return "\n".join(lines)


def apply_plan(client, plan: Plan, log: Callable[[str], None] = print) -> ApplyResult:
    result = ApplyResult()
    ids: dict[str, str] = {}
    total = sum(len(c.writes) for c in plan.changes)
    for index, change in enumerate(plan.changes):
        made: list[str] = []
        for write in change.writes:
            try:
                path, body = write.resolve(ids)
                log(f"[{result.writes + 1}/{total}] {write.method} /api/0/{path} — {write.what}")
                answer = _send(client, write.method, path, body)
            except PaymonError as exc:
                result.error = exc
                if made:
                    result.partial, result.partial_writes = change, made
                    result.not_started = plan.changes[index + 1:]
                else:
                    result.not_started = plan.changes[index:]
                log(f"    failed: {exc}")
                return result
            result.writes += 1
            created = answer.get("id") if isinstance(answer, dict) else None
            if write.save_as and created is not None:
                ids[write.save_as] = str(created)
            made.append(write.what + (f" (id {created})" if created is not None and write.method == "POST" else ""))
            log("    ok" + (f": id {created}" if created is not None and write.method == "POST" else ""))
        result.done.append(change)
    return result


def _send(client, method: str, path: str, body):
    if method == "POST":
        return client.post(path, body)
    if method == "PUT":
        return client.put(path, body)
    if method == "DELETE":
        return client.delete(path)
    raise ValueError(f"unknown method {method}")
