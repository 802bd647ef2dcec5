"""HTTP handlers of the reference payment app: each request is one sentry-sdk transaction named
after its route (`payment_flow` tagged by the §2 hook); each does its simulated work (a seeded
sleep, or with `latency_mode: report` none, only its duration reported), may fail per
`error_rate`, then calls the backend. Every answer that did work says how long in
`Server-Timing: app;dur=<ms>` (W3C Server Timing, as Next.js apps can emit it)."""

from __future__ import annotations

import asyncio
import contextvars
import hmac
from datetime import datetime, timedelta, timezone

from starlette.requests import Request
from starlette.responses import JSONResponse

from paymon.sandbox.app.models import (
    CHECKOUT_PAYG,
    CHECKOUT_PRO,
    INVALID_SIGNATURE,
    PAYG_CREATE,
    SYNTHETIC_USER,
    WEBHOOK,
    AppBackend,
    SignatureCompareError,
    parse_json,
)


# The simulated work of the request being handled (seconds), for its transaction and Server-Timing.
_work_done: contextvars.ContextVar[float | None] = contextvars.ContextVar("work_done", default=None)


class AppResponse:
    def __init__(self, backend: AppBackend):
        self.backend = backend

    async def _work(self, endpoint: str) -> JSONResponse | None:
        """Do (or, reporting only, record) the drawn latency; a 500 if this request is one of the
        `error_rate` failures, the `fail_endpoints` status if its endpoint has one."""
        delay, fails = self.backend.draw_work(endpoint)
        _work_done.set(delay)
        if delay > 0 and not self.backend.reports_latency_only:
            await asyncio.sleep(delay)
        if fails:
            return JSONResponse({"error": "Internal server error"}, status_code=500)
        if status := self.backend.forced_failure(endpoint):
            return JSONResponse({"error": "Internal server error"}, status_code=status)
        return None

    async def _traced(self, endpoint: str, handler, request: Request) -> JSONResponse:
        """The request as one transaction (op http.server, the route as its name, status from the
        HTTP code), as @sentry/nextjs traces an API route."""
        token = _work_done.set(None)
        try:
            with self.backend.telemetry.transaction(endpoint, "http.server") as tx:
                response = await handler(request)
                work = _work_done.get()
                if tx is not None:
                    tx.set_http_status(response.status_code)
                    if work and self.backend.reports_latency_only:  # it lasted what it reports
                        tx.start_timestamp -= timedelta(seconds=work)
                        tx.finish(end_timestamp=datetime.now(timezone.utc))
                if work is not None:
                    response.headers["Server-Timing"] = f"app;dur={work * 1000:.3f}"
                return response
        finally:
            _work_done.reset(token)

    @staticmethod
    async def _user(request: Request) -> str:
        payload = parse_json(await request.body()) or {}
        return str(payload.get("user_id") or SYNTHETIC_USER)

    async def checkout_pro(self, request: Request) -> JSONResponse:
        return await self._traced(CHECKOUT_PRO, lambda r: self._checkout(r, CHECKOUT_PRO, "pro"), request)

    async def checkout_payg(self, request: Request) -> JSONResponse:
        return await self._traced(CHECKOUT_PAYG, lambda r: self._checkout(r, CHECKOUT_PAYG, "payg"), request)

    async def _checkout(self, request: Request, endpoint: str, tier: str) -> JSONResponse:
        if failed := await self._work(endpoint):
            return failed
        result = self.backend.create_checkout(tier, await self._user(request))
        return JSONResponse(result)

    async def payg_create(self, request: Request) -> JSONResponse:
        return await self._traced(PAYG_CREATE, self._payg_create, request)

    async def _payg_create(self, request: Request) -> JSONResponse:
        if failed := await self._work(PAYG_CREATE):
            return failed
        return JSONResponse(self.backend.create_payg_subscription(await self._user(request)))

    async def webhook(self, request: Request) -> JSONResponse:
        return await self._traced(WEBHOOK, self._webhook, request)

    async def _webhook(self, request: Request) -> JSONResponse:
        raw = await request.body()  # the raw bytes: re-serialised JSON would not match the signature
        # Verify before anything else (reference §4.2): no parsing, no work for a forged delivery.
        try:
            verified = self.backend.signature_ok(raw, request.headers.get("x-signature"))
        except SignatureCompareError as exc:
            self.backend.report(str(exc), "error", {"webhook": "true"})  # what the SDK would capture
            return JSONResponse({"error": "Internal server error"}, status_code=500)
        if not verified:
            self.backend.reject_signature()
            return JSONResponse({"error": INVALID_SIGNATURE}, status_code=401)
        if failed := await self._work(WEBHOOK):
            return failed
        payload = parse_json(raw)
        if payload is None:
            return JSONResponse({"error": "Malformed webhook body"}, status_code=400)
        return JSONResponse(self.backend.process_webhook(raw, payload))

    async def reconcile(self, request: Request) -> JSONResponse:
        """`POST /api/cron/reconcile`: the daily job as a Vercel cron route, authorised by
        `Authorization: Bearer <CRON_SECRET>` (Vercel's convention); an optional JSON body
        `{"monitor_slug": ...}` names the cron monitor to check in to. 200 with the job's report."""
        given = request.headers.get("authorization", "").encode("utf-8", "replace")
        expected = f"Bearer {self.backend.cron_secret}".encode()
        if not hmac.compare_digest(given, expected):
            return JSONResponse({"error": "Unauthorized"}, status_code=401)
        slug = (parse_json(await request.body()) or {}).get("monitor_slug")
        result = await asyncio.to_thread(self.backend.reconcile, False, None, str(slug) if slug else None)
        self.backend.telemetry.flush()
        return JSONResponse(result)
