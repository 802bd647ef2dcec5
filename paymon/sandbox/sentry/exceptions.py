"""Sentry's API errors, one class per real answer (status and body as the server sends them).

Sources: `src/sentry/api/authentication.py` and DRF defaults (401/403), `ResourceDoesNotExist`
(404), the paginator's `ParseError`s (400), `src/sentry/middleware/ratelimit.py` (429).
"""

from __future__ import annotations


class SentryAPIError(Exception):
    status = 500
    detail = "Internal Error"

    def __init__(self, detail: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(detail or self.detail)
        if detail is not None:
            self.detail = detail
        self.headers = dict(headers or {})

    def body(self) -> dict:
        return {"detail": self.detail}


class _Unauthorized(SentryAPIError):
    status = 401

    def __init__(self, detail: str | None = None, headers: dict[str, str] | None = None):
        # The odd scheme is deliberate (no browser login dialog); clients must not parse it.
        super().__init__(detail, {"WWW-Authenticate": 'xBasic realm="api"', **(headers or {})})


class InvalidToken(_Unauthorized):
    detail = "Invalid token"


class InvalidTokenHeader(_Unauthorized):
    detail = "Invalid token header. No credentials provided."


class NotAuthenticated(_Unauthorized):
    detail = "Authentication credentials were not provided."


class PermissionDenied(SentryAPIError):
    status = 403
    detail = "You do not have permission to perform this action."


class ResourceDoesNotExist(SentryAPIError):
    status = 404
    detail = "The requested resource does not exist"


class BadRequest(SentryAPIError):
    """400 with `{"detail": ...}` (DRF ParseError / ValidationError with one message)."""

    status = 400


class InvalidPerPage(SentryAPIError):
    status = 400

    def __init__(self, max_per_page: int = 100):
        super().__init__(f"Invalid per_page value. Cannot exceed {max_per_page}.")


class InvalidCursor(SentryAPIError):
    status = 400
    detail = "Invalid cursor parameter."


class RateLimited(SentryAPIError):
    """429 from the rate-limit middleware. Sentry sets no Retry-After; the sandbox adds one because
    paymon's own rule is "429 comes with Retry-After" (clients must not depend on it for Sentry)."""

    status = 429

    def __init__(self, limit: int, window: int, headers: dict[str, str] | None = None):
        super().__init__(
            f"You are attempting to use this endpoint too frequently. Limit is {limit} requests in {window} seconds",
            headers,
        )


class ConcurrencyLimited(SentryAPIError):
    status = 429

    def __init__(self, concurrent_limit: int, headers: dict[str, str] | None = None):
        super().__init__(
            "You are attempting to go above the allowed concurrency for this endpoint. "
            f"Concurrency limit is {concurrent_limit}",
            headers,
        )


class InternalError(SentryAPIError):
    """A 500 from Sentry itself: JSON with an error id for support."""

    status = 500
    detail = "Internal Error"

    def __init__(self, error_id: str):
        super().__init__()
        self.error_id = error_id

    def body(self) -> dict:
        return {"detail": self.detail, "errorId": self.error_id}


class UpstreamUnavailable(SentryAPIError):
    """502/503/504 come from the load balancer in front of Sentry: an HTML page, not JSON."""

    REASONS = {502: "Bad Gateway", 503: "Service Temporarily Unavailable", 504: "Gateway Time-out"}

    def __init__(self, status: int):
        self.status = status
        super().__init__(self.REASONS.get(status, "Service Unavailable"))

    def html(self) -> str:
        title = f"{self.status} {self.detail}"
        return f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n</body>\r\n</html>\r\n"


class IngestRejected(SentryAPIError):
    """Relay refusing an SDK request (sentry-api.md §9.3): 400 malformed, 401/403 auth, 413 too
    large, 415 unknown encoding, 429 rate limited. Relay answers `{"detail": ...}` JSON."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail, headers)
        self.status = status


class IngestRateLimited(IngestRejected):
    """429 with `Retry-After` and `X-Sentry-Rate-Limits: <secs>:<categories>:<scope>:<reason>`."""

    def __init__(self, retry_after: int, categories: list[str], scope: str, reason: str):
        limits = f"{retry_after}:{';'.join(categories)}:{scope}:{reason}"
        super().__init__(429, "event submission rejected with_reason: " + reason,
                         {"Retry-After": str(retry_after), "X-Sentry-Rate-Limits": limits})
