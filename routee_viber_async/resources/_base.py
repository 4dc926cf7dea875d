"""What every resource shares: the transport it sends through, and telling the hooks of calls."""

from __future__ import annotations

import contextvars
import functools
import logging
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, TypeVar
from urllib.parse import quote

from .._hooks import CallEvent, HookDispatcher
from .._logfields import call_log_fields, logger
from .._validation import check_required_text, raise_if

if TYPE_CHECKING:
    from .._transport import Transport

__all__ = ["Resource", "SendObservation", "observe_send", "observed", "path_segment"]

P = ParamSpec("P")
T = TypeVar("T")
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


class SendObservation:
    """A send told to the hooks as one call, the SDK's log records meanwhile carrying its
    ``seq`` (and then ``tracking_id``): ``with observe_send(...) as observation:`` around the
    send, and :meth:`accepted` once Routee took it."""

    __slots__ = ("_reset", "_states", "call", "hooks")

    def __init__(self, hooks: HookDispatcher | None, call: CallEvent) -> None:
        self.hooks = hooks
        self.call = call
        self._states: dict[int, Any] | None = None
        self._reset: contextvars.Token[dict[str, object] | None] | None = None

    def __enter__(self) -> SendObservation:
        call = self.call
        if self.hooks is not None:
            self._states = self.hooks.call_started(call)
        self._reset = call_log_fields.set(call.log_extra)
        return self

    def accepted(self, result: _Tracked, attempts: int) -> None:
        """Routee accepted the send (``attempts`` HTTP requests): its tracking id is known."""
        call = self.call
        call.tracking_id = call.log_extra["tracking_id"] = result.tracking_id
        call.attempts = attempts
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s accepted: seq %s, tracking id %s (%d HTTP attempts)",
                call.name,
                call.seq,
                result.tracking_id,
                attempts,
            )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self.hooks is not None and self._states is not None:
                self.hooks.call_ended(self.call, self._states, exc)
        finally:
            if self._reset is not None:
                call_log_fields.reset(self._reset)


class _Unobserved:
    """What :func:`observe_send` gives when there is nothing to tell: does nothing."""

    __slots__ = ()

    def __enter__(self) -> _Unobserved:
        return self

    def accepted(self, result: _Tracked, attempts: int) -> None:
        pass

    def __exit__(self, *exc_info: object) -> None:
        pass


_UNOBSERVED = _Unobserved()


def observe_send(
    hooks: HookDispatcher | None, method: str, seq: int | None
) -> SendObservation | _Unobserved:
    """How to observe a send of ``messages.<method>`` with ``seq``: a :class:`SendObservation`
    when there are hooks to tell or SDK log records (INFO and up) to enrich, else nothing."""
    if hooks is None and not logger.isEnabledFor(logging.INFO):
        return _UNOBSERVED
    return SendObservation(hooks, CallEvent("messages", method, seq=seq, is_send=True))
