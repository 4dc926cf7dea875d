"""``Sandbox``: a local Routee emulator on loopback, and ``serve`` for the command line."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import uuid
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self, TextIO

import attrs
from aiohttp import web

from .._enums import DeliveryStatus, MessageKind, TemplateStatus
from .._validation import is_loopback_host
from ._app import build_app
from ._callbacks import CallbackRecord
from ._context import DEFAULT_OTP_TEMPLATE_ID, Context, build_context
from ._delivery import Fate, FateChoice
from ._faults import FaultKind, FaultRates
from ._options import SandboxOptions
from ._state import MessageRecord, TemplateRecord
from ._ui import reset, thread_view

if TYPE_CHECKING:
    from .._auth import ClientCredentials

__all__ = ["InboxMessage", "Sandbox", "SentMessage", "serve"]


@attrs.frozen
class SentMessage:
    """An accepted send as the sandbox sees it (never with its parameters, so never a pin)."""

    tracking_id: str
    kind: MessageKind
    sender_info_tracking_id: str
    to: str
    seq: int
    template_id: str
    template_lang: str
    delivery_scope: str
    status: DeliveryStatus
    status_date: str
    created_at: str
    callback_url: str | None
    ttl: int | None
    label: str | None

    @classmethod
    def _of(cls, record: MessageRecord) -> SentMessage:
        return cls(
            tracking_id=record.tracking_id,
            kind=record.kind,
            sender_info_tracking_id=record.sender_id,
            to=record.to,
            seq=record.seq,
            template_id=record.template_id,
            template_lang=record.template_lang,
            delivery_scope=record.delivery_scope,
            status=record.status,
            status_date=record.status_date,
            created_at=record.created_at,
            callback_url=record.callback_url,
            ttl=record.ttl,
            label=record.label,
        )


@attrs.frozen
class InboxMessage:
    """A message as the inbox shows it: the handset's text (pin included: never in the repr),
    its status timeline and the delivery callbacks the sandbox POSTed for it."""

    tracking_id: str
    to: str
    text: str = attrs.field(repr=False)
    """The template's text in the send's language with its parameters filled in."""
    status: DeliveryStatus
    template_id: str
    template_lang: str
    delivery_scope: str
    seq: int
    timeline: tuple[tuple[DeliveryStatus, str], ...]
    """Every status with its date, oldest first."""
    callbacks: tuple[dict[str, Any], ...]
    """The finished delivery callbacks, as the JSON API shows them (URL token masked)."""
    failure_reason: str | None = None

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> InboxMessage:
        """One message of ``GET /_sandbox/inbox`` (or ``/_sandbox/inbox/{to}``)."""
        return cls(
            tracking_id=item["trackingId"],
            to=item["to"],
            text=item["text"],
            status=DeliveryStatus(item["status"]),
            template_id=item["templateId"],
            template_lang=item["templateLang"],
            delivery_scope=item["deliveryScope"],
            seq=item["seq"],
            timeline=tuple((DeliveryStatus(t["status"]), t["date"]) for t in item["timeline"]),
            callbacks=tuple(item["callbacks"]),
            failure_reason=item.get("failureReason"),
        )


class Sandbox:
    """A local emulator of Routee's Viber API, on a free loopback port.

    ::

        async with Sandbox(moderation_delay=0.01, delivery_delay=0.01) as sb:
            client = RouteeViberClient(
                credentials=sb.credentials, base_url=sb.base_url, auth_url=sb.auth_url
            )

    It issues OAuth tokens for :attr:`credentials`, enforces the seeds' rules and error shapes,
    moderates templates, moves messages through their delivery statuses, POSTs moderation and
    delivery callbacks, and injects faults. Every option is described on
    :class:`~routee_viber_async.sandbox.SandboxOptions`.

    The inspection attributes (:attr:`messages`, :attr:`fault_counts`, ...) and the moderation
    and fault methods are meant for the event loop's thread.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        moderation_delay: float | None = 0.2,
        delivery_delay: float = 0.3,
        moderation: Literal["auto", "manual"] = "auto",
        ui: bool = False,
        allow_remote: bool = False,
        token_ttl: float = 3600.0,
        invalid_token_status: int = 403,
        legacy_invalid_token_status: int = 401,
        failed_share: float = 0.0,
        expired_share: float = 0.0,
        ttl_scale: float = 1.0,
        faults: FaultRates | Mapping[str, Any] | None = None,
        fault_after_accept_share: float = 0.5,
        seed: int | None = None,
        callback_attempts: int = 3,
        callback_retry_delay: float = 0.5,
        callback_timeout: float = 5.0,
        callback_concurrency: int = 32,
        callback_log_size: int = 1000,
        sender_id: str = "sandbox-sender",
        sender_name: str = "Sandbox",
        foreign_sender_id: str = "foreign-sender",
        application_id: str | None = None,
        application_secret: str | None = None,
        application_name: str = "routee-sandbox",
        price: float = 0.01,
        legacy_otp_ttl: int = 86400,
    ) -> None:
        from .._auth import ClientCredentials

        self.options = SandboxOptions(
            host=host,
            port=port,
            moderation_delay=moderation_delay,
            delivery_delay=delivery_delay,
            moderation=moderation,
            ui=ui,
            allow_remote=allow_remote,
            token_ttl=token_ttl,
            invalid_token_status=invalid_token_status,
            legacy_invalid_token_status=legacy_invalid_token_status,
            failed_share=failed_share,
            expired_share=expired_share,
            ttl_scale=ttl_scale,
            faults=faults,
            fault_after_accept_share=fault_after_accept_share,
            seed=seed,
            callback_attempts=callback_attempts,
            callback_retry_delay=callback_retry_delay,
            callback_timeout=callback_timeout,
            callback_concurrency=callback_concurrency,
            callback_log_size=callback_log_size,
            sender_id=sender_id,
            sender_name=sender_name,
            foreign_sender_id=foreign_sender_id,
            application_id=application_id,
            application_secret=application_secret,
            application_name=application_name,
            price=price,
            legacy_otp_ttl=legacy_otp_ttl,
        )
        app_id = self.options.application_id or f"sandbox-app-{uuid.uuid4().hex[:12]}"
        secret = self.options.application_secret or secrets.token_urlsafe(24)
        self.credentials: ClientCredentials = ClientCredentials(app_id, secret)
        """Client credentials the sandbox's auth URL accepts (``viber`` scope)."""
        self.no_viber_credentials: ClientCredentials = ClientCredentials(
            f"{app_id}-sms-only", secrets.token_urlsafe(24)
        )
        """Credentials of the same account whose tokens lack a Viber scope: every Viber
        endpoint answers them 403 (seed 001: "no Viber permission")."""
        self._ctx: Context = build_context(
            self.options,
            app_id,
            secret,
            (
                self.no_viber_credentials.application_id,
                self.no_viber_credentials.application_secret,
            ),
        )
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> Self:
        """Start serving (idempotent); returns the sandbox."""
        if self._closed:
            raise RuntimeError("this Sandbox is closed; create a new one")
        if self._runner is not None:
            return self
        if not self.options.allow_remote:
            await _refuse_remote(self.options.host)
        app = build_app(self._ctx)
        await self._ctx.callbacks.start()
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        try:
            await runner.setup()
            site = web.TCPSite(runner, self.options.host, self.options.port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            await self._ctx.callbacks.close()
            raise
        self._runner = runner
        host, port = runner.addresses[0][:2]
        shown = f"[{host}]" if ":" in host else host
        self._base_url = f"http://{shown}:{port}"
        return self

    async def close(self) -> None:
        """Stop serving, drop pending deliveries and callbacks, close everything (idempotent)."""
        if self._closed:
            return
        self._closed = True
        runner, self._runner = self._runner, None
        try:
            if runner is not None:
                await runner.cleanup()
        finally:
            self._ctx.scheduler.close()
            await self._ctx.callbacks.close()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def wait_idle(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until no delivery step, moderation or callback is pending.

        Raises ``TimeoutError`` after ``timeout`` seconds.
        """
        async with asyncio.timeout(timeout):
            # Polling: idleness is "nothing queued anywhere", cheaper to test than to signal.
            while len(self._ctx.scheduler) or self._ctx.callbacks.pending:  # noqa: ASYNC110
                await asyncio.sleep(0.005)

    # -- addresses and identities ------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``: the API base URL (once started)."""
        if self._base_url is None:
            raise RuntimeError("the sandbox is not started; use `async with Sandbox() as sb`")
        return self._base_url

    @property
    def inbox_url(self) -> str:
        """The web inbox (``{base_url}/``; served with ``ui=True``)."""
        return f"{self.base_url}/"

    @property
    def auth_url(self) -> str:
        """The OAuth token URL (``{base_url}/oauth/token``)."""
        return f"{self.base_url}/oauth/token"

    @property
    def port(self) -> int:
        """The TCP port served (once started)."""
        return int(self.base_url.rsplit(":", 1)[1])

    @property
    def sender_id(self) -> str:
        """The ``senderInfoTrackingId`` the credentials own."""
        return self.options.sender_id

    @property
    def foreign_sender_id(self) -> str:
        """A sender that exists but belongs to another account (sends get 403)."""
        return self.options.foreign_sender_id

    @property
    def default_otp_template_id(self) -> str:
        """The built-in approved OTP template legacy ``POST /viber/otp`` uses by default."""
        return DEFAULT_OTP_TEMPLATE_ID

    # -- moderation, tokens, faults ------------------------------------------------------------

    def _template(self, template_id: str) -> TemplateRecord:
        template = self._ctx.store.templates.get(template_id)
        if template is None:
            raise KeyError(f"no template {template_id!r} in the sandbox")
        return template

    def approve(self, template_id: str) -> None:
        """Approve a template now (and POST its moderation callback). ``KeyError`` if unknown."""
        self._ctx.moderator.decide(self._template(template_id), TemplateStatus.APPROVED)

    def reject(self, template_id: str, reason: str = "Rejected by the sandbox.") -> None:
        """Reject a template now with ``reason`` (and POST its moderation callback)."""
        self._ctx.moderator.decide(self._template(template_id), TemplateStatus.REJECTED, reason)

    def template_status(self, template_id: str) -> TemplateStatus:
        """A template's moderation status. ``KeyError`` if unknown."""
        return self._template(template_id).status

    def revoke_tokens(self) -> int:
        """Invalidate every issued access token; returns how many were valid."""
        return self._ctx.tokens.revoke_all()

    def inject_fault(
        self, kind: FaultKind | str, *, times: int = 1, after_accept: bool = False
    ) -> None:
        """Give the next ``times`` API requests the fault ``kind``, ahead of the random rates.

        ``after_accept`` (500, 502, 504, dropped connection, slow reply only) processes the
        request first, so a send is stored and delivered although its answer is lost.
        """
        self._ctx.faults.force(FaultKind(kind), times=times, after_accept=after_accept)

    def set_faults(
        self,
        faults: FaultRates | Mapping[str, Any] | None,
        *,
        fault_after_accept_share: float | None = None,
    ) -> None:
        """Change the fault rates (and optionally the after-acceptance share) from now on.

        ``None`` turns random faults off. Counts so far are kept.
        """
        if faults is None:
            rates = FaultRates()
        elif isinstance(faults, FaultRates):
            rates = faults
        else:
            rates = FaultRates(**faults)
        share = (
            self._ctx.faults.after_accept_share
            if fault_after_accept_share is None
            else fault_after_accept_share
        )
        self._ctx.faults.configure(rates, share)

    def set_fate(
        self,
        fate: Fate | str,
        *,
        to: str | None = None,
        reason: str | None = None,
        count: int = 1,
    ) -> None:
        """Choose what happens to later messages: ``delivered``, ``seen``, ``failed`` (with
        ``reason``), ``expired`` or ``never_delivered``.

        With ``to``, every later message to that recipient (until :meth:`clear_fates`);
        otherwise the next ``count`` messages.
        """
        choice = FateChoice(Fate(fate), reason if Fate(fate) is Fate.FAILED else None)
        if to is not None:
            self._ctx.delivery.fates.for_recipient(to, choice)
        else:
            self._ctx.delivery.fates.for_next(choice, count)
        self._ctx.inbox.changes.bump()

    def clear_fates(self, to: str | None = None) -> None:
        """Forget the fate chosen for ``to``, or every chosen fate."""
        if to is None:
            self._ctx.delivery.fates.clear()
        else:
            self._ctx.delivery.fates.for_recipient(to, None)
        self._ctx.inbox.changes.bump()

    def reset(self) -> None:
        """Forget every message, callback, chosen fate and fault; templates and tokens stay."""
        reset(self._ctx)

    # -- inspection ----------------------------------------------------------------------------

    def inbox(self, to: str) -> list[InboxMessage]:
        """The messages sent to ``to`` as the handset shows them, newest first.

        The same data as ``GET /_sandbox/inbox/{to}``; the texts hold the pins.
        """
        thread = thread_view(self._ctx, to)
        return [InboxMessage.from_json(item) for item in thread["messages"]]

    @property
    def messages(self) -> list[SentMessage]:
        """Every accepted message, in acceptance order (a snapshot)."""
        return [SentMessage._of(r) for r in self._ctx.store.messages.values()]

    def message(self, tracking_id: str) -> SentMessage:
        """One accepted message by tracking id. ``KeyError`` if unknown."""
        return SentMessage._of(self._ctx.store.messages[tracking_id])

    @property
    def duplicate_seq_count(self) -> int:
        """Sends accepted with a caller-supplied ``seq`` that an earlier accepted send had."""
        return self._ctx.store.duplicate_seq_count

    @property
    def fault_counts(self) -> dict[str, int]:
        """Injected faults by kind (every :class:`FaultKind` value is a key)."""
        counts = self._ctx.faults.counts
        return {kind.value: counts[kind] for kind in FaultKind}

    @property
    def faults_after_accept(self) -> int:
        """Injected faults that struck after the request was processed."""
        return self._ctx.faults.after_accept_count

    @property
    def callbacks_sent(self) -> int:
        """Callbacks (delivery and moderation) the receivers accepted with a 2xx."""
        return self._ctx.callbacks.sent

    @property
    def callbacks_failed(self) -> int:
        """Callbacks given up on after ``callback_attempts`` attempts."""
        return self._ctx.callbacks.failed

    @property
    def callback_attempts_made(self) -> int:
        """Callback POST attempts in all, retries included."""
        return self._ctx.callbacks.attempts_made

    @property
    def callback_log(self) -> list[CallbackRecord]:
        """The most recent finished callbacks (``callback_log_size`` of them)."""
        return list(self._ctx.callbacks.log)

    @property
    def tokens_issued(self) -> int:
        """Access tokens issued so far."""
        return self._ctx.tokens.issued


async def serve(
    host: str = "127.0.0.1", port: int = 0, *, out: TextIO | None = None, **options: Any
) -> None:
    """Serve a sandbox until cancelled, after printing how to reach it.

    ``options`` are :class:`Sandbox`'s. Prints the base URL, auth URL, application id and
    secret, sender id and built-in approved OTP template to ``out`` (stdout by default). Raises
    :class:`OSError` with a one-line message (``cannot listen on HOST:PORT: address already in
    use``) when it cannot start.
    """
    stream = out if out is not None else sys.stdout
    sandbox = Sandbox(host=host, port=port, **options)
    try:
        await sandbox.start()
    except OSError as exc:
        raise _cannot_listen(host, port, exc) from None
    # The built-in OTP template (the legacy endpoint's default) becomes a template of the
    # sender like any created one, so that the ROUTEE_OTP_TEMPLATE_ID printed below can be
    # listed, fetched and sent with, as the README's Quick start does.
    builtin = sandbox._ctx.default_otp_template
    sandbox._ctx.store.templates.setdefault(builtin.template_id, builtin)
    async with sandbox as sb:
        print(f"Routee sandbox listening on {sb.base_url}", file=stream)
        if sb.options.ui:
            print(f"  inbox:               {sb.inbox_url}", file=stream)
        print(f"  base URL:            {sb.base_url}", file=stream)
        print(f"  auth URL:            {sb.auth_url}", file=stream)
        print(f"  application id:      {sb.credentials.application_id}", file=stream)
        print(f"  application secret:  {sb.credentials.application_secret}", file=stream)
        print(f"  sender id:           {sb.sender_id}", file=stream)
        print("For RouteeViberClient.from_env():", file=stream)
        print(f"  export ROUTEE_BASE_URL={sb.base_url}", file=stream)
        print(f"  export ROUTEE_AUTH_URL={sb.auth_url}", file=stream)
        print(f"  export ROUTEE_APPLICATION_ID={sb.credentials.application_id}", file=stream)
        secret = sb.credentials.application_secret
        print(f"  export ROUTEE_APPLICATION_SECRET={secret}", file=stream)
        print("For the README's Quick start and examples/fastapi_service.py:", file=stream)
        print(f"  export ROUTEE_SENDER_ID={sb.sender_id}", file=stream)
        print(f"  export ROUTEE_OTP_TEMPLATE_ID={sb.default_otp_template_id}", file=stream)
        print("Press Ctrl+C to stop.", file=stream, flush=True)
        await asyncio.Event().wait()


async def _refuse_remote(host: str) -> None:
    """Raise ``ValueError`` unless ``host`` is, or resolves only to, loopback addresses.

    A name that does not resolve is let through: binding then fails with its own message.
    """
    if is_loopback_host(host):
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None)
    except OSError:
        return
    addresses = {info[4][0] for info in infos}
    if addresses and all(is_loopback_host(str(address)) for address in addresses):
        return
    raise ValueError(
        f"refusing to serve the sandbox on {host}: it is not a loopback address, and the "
        "inbox shows OTP pins; pass allow_remote=True (--allow-remote) to serve it there"
    )


def _cannot_listen(host: str, port: int, error: OSError) -> OSError:
    """``error`` (a bind or name-resolution failure) said in one line that names the address."""
    code = error.errno
    if code is not None and code > 0:
        reason = os.strerror(code).lower()
    else:  # a getaddrinfo error (negative code) says it in its strerror
        reason = error.strerror or str(error)
    failure = OSError(f"cannot listen on {host}:{port}: {reason}")
    failure.errno = error.errno
    return failure
