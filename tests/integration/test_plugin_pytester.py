"""The pytest plugin from a user's point of view: a test using only its fixtures passes.

The user's test runs in a fresh pytest process (``pytester.runpytest_subprocess``), so the
plugin is loaded through its ``pytest11`` entry point exactly as in a user's project.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

USER_INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
filterwarnings =
    error
    error::ResourceWarning
"""

USER_TESTS = """
from routee_viber_async import DeliveryStatus, SendMessage, TemplateCategory, TemplateStatus


async def test_send_an_otp(routee_sandbox, routee_client, routee_template):
    assert routee_template.status is TemplateStatus.APPROVED
    assert routee_template.category is TemplateCategory.OTP
    assert routee_template.param_names == ["pin"]
    assert routee_sandbox.template_status(routee_template.template_id) is TemplateStatus.APPROVED

    sent = await routee_client.messages.send(
        SendMessage(
            routee_sandbox.sender_id, "+306912345678", routee_template.template_id, "en",
            {"pin": "482910"},
        )
    )
    record = await routee_client.tracking.wait(sent.tracking_id, timeout=5, poll_interval=0.02)
    assert record.status.status is DeliveryStatus.DELIVERED
    assert routee_sandbox.message(sent.tracking_id).seq == sent.seq
"""

OVERRIDE_CONFTEST = """
import pytest


@pytest.fixture
def routee_sandbox_options(routee_sandbox_options):
    return {**routee_sandbox_options, "moderation_delay": None}
"""

OVERRIDE_TESTS = """
from routee_viber_async import (
    CreateTemplate,
    TemplateCategory,
    TemplateLocale,
    TemplateParam,
    TemplateStatus,
    VarExample,
)


async def test_the_sandbox_options_can_be_overridden(routee_sandbox, routee_client):
    assert routee_sandbox.options.moderation_delay is None
    template = await routee_client.templates.create(
        routee_sandbox.sender_id,
        CreateTemplate(
            TemplateCategory.OTP,
            [TemplateParam("pin")],
            [TemplateLocale("en", "Code {{pin}}")],
            [VarExample("pin", "1")],
        ),
    )
    assert routee_sandbox.template_status(template.template_id) is TemplateStatus.PENDING_MODERATION
"""

BROKEN_TESTS = """
async def test_wrong_sender(routee_sandbox, routee_client):
    [t async for t in routee_client.templates.list(sender_info_tracking_id="nobody")]
"""


def test_a_users_test_with_only_the_plugins_fixtures_passes(pytester: pytest.Pytester) -> None:
    pytester.makeini(USER_INI)
    pytester.makepyfile(test_user=USER_TESTS)
    # A user's conftest overriding the options, and (so that passing means something) a test
    # that must fail.
    override = pytester.mkdir("override")
    (override / "conftest.py").write_text(OVERRIDE_CONFTEST)
    (override / "test_override.py").write_text(OVERRIDE_TESTS)
    broken = pytester.mkdir("broken")
    (broken / "test_broken.py").write_text(BROKEN_TESTS)

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA", timeout=60)

    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines_random(
        [
            "PASSED test_user.py::test_send_an_otp",
            "PASSED override/test_override.py::test_the_sandbox_options_can_be_overridden",
            "FAILED broken/test_broken.py::test_wrong_sender*",
            "E *routee_viber_async.NotFoundError: GET /viber/transactional/templates: HTTP 404*",
        ]
    )
    result.stdout.no_fnmatch_line("*warning*")
