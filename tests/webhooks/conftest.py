"""Fixtures of the webhook tests: payloads, and real loopback servers for both frameworks."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from webhook_helpers import INTEGRATIONS, Integration, ServeWebhooks

#: Every field of seed 001's moderation callback table.
MODERATION_CALLBACK: dict[str, Any] = {
    "templateId": "2c017482-2f44-41d6-adad-2d6af725fdbe",
    "templateStatus": "REJECTED",
    "templateBody": "Hello {{user_name}}, your appointment is confirmed.",
    "variables": ["user_name"],
    "rejectionReason": "Promotional content in a transactional template.",
}


@pytest.fixture
def delivery_payload(seed_examples: dict[str, Any]) -> dict[str, Any]:
    """Seed 001's example delivery callback, verbatim (a fresh copy)."""
    payload: dict[str, Any] = copy.deepcopy(seed_examples["delivery_callback"])
    return payload


@pytest.fixture
def moderation_payload() -> dict[str, Any]:
    """A moderation callback with every field seed 001 names."""
    return copy.deepcopy(MODERATION_CALLBACK)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """The client that plays Routee: POSTs callbacks to the servers under test."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture(params=INTEGRATIONS, ids=lambda integration: integration.name)
def integration(request: pytest.FixtureRequest) -> Integration:
    """Each framework's integration in turn: FastAPI (served by uvicorn), then aiohttp."""
    chosen: Integration = request.param
    return chosen


@pytest.fixture
def serve_webhooks(integration: Integration) -> ServeWebhooks:
    """``async with serve_webhooks(**router_options) as base_url``, for each framework."""
    return integration.serve
