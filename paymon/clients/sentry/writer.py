"""`SentryWriteClient`: the read client plus creates, updates and deletes, for `paymon apply`.

Writes go through the same budget, retry and error handling as reads, with two differences:

- POST (create) is not idempotent: only a 429 (refused before it was processed) or a failure to
  connect is retried. A 5xx or a lost answer is reported, since the object may exist now; the next
  `paymon plan` reads what is there and continues from it.
- 400 and 409 on a write raise `WriteRejected` with the server's field errors in one line
  (`Sentry rejected POST /api/0/...: timeWindow: Invalid time window 700 ...`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from paymon.errors import WriteRejected
from paymon.clients.sentry.client import SentryClient, _Budget, _Retryable, _status_text


def _safe_to_resend(exc: BaseException) -> bool:
    if not isinstance(exc, _Retryable):
        return False
    if exc.response is not None:
        return exc.response.status_code == 429
    return isinstance(exc.error, httpx.ConnectError)


def _any_retryable(exc: BaseException) -> bool:
    return isinstance(exc, _Retryable)


class SentryWriteClient(SentryClient):
    def post(self, path: str, body: Any) -> Any:
        """POST /api/0/<path>; the created object."""
        return self._write("POST", path, body, _safe_to_resend)

    def put(self, path: str, body: Any, params=None) -> Any:  # noqa: D401 - same as the read client's
        """PUT /api/0/<path> (a full update; idempotent, so retried like a read)."""
        return self._write("PUT", path, body, _any_retryable)

    def delete(self, path: str) -> Any:
        """DELETE /api/0/<path> (idempotent)."""
        return self._write("DELETE", path, None, _any_retryable)

    def api_index(self) -> dict:
        """`GET /api/0/`: `{"auth": {"scopes": [...]}}` for the token (None where unsupported)."""
        return self.get("")

    def _write(self, method: str, path: str, body: Any, retry_if: Callable[[BaseException], bool]) -> Any:
        budget = self._new_budget(path, method=method)
        response = self._send_with_retries(path, {}, budget, method, body, retry_if=retry_if)
        if response.status_code in (400, 409):
            raise self._rejected(response, budget)
        self._raise_for_status(response, budget)
        return self._json(response, budget)

    def _rejected(self, response: httpx.Response, budget: _Budget) -> WriteRejected:
        try:
            body = json.loads(response.content)
        except ValueError:
            body = None
        errors = body if isinstance(body, dict) else {}
        parts = []
        for field, messages in errors.items():
            messages = messages if isinstance(messages, list) else [messages]
            text = " ".join(str(m) for m in messages)
            parts.append(text if field in ("detail", "nonFieldErrors", "non_field_errors") else f"{field}: {text}")
        reason = "; ".join(parts) or _status_text(response)
        return self._error(WriteRejected, f"Sentry rejected {budget.endpoint} ({response.status_code}): {reason}",
                           status=response.status_code, errors=errors)
