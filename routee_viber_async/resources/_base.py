"""What every resource shares: the transport it sends through, and telling the hooks of calls."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, TypeVar
from urllib.parse import quote

from .._hooks import CallEvent, HookDispatcher
from .._logfields import call_log_fields, logger
from .._validation import check_required_text, raise_if

if TYPE_CHECKING:
    from .._transport import Transport

__all__ = ["Resource", "observed", "observed_send", "path_segment", "wants_observation"]

P = ParamSpec("P")
T = TypeVar("T")
R = TypeVar("R", bound="_Tracked")
S = TypeVar("S", bound="Resource")


class Resource:
    """A group of API calls. Resources build requests and parse answers; HTTP is the transport's."""

    __slots__ = ("_transport",)

    def __init__(self, transport: Transport) -> None:
        self._transport = transport


def path_segment(value: str, name: str) -> str:
    """``value`` quoted for use as one URL path segment; blank values are refused."""
    raise_if(check_required_text(value, name))
    return quote(value, safe="")


# -- telling the hooks ------------------------------------------------------------------------


def observed(
    resource: str, method: str
) -> Callable[
    [Callable[Concatenate[S, P], Coroutine[Any, Any, T]]],
    Callable[Concatenate[S, P], Coroutine[Any, Any, T]],
]:
    """Decorate a resource's coroutine method so that the client's hooks are told of each call
    as ``routee.<resource>.<method>`` (nothing more than one check without hooks)."""

    def decorate(
        function: Callable[Concatenate[S, P], Coroutine[Any, Any, T]],
    ) -> Callable[Concatenate[S, P], Coroutine[Any, Any, T]]:
        @functools.wraps(function)
        async def call(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
            hooks = self._transport.hooks
            if hooks is None:
                return await function(self, *args, **kwargs)
            event = CallEvent(resource, method)
            states = hooks.call_started(event)
            try:
                result = await function(self, *args, **kwargs)
            except BaseException as exc:
                hooks.call_ended(event, states, exc)
                raise
            hooks.call_ended(event, states, None)
            return result

        return call

    return decorate


class _Tracked(Protocol):
    @property
    def tracking_id(self) -> str: ...


def wants_observation(hooks: HookDispatcher | None) -> bool:
    """Whether a send must be observed: hooks to tell, or SDK log records to enrich."""
    return hooks is not None or logger.isEnabledFor(logging.INFO)


async def observed_send(
    hooks: HookDispatcher | None, call: CallEvent, send: Awaitable[tuple[R, int]]
) -> tuple[R, int]:
    """Await ``send`` (a send's result and attempts) as the call ``call``: its hooks are told
    of it, and the SDK's log records meanwhile carry its ``seq`` (and then ``tracking_id``)."""
    fields = call.log_extra
    states = hooks.call_started(call) if hooks is not None else None
    reset = call_log_fields.set(fields)
    try:
        try:
            result, attempts = await send
        except BaseException as exc:
            if hooks is not None and states is not None:
                hooks.call_ended(call, states, exc)
            raise
        call.tracking_id = fields["tracking_id"] = result.tracking_id
        call.attempts = attempts
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s accepted: seq %s, tracking id %s (%d HTTP attempts)",
                call.name,
                call.seq,
                result.tracking_id,
                attempts,
            )
        if hooks is not None and states is not None:
            hooks.call_ended(call, states, None)
    finally:
        call_log_fields.reset(reset)
    return result, attempts
