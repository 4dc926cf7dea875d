"""A callback URL's secret (``?token=``, userinfo) never shows in a repr; the wire keeps it."""

from __future__ import annotations

import pytest

from routee_viber_async import SendMessage, SendResult
from routee_viber_async._converter import from_wire, to_wire
from routee_viber_async._requests import CreateTemplate, TemplateCallbackUpdate
from routee_viber_async._responses import Template
from routee_viber_async.webhooks import with_token

URL = "https://alice:pa55word@hooks.example.com/routee/delivery?a=1&token=s3cret-token"
SECRETS = ("s3cret-token", "pa55word", "alice")


def assert_masked(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text
    assert "token=***" in text
    assert "https://***@hooks.example.com/routee/delivery?a=1" in text


def test_send_message_repr_masks_both_url_fields_and_the_wire_keeps_them() -> None:
    message = SendMessage(
        sender_info_tracking_id="sender",
        to="+306912345678",
        template_id="tpl",
        template_lang="en",
        callback_url=URL,
        inbound_url=URL,
    )
    assert_masked(repr(message))
    assert repr(message).count("token=***") == 2
    wire = to_wire(message)
    assert wire["callbackUrl"] == wire["inboundUrl"] == URL


def test_send_result_and_template_reprs_mask_the_callback_url() -> None:
    result = from_wire({"trackingId": "t-1", "callbackUrl": URL}, SendResult)
    assert result.callback_url == URL
    assert_masked(repr(result))
    template = from_wire({"id": "tpl", "lifecycleCallbackUrl": URL}, Template)
    assert template.callback_url == URL
    assert_masked(repr(template))


def test_template_requests_mask_the_callback_url() -> None:
    create = CreateTemplate(category="OTP", params=[], locales=[], var_example=[], callback_url=URL)
    assert_masked(repr(create))
    assert to_wire(create)["callbackUrl"] == URL
    update = TemplateCallbackUpdate(URL)
    assert_masked(repr(update))
    assert repr(TemplateCallbackUpdate(None)) == "TemplateCallbackUpdate(callback_url=None)"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("https://example.com/hook", "https://example.com/hook"),
        ("https://example.com/hook?token=abc", "https://example.com/hook?token=***"),
        ("https://example.com/hook?x=1&TOKEN=abc#f", "https://example.com/hook?x=1&TOKEN=***#f"),
        ("https://example.com/hook?mytoken=abc", "https://example.com/hook?mytoken=abc"),
        ("https://user@example.com/?token=", "https://***@example.com/?token=***"),
        ("https://example.com/a@b", "https://example.com/a@b"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    from routee_viber_async._masking import mask_url

    assert mask_url(url) == masked


def test_with_token_urls_are_masked() -> None:
    url = with_token("https://example.com/routee/delivery", "s3cret-token")
    message = SendMessage(
        sender_info_tracking_id="s",
        to="+306912345678",
        template_id="t",
        template_lang="en",
        callback_url=url,
    )
    assert "s3cret-token" not in repr(message)
