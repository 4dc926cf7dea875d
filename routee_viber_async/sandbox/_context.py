"""The sandbox's parts wired together, and what every request handler looks up in them."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable

import attrs
from aiohttp import web

from .._enums import TemplateCategory, TemplateStatus
from ._auth import TokenStore
from ._callbacks import CallbackDispatcher, CallbackRecord
from ._delivery import DeliveryEngine
from ._faults import FaultInjector
from ._inbox import CallbackView, Changes, Inbox, mask_callback_url
from ._moderation import Moderator
from ._options import SandboxOptions
from ._scheduler import Scheduler
from ._state import FOREIGN_ACCOUNT, SANDBOX_ACCOUNT, Sender, Store, TemplateRecord
from ._wire import ApiError, iso_now

__all__ = [
    "ACCOUNT_KEY",
    "CONTEXT_KEY",
    "DEFAULT_OTP_TEMPLATE_ID",
    "Context",
    "account_of",
    "build_context",
    "context_of",
    "resolve_sender",
]

#: The built-in, approved OTP template legacy ``POST /viber/otp`` uses without ``templateId``.
DEFAULT_OTP_TEMPLATE_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "routee-sandbox:default-otp"))


@attrs.define
class Context:
    """Everything a request handler needs."""

    options: SandboxOptions
    store: Store
    tokens: TokenStore
    faults: FaultInjector
    scheduler: Scheduler
    callbacks: CallbackDispatcher
    moderator: Moderator
    delivery: DeliveryEngine
    default_otp_template: TemplateRecord
    inbox: Inbox


CONTEXT_KEY = web.AppKey("routee_sandbox_context", Context)
ACCOUNT_KEY = web.RequestKey("routee_sandbox_account", str)


def _default_otp_template(sender: Sender) -> TemplateRecord:
    now = iso_now()
    return TemplateRecord(
        template_id=DEFAULT_OTP_TEMPLATE_ID,
        service_id=1000,
        sender_id=sender.sender_id,
        account_id=sender.account_id,
        category=TemplateCategory.OTP.value,
        params=[{"name": "pin", "type": "TEXT"}],
        locales=[
            {"lang": "en", "template": "Your verification code is {{pin}}."},
            {"lang": "el", "template": "Ο κωδικός επαλήθευσής σας είναι {{pin}}."},  # noqa: RUF001
        ],
        var_example=[{"name": "pin", "example": "123456"}],
        created_at=now,
        updated_at=now,
        status=TemplateStatus.APPROVED,
    )


def build_context(
    options: SandboxOptions,
    application_id: str,
    secret: str,
    no_viber_credentials: tuple[str, str],
) -> Context:
    """Create every part of a sandbox from its options.

    ``application_id``/``secret`` get ``viber`` tokens of the sandbox's account;
    ``no_viber_credentials`` get tokens of the same account without a Viber scope.
    """
    rng = random.Random(options.seed)
    changes = Changes()
    inbox = Inbox(changes)
    store = Store()
    own = Sender(options.sender_id, SANDBOX_ACCOUNT, options.sender_name)
    store.add_sender(own)
    store.add_sender(Sender(options.foreign_sender_id, FOREIGN_ACCOUNT, "Foreign sender"))
    tokens = TokenStore(options.token_ttl)
    tokens.register(application_id, secret, SANDBOX_ACCOUNT, "viber")
    tokens.register(*no_viber_credentials, SANDBOX_ACCOUNT, "sms")
    scheduler = Scheduler()
    callbacks = CallbackDispatcher(
        scheduler,
        attempts=options.callback_attempts,
        retry_delay=options.callback_retry_delay,
        timeout=options.callback_timeout,
        concurrency=options.callback_concurrency,
        log_size=options.callback_log_size,
    )
    callbacks.on_finished = _show_callbacks_in(inbox)
    moderation_delay = None if options.moderation == "manual" else options.moderation_delay
    return Context(
        options=options,
        store=store,
        tokens=tokens,
        faults=FaultInjector(options.faults, options.fault_after_accept_share, rng),
        scheduler=scheduler,
        callbacks=callbacks,
        moderator=Moderator(store, scheduler, callbacks, moderation_delay, changes.bump),
        delivery=DeliveryEngine(
            scheduler,
            callbacks,
            rng,
            step_delay=options.delivery_delay,
            failed_share=options.failed_share,
            expired_share=options.expired_share,
            ttl_scale=options.ttl_scale,
            on_change=changes.bump,
        ),
        default_otp_template=_default_otp_template(own),
        inbox=inbox,
    )


def _show_callbacks_in(inbox: Inbox) -> Callable[[str, CallbackRecord, float], None]:
    """The dispatcher's ``on_finished``: each finished callback shown in the inbox."""

    def show(subject: str, record: CallbackRecord, seconds: float) -> None:
        payload = record.payload
        if record.kind == "delivery":
            status = payload.get("status")
            event = str(status.get("name", "")) if isinstance(status, dict) else ""
        else:
            event = str(payload.get("templateStatus", ""))
        view = CallbackView(
            kind=record.kind,
            url=mask_callback_url(record.url),
            event=event,
            ok=record.ok,
            status=record.status,
            attempts=record.attempts,
            latency_ms=seconds * 1000,
            date=iso_now(),
        )
        inbox.note_callback(subject, view)

    return show


def context_of(request: web.Request) -> Context:
    """The sandbox context of a request."""
    return request.app[CONTEXT_KEY]


def account_of(request: web.Request) -> str:
    """The account the request's access token belongs to."""
    return request[ACCOUNT_KEY]


def resolve_sender(ctx: Context, account: str, sender_id: object) -> Sender:
    """The caller's sender: 404 when unknown, 403 when another account owns it."""
    sender = ctx.store.senders.get(sender_id) if isinstance(sender_id, str) else None
    if sender is None:
        raise ApiError(404, f"Sender {sender_id} was not found.")
    if sender.account_id != account:
        raise ApiError(403, "Access to this sender is denied for your account.")
    return sender
