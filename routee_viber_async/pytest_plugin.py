"""pytest plugin (entry point ``pytest11``): fixtures ``routee_sandbox``, ``routee_client`` and
``routee_template``.

``routee_sandbox`` yields a started :class:`~routee_viber_async.sandbox.Sandbox` with delays
fast enough for tests, ``routee_client`` a client pointed at it, and ``routee_template`` an
approved OTP template of the sandbox's sender (one parameter, ``pin``; language ``en``).
:func:`approved_template` creates and approves another one, e.g. with other parameters.
Override the ``routee_sandbox_options`` fixture to change the sandbox's options::

    @pytest.fixture
    def routee_sandbox_options(routee_sandbox_options):
        return {**routee_sandbox_options, "failed_share": 0.2}

``routee_sandbox.inbox("+306912345678")`` gives the messages a recipient received as the
handset shows them (pin included), with their status timelines and delivery callbacks; its
``set_fate``, ``reset`` and ``inject_fault`` steer what comes next.

The async fixtures need pytest-asyncio (the ``dev`` extra). Without it this plugin still loads,
so that installing the SDK never breaks a test session; only the async fixtures are missing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import pytest

if TYPE_CHECKING:
    from ._client import RouteeViberClient
    from ._requests import CreateTemplate
    from ._responses import Template
    from .sandbox import Sandbox

__all__ = [
    "SANDBOX_TEST_OPTIONS",
    "approved_template",
    "otp_template_definition",
    "routee_client",
    "routee_sandbox",
    "routee_sandbox_options",
    "routee_template",
]

F = TypeVar("F", bound=Callable[..., Any])

#: The ``routee_sandbox`` fixture's default options: every delay well under a tenth of a second.
SANDBOX_TEST_OPTIONS: dict[str, Any] = {
    "moderation_delay": 0.02,
    "delivery_delay": 0.02,
    "callback_retry_delay": 0.02,
    "callback_timeout": 2.0,
    "seed": 1234,
}


def _async_fixture(function: F) -> F:
    try:
        import pytest_asyncio
    except ImportError:  # pragma: no cover - pytest-asyncio is a dev dependency
        return function
    return cast(F, pytest_asyncio.fixture(function))


@pytest.fixture
def routee_sandbox_options() -> dict[str, Any]:
    """Keyword options of the ``routee_sandbox`` fixture (override to change them)."""
    return dict(SANDBOX_TEST_OPTIONS)


@_async_fixture
async def routee_sandbox(routee_sandbox_options: dict[str, Any]) -> AsyncIterator[Sandbox]:
    """A started sandbox with fast delays, closed after the test."""
    from .sandbox import Sandbox

    async with Sandbox(**routee_sandbox_options) as sandbox:
        yield sandbox


@_async_fixture
async def routee_client(routee_sandbox: Sandbox) -> AsyncIterator[RouteeViberClient]:
    """A :class:`RouteeViberClient` pointed at ``routee_sandbox``, closed after the test."""
    from ._client import RouteeViberClient

    async with RouteeViberClient(
        credentials=routee_sandbox.credentials,
        base_url=routee_sandbox.base_url,
        auth_url=routee_sandbox.auth_url,
    ) as client:
        yield client


def otp_template_definition() -> CreateTemplate:
    """The ``routee_template`` fixture's definition: OTP, ``pin``, "Your code is {{pin}}."."""
    from ._enums import TemplateCategory
    from ._requests import CreateTemplate
    from ._template_parts import TemplateLocale, TemplateParam, VarExample

    return CreateTemplate(
        TemplateCategory.OTP,
        [TemplateParam("pin")],
        [TemplateLocale("en", "Your code is {{pin}}.")],
        [VarExample("pin", "123456")],
    )


async def approved_template(
    client: RouteeViberClient, sandbox: Sandbox, definition: CreateTemplate | None = None
) -> Template:
    """Create a template on ``sandbox``'s sender and approve it at once; the approved template.

    ``definition`` defaults to :func:`otp_template_definition`. New templates start
    ``PENDING_MODERATION``; this skips the sandbox's moderation delay with ``sandbox.approve``.
    """
    created = await client.templates.create(
        sandbox.sender_id, definition if definition is not None else otp_template_definition()
    )
    sandbox.approve(created.template_id)
    return await client.templates.get(created.template_id)


@_async_fixture
async def routee_template(routee_sandbox: Sandbox, routee_client: RouteeViberClient) -> Template:
    """An approved OTP template of ``routee_sandbox``'s sender (parameter ``pin``, ``en``)."""
    return await approved_template(routee_client, routee_sandbox)
