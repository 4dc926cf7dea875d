"""The hooks protocol: what hooks are told, in which task, and that they never break a call."""

from __future__ import annotations

import contextvars
import logging
from typing import Any

import pytest
from conftest import MakeClient
from observability_helpers import PIN, otp

from routee_viber_async import (
    AttemptEvent,
    CallEvent,
    Hooks,
    RetryEvent,
    Template,
    TokenFetchEvent,
)
from routee_viber_async.sandbox import Sandbox

caller_value: contextvars.ContextVar[str] = contextvars.ContextVar("caller_value", default="")


class Recorder(Hooks):
    """Records each event with the caller's context variable as seen from inside the hook."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any, str]] = []

    def _add(self, kind: str, event: Any) -> str:
        self.events.append((kind, event, caller_value.get()))
        return kind

    def call_started(self, call: CallEvent) -> Any:
        return self._add("call_started", call)

    def call_ended(self, call: CallEvent, state: Any, error: BaseException | None) -> None:
        assert state == "call_started"
        self._add("call_ended", call)

    def attempt_started(self, attempt: AttemptEvent) -> Any:
        return self._add("attempt_started", attempt)

    def attempt_ended(self, attempt: AttemptEvent, state: Any, error: BaseException | None) -> None:
        assert state == "attempt_started"
        self._add("attempt_ended", attempt)

    def retry_scheduled(self, retry: RetryEvent) -> None:
        self._add("retry_scheduled", retry)

    def token_fetch_started(self, fetch: TokenFetchEvent) -> Any:
        return self._add("token_fetch_started", fetch)

    def token_fetch_ended(
        self, fetch: TokenFetchEvent, state: Any, error: BaseException | None
    ) -> None:
        self._add("token_fetch_ended", fetch)

    def rate_limit_waited(self, seconds: float) -> None:
        self._add("rate_limit_waited", seconds)


class Broken:
    """A hook (duck-typed, no base class) whose every method raises."""

    def _fail(self, *args: object) -> None:
        raise RuntimeError("hook bug")

    call_started = call_ended = attempt_started = attempt_ended = _fail
    retry_scheduled = token_fetch_started = token_fetch_ended = rate_limit_waited = _fail


async def test_hooks_are_told_of_a_send_in_order_inside_the_callers_context(
    sandbox: Sandbox, template: Template, make_client: MakeClient
) -> None:
    recorder = Recorder()
    client = make_client(hooks=[recorder], rate_limiter=1000)
    caller_value.set("the caller's")
    sandbox.inject_fault("service_unavailable")
    result = await client.messages.send(otp(sandbox, template, seq=99))

    kinds = [kind for kind, _, _ in recorder.events]
    assert kinds == [
        "call_started",
        "token_fetch_started",
        "token_fetch_ended",
        "rate_limit_waited",
        "attempt_started",
        "attempt_ended",
        "retry_scheduled",
        "rate_limit_waited",
        "attempt_started",
        "attempt_ended",
        "call_ended",
    ]
    assert {seen for _, _, seen in recorder.events} == {"the caller's"}
    call = recorder.events[0][1]
    assert (call.name, call.seq, call.tracking_id) == (
        "routee.messages.send",
        99,
        result.tracking_id,
    )
    assert (call.outcome, call.attempts) == ("ok", 2)
    first, second = (event for kind, event, _ in recorder.events if kind == "attempt_ended")
    assert (first.status, first.error_type, first.resend_count) == (503, "503", 0)
    assert (second.status, second.error_type, second.resend_count) == (200, None, 1)
    retry = recorder.events[6][1]
    assert (retry.method, retry.path, retry.reason) == (
        "POST",
        "/viber/transactional/messages",
        "HTTP 503",
    )
    for kind, event, _ in recorder.events:
        assert PIN not in repr(event)
        if kind.startswith("attempt"):
            assert "?" not in event.url


async def test_a_raising_hook_is_logged_once_and_never_changes_the_call(
    sandbox: Sandbox,
    template: Template,
    make_client: MakeClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = Recorder()
    client = make_client(hooks=[Broken(), recorder], rate_limiter=1000)
    with caplog.at_level(logging.WARNING, logger="routee_viber_async"):
        for _ in range(3):
            sandbox.inject_fault("service_unavailable")
            await client.messages.send(otp(sandbox, template))
            await client.tracking.get(
                (await client.messages.send(otp(sandbox, template))).tracking_id
            )

    warnings = [r for r in caplog.records if "hook Broken." in r.getMessage()]
    told = sorted(r.getMessage().split()[1] for r in warnings)
    assert told == sorted(
        f"Broken.{name}"
        for name in (
            "call_started",
            "call_ended",
            "attempt_started",
            "attempt_ended",
            "retry_scheduled",
            "token_fetch_started",
            "token_fetch_ended",
            "rate_limit_waited",
        )
    )
    # The other hook was told of everything all the same.
    calls = [event for kind, event, _ in recorder.events if kind == "call_ended"]
    assert [call.outcome for call in calls if call.is_send] == ["ok"] * 6


async def test_no_hooks_means_no_dispatcher(make_client: MakeClient) -> None:
    assert make_client()._transport.hooks is None
    assert make_client(hooks=[])._transport.hooks is None
    with pytest.raises(TypeError, match="list of hook objects"):
        make_client(hooks="otel")
    with pytest.raises(TypeError, match="not a hook"):
        make_client(hooks=[object()])


async def test_a_sends_log_records_carry_seq_and_tracking_id_without_hooks(
    sandbox: Sandbox,
    template: Template,
    make_client: MakeClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = make_client()
    await client.templates.get(template.template_id)
    sandbox.inject_fault("service_unavailable")
    with caplog.at_level(logging.DEBUG, logger="routee_viber_async"):
        result = await client.messages.send(otp(sandbox, template, seq=31337))
        await client.templates.get(template.template_id)

    records = [r for r in caplog.records if r.name == "routee_viber_async"]
    retrying = [r for r in records if r.getMessage().startswith("retrying")]
    accepted = [r for r in records if "accepted" in r.getMessage()]
    assert retrying
    assert accepted
    assert all(r.seq == 31337 for r in retrying + accepted)  # type: ignore[attr-defined]
    assert accepted[-1].tracking_id == result.tracking_id  # type: ignore[attr-defined]
    # Records of other calls, after the send, carry none of it.
    later = [r for r in records if "GET" in r.getMessage()]
    assert later
    assert not any(hasattr(r, "seq") for r in later)
