"""``/viber/transactional/templates``: list, get, create, update the callback, delete."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Mapping
from typing import Any

from .._converter import dumps_wire, from_wire
from .._errors import ValidationError, ValidationIssue
from .._requests import CreateTemplate, TemplateCallbackUpdate
from .._responses import DeleteConfirmation, Template
from .._validation import Code, check_required_text, raise_if
from ._base import Resource, observed, path_segment

__all__ = ["TemplatesResource"]

_PATH = "/viber/transactional/templates"
#: Keys under which a page wrapped in an object may hold its items (Spring's ``content``, ...).
_WRAPPER_KEYS = ("content", "templates", "items", "data", "results")


class TemplatesResource(Resource):
    """Transactional (and OTP-category) templates."""

    __slots__ = ()

    async def list(
        self, *, sender_info_tracking_id: str | None = None, page_size: int | None = None
    ) -> AsyncIterator[Template]:
        """Every template, page after page.

        Follows the ``lastServiceId``/``lastTemplateId`` cursors of each page's last item until a
        page shorter than ``page_size`` (or an empty one). A page whose last item was already
        seen (a server that ignores the cursor) ends the listing without yielding it again.
        """
        if page_size is not None and (
            isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1
        ):
            raise ValidationError([(Code.INVALID_FIELD, "pageSize must be a positive integer.")])
        params: dict[str, str] = {}
        if sender_info_tracking_id is not None:
            params["senderInfoTrackingId"] = sender_info_tracking_id
        if page_size is not None:
            params["pageSize"] = str(page_size)
        seen_cursors: set[tuple[str | None, str]] = set()
        while True:
            page = await self._page(dict(params))
            if not page:
                return
            last = page[-1]
            cursor = (last.service_id, last.template_id)
            if cursor in seen_cursors:
                # The server ignored the cursor and sent a page we already yielded: stop, and
                # neither loop forever nor yield the same templates twice.
                return
            seen_cursors.add(cursor)
            for template in page:
                yield template
            if page_size is not None and len(page) < page_size:
                return
            if last.service_id is not None:
                params["lastServiceId"] = last.service_id
            else:
                params.pop("lastServiceId", None)
            params["lastTemplateId"] = last.template_id

    @observed("templates", "list")
    async def _page(self, params: dict[str, str]) -> builtins.list[Template]:
        """One page of the listing (each page is a call of its own for the hooks)."""
        data = (await self._transport.request("GET", _PATH, params=params)).data
        return [from_wire(item, Template) for item in _page_items(data)]

    @observed("templates", "get")
    async def get(self, template_id: str) -> Template:
        """One template."""
        data = (
            await self._transport.request(
                "GET", f"{_PATH}/{path_segment(template_id, 'templateId')}"
            )
        ).data
        return from_wire(data, Template)

    @observed("templates", "create")
    async def create(
        self, sender_info_tracking_id: str, template: CreateTemplate, *, validate: bool = True
    ) -> Template:
        """Create a template; it starts in moderation (``PENDING_MODERATION``)."""
        if validate:
            raise_if(
                check_required_text(sender_info_tracking_id, "senderInfoTrackingId")
                + template.issues()
            )
        data = (
            await self._transport.request(
                "POST",
                _PATH,
                params={"senderInfoTrackingId": sender_info_tracking_id},
                body=dumps_wire(template),
            )
        ).data
        return from_wire(data, Template)

    @observed("templates", "update_callback")
    async def update_callback(self, template_id: str, callback_url: str | None) -> Template:
        """Set the moderation callback URL, or remove it with ``None`` (``{"callbackUrl": null}``).

        Only Routee's webhook setting changes; the template text does not.
        """
        body = TemplateCallbackUpdate(callback_url)
        raise_if(body.issues())
        data = (
            await self._transport.request(
                "PATCH",
                f"{_PATH}/{path_segment(template_id, 'templateId')}",
                body=dumps_wire(body),
                idempotent=True,
            )
        ).data
        return from_wire(data, Template)

    @observed("templates", "delete")
    async def delete(self, template_id: str) -> DeleteConfirmation:
        """Delete a template; returns Routee's confirmation payload."""
        data = (
            await self._transport.request(
                "DELETE", f"{_PATH}/{path_segment(template_id, 'templateId')}"
            )
        ).data
        return from_wire(data if data is not None else {}, DeleteConfirmation)


def _page_items(data: Any) -> list[Any]:
    """A page's items: the answer is a list, or an object wrapping one (``{"content": [...]}``)."""
    if data is None:
        return []
    if isinstance(data, list):
        return data
    if isinstance(data, Mapping):
        # The usual wrapper keys first: ``{"links": [], "content": [...]}`` is not an empty page.
        for key in _WRAPPER_KEYS:
            value = data.get(key)
            if isinstance(value, list):
                return value
        for value in data.values():
            if isinstance(value, list):
                return value
        return []
    raise ValidationError(
        [ValidationIssue(Code.INVALID_FIELD, "$: expected a list of templates")],
        developer_message="templates page is not a list",
    )
