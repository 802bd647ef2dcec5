"""A small, read-only, synchronous client for Sentry's web API (`/api/0/`).

See `SentryClient` for the behaviour; `paymon.clients.sentry.api` holds one reader per endpoint on top.
"""

from __future__ import annotations

import email.utils
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import tenacity
from pydantic import SecretStr

from paymon import __version__
from paymon.errors import AuthError, EndpointMissing, ServiceError, TargetUnavailable
from paymon.config.settings import READ_SCOPES, SentrySettings, redact

log = logging.getLogger(__name__)

# Per attempt; the call's deadline shortens them further when little time is left.
_READ_TIMEOUT = 10.0
_CONNECT_TIMEOUT = 5.0
# The request itself needs a moment; never send one with less than this as its timeout.
_MIN_ATTEMPT_TIMEOUT = 0.1

# 0.5s, 1s, 2s, … up to 8s, plus up to 0.5s of jitter so parallel workers do not retry in step.
_backoff = tenacity.wait_exponential(multiplier=0.5, max=8.0) + tenacity.wait_random(0, 0.5)

# Reference §0: the scopes (any one of them) each endpoint accepts, matched against the path below
# /api/0/. First match wins, so specific patterns come first. Used to say which scope a 403 lacks.
_ENDPOINT_SCOPES: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = tuple(
    (re.compile(pattern), scopes)
    for pattern, scopes in (
        (r"organizations/[^/]+/projects/$", ("org:read",)),
        (r"organizations/[^/]+/members/", ("member:read",)),
        (r"organizations/[^/]+/teams/", ("org:read",)),
        (r"organizations/[^/]+/(alert-rules|detectors|workflows)/", ("alerts:read", "org:read")),
        (r"organizations/[^/]+/(incidents|open-periods)/", ("alerts:read", "org:read")),
        (r"organizations/[^/]+/dashboards/", ("org:read",)),
        (r"organizations/[^/]+/monitors/$", ("alerts:read", "org:read")),
        (r"organizations/[^/]+/monitors/.", ("alerts:read", "project:read")),
        (r"organizations/[^/]+/integrations/", ("org:read", "org:integrations")),
        (r"organizations/[^/]+/(events|events-timeseries|eventids)/", ("org:read",)),
        (r"organizations/[^/]+/issues/", ("event:read",)),
        (r"projects/[^/]+/[^/]+/(rules|monitors)/", ("alerts:read", "project:read")),
        (r"projects/[^/]+/[^/]+/", ("project:read",)),
    )
)


def required_scopes(api_path: str) -> tuple[str, ...]:
    """The scopes (any one) that the endpoint at `api_path` (below /api/0/) accepts."""
    api_path = api_path.split("/api/0/", 1)[-1].lstrip("/")
    for pattern, scopes in _ENDPOINT_SCOPES:
        if pattern.match(api_path):
            return scopes
    return READ_SCOPES


class _BearerToken(httpx.Auth):
    """Adds the token per request, so no attribute with a printable repr ever holds it in clear."""

    def __init__(self, token: SecretStr):
        self._token = token

    def auth_flow(self, request: httpx.Request):
        request.headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        yield request

    def __repr__(self) -> str:
        return "_BearerToken(**********)"


class _Retryable(Exception):
    """One attempt failed in a way worth another try: a 429/5xx response or a transport error."""

    def __init__(self, response: httpx.Response | None = None, error: httpx.TransportError | None = None):
        super().__init__(response.status_code if response is not None else repr(error))
        self.response = response
        self.error = error


@dataclass
class _Budget:
    """The time one get()/paginate() call may spend, on every attempt, wait and page together."""

    endpoint: str  # "GET /api/0/organizations/acme/detectors/", for messages
    started: float
    ends: float
    attempts: int = 0
    next_wait: float = 0.0  # the wait before the next attempt, as last computed
    next_wait_source: str | None = None  # the header that asked for it, if the server did


class SentryClient:
    """Read-only client for Sentry's web API.

    Behaviour
    - One `httpx.Client` for the client's life (keep-alive); use it as a context manager or call
      `close()`. Sends `Authorization: Bearer <token>`, `User-Agent: paymon/<version>`, JSON Accept.
    - `get(path)` returns the decoded JSON; `paginate(path)` follows the `Link` header's
      `rel="next"` while `results="true"` and returns all pages as one list. It re-requests `path`
      with the next `cursor` rather than the link's URL, so the token only ever goes to `base_url`.
      Paths are relative to `/api/0/`; `org_path()`/`project_path()` build the usual ones.
    - Each `get()`/`paginate()` call has one budget of `deadline` seconds covering all its
      attempts, waits and pages (a check's budget; a dead API costs one deadline, not more).
    - 429, 5xx and transport errors are retried (tenacity). The wait is `X-Sentry-Rate-Limit-Reset`
      (epoch seconds, read against the response's `Date` when present), else `Retry-After`
      (seconds or HTTP date), else exponential backoff with jitter. A wait that would end past the
      deadline is never started: the call fails at once and says why.
    - Failures raise paymon's error tree with one line naming the method and path:
      401 and 403 `AuthError` (403 names the scopes the endpoint needs), 404/410 `EndpointMissing`
      (with `.status`), retries exhausted or no connection `ServiceError`, anything else
      `TargetUnavailable`. Bodies are parsed leniently (429s may say text/html); messages never
      contain the token, and neither do the client's or the settings' repr.
    - `request_count` counts every HTTP request sent, retries and pages included.
    - `sleep`, `clock` (monotonic) and `wall_clock` (epoch) are injectable so tests never sleep.
    """

    def __init__(
        self,
        settings: SentrySettings,
        *,
        transport: httpx.BaseTransport | None = None,
        deadline: float = 30.0,
        page_size: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ):
        self.settings = settings
        self.deadline = deadline
        self.page_size = page_size
        self.request_count = 0
        self._sleep = sleep
        self._clock = clock
        self._wall_clock = wall_clock
        self._http = httpx.Client(
            base_url=settings.api_url,
            auth=_BearerToken(settings.token),
            headers={"User-Agent": f"paymon/{__version__}", "Accept": "application/json"},
            timeout=httpx.Timeout(_READ_TIMEOUT, connect=_CONNECT_TIMEOUT),
            transport=transport,
            # A redirect means a wrong base URL; report it instead of chasing it with the token.
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"SentryClient(base_url={self.settings.base_url!r}, org={self.settings.org!r})"

    def __enter__(self) -> SentryClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- paths -----------------------------------------------------------------------------------

    def org_path(self, *parts: str | int) -> str:
        """'organizations/<org>/<parts...>/'"""
        return _path("organizations", self.settings.org, *parts)

    def project_path(self, *parts: str | int, project: str | int | None = None) -> str:
        """'projects/<org>/<project>/<parts...>/' (the configured project unless one is given)"""
        return _path("projects", self.settings.org, project or self.settings.project, *parts)

    # --- reading ---------------------------------------------------------------------------------

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """The decoded JSON body of GET /api/0/<path>."""
        budget = self._new_budget(path)
        return self._json(self._get_response(path, dict(params or {}), budget), budget)

    def put(self, path: str, body: Any, params: Mapping[str, Any] | None = None) -> Any:
        """PUT /api/0/<path> (idempotent, so retried like a read). Only for cleaning up what
        paymon itself created, e.g. resolving its test issues; needs a write scope."""
        budget = self._new_budget(path, method="PUT")
        return self._json(self._get_response(path, dict(params or {}), budget, method="PUT", body=body), budget)

    def paginate(self, path: str, params: Mapping[str, Any] | None = None, key: str | None = None) -> list:
        """Every item of the list at GET /api/0/<path>, all pages. `key`: the list is that member of
        an object body (`O/events/` answers `{"data": rows, "meta": ...}`)."""
        budget = self._new_budget(path)
        params = dict(params or {})
        if self.page_size:
            params.setdefault("per_page", self.page_size)
        items: list = []
        cursors_seen: set[str] = set()
        while True:
            response = self._get_response(path, params, budget)
            page = self._json(response, budget)
            if key is not None and isinstance(page, dict):
                page = page.get(key) or []
            if not isinstance(page, list):
                raise self._error(ServiceError, f"Sentry answered {budget.endpoint} with "
                                                f"{type(page).__name__}, not the JSON list it documents")
            items.extend(page)
            cursor = self._next_cursor(response, budget)
            if cursor is None:
                return items
            if cursor in cursors_seen:  # a server bug would otherwise loop until the deadline
                raise self._error(ServiceError, f"Sentry's pagination of {budget.endpoint} repeats "
                                                f"cursor {cursor!r} after {len(items)} items")
            cursors_seen.add(cursor)
            params["cursor"] = cursor

    # --- one request with retries ----------------------------------------------------------------

    def _new_budget(self, path: str, method: str = "GET") -> _Budget:
        url = self._http.build_request(method, path).url
        now = self._clock()
        return _Budget(endpoint=f"{method} {url.path}", started=now, ends=now + self.deadline)

    def _get_response(self, path: str, params: dict, budget: _Budget, method: str = "GET",
                      body: Any = None) -> httpx.Response:
        response = self._send_with_retries(path, params, budget, method, body)
        self._raise_for_status(response, budget)
        return response

    def _send_with_retries(self, path: str, params: dict, budget: _Budget, method: str = "GET", body: Any = None,
                           retry_if: Callable[[BaseException], bool] | None = None) -> httpx.Response:
        """The response once it is not retryable, retrying within the budget's deadline; `retry_if`
        narrows what is retried (a non-idempotent write must not be sent twice)."""
        retrying = tenacity.Retrying(
            retry=(tenacity.retry_if_exception(retry_if) if retry_if else tenacity.retry_if_exception_type(_Retryable)),
            wait=lambda state: self._wait_before_retry(state, budget),
            stop=lambda state: state.upcoming_sleep >= budget.ends - self._clock(),
            sleep=self._sleep,
            before_sleep=lambda state: self._log_retry(state, budget),
            reraise=True,
        )
        try:
            return retrying(self._send_once, path, params, budget, method, body)
        except _Retryable as failure:
            raise self._gave_up(failure, budget) from None

    def _send_once(self, path: str, params: dict, budget: _Budget, method: str = "GET",
                   body: Any = None) -> httpx.Response:
        remaining = max(budget.ends - self._clock(), _MIN_ATTEMPT_TIMEOUT)
        timeout = httpx.Timeout(min(_READ_TIMEOUT, remaining), connect=min(_CONNECT_TIMEOUT, remaining))
        budget.attempts += 1
        self.request_count += 1
        try:
            response = self._http.request(method, path, params=params, json=body, timeout=timeout)
        except httpx.TransportError as exc:
            raise _Retryable(error=exc) from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise _Retryable(response=response)
        return response

    def _wait_before_retry(self, state: tenacity.RetryCallState, budget: _Budget) -> float:
        failure = state.outcome.exception()
        requested = None
        if isinstance(failure, _Retryable) and failure.response is not None:
            requested = _server_requested_wait(failure.response, self._wall_clock)
        budget.next_wait, budget.next_wait_source = requested or (_backoff(state), None)
        return budget.next_wait

    def _log_retry(self, state: tenacity.RetryCallState, budget: _Budget) -> None:
        failure = state.outcome.exception()
        log.info("%s: %s; retrying in %.1fs", budget.endpoint, _failure_text(failure), state.upcoming_sleep)

    # --- turning answers into results or paymon errors -------------------------------------------

    def _gave_up(self, failure: _Retryable, budget: _Budget) -> ServiceError:
        elapsed = self._clock() - budget.started
        tried = f"{budget.attempts} attempt{'s' if budget.attempts != 1 else ''} in {elapsed:.1f}s " \
                f"of a {self.deadline:g}s deadline"
        if failure.error is not None:
            origin = self.settings.base_url
            reason = _transport_reason(failure.error)
            if isinstance(failure.error, httpx.ConnectError):
                return self._error(ServiceError, f"cannot reach {origin}: {reason} ({budget.endpoint}, {tried})")
            return self._error(ServiceError, f"no answer from {origin} to {budget.endpoint}: {reason} ({tried})")
        status = _status_text(failure.response)
        if budget.next_wait_source is not None:  # the server asked for a wait the deadline cannot afford
            remaining = max(budget.ends - self._clock(), 0.0)
            return self._error(ServiceError, f"Sentry answered {status} at {budget.endpoint} and asks to wait "
                                             f"{budget.next_wait:.0f}s ({budget.next_wait_source}), but only "
                                             f"{remaining:.1f}s of the deadline remain ({tried})")
        return self._error(ServiceError, f"Sentry kept failing at {budget.endpoint}: last answer {status} "
                                         f"after {tried}")

    def _raise_for_status(self, response: httpx.Response, budget: _Budget) -> None:
        code = response.status_code
        if 200 <= code < 300:
            return
        status = _status_text(response)
        where = budget.endpoint
        if code == 401:
            raise self._error(AuthError, f"Sentry rejected the token ({status}) at {where} — check SENTRY_AUTH_TOKEN")
        if code == 403:
            scopes = required_scopes(response.request.url.path)
            if response.request.method != "GET":  # a write needs the write variant of the scope
                scopes = tuple(scope.replace(":read", ":write") for scope in scopes)
            verb = "read" if response.request.method == "GET" else "change"
            raise self._error(AuthError, f"the token may not {verb} {where} ({status}) — it needs the scope "
                                         f"{' or '.join(scopes)}")
        if code in (404, 410):
            raise self._error(EndpointMissing, f"Sentry has no {where} ({status})", status=code)
        if 300 <= code < 400:
            location = response.headers.get("Location", "elsewhere")
            raise self._error(TargetUnavailable, f"Sentry redirected {where} to {location} — "
                                                 "point SENTRY_BASE_URL at the API host")
        raise self._error(TargetUnavailable, f"Sentry refused {where} ({status})")

    def _json(self, response: httpx.Response, budget: _Budget) -> Any:
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            kind = response.headers.get("Content-Type", "no content type")
            raise self._error(ServiceError, f"Sentry answered {budget.endpoint} with a body that is not "
                                            f"JSON ({kind})") from None

    def _next_cursor(self, response: httpx.Response, budget: _Budget) -> str | None:
        # httpx parses RFC 5988 and keeps extra attributes, so Sentry's results/cursor survive.
        link = response.links.get("next")
        if not link or link.get("results", "").lower() != "true":
            return None
        cursor = link.get("cursor") or httpx.URL(link.get("url", "")).params.get("cursor")
        if not cursor:  # stopping here would silently judge a partial list
            raise self._error(ServiceError, f"Sentry says {budget.endpoint} has more results but gives no cursor")
        return cursor

    def _error(self, cls: type[Exception], message: str, **kwargs) -> Exception:
        # Server text goes into messages; redact in case anything echoed the token back.
        return cls(redact(message, [self.settings.token]), **kwargs)


def _path(*parts: str | int) -> str:
    return "/".join(quote(str(part), safe="") for part in parts) + "/"


def _server_requested_wait(
    response: httpx.Response, wall_clock: Callable[[], float]
) -> tuple[float, str] | None:
    """(seconds, header) the server asks us to wait, or None if it does not say (or said the past).

    Sentry's API 429s carry X-Sentry-Rate-Limit-Reset and no Retry-After (reference §1); proxies
    and 503s may add Retry-After. The reset is compared with the response's Date, the server's
    own clock, so a skewed CI clock neither hammers Sentry nor waits too long.
    """
    now = _response_date(response) or wall_clock()
    reset = response.headers.get("X-Sentry-Rate-Limit-Reset")
    if reset:
        try:
            wait = float(reset) - now
        except ValueError:
            wait = 0
        if wait > 0:
            return wait, "X-Sentry-Rate-Limit-Reset"
    retry_after = response.headers.get("Retry-After", "").strip()
    if retry_after:
        try:
            wait = float(retry_after)
        except ValueError:
            date = _http_date(retry_after)
            wait = date - now if date is not None else -1
        if wait >= 0:
            return wait, "Retry-After"
    return None


def _response_date(response: httpx.Response) -> float | None:
    return _http_date(response.headers.get("Date", ""))


def _http_date(value: str) -> float | None:
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def _status_text(response: httpx.Response) -> str:
    """'429 You are attempting to use this endpoint too frequently…' or '503 Service Unavailable'.

    The body is decoded whatever its Content-Type says (Sentry's 429s say text/html but hold
    JSON); HTML or other text is not quoted, only the standard reason phrase.
    """
    detail = None
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if isinstance(body, dict):
        detail = body.get("detail")
        if isinstance(detail, dict):  # some endpoints nest {"detail": {"message": ...}}
            detail = detail.get("message")
    if not isinstance(detail, str) or not detail.strip():
        detail = response.reason_phrase
    detail = " ".join(detail.split())
    if len(detail) > 200:
        detail = detail[:197] + "..."
    return f"{response.status_code} {detail}".strip()


def _transport_reason(error: httpx.TransportError) -> str:
    """'[Errno 111] Connection refused' -> 'connection refused'; empty messages -> the error kind."""
    text = re.sub(r"\[Errno -?\d+\]\s*", "", str(error)).strip()
    if not text:  # httpx timeouts often carry no message: ReadTimeout -> "read timeout"
        return re.sub(r"(?<!^)(?=[A-Z])", " ", type(error).__name__).lower()
    return text[:1].lower() + text[1:]


def _failure_text(failure: BaseException | None) -> str:
    if isinstance(failure, _Retryable):
        if failure.response is not None:
            return _status_text(failure.response)
        return _transport_reason(failure.error)
    return repr(failure)
