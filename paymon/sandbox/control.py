"""The sandbox's control API: its clock and what its alert engine did, over HTTP.

moto's server mode has `/moto-api/` (reset, time) so that a test process which does not hold the
backends can still drive them. paymon needs the same under `pytest -n auto`: the sandbox runs in
the xdist controller, and the alert drill, on a worker, must move the sandbox clock past an alert's
window and read the e-mail outbox and the engine's firings. Mounted at `/_sandbox/`, which no
emulated service uses; it asks for the sandbox's Sentry token like the Sentry API does.

    GET  /_sandbox/clock                      {"now": <epoch seconds>}
    POST /_sandbox/clock/advance              {"seconds": 600} -> {"now": ...}
    GET  /_sandbox/sentry/alert-firings       [{alert, level, at, event_ids, ...}]
    GET  /_sandbox/sentry/outbox              [{to, subject, alert, sent_at, visible_at, ...}]
    GET  /_sandbox/sentry/email-recipients?target=team:payments
                                              {"addresses": [...], "problem": null}

`SandboxControl` is its client, with the same calls the drill makes on the in-process objects.
"""

from __future__ import annotations

import dataclasses
import hmac
from types import SimpleNamespace

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

PREFIX = "/_sandbox"


def build_control_app(hub) -> Starlette:
    def sentry():
        return hub.backends["sentry"]

    def authorised(request: Request) -> bool:
        expected = getattr(hub.backends.get("sentry"), "default_token", None)
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())

    def guarded(handler):
        async def endpoint(request: Request):
            if not authorised(request):
                return JSONResponse({"detail": "Invalid token"}, status_code=401)
            return await handler(request)
        return endpoint

    async def clock(request: Request):
        return JSONResponse({"now": hub.clock.now()})

    async def advance(request: Request):
        try:
            seconds = float((await request.json())["seconds"])
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"detail": "body must be {\"seconds\": <number>}"}, status_code=400)
        return JSONResponse({"now": hub.clock.advance(seconds)})

    async def alert_firings(request: Request):
        return JSONResponse([_firing_json(f) for f in sentry().alert_firings])

    async def outbox(request: Request):
        return JSONResponse(list(sentry().outbox))

    async def email_recipients(request: Request):
        addresses, problem = sentry().email_recipients(request.query_params.get("target", ""))
        return JSONResponse({"addresses": addresses, "problem": problem})

    return Starlette(routes=[
        Route("/clock", guarded(clock)),
        Route("/clock/advance", guarded(advance), methods=["POST"]),
        Route("/sentry/alert-firings", guarded(alert_firings)),
        Route("/sentry/outbox", guarded(outbox)),
        Route("/sentry/email-recipients", guarded(email_recipients)),
    ])


def _firing_json(firing) -> dict:
    return dataclasses.asdict(firing)


class SandboxControl:
    """Drives a sandbox served elsewhere (another process) through its control API."""

    def __init__(self, base_url: str, token: str, timeout: float = 10.0):
        self._client = httpx.Client(base_url=base_url.rstrip("/") + PREFIX, timeout=timeout,
                                    headers={"Authorization": f"Bearer {token}"})

    def __repr__(self) -> str:
        return f"SandboxControl({self._client.base_url})"

    def _json(self, method: str, path: str, **kwargs):
        response = self._client.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json()

    def now(self) -> float:
        return float(self._json("GET", "/clock")["now"])

    def advance(self, seconds: float) -> float:
        return float(self._json("POST", "/clock/advance", json={"seconds": seconds})["now"])

    def alert_firings(self) -> list[SimpleNamespace]:
        firings = self._json("GET", "/sentry/alert-firings")
        return [SimpleNamespace(**{**f, "deliveries": [SimpleNamespace(**d) for d in f.get("deliveries", ())]})
                for f in firings]

    def outbox(self) -> list[dict]:
        return self._json("GET", "/sentry/outbox")

    def email_recipients(self, target: str) -> tuple[list[str], str | None]:
        body = self._json("GET", "/sentry/email-recipients", params={"target": target})
        return body["addresses"], body["problem"]

    def close(self) -> None:
        self._client.close()
