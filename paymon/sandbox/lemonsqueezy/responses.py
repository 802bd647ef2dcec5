"""HTTP side of the emulated Lemon Squeezy API (JSON:API, `application/vnd.api+json`).

Each request goes: authentication (`Authorization: Bearer <key>`, else 401), the key's rate limit
(300 a minute, else 429; successes carry `X-Ratelimit-Limit` / `X-Ratelimit-Remaining`), then the
endpoint. Errors are JSON:API `errors` arrays (api/getting-started/responses); the wording of
`detail` is illustrative (reference lemonsqueezy-examples/api-error-examples.json).
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response

from paymon.sandbox.lemonsqueezy.models import LemonSqueezyBackend, NotFound, RateLimited, Unauthenticated

JSONAPI = "application/vnd.api+json"

_ERRORS = {
    401: ("Unauthorized", "Unauthenticated."),
    404: ("Not Found", "The requested resource could not be found."),
    429: ("Too Many Requests", "Too Many Attempts."),
}


def _document(body: dict, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(body), status_code=status, media_type=JSONAPI, headers=headers)


def _error(status: int) -> Response:
    title, detail = _ERRORS[status]
    return _document({"jsonapi": {"version": "1.0"},
                      "errors": [{"status": str(status), "title": title, "detail": detail}]}, status)


class LemonSqueezyResponse:
    def __init__(self, backend: LemonSqueezyBackend):
        self.backend = backend

    def _base(self, request: Request) -> str:
        """Links point back at this emulator (the real API's point at api.lemonsqueezy.com)."""
        return f"{request.url.scheme}://{request.url.netloc}{request.scope.get('root_path', '')}".rstrip("/")

    async def _call(self, request: Request, answer) -> Response:
        try:
            key, test_mode = self.backend.authenticate(request.headers.get("authorization"))
            remaining = self.backend.take_call(key)
            body = answer(test_mode)
            response = _document(body, headers={"X-Ratelimit-Limit": str(self.backend.rate_limit),
                                                "X-Ratelimit-Remaining": str(remaining)})
        except Unauthenticated:
            response = _error(401)
        except RateLimited:
            response = _error(429)
        except NotFound:
            response = _error(404)
        self.backend.record_read(request.method, request.url.path, response.status_code)
        return response

    async def get_subscription(self, request: Request) -> Response:
        """`GET /v1/subscriptions/{id}` (api/subscriptions/retrieve-subscription)."""
        subscription_id = request.path_params["id"]
        base = self._base(request)

        def answer(test_mode: bool) -> dict:
            data = self.backend.subscription(subscription_id, test_mode, base)
            return {"jsonapi": {"version": "1.0"}, "links": {"self": data["links"]["self"]}, "data": data}

        return await self._call(request, answer)

    async def users_me(self, request: Request) -> Response:
        """`GET /v1/users/me`: the key's user, with `meta.test_mode` saying the key's mode (api/users/retrieve-user)."""
        base = self._base(request)

        def answer(test_mode: bool) -> dict:
            return {"jsonapi": {"version": "1.0"}, "links": {"self": f"{base}/v1/users/me"},
                    "meta": {"test_mode": test_mode},
                    "data": {"type": "users", "id": "1", "attributes": {
                        "name": "TowerOfBabel", "email": "billing@towerofbabel.com", "color": "#898FA9",
                        "avatar_url": None, "has_custom_avatar": False,
                        "createdAt": "2025-01-01T00:00:00.000000Z", "updatedAt": "2025-01-01T00:00:00.000000Z"},
                             "links": {"self": f"{base}/v1/users/1"}}}

        return await self._call(request, answer)

    async def not_found(self, request: Request) -> Response:
        def answer(test_mode: bool) -> dict:
            raise NotFound()

        return await self._call(request, answer)
