"""The inbox: its JSON API under ``/_sandbox/`` and, with ``ui=True``, its page at ``/``.

The API (described in ``docs/sandbox-api.md``) is what the page, the pytest plugin and scripts
use. It needs no token and injects no fault, like ``/sandbox/...``; it shows pins, which is why
the sandbox serves only loopback unless ``allow_remote`` is set. ``GET /_sandbox/events`` is a
Server-Sent Events stream that says "something changed" at most a few times a second, so that
a page open during a large fan-out costs the sandbox one small event and one page fetch per
interval, whatever the rate of sends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Container, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web

from .._enums import TemplateStatus
from ._context import Context, context_of
from ._delivery import Fate, FateChoice
from ._faults import FaultKind, FaultRates
from ._state import TemplateRecord
from ._views import inbox_view
from ._wire import ApiError, bad_request, json_response, read_json_object

__all__ = ["EVENT_INTERVAL", "add_inbox_routes", "decide_from_request", "reset", "thread_view"]

#: The shortest time between two change events of one stream (seconds).
EVENT_INTERVAL = 0.5
#: A comment line is sent after this long without a change, so a gone page is noticed.
_KEEPALIVE = 15.0
_DEFAULT_LIMIT = 20
_MAX_LIMIT = 200
_PREFIX = "/_sandbox"


def _static_dir() -> Path:
    return Path(str(resources.files("routee_viber_async.sandbox") / "static"))


def _int_query(request: web.Request, name: str, default: int, maximum: int) -> int:
    raw = request.query.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"The query parameter {name} must be an integer.") from None
    if not 0 <= value <= maximum:
        raise bad_request(f"The query parameter {name} must be between 0 and {maximum}.")
    return value


def _recipient(text: str, known: Container[str]) -> str:
    """A recipient typed in a URL, where an unencoded ``+`` arrives as a space: ``+`` is put
    back unless ``known`` has the number as it came."""
    to = text.strip()
    if to and not to.startswith("+") and to not in known:
        return "+" + to
    return to


def thread_view(ctx: Context, to: str, limit: int | None = None) -> dict[str, Any]:
    """A recipient's thread: its newest ``limit`` messages (all when None), newest first."""
    records = ctx.inbox.thread(to)
    shown = records if limit is None else records[:limit]
    inbox = ctx.inbox
    return {
        "to": to,
        "count": len(records),
        "messages": [
            inbox_view(r, inbox.text(r.tracking_id), inbox.callbacks(r.tracking_id)) for r in shown
        ],
    }


async def get_inbox(request: web.Request) -> web.Response:
    """``GET /_sandbox/inbox?offset=&limit=&to=&messages=``: a page of threads, newest first."""
    ctx = context_of(request)
    per_thread = _int_query(request, "messages", 5, _MAX_LIMIT)
    to = _recipient(request.query.get("to", ""), ctx.inbox)
    if to:
        recipients = [to] if ctx.inbox.thread(to) else []
        total, offset, limit = len(recipients), 0, _DEFAULT_LIMIT
    else:
        offset = _int_query(request, "offset", 0, 10**9)
        limit = _int_query(request, "limit", _DEFAULT_LIMIT, _MAX_LIMIT)
        recipients = ctx.inbox.recipients(offset, limit)
        total = ctx.inbox.recipient_count
    return json_response(
        {
            "total": total,
            "offset": offset,
            "limit": limit,
            "messageCount": len(ctx.store.messages),
            "version": ctx.inbox.changes.version,
            "threads": [thread_view(ctx, r, per_thread) for r in recipients],
        }
    )


async def get_thread(request: web.Request) -> web.Response:
    """``GET /_sandbox/inbox/{to}``: every message to one recipient, newest first."""
    ctx = context_of(request)
    return json_response(thread_view(ctx, _recipient(request.match_info["to"], ctx.inbox)))


def _template_view(ctx: Context, template: TemplateRecord) -> dict[str, Any]:
    view = template.to_wire()
    view["languages"] = template.languages
    view["callbacks"] = [c.to_json() for c in ctx.inbox.callbacks(template.template_id)]
    return view


async def get_templates(request: web.Request) -> web.Response:
    """``GET /_sandbox/templates``: every template, the newest first."""
    ctx = context_of(request)
    templates = [_template_view(ctx, t) for t in reversed(ctx.store.templates.values())]
    return json_response({"moderation": _moderation(ctx), "templates": templates})


async def moderate(request: web.Request) -> web.Response:
    """``POST /_sandbox/templates/{id}/approve`` or ``/reject`` (``{"reason": ...}``)."""
    ctx = context_of(request)
    return json_response(_template_view(ctx, await decide_from_request(request)))


async def decide_from_request(request: web.Request) -> TemplateRecord:
    """Approve or reject the template a moderation route names; the template."""
    ctx = context_of(request)
    template = ctx.store.templates.get(request.match_info["template_id"])
    if template is None:
        raise ApiError(404, "Template was not found.")
    if request.match_info["decision"] == "approve":
        ctx.moderator.decide(template, TemplateStatus.APPROVED)
    else:
        body = await read_json_object(request, required=False)
        reason = body.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise bad_request("reason must be a string.")
        ctx.moderator.decide(template, TemplateStatus.REJECTED, reason or "Rejected.")
    return template


def _moderation(ctx: Context) -> str:
    return "manual" if ctx.moderator.manual else "auto"


def _fault_rates(rates: FaultRates) -> dict[str, Any]:
    body: dict[str, Any] = {kind.value: rate for kind, rate in rates.rates().items()}
    body["retryAfter"] = rates.retry_after
    body["slowReplyDelay"] = rates.slow_reply_delay
    return body


def _state(ctx: Context) -> dict[str, Any]:
    fates = ctx.delivery.fates
    return {
        "version": ctx.inbox.changes.version,
        "moderation": _moderation(ctx),
        "messageCount": len(ctx.store.messages),
        "recipientCount": ctx.inbox.recipient_count,
        "fates": {
            "recipients": {to: c.to_json() for to, c in fates.by_recipient.items()},
            "next": [c.to_json() for c in fates.upcoming],
        },
        "faults": _fault_rates(ctx.faults.rates),
        "faultCounts": {kind.value: ctx.faults.counts[kind] for kind in FaultKind},
        "callbacksSent": ctx.callbacks.sent,
        "callbacksFailed": ctx.callbacks.failed,
    }


async def get_state(request: web.Request) -> web.Response:
    """``GET /_sandbox/state``: moderation mode, chosen fates, fault rates, counters."""
    return json_response(_state(context_of(request)))


def _fate_choice(body: Mapping[str, Any]) -> FateChoice:
    fate = body.get("fate")
    reason = body.get("reason")
    choices = ", ".join(f.value for f in Fate)
    if not isinstance(fate, str) or fate not in {f.value for f in Fate}:
        raise bad_request(f"fate must be one of {choices}.")
    if reason is not None and not isinstance(reason, str):
        raise bad_request("reason must be a string.")
    if fate == Fate.FAILED and not reason:
        reason = "Failed by the sandbox."
    return FateChoice(Fate(fate), reason if fate == Fate.FAILED else None)


async def set_fate(request: web.Request) -> web.Response:
    """``POST /_sandbox/fates``: ``{"fate", "reason"?, "to"?}`` or ``{"fate", "count"?}``.

    With ``to``, every later message to that recipient gets the fate (until cleared); without,
    the next ``count`` messages (default 1) do.
    """
    ctx = context_of(request)
    body = await read_json_object(request)
    choice = _fate_choice(body)
    to, count = body.get("to"), body.get("count", 1)
    if to is not None:
        if not isinstance(to, str) or not to.strip():
            raise bad_request("to must be a recipient number.")
        ctx.delivery.fates.for_recipient(to.strip(), choice)
    elif isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 1_000_000:
        raise bad_request("count must be a whole number from 1 to 1000000.")
    else:
        ctx.delivery.fates.for_next(choice, count)
    ctx.inbox.changes.bump()
    return json_response(_state(ctx))


async def clear_fates(request: web.Request) -> web.Response:
    """``DELETE /_sandbox/fates[?to=...]``: forget one recipient's fate, or every fate."""
    ctx = context_of(request)
    to = request.query.get("to")
    if to is None:
        ctx.delivery.fates.clear()
    else:
        fates = ctx.delivery.fates
        fates.for_recipient(_recipient(to, fates.by_recipient), None)
    ctx.inbox.changes.bump()
    return json_response(_state(ctx))


async def set_faults(request: web.Request) -> web.Response:
    """``POST /_sandbox/faults``: new fault rates (``FaultRates`` fields, camelCase or not)."""
    ctx = context_of(request)
    body = await read_json_object(request, required=False)
    aliases = {"retryAfter": "retry_after", "slowReplyDelay": "slow_reply_delay"}
    fields = {aliases.get(key, key): value for key, value in body.items()}
    try:
        rates = FaultRates(**fields)
    except (TypeError, ValueError) as exc:
        raise bad_request(f"Bad fault rates: {exc}") from None
    ctx.faults.configure(rates, ctx.faults.after_accept_share)
    ctx.inbox.changes.bump()
    return json_response(_state(ctx))


def reset(ctx: Context) -> None:
    """Forget every message, callback, chosen fate and fault (templates and tokens stay)."""
    ctx.delivery.reset()
    ctx.store.clear_messages()
    ctx.callbacks.log.clear()
    ctx.faults.reset()
    ctx.inbox.clear()


async def post_reset(request: web.Request) -> web.Response:
    """``POST /_sandbox/reset``."""
    ctx = context_of(request)
    reset(ctx)
    return json_response(_state(ctx))


async def events(request: web.Request) -> web.StreamResponse:
    """``GET /_sandbox/events``: ``event: change`` with the version, coalesced, until closed."""
    changes = context_of(request).inbox.changes
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    with changes.subscribe() as changed, contextlib.suppress(ConnectionError):
        while True:
            await response.write(f"event: change\ndata: {changes.version}\n\n".encode())
            try:
                await asyncio.wait_for(changed.wait(), _KEEPALIVE)
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            # Coalesce a burst (a fan-out changes thousands of times a second) into one event.
            await asyncio.sleep(EVENT_INTERVAL)
            changed.clear()
    return response


async def index(request: web.Request) -> web.FileResponse:
    """``GET /``: the inbox page."""
    return web.FileResponse(_static_dir() / "index.html", headers={"Cache-Control": "no-cache"})


def add_inbox_routes(app: web.Application, ctx: Context) -> None:
    """The JSON API, and the page with its files when ``ctx.options.ui`` is set."""
    router = app.router
    router.add_get(f"{_PREFIX}/state", get_state)
    router.add_get(f"{_PREFIX}/inbox", get_inbox)
    router.add_get(f"{_PREFIX}/inbox/{{to}}", get_thread)
    router.add_get(f"{_PREFIX}/templates", get_templates)
    router.add_post(f"{_PREFIX}/templates/{{template_id}}/{{decision:approve|reject}}", moderate)
    router.add_post(f"{_PREFIX}/fates", set_fate)
    router.add_delete(f"{_PREFIX}/fates", clear_fates)
    router.add_post(f"{_PREFIX}/faults", set_faults)
    router.add_post(f"{_PREFIX}/reset", post_reset)
    router.add_get(f"{_PREFIX}/events", events)
    if ctx.options.ui:
        router.add_get("/", index)
        router.add_static(f"{_PREFIX}/ui/", _static_dir())
