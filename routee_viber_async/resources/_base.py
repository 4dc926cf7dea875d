"""What every resource shares: the transport it sends through."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from .._validation import check_required_text, raise_if

if TYPE_CHECKING:
    from .._transport import Transport

__all__ = ["Resource", "path_segment"]


class Resource:
    """A group of API calls. Resources build requests and parse answers; HTTP is the transport's."""

    __slots__ = ("_transport",)

    def __init__(self, transport: Transport) -> None:
        self._transport = transport


def path_segment(value: str, name: str) -> str:
    """``value`` quoted for use as one URL path segment; blank values are refused."""
    raise_if(check_required_text(value, name))
    return quote(value, safe="")
