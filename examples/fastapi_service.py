"""A FastAPI service that sends a Viber OTP and answers once Routee reports its delivery.

``POST /otp {"to": "+306912345678"}`` sends a one-time code with the OTP template, passing this
service's own delivery endpoint as the send's ``callbackUrl``; Routee POSTs the delivery
callbacks there, the router hands them to a :class:`DeliveryWaiter`, and the request answers
with the final status (polling ``GET /viber/tracking/{id}`` if no callback came in time).

Configuration (environment)::

    ROUTEE_APPLICATION_ID, ROUTEE_APPLICATION_SECRET   client credentials (or ROUTEE_ACCESS_TOKEN)
    ROUTEE_BASE_URL, ROUTEE_AUTH_URL                   optional: another Routee (the sandbox)
    ROUTEE_SENDER_ID                                   your senderInfoTrackingId
    ROUTEE_OTP_TEMPLATE_ID                             an approved OTP-category template
    ROUTEE_TEMPLATE_LANG                               its language (default: en)
    PUBLIC_BASE_URL                                    how Routee reaches this service, e.g.
                                                       https://api.example.com (default: the
                                                       URL the request came in on)
    ROUTEE_CALLBACK_SECRET                             the callback URL's token (default: random)

Run it with ``uvicorn examples.fastapi_service:app``. The callback token is a path segment of the
callback URL (``.../routee/delivery/TOKEN``); ``RedactTokenFilter`` keeps it out of uvicorn's
access log. Try it without a Routee account: ``routee-viber sandbox`` prints
the ``ROUTEE_*`` variables of a local emulator.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel

from routee_viber_async import (
    DeliveryCallback,
    RouteeViberClient,
    SendMessage,
    ValidationError,
    WaitTimeoutError,
)
from routee_viber_async.integrations.fastapi import (
    DELIVERY_ROUTE,
    STATE_KEY,
    get_routee_client,
    routee_lifespan,
    webhook_router,
)
from routee_viber_async.webhooks import Deduplicator, DeliveryWaiter, RedactTokenFilter


class OtpRequest(BaseModel):
    to: str


class OtpAnswer(BaseModel):
    tracking_id: str
    status: str
    delivered: bool
    via: str  # "callback" or "polling"


def create_app() -> FastAPI:
    """The application, configured from the environment."""
    sender_id = os.environ["ROUTEE_SENDER_ID"]
    template_id = os.environ["ROUTEE_OTP_TEMPLATE_ID"]
    template_lang = os.environ.get("ROUTEE_TEMPLATE_LANG", "en")
    public_base_url = os.environ.get("PUBLIC_BASE_URL")
    callback_secret = os.environ.get("ROUTEE_CALLBACK_SECRET") or secrets.token_urlsafe(24)
    # The access log prints every request line: mask the token in it.
    logging.getLogger("uvicorn.access").addFilter(RedactTokenFilter())

    # Resolves `await waiter.wait(tracking_id)` from the delivery callbacks; polls tracking
    # when no final callback came within `fallback_after` seconds.
    waiter = DeliveryWaiter(fallback_after=15.0)
    routee = routee_lifespan()  # one RouteeViberClient.from_env() for the whole application

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        async with routee(app) as state:
            waiter.client = state[STATE_KEY]  # the polling fallback uses the same client
            yield state

    app = FastAPI(title="OTP service", lifespan=lifespan)

    async def on_delivery(callback: DeliveryCallback) -> None:
        waiter.feed(callback)
        # ... and anything else: metrics, your database, ... (raise to have Routee retry)

    app.include_router(
        webhook_router(
            on_delivery=on_delivery,
            secret=callback_secret,
            delivery_path="/routee/delivery/{token}",  # the secret is a path segment
            deduplicator=Deduplicator(),  # Routee retries callbacks: handle each one once
        )
    )

    @app.post("/otp")
    async def send_otp(
        body: OtpRequest,
        request: Request,
        client: Annotated[RouteeViberClient, Depends(get_routee_client)],
    ) -> OtpAnswer:
        pin = f"{secrets.randbelow(10**6):06d}"
        if public_base_url:
            path = app.url_path_for(DELIVERY_ROUTE, token=callback_secret)
            callback_url = public_base_url.rstrip("/") + path
        else:
            callback_url = str(request.url_for(DELIVERY_ROUTE, token=callback_secret))
        message = SendMessage(
            sender_info_tracking_id=sender_id,
            to=body.to,
            template_id=template_id,
            template_lang=template_lang,
            template_params={"pin": pin},
            callback_url=callback_url,
        )
        try:
            sent = await client.messages.send(message)
        except ValidationError as exc:  # names the field, never the pin
            raise HTTPException(status_code=422, detail=str(exc)) from None
        # ... keep a hash of `pin` with `body.to` to check the code the user types in.
        try:
            outcome = await waiter.wait(sent.tracking_id, timeout=30.0)
        except WaitTimeoutError as exc:
            raise HTTPException(status_code=504, detail="no final delivery status yet") from exc
        if isinstance(outcome, DeliveryCallback):
            status, via = outcome.status.name, "callback"
        else:
            assert outcome.status is not None  # a final record has a status
            assert outcome.status.status is not None
            status, via = outcome.status.status, "polling"
        return OtpAnswer(
            tracking_id=sent.tracking_id,
            status=str(status),
            delivered=status.is_success,
            via=via,
        )

    return app


app = create_app()
