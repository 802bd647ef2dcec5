"""Routes of the emulated Lemon Squeezy API (mounted under `/lemonsqueezy`: its base URL is
`<sandbox>/lemonsqueezy`, as `https://api.lemonsqueezy.com` is the real one's)."""

from __future__ import annotations

url_paths = {
    "/v1/subscriptions/{id}": "get_subscription",
    "/v1/users/me": "users_me",
}


def build_routes(responder) -> list:
    from starlette.routing import Route

    routes = [Route(path, getattr(responder, handler), methods=["GET"]) for path, handler in url_paths.items()]
    # Anything else: the API's 404 (after authentication, as the real API answers an unknown path).
    routes.append(Route("/{rest:path}", responder.not_found, methods=["GET", "POST", "PATCH", "DELETE"]))
    return routes
