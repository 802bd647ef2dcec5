"""One route of the emulated Sentry web API: its path, handler, the scopes that grant it and how it
pages. `urls.py` (reads) and `write_responses.py` (writes) both list `Endpoint`s."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoint:
    path: str
    handler: str  # method name on SentryResponse
    scopes: tuple[str, ...]
    paginated: bool = False
    default_per_page: int = 100
    legacy: bool = False  # a deprecated alert endpoint: 404 when the world's legacy_alerts is "removed"
    method: str = "GET"
    page_param: str = "per_page"  # the page-size parameter (`O/issues/` calls it `limit`)
