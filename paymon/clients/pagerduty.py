"""PagerDuty's REST API v2, through httpx (the official client is https-only and retries 429s
forever, which a gate with a deadline cannot afford).

`PagerDutyClient` reads services, escalation policies, on-calls, users' notification rules,
incidents, their alerts and log entries, and resolves the incidents (or, grouped into someone
else's incident, the alerts) paymon itself caused. 429/5xx/network errors are retried with tenacity
inside the call's deadline, waiting what `ratelimit-reset`/`Retry-After` ask; 401/403 become
`AuthError`, 404 `EndpointMissing`; the token never appears in a message.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx
import tenacity
from pydantic import SecretStr

from paymon import __version__
from paymon.errors import AuthError, EndpointMissing, ServiceError, SettingsError, TargetUnavailable
from paymon.config.settings import PagerDutySettings, redact

_ACCEPT = "application/vnd.pagerduty+json;version=2"
CLASSIC_PAGINATION_LIMIT = 10_000
_backoff = tenacity.wait_exponential(multiplier=0.5, max=8.0) + tenacity.wait_random(0, 0.5)


class _Retryable(Exception):
    def __init__(self, response: httpx.Response | None = None, error: Exception | None = None):
        super().__init__(response.status_code if response is not None else repr(error))
        self.response, self.error = response, error


class _TokenAuth(httpx.Auth):
    def __init__(self, token: SecretStr):
        self._token = token

    def auth_flow(self, request):
        request.headers["Authorization"] = f"Token token={self._token.get_secret_value()}"
        yield request

    def __repr__(self) -> str:
        return "_TokenAuth(**********)"


def _requested_wait(response: httpx.Response) -> float | None:
    for header in ("ratelimit-reset", "Retry-After"):
        value = response.headers.get(header)
        if value:
            try:
                return max(float(value), 0.0)
            except ValueError:
                continue
    return None


class PagerDutyClient:
    def __init__(self, settings: PagerDutySettings, *, deadline: float = 30.0,
                 transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self.deadline = deadline
        self.request_count = 0
        self._sleep, self._clock = sleep, clock
        self._http = httpx.Client(
            base_url=settings.base_url, auth=_TokenAuth(settings.token), transport=transport,
            headers={"Accept": _ACCEPT, "User-Agent": f"paymon/{__version__}"},
            timeout=httpx.Timeout(10.0, connect=5.0), follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"PagerDutyClient(base_url={self.settings.base_url!r})"

    def __enter__(self) -> PagerDutyClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- requests ----------------------------------------------------------------------------------

    def request(self, method: str, path: str, *, params=None, json: Any = None, headers=None) -> Any:
        endpoint = f"{method} {path}"
        ends = self._clock() + self.deadline
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Retryable),
            wait=lambda state: self._wait(state),
            stop=lambda state: state.upcoming_sleep >= ends - self._clock(),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            response = retrying(self._send, method, path, params, json, headers)
        except _Retryable as failure:
            raise self._gave_up(failure, endpoint) from None
        return self._decode(response, endpoint)

    def _send(self, method, path, params, json, headers) -> httpx.Response:
        self.request_count += 1
        try:
            response = self._http.request(method, path, params=params, json=json, headers=headers)
        except httpx.TransportError as exc:
            raise _Retryable(error=exc) from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise _Retryable(response=response)
        return response

    def _wait(self, state: tenacity.RetryCallState) -> float:
        failure = state.outcome.exception()
        if isinstance(failure, _Retryable) and failure.response is not None:
            requested = _requested_wait(failure.response)
            if requested is not None:
                return requested
        return _backoff(state)

    def _gave_up(self, failure: _Retryable, endpoint: str) -> ServiceError:
        if failure.error is not None:
            return self._error(ServiceError, f"cannot reach {self.settings.base_url} ({endpoint}): {failure.error}")
        return self._error(ServiceError, f"PagerDuty kept failing at {endpoint}: last answer "
                                         f"{failure.response.status_code} within the {self.deadline:g}s deadline")

    def _decode(self, response: httpx.Response, endpoint: str) -> Any:
        code = response.status_code
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = None
        message = ((body or {}).get("error") or {}).get("message") if isinstance(body, dict) else None
        status = f"{code} {message or response.reason_phrase}"
        if code in (401, 403):
            raise self._error(AuthError, f"PagerDuty refused {endpoint} ({status}) — check PAGERDUTY_API_TOKEN"
                                         + (" (writes need a key with write access)" if code == 403 else ""))
        if code == 404:
            raise self._error(EndpointMissing, f"PagerDuty has no {endpoint} ({status})", status=404)
        if code >= 400:
            raise self._error(TargetUnavailable, f"PagerDuty refused {endpoint} ({status})")
        return body

    def _error(self, cls, message: str, **kwargs):
        return cls(redact(message, [self.settings.token]), **kwargs)

    def get(self, path: str, params=None) -> Any:
        return self.request("GET", path, params=params)

    def paginate(self, path: str, key: str, params: Mapping | None = None, limit: int = 100) -> Iterator[dict]:
        """Every item of a classic offset/limit/more list. PagerDuty serves at most offset + limit
        <= 10,000 this way (developer.pagerduty.com/docs/pagination; pdpyras's iter_all stops there
        too), so a list claiming `more` past that is
        stopped with an error rather than followed for ever."""
        params = dict(params or {})
        offset = 0
        while True:
            page = self.get(path, {**params, "offset": offset, "limit": limit})
            items = page.get(key) or []
            yield from items
            if not page.get("more") or not items:
                return
            offset += len(items)
            if offset >= CLASSIC_PAGINATION_LIMIT:
                raise ServiceError(f"PagerDuty {path} still says more after {offset} items, the most classic "
                                   "pagination serves: narrow the query")

    # --- readers -------------------------------------------------------------------------------------

    def find_service(self, name: str) -> dict | None:
        for service in self.paginate("/services", "services", {"query": name}):
            if service.get("name", "").casefold() == name.casefold():
                return service
        return None

    def escalation_policy(self, policy_id: str) -> dict:
        return self.get(f"/escalation_policies/{policy_id}")["escalation_policy"]

    def oncalls(self, escalation_policy_id: str) -> list[dict]:
        return list(self.paginate("/oncalls", "oncalls", {"escalation_policy_ids[]": escalation_policy_id}))

    def user_id_by_email(self, email: str) -> str | None:
        for user in self.paginate("/users", "users", {"query": email}):
            if (user.get("email") or "").casefold() == email.casefold():
                return user.get("id")
        return None

    def ongoing_maintenance(self, service_id: str) -> list[dict]:
        return list(self.paginate("/maintenance_windows", "maintenance_windows",
                                  {"service_ids[]": service_id, "filter": "ongoing"}))

    def incidents(self, *, since: str, service_id: str, statuses=("triggered", "acknowledged", "resolved")) -> list[dict]:
        params = {"since": since, "service_ids[]": service_id, "statuses[]": list(statuses),
                  "sort_by": "created_at:desc"}
        return list(self.paginate("/incidents", "incidents", params))

    def open_incidents(self, service_id: str) -> list[dict]:
        """Every triggered or acknowledged incident of the service, however old (`date_range=all`):
        alert grouping can add a new alert to an incident opened long before (verified §13)."""
        params = {"date_range": "all", "service_ids[]": service_id, "statuses[]": ["triggered", "acknowledged"],
                  "sort_by": "created_at:desc"}
        return list(self.paginate("/incidents", "incidents", params))

    def incident_alerts(self, incident_id: str, alert_key: str | None = None) -> list[dict]:
        """The incident's alerts (its own first one and any grouped into it), each with its
        `alert_key` (the Events API dedup key), `integration` and `body.details`."""
        params = {"alert_key": alert_key} if alert_key else {}
        return list(self.paginate(f"/incidents/{incident_id}/alerts", "alerts", params))

    def service(self, service_id: str, *, integrations: bool = False) -> dict:
        """A fresh read of one service (its `status` says disabled / maintenance now)."""
        params = {"include[]": "integrations"} if integrations else None
        return self.get(f"/services/{service_id}", params)["service"]

    def notification_rules(self, user_id: str, urgency: str = "high") -> list[dict]:
        """The user's notification rules for `urgency` (the API's default is high only, verified §12)."""
        return self.get(f"/users/{user_id}/notification_rules", {"urgency": urgency}).get("notification_rules") or []

    def log_entries(self, incident_id: str) -> list[dict]:
        return list(self.paginate(f"/incidents/{incident_id}/log_entries", "log_entries", {"is_overview": "false"}))

    def _from(self) -> dict:
        if not self.settings.from_email:
            raise SettingsError("PAGERDUTY_FROM_EMAIL is not set: PagerDuty needs a user e-mail as `From` "
                                "to resolve paymon's test incident")
        return {"From": self.settings.from_email}

    def resolve(self, incident_id: str, resolution: str) -> dict:
        body = {"incident": {"type": "incident_reference", "status": "resolved", "resolution": resolution}}
        return self.request("PUT", f"/incidents/{incident_id}", json=body, headers=self._from())["incident"]

    def resolve_alert(self, incident_id: str, alert_id: str) -> dict:
        """Resolve one alert: paymon's own, grouped into an incident someone else's alert opened
        (the incident stays open for theirs)."""
        body = {"alert": {"type": "alert", "status": "resolved",
                          "incident": {"id": incident_id, "type": "incident_reference"}}}
        return self.request("PUT", f"/incidents/{incident_id}/alerts/{alert_id}", json=body,
                            headers=self._from())["alert"]
