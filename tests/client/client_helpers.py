"""Helpers of the client tests: aioresponses at the HTTP boundary, and what it recorded.

aioresponses 0.7.9 builds ``ClientResponse`` without the ``stream_writer`` argument that aiohttp
3.14 made required (pnuckowski/aioresponses#289); :func:`compatible_response_class` fills it in,
so that the mocks work on both sides of that change.
"""

from __future__ import annotations

import inspect
import json
import types
from typing import Any

import aioresponses.core
from aiohttp import ClientResponse
from aioresponses.core import normalize_url
from yarl import URL

BASE = "https://api.routee.test"
AUTH = "https://auth.routee.test/oauth/token"
TOKEN = "static-TOKEN-value-123"
TEMPLATES = f"{BASE}/viber/transactional/templates"
MESSAGES = f"{BASE}/viber/transactional/messages"
OTP = f"{BASE}/viber/otp"
SENDER = "sender-1"
TO = "+306912345678"


class _CompatClientResponse(ClientResponse):
    """A ``ClientResponse`` that aioresponses can build on aiohttp 3.14+."""

    def __init__(self, method: str, url: URL, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", types.SimpleNamespace(output_size=0))
        super().__init__(method, url, **kwargs)


def compatible_response_class() -> type[ClientResponse]:
    """The response class aioresponses should build (the plain one where it already works)."""
    if "stream_writer" in inspect.signature(ClientResponse.__init__).parameters:
        return _CompatClientResponse
    return ClientResponse


def install_compat(monkeypatch: Any) -> None:
    """Make aioresponses build :func:`compatible_response_class` responses by default."""
    monkeypatch.setattr(aioresponses.core, "ClientResponse", compatible_response_class())


def url(base: str, **query: str) -> URL:
    """``base`` with ``query``, normalised as aioresponses keys its record (sorted query)."""
    return normalize_url(URL(base).with_query(query) if query else URL(base))


def calls(mocked: aioresponses.aioresponses, method: str, target: str | URL) -> list[Any]:
    """The recorded calls (``.kwargs``) of one method and exact URL, query included."""
    return list(mocked.requests.get((method, normalize_url(URL(target))), []))


def all_calls(mocked: aioresponses.aioresponses) -> list[tuple[str, URL]]:
    """Every (method, URL) requested, once per call."""
    return [key for key, recorded in mocked.requests.items() for _ in recorded]


def only_call(mocked: aioresponses.aioresponses, method: str, target: str | URL) -> Any:
    """The one call of ``method`` to ``target``; fails if there were others."""
    recorded = calls(mocked, method, target)
    assert len(recorded) == 1, (method, target, all_calls(mocked))
    assert len(all_calls(mocked)) == 1, all_calls(mocked)
    return recorded[0]


def json_body(call: Any) -> Any:
    """The JSON the call sent."""
    data = call.kwargs["data"]
    assert isinstance(data, bytes)
    return json.loads(data)


def template_wire(template_id: str = "t-1", service_id: int = 1001, **extra: Any) -> dict[str, Any]:
    """A template object as Routee returns it."""
    wire: dict[str, Any] = {
        "templateId": template_id,
        "serviceId": service_id,
        "senderInfoTrackingId": SENDER,
        "category": "OTP",
        "status": "PENDING_MODERATION",
        "params": [{"name": "pin", "type": "TEXT"}],
        "locales": [{"lang": "en", "template": "Your code is {{pin}}."}],
        "varExample": [{"name": "pin", "example": "123456"}],
        "createdAt": "2026-05-20T05:45:10.001Z",
        "updatedAt": "2026-05-20T05:45:10.001Z",
    }
    wire.update(extra)
    return wire
