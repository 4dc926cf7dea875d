"""The sandbox's aiohttp application: routes, OAuth, fault and auth middlewares, inspection.

Middlewares, outermost first: errors (every error answer in Routee's JSON shape), faults
(``/viber/...`` and, when asked, ``/oauth/token``), auth (a valid bearer token for ``/viber/...``;
otherwise ``invalid_token_status``). ``/sandbox/...`` is for inspection and ``/_sandbox/...``
is the inbox's JSON API (see :mod:`._ui`): no auth, no faults.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from ._auth import VIBER_SCOPES, basic_credentials, bearer_token
from ._context import ACCOUNT_KEY, CONTEXT_KEY, Context, context_of
from ._faults import FAULT_STATUS, Fault, FaultKind
from ._messages import get_tracking, send_legacy_otp, send_message
from ._templates import (
    create_template,
    delete_template,
    get_template,
    list_templates,
    update_template,
    update_template_legacy,
)
from ._ui import add_inbox_routes, decide_from_request
from ._views import inspection_view
from ._wire import ApiError, json_response, status_code

__all__ = ["build_app"]

logger = logging.getLogger("routee_viber_async.sandbox")

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_API_PREFIX = "/viber/"
_TOKEN_PATH = "/oauth/token"
_LEGACY_OTP_PATH = "/viber/otp"


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    headers = {"WWW-Authenticate": 'Basic realm="routee"'} if status == 401 else None
    body = {
        "error": error,
        "error_description": description,
        "code": status_code(status),
        "developerMessage": description,
    }
    return json_response(body, status=status, headers=headers)


async def issue_token(request: web.Request) -> web.Response:
    """``POST /oauth/token``: the client-credentials grant with HTTP Basic client auth."""
    ctx = context_of(request)
    credentials = basic_credentials(request.headers.get("Authorization"))
    grant = ctx.tokens.authenticate(*credentials) if credentials else None
    if grant is None:
        return _oauth_error(401, "invalid_client", "Bad client credentials.")
    form = await request.post()
    if form.get("grant_type") != "client_credentials":
        return _oauth_error(400, "unsupported_grant_type", "grant_type must be client_credentials.")
    token = ctx.tokens.issue(grant)
    return json_response(
        {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": int(ctx.options.token_ttl),
            "scope": grant.scope,
        },
        headers={"Cache-Control": "no-store"},
    )


async def list_messages(request: web.Request) -> web.Response:
    """``GET /sandbox/messages``: accepted messages and counters (no parameters, no pin)."""
    ctx = context_of(request)
    return json_response(
        {
            "messages": [inspection_view(r) for r in ctx.store.messages.values()],
            "duplicateSeqCount": ctx.store.duplicate_seq_count,
            "faultCounts": {kind.value: ctx.faults.counts[kind] for kind in FaultKind},
            "faultsAfterAccept": ctx.faults.after_accept_count,
            "callbacksSent": ctx.callbacks.sent,
            "callbacksFailed": ctx.callbacks.failed,
        }
    )


async def moderate(request: web.Request) -> web.Response:
    """``POST /sandbox/templates/{templateId}/approve`` or ``/reject`` (``{"reason": ...}``)."""
    return json_response((await decide_from_request(request)).to_wire())


@web.middleware
async def errors_middleware(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Render :class:`ApiError` and aiohttp's own errors (404, 405) in Routee's shape."""
    try:
        return await handler(request)
    except ApiError as error:
        return error.response()
    except web.HTTPException as error:
        if error.status < 400:
            raise
        headers = {"Allow": error.headers["Allow"]} if "Allow" in error.headers else None
        return ApiError(error.status, error.reason, headers=headers).response()
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("sandbox: unexpected error on %s %s", request.method, request.path)
        return ApiError(500, "Internal sandbox error.").response()


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def _drop(request: web.Request) -> web.Response:
    transport = request.transport
    if transport is not None:
        transport.abort()
    return web.Response()


def _fault_response(ctx: Context, kind: FaultKind) -> web.Response:
    status = FAULT_STATUS[kind]
    headers = None
    if kind is FaultKind.RATE_LIMIT:
        headers = {"Retry-After": ctx.faults.rates.retry_after_header}
    return ApiError(status, f"Injected fault: {kind.value}.", headers=headers).response()


async def _inject(
    ctx: Context, request: web.Request, handler: _Handler, fault: Fault
) -> web.StreamResponse:
    kind = fault.kind
    if kind is FaultKind.TOKEN_EXPIRY:
        ctx.tokens.revoke(bearer_token(request.headers.get("Authorization")))
        return await handler(request)
    delay = ctx.faults.rates.slow_reply_delay
    if not fault.after_accept:
        if kind is FaultKind.DROP_CONNECTION:
            return _drop(request)
        if kind is FaultKind.SLOW_REPLY:
            await asyncio.sleep(delay)
            if _client_gone(request):
                return web.Response()  # the caller gave up before the request was processed
            return await handler(request)
        return _fault_response(ctx, kind)
    # After acceptance: the request is processed in full, only the answer is lost or late.
    try:
        response = await handler(request)
    except ApiError as error:
        response = error.response()
    if kind is FaultKind.SLOW_REPLY:
        await asyncio.sleep(delay)
        return response
    if kind is FaultKind.DROP_CONNECTION:
        return _drop(request)
    return _fault_response(ctx, kind)


@web.middleware
async def faults_middleware(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Inject the configured (or forced) faults into API requests."""
    ctx = context_of(request)
    if request.path.startswith(_API_PREFIX):
        fault = ctx.faults.pick()
    elif request.path == _TOKEN_PATH:
        fault = ctx.faults.pick(oauth=True)
    else:
        fault = None
    if fault is None:
        return await handler(request)
    return await _inject(ctx, request, handler, fault)


@web.middleware
async def auth_middleware(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """API requests need a valid bearer token with a Viber scope; its account goes on the request.

    A missing, invalid, expired or revoked token gets ``invalid_token_status`` (seed 001: 403
    usually), or ``legacy_invalid_token_status`` on legacy ``POST /viber/otp`` (seed 000: 401).
    A valid token without a Viber scope gets 403.
    """
    if not request.path.startswith(_API_PREFIX):
        return await handler(request)
    ctx = context_of(request)
    token = bearer_token(request.headers.get("Authorization"))
    grant = ctx.tokens.check(token)
    if grant is None:
        status = (
            ctx.options.legacy_invalid_token_status
            if request.path == _LEGACY_OTP_PATH
            else ctx.options.invalid_token_status
        )
        headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'} if status == 401 else None
        message = (
            "An access token is required."
            if token is None
            else "The access token is invalid, expired or revoked."
        )
        raise ApiError(status, message, headers=headers)
    if grant.scope not in VIBER_SCOPES:
        raise ApiError(403, "Your access token has no Viber permission.")
    request[ACCOUNT_KEY] = grant.account_id
    return await handler(request)


def build_app(ctx: Context) -> web.Application:
    """The sandbox's web application."""
    app = web.Application(middlewares=[errors_middleware, faults_middleware, auth_middleware])
    app[CONTEXT_KEY] = ctx
    templates = "/viber/transactional/templates"
    app.router.add_post(_TOKEN_PATH, issue_token)
    app.router.add_get(templates, list_templates)
    app.router.add_post(templates, create_template)
    app.router.add_get(templates + "/{template_id}", get_template)
    app.router.add_patch(templates + "/{template_id}", update_template)
    app.router.add_delete(templates + "/{template_id}", delete_template)
    app.router.add_patch("/viber/bm/transactional-templates/{template_id}", update_template_legacy)
    app.router.add_post("/viber/transactional/messages", send_message)
    app.router.add_post(_LEGACY_OTP_PATH, send_legacy_otp)
    app.router.add_get("/viber/tracking/{tracking_id}", get_tracking)
    app.router.add_get("/sandbox/messages", list_messages)
    app.router.add_post("/sandbox/templates/{template_id}/{decision:approve|reject}", moderate)
    add_inbox_routes(app, ctx)
    return app
