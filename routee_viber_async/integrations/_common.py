"""What the framework integrations share: building the application's client."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._client import RouteeViberClient

__all__ = ["make_client"]


def make_client(
    factory: Callable[[], RouteeViberClient] | None, options: Mapping[str, Any]
) -> RouteeViberClient:
    """``factory()``, else ``RouteeViberClient(**options)``, else ``.from_env()``."""
    from .._client import RouteeViberClient  # lazily: the webhooks work without a client

    if factory is not None:
        if options:
            raise TypeError("give client_factory or client options, not both")
        return factory()
    if options:
        return RouteeViberClient(**options)
    return RouteeViberClient.from_env()
