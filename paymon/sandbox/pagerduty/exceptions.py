"""PagerDuty's errors, one class per real answer (status, code and message as the servers send them).

Two APIs, two error shapes:

    PagerDutyAPIError         REST API v2: {"error": {"message", "code", "errors"?}}
    ├── InvalidInput              400 2001 "Invalid Input Provided" (+ errors[] saying which argument)
    ├── FromHeaderRequired        400      writes with an account key and no `From` header
    ├── RequesterNotFound         400 1008 `From` is not the e-mail of a user of the account
    ├── IncidentAlreadyResolved   400 1001
    ├── AuthenticationFailed      401 2006
    ├── AccessDenied              403 2010 (read-only key on a write)
    ├── NotFound                  404 2100
    ├── RateLimitExceeded         429 2020
    └── InternalError             500 2000
    EventsAPIError            Events API v2: {"status", "message", "errors"?}
    ├── UnrecognizedEvent         400 body is not a JSON object
    ├── InvalidEvent              400 "invalid event" + errors[] (also: unknown routing key)
    ├── EventThrottled            429
    └── EventsUnavailable         5xx

Sources: developer-docs `REST-API/14-Errors.md` (codes and messages), the Events API v2 spec (the
`Error` example), and real responses quoted in client issue trackers where the docs are silent
(named on each class).
"""

from __future__ import annotations


class PagerDutyAPIError(Exception):
    status = 400
    code = 2001
    message = "Invalid Input Provided"

    def __init__(self, *errors: str, headers: dict[str, str] | None = None):
        super().__init__(f"{self.message}: {'; '.join(errors)}" if errors else self.message)
        self.errors = list(errors)
        self.headers = dict(headers or {})

    def body(self) -> dict:
        error: dict = {"message": self.message, "code": self.code}
        if self.errors:
            error["errors"] = self.errors
        return {"error": error}


class InvalidInput(PagerDutyAPIError):
    """e.g. `{"message":"Invalid Input Provided","code":2001,"errors":["Status must be a list of
    triggered, acknowledged, or resolved."]}` (a real answer quoted by hubot-pager-me users)."""


class FromHeaderRequired(PagerDutyAPIError):
    # The docs' table has 2011 "You must specify a requester_id"; what the API really sends for a
    # missing `From` (quoted in pypd/airflow and Elixir client issues) is this message with 2016.
    code = 2016
    message = "You must specify a user's email address in the \"From\" header to perform this action"


class RequesterNotFound(PagerDutyAPIError):
    code = 1008
    message = "Requester User Not Found"


class IncidentAlreadyResolved(PagerDutyAPIError):
    code = 1001
    message = "Incident Already Resolved"


class AuthenticationFailed(PagerDutyAPIError):
    status = 401
    code = 2006
    message = "Authentication failed"


class AccessDenied(PagerDutyAPIError):
    status = 403
    code = 2010
    message = "Access Denied"


class NotFound(PagerDutyAPIError):
    status = 404
    code = 2100
    message = "Not Found"


class RateLimitExceeded(PagerDutyAPIError):
    status = 429
    code = 2020
    message = "Rate Limit Exceeded"


class InternalError(PagerDutyAPIError):
    status = 500
    code = 2000
    message = "An internal error has occurred. PagerDuty team has been notified."

    def __init__(self, status: int = 500, headers: dict[str, str] | None = None):
        super().__init__(headers=headers)
        self.status = status


# --- Events API v2 ----------------------------------------------------------------------------------

class EventsAPIError(Exception):
    status = 400
    short = "invalid event"
    message = "Event object is invalid"

    def __init__(self, *errors: str, headers: dict[str, str] | None = None):
        super().__init__(f"{self.message}: {'; '.join(errors)}" if errors else self.message)
        self.errors = list(errors)
        self.headers = dict(headers or {})

    def body(self) -> dict:
        body: dict = {"status": self.short, "message": self.message}
        if self.errors:
            body["errors"] = self.errors
        return body


class UnrecognizedEvent(EventsAPIError):
    """The spec's own Error example: the body did not parse as a JSON object."""

    short = "Unrecognized object"
    message = "Event object format is unrecognized"


class InvalidEvent(EventsAPIError):
    """400 with one message per problem, e.g. "'payload.summary' is missing or blank" or "Length of
    'routing_key' is incorrect (should be 32 characters)" (quoted from real responses)."""


class EventThrottled(EventsAPIError):
    # The spec documents the 429 without a body; this is the Events API's long-standing throttle
    # answer. Clients must only rely on the status.
    status = 429
    short = "throttle event"
    message = "Requests for this service are arriving too quickly.  Please retry later."


class EventsUnavailable(EventsAPIError):
    short = "error"
    message = "Internal Server Error"

    def __init__(self, status: int = 500):
        super().__init__()
        self.status = status
