"""The FastAPI router's OpenAPI documents the real callback bodies, and schemathesis agrees.

The request bodies are the JSON Schemas of ``DeliveryCallback`` and ``ModerationCallback``,
generated from the models. Schemathesis reads the router's own ``/openapi.json`` and sends
schema-valid callbacks to every endpoint, in-process over ASGI: each must be accepted (200), none
may give a 500. The examples are bounded and derandomized, so a run is short and the same every
time.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, positive_data_acceptance

from routee_viber_async import DeliveryCallback, DeliveryStatus, ModerationCallback
from routee_viber_async.integrations.fastapi import webhook_router
from routee_viber_async.webhooks import (
    callback_json_schema,
    parse_delivery_callback,
    parse_moderation_callback,
)

HANDLED: list[object] = []


async def on_delivery(callback: DeliveryCallback) -> None:
    HANDLED.append(callback)


async def on_moderation(callback: ModerationCallback) -> None:
    HANDLED.append(callback)


def make_app() -> FastAPI:
    app = FastAPI(title="webhooks under test")
    app.include_router(
        webhook_router(
            on_delivery=on_delivery, on_moderation=on_moderation, combined_path="/routee"
        )
    )
    return app


APP = make_app()
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
schema.config.generation.update(modes=[GenerationMode.POSITIVE])


@schema.parametrize()
@settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_schemathesis_finds_no_valid_callback_rejected_and_no_500(case: Any) -> None:
    response = case.call_and_validate(checks=[not_a_server_error, positive_data_acceptance])
    assert response.status_code == 200, (case.body, response.text)


def body_schema(path: str) -> dict[str, Any]:
    operation = APP.openapi()["paths"][path]["post"]
    schema: dict[str, Any] = operation["requestBody"]["content"]["application/json"]["schema"]
    return schema


def test_the_delivery_body_schema_names_the_wire_fields() -> None:
    schema = body_schema("/routee/delivery")
    assert schema == callback_json_schema("delivery")
    assert schema["required"] == ["trackingId", "status"]
    assert schema["additionalProperties"] is True  # unknown keys are kept
    props = schema["properties"]
    assert set(props) == {
        "trackingId",
        "status",
        "to",
        "messageKind",
        "transactionalTemplate",
        "createdAt",
        "templateId",
    }
    status = props["status"]
    assert status["required"] == ["name"]
    name = status["properties"]["name"]
    known = [s.value for s in DeliveryStatus]
    assert name["anyOf"] == [{"enum": known}, {"type": "string"}]  # open: new values pass
    assert name["examples"] == known
    assert status["properties"]["updatedDate"]["anyOf"][0] == {
        "type": "string",
        "format": "date-time",
    }
    seq = props["transactionalTemplate"]["anyOf"][0]["properties"]["seq"]["anyOf"][0]
    assert seq["type"] == "integer"


def test_the_moderation_and_combined_body_schemas() -> None:
    moderation = body_schema("/routee/moderation")
    assert moderation["required"] == ["templateId", "templateStatus"]
    assert set(moderation["properties"]) == {
        "templateId",
        "templateStatus",
        "templateBody",
        "variables",
        "rejectionReason",
    }
    status = moderation["properties"]["templateStatus"]
    assert {"enum": ["PENDING_MODERATION", "APPROVED", "REJECTED"]} in status["anyOf"]
    assert {"type": "string"} in status["anyOf"]
    combined = body_schema("/routee")
    titles = [option["title"] for option in combined["anyOf"]]
    assert titles == ["DeliveryCallback", "ModerationCallback"]


def test_the_seed_examples_are_valid_against_the_schemas(seed_examples: dict[str, Any]) -> None:
    # Without a validator dependency: every required key is there, and the parsers take them.
    example = seed_examples["delivery_callback"]
    assert set(callback_json_schema("delivery")["required"]) <= set(example)
    assert parse_delivery_callback(example).tracking_id == example["trackingId"]
    moderation = {"templateId": "t-1", "templateStatus": "APPROVED"}
    assert set(callback_json_schema("moderation")["required"]) == set(moderation)
    assert parse_moderation_callback(moderation).template_id == "t-1"
