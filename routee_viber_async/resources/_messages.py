"""``POST /viber/transactional/messages`` and legacy ``POST /viber/otp``."""

from __future__ import annotations

import warnings
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from .._converter import from_wire, to_wire, wire_parser
from .._errors import InvalidResponseError, ValidationError, scrub_error
from .._json import dumps
from .._masking import secret_values
from .._ratelimit import as_rate_limiter
from .._requests import LegacyOtp, SendMessage
from .._responses import OtpResult, SendResult, Template
from .._seq import next_seq
from ._base import Resource, observe_send
from ._fanout import SendManyIterator, positive_concurrency

if TYPE_CHECKING:
    from collections.abc import AsyncIterable, Callable, Iterable

    from .._ratelimit import RateLimiter
    from .._transport import Transport

__all__ = ["MessagesResource"]

T = TypeVar("T")

_SEND_PATH = "/viber/transactional/messages"
_OTP_PATH = "/viber/otp"

_send_result_from_wire = wire_parser(SendResult)


class MessagesResource(Resource):
    """Sending approved templates, one at a time or fanned out."""

    __slots__ = ("_told_concurrency_cap",)

    def __init__(self, transport: Transport) -> None:
        super().__init__(transport)
        #: Whether send_many already warned that the client's max_concurrency caps it.
        self._told_concurrency_cap = False

    async def send(
        self, message: SendMessage, *, template: Template | None = None, validate: bool = True
    ) -> SendResult:
        """Send one message; returns once Routee accepted it (not yet delivered).

        The message is checked locally first (with ``template`` also against its parameters and
        languages). Without ``seq`` it gets one before the first attempt.
        """
        result, _ = await self._send(message, template, None, validate=validate)
        return result

    async def _send(
        self,
        message: SendMessage,
        template: Template | None,
        seq: int | None,
        *,
        validate: bool = True,
    ) -> tuple[SendResult, int]:
        """The one way a message is sent: its result and how many HTTP attempts it took.

        ``seq`` is the one to send when the message has none (``send_many`` assigns it).
        """
        if message.seq is not None:
            seq = message.seq
        elif seq is None:
            seq = next_seq()  # set before the first attempt: every retry carries the same one
        with observe_send(self._transport.hooks, "send", seq) as observation:
            secrets = secret_values(message.template_params)
            reply = await self._transport.request(
                "POST",
                _SEND_PATH,
                body=_send_body(message, template, validate, seq),
                idempotent=False,
                secrets=secrets,
            )
            result = _accepted(
                _send_result_from_wire, reply.data, reply.attempts, _SEND_PATH, secrets
            )
            observation.accepted(result, reply.attempts)
        return result, reply.attempts

    async def send_otp(self, otp: LegacyOtp, *, validate: bool = True) -> OtpResult:
        """Send an OTP through the legacy ``POST /viber/otp`` endpoint (seed 000)."""
        if validate:
            otp.validate()
        body = to_wire(otp)
        if otp.seq is None:
            body["seq"] = next_seq()
        with observe_send(self._transport.hooks, "send_otp", body["seq"]) as observation:
            secrets = secret_values(body.get("templateParams"))
            reply = await self._transport.request(
                "POST", _OTP_PATH, body=dumps(body), idempotent=False, secrets=secrets
            )
            result = _accepted(_parse_otp_result, reply.data, reply.attempts, _OTP_PATH, secrets)
            observation.accepted(result, reply.attempts)
        return result

    def send_many(
        self,
        messages: Iterable[SendMessage] | AsyncIterable[SendMessage],
        *,
        concurrency: int | None = None,
        rate_limit: float | RateLimiter | None = None,
        template: Template | None = None,
        validate: bool = True,
    ) -> SendManyIterator:
        """Send every message, yielding one :class:`SendOutcome` per input in completion order.

        Inputs are read lazily; at most ``concurrency`` sends are in flight and ``rate_limit``
        caps sends per second: a number (in this process) or a
        :class:`~routee_viber_async.RateLimiter` (e.g. a ``RedisRateLimiter`` shared by every
        process). One failure never stops the rest: errors are captured in their outcome, never
        raised. (A shared limiter that cannot be reached gives its error to the input that
        waited for it, and then ends the iteration with that error.)

        ``concurrency`` defaults to the client's ``max_concurrency`` (100 unless set), which
        also bounds it: every request of the client, a fan-out's included, waits for one of
        those slots. A ``concurrency`` above it runs at ``max_concurrency`` (with as many
        workers, so memory follows the effective figure too), and the first such call on a
        client emits a ``UserWarning`` that gives the effective concurrency and how to raise it
        (``RouteeViberClient(max_concurrency=N)``). A warning rather than an error: the fan-out
        still does all its work at the client's bound, and a program that asked for more
        should not stop sending because of it.

        Each message is checked locally before it is sent (against ``template`` when given),
        as :meth:`send` does; ``validate=False`` skips that for inputs the caller has already
        checked against the same template (``routee-viber send-many`` checks every row first).
        """
        limit = self._transport.max_concurrency
        workers = limit if concurrency is None else min(positive_concurrency(concurrency), limit)
        if concurrency is not None and workers < concurrency and not self._told_concurrency_cap:
            self._told_concurrency_cap = True
            warnings.warn(
                f"send_many(concurrency={concurrency}) runs at most {limit} sends at a time: the "
                f"client's max_concurrency={limit} bounds all its requests. To run "
                f"{concurrency}, create the client with "
                f"RouteeViberClient(max_concurrency={concurrency}). (Said once per client.)",
                UserWarning,
                stacklevel=2,  # the caller of send_many
            )
        send = self._send if validate else partial(self._send, validate=False)
        hooks = self._transport.hooks
        return SendManyIterator(
            send,
            messages,
            workers,
            as_rate_limiter(rate_limit, "rate_limit"),
            template,
            rate_waited=None if hooks is None else hooks.rate_limit_waited,
        )


def _send_body(message: SendMessage, template: Template | None, validate: bool, seq: int) -> bytes:
    """The JSON body of a send: checked (unless told not to), with ``seq`` if it has none."""
    if validate:
        message.validate(template)
    body = to_wire(message)
    if message.seq is None:
        body["seq"] = seq
    return dumps(body)


def _parse_otp_result(data: Any) -> OtpResult:
    return from_wire(data, OtpResult)


def _accepted(
    parse: Callable[[Any], T], data: Any, attempts: int, path: str, secrets: tuple[str, ...]
) -> T:
    """The parsed 2xx answer to a send, or an :class:`InvalidResponseError`.

    Routee answered 2xx, so the message was probably accepted: an answer we cannot read (empty,
    no ``trackingId``) leaves the send's outcome unknown, never a certain failure.
    """
    try:
        return parse(data)
    except ValidationError as exc:
        reason = exc.developer_message or str(exc)
    # Raised here, outside the except: the parse error is not chained.
    error = InvalidResponseError(
        f"the answer cannot be read ({reason})",
        status=None,
        body=data,
        method="POST",
        path=path,
    )
    error.attempts = attempts
    scrub_error(error, secrets)
    raise error
