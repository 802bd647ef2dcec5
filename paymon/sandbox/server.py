"""Serve a world over real HTTP: one ASGI app with every emulated service, run by uvicorn.

    with SandboxServer(golden_world("workflow")) as sandbox:
        httpx.get(f"{sandbox.base_url}/api/0/organizations/{sandbox.org}/detectors/",
                  headers={"Authorization": f"Bearer {sandbox.sentry_token}"})
        sandbox.sentry.inject_failure(503, path="/workflows/")

Services are mounted by path prefix. Sentry owns the root (its API lives under `/api/0/` and the
SDK posts to `/api/<project id>/envelope/`), so later services get their own prefix (`/slack`,
`/pagerduty`) and are matched first; add them to `SERVICES`. `/_sandbox/` is the control API
(paymon.sandbox.control): the clock and the alert engine's record, for other processes.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount

from paymon.sandbox.app import AppBackend, build_app_app
from paymon.sandbox.control import PREFIX as CONTROL_PREFIX
from paymon.sandbox.control import build_control_app
from paymon.sandbox.core import Service
from paymon.sandbox.hub import Hub, SandboxClock
from paymon.sandbox.sentry import SentryBackend, build_sentry_app
from paymon.sandbox.pagerduty import SERVICE as PAGERDUTY
from paymon.sandbox.gitlab import SERVICE as GITLAB
from paymon.sandbox.lemonsqueezy import SERVICE as LEMONSQUEEZY
from paymon.sandbox.slack import SERVICE as SLACK


SERVICES: dict[str, Service] = {
    "sentry": Service("", lambda part, hub: SentryBackend(part, hub=hub), build_sentry_app),
    "slack": SLACK,
    "pagerduty": PAGERDUTY,
    "app": Service("/app", lambda part, hub: AppBackend(part, hub=hub), build_app_app),
    "lemonsqueezy": LEMONSQUEEZY,  # the app's Lemon Squeezy account (after "app": it is the app's)
    "gitlab": GITLAB,  # the repository holding the operations runbook (§6)
}


def build_app(world: dict, hub: Hub | None = None) -> Starlette:
    """An ASGI app serving every service present in `world`; backends in `app.state.backends`,
    the shared clock and backends in `app.state.hub`."""
    hub = hub or Hub()
    backends, mounts = hub.backends, []
    # Prefixed services first: the root mount matches every path.
    for name, service in sorted(SERVICES.items(), key=lambda item: item[1].prefix == ""):
        part = service.world_part or name
        if part not in world:
            continue
        backend = service.backend_factory(world[part], hub)
        backends[name] = backend
        app = service.app_factory(backend)
        mounts.append(Mount(service.prefix, app=app if name == "sentry" else _settled(hub, app)))
    # The control API (clock, engine firings, outbox) for processes that do not hold the backends.
    mounts.insert(0, Mount(CONTROL_PREFIX, app=build_control_app(hub)))
    app = Starlette(routes=mounts)
    app.state.backends = backends
    app.state.hub = hub
    return app


def _settled(hub: Hub, app):
    """`app` (Slack, PagerDuty, ...) answering only after Sentry's lazily judged alerts caught up
    with the clock (`Hub.settle`): a metric alert Sentry fired a second ago is in the channel."""

    async def settled_app(scope, receive, send):
        if scope["type"] == "http":
            hub.settle()
        await app(scope, receive, send)

    return settled_app


class _ThreadedServer(uvicorn.Server):
    TICK = 0.01

    def install_signal_handlers(self) -> None:
        # Signals belong to the main thread (the test runner); older uvicorn would try anyway.
        pass

    async def main_loop(self) -> None:
        # uvicorn polls `should_exit` every 0.1 s; tests start and stop many servers, so poll
        # faster. on_tick refreshes the Date header every 10th tick, which is fine at any rate.
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            await asyncio.sleep(self.TICK)


class SandboxServer:
    """uvicorn on 127.0.0.1 in a background thread (httpx's test-server pattern)."""

    START_TIMEOUT = 10.0

    def __init__(self, world: dict, host: str = "127.0.0.1", port: int = 0, clock: SandboxClock | None = None):
        """`clock`: the sandbox's time (default: the wall clock's); tests start it where they need,
        e.g. a minute before midnight on New Year's Eve."""
        self.world = world
        self.host = host
        self.hub = Hub(clock=clock) if clock is not None else Hub()
        self.app = build_app(world, self.hub)
        # proto must say TCP: asyncio only sets TCP_NODELAY on accepted sockets whose proto is
        # IPPROTO_TCP, and without it every response waits ~40 ms for a delayed ACK.
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))  # bind now, so the port is known before the thread runs
        self.port = self._socket.getsockname()[1]
        self.hub.base_url = self.base_url
        config = uvicorn.Config(self.app, lifespan="off", log_level="warning", access_log=False)
        self._server = _ThreadedServer(config)
        self._thread: threading.Thread | None = None

    # --- what tests point clients at -------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def clock(self):
        return self.hub.clock

    @property
    def backends(self) -> dict:
        return self.app.state.backends

    def backend(self, service: str = "sentry"):
        return self.backends[service]

    @property
    def sentry(self) -> SentryBackend:
        return self.backends["sentry"]

    @property
    def sentry_token(self) -> str:
        return self.sentry.default_token

    @property
    def org(self) -> str:
        return self.sentry.organization["slug"]

    @property
    def project(self) -> str:
        return self.sentry.projects[0]["slug"]

    def describe(self) -> dict:
        """What `paymon sandbox serve` prints: enough to point `--target live` at the sandbox
        (the top-level keys are Sentry's; each other service has its own entry)."""
        info = {"base_url": self.base_url, "token": self.sentry_token, "org": self.org, "project": self.project}
        if hasattr(self.sentry, "dsn"):
            info["dsn"] = self.sentry.dsn()
        if "slack" in self.backends:
            info["slack"] = {"base_url": f"{self.base_url}/slack/api/", "token": self.backends["slack"].default_token}
        if "pagerduty" in self.backends:
            pagerduty = self.backends["pagerduty"]
            info["pagerduty"] = {"base_url": f"{self.base_url}/pagerduty", "token": pagerduty.default_token,
                                 "from_email": getattr(pagerduty, "default_from_email", None)}
        if "gitlab" in self.backends:
            info["runbook"] = {"base_url": f"{self.base_url}/gitlab", "token": self.backends["gitlab"].default_token}
        if "lemonsqueezy" in self.backends:
            info["lemonsqueezy"] = {"base_url": f"{self.base_url}/lemonsqueezy",
                                    "api_key": self.backends["lemonsqueezy"].default_api_key}
        if "app" in self.backends:
            app = self.backends["app"]
            info["app"] = {"base_url": f"{self.base_url}/app", "webhook_secret": app.webhook_secret,
                           "cron_secret": app.cron_secret, "latency_mode": app.knobs.get("latency_mode", "wait")}
        return info

    def live_environment(self) -> dict[str, str]:
        """The documented variables of `--target live` (README), pointing at this sandbox: a user's
        (or a test's) live run against it is configured exactly as against the real services."""
        info = self.describe()
        env = {"SENTRY_BASE_URL": info["base_url"], "SENTRY_AUTH_TOKEN": info["token"], "SENTRY_ORG": info["org"],
               "SENTRY_PROJECT": info["project"]}
        if "dsn" in info:
            env["SENTRY_DSN"] = info["dsn"]
        if "slack" in info:
            env.update(SLACK_BOT_TOKEN=info["slack"]["token"], SLACK_BASE_URL=info["slack"]["base_url"])
        if "pagerduty" in info:
            env.update(PAGERDUTY_API_TOKEN=info["pagerduty"]["token"], PAGERDUTY_BASE_URL=info["pagerduty"]["base_url"])
            if info["pagerduty"].get("from_email"):
                env["PAGERDUTY_FROM_EMAIL"] = info["pagerduty"]["from_email"]
        if "runbook" in info:
            env.update(PAYMON_RUNBOOK_TOKEN=info["runbook"]["token"], PAYMON_RUNBOOK_BASE_URL=info["runbook"]["base_url"])
        if "lemonsqueezy" in info:
            env.update(LEMONSQUEEZY_API_KEY=info["lemonsqueezy"]["api_key"],
                       LEMONSQUEEZY_BASE_URL=info["lemonsqueezy"]["base_url"])
        if "app" in self.backends:
            app = self.backends["app"]
            env.update(PAYMON_APP_URL=info["app"]["base_url"], LEMONSQUEEZY_WEBHOOK_SECRET=app.webhook_secret,
                       CRON_SECRET=app.cron_secret)
            synthetic = [s for s in app.subscriptions.values() if s.get("user_id") == "paymon-synthetic"]
            if synthetic:
                env["PAYMON_SYNTHETIC_SUBSCRIPTION_ID"] = str(synthetic[0]["id"])
        return env

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> SandboxServer:
        # Services with a start-up of their own (the payment app: its test-mode guard and the
        # world's history, sent to Sentry) run it now that the sandbox's address is known.
        for backend in self.backends.values():
            if hasattr(backend, "start") and callable(backend.start):
                backend.start()
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]},
                                        name=f"paymon-sandbox-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self.START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"sandbox server on {self.base_url} did not start")
            time.sleep(0.002)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=self.START_TIMEOUT)
            self._thread = None
        self._socket.close()
        for backend in self.backends.values():
            if hasattr(backend, "stop") and callable(backend.stop):
                backend.stop()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
