"""Routes of the reference payment app (mounted under `/app`)."""

from __future__ import annotations

from paymon.sandbox.app.models import CHECKOUT_PAYG, CHECKOUT_PRO, PAYG_CREATE, RECONCILE, WEBHOOK

url_paths = {
    CHECKOUT_PRO: "checkout_pro",
    CHECKOUT_PAYG: "checkout_payg",
    WEBHOOK: "webhook",
    PAYG_CREATE: "payg_create",
    RECONCILE: "reconcile",
}


def build_routes(responder) -> list:
    from starlette.routing import Route

    return [Route(path, getattr(responder, handler), methods=["POST"]) for path, handler in url_paths.items()]
