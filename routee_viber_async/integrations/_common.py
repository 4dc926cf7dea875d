"""What the framework integrations share: their endpoints, and building the application's client.

The webhook logic itself (source allowlist, token, Content-Type, body limits and timeout,
verification, deduplication) lives once in :class:`~routee_viber_async.webhooks.WebhookReceiver`;
this module holds the little the adapters have in common on top of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from ..webhooks import EndpointKind

if TYPE_CHECKING:
    from .._client import RouteeViberClient

__all__ = [
    "PATH_TOKEN",
    "WebhookEndpoint",
    "forwarded_for",
    "has_path_token",
    "make_client",
    "request_token",
    "webhook_endpoints",
]

#: The placeholder of a path-token route: ``delivery_path="/routee/delivery/{token}"``.
PATH_TOKEN: Final = "{token}"
_PATH_TOKEN_NAME: Final = "token"


class WebhookEndpoint(NamedTuple):
    """One POST endpoint: where, which payload, its route name and its summary."""

    path: str
    kind: EndpointKind
    name: str
    summary: str


def webhook_endpoints(
    *,
    delivery: bool,
    moderation: bool,
    delivery_path: str | None,
    moderation_path: str | None,
    combined_path: str | None,
    names: tuple[str, str, str],
) -> list[WebhookEndpoint]:
    """The endpoints to serve (``names``: delivery, moderation and combined route names)."""
    endpoints: list[WebhookEndpoint] = []
    if delivery and delivery_path is not None:
        endpoints.append(
            WebhookEndpoint(delivery_path, "delivery", names[0], "Routee delivery callback")
        )
    if moderation and moderation_path is not None:
        endpoints.append(
            WebhookEndpoint(moderation_path, "moderation", names[1], "Routee moderation callback")
        )
    if combined_path is not None:
        endpoints.append(
            WebhookEndpoint(combined_path, "any", names[2], "Routee callback (either kind)")
        )
    if not endpoints:
        raise ValueError("no endpoint: give a handler with its path, or combined_path")
    for endpoint in endpoints:
        if endpoint.path.count(PATH_TOKEN) > 1:
            raise ValueError(f"a path holds {PATH_TOKEN} at most once: {endpoint.path!r}")
    return endpoints


def has_path_token(path: str) -> bool:
    """True for a path-token route: its token is the ``{token}`` segment, not a query value."""
    return PATH_TOKEN in path


def request_token(
    path: str, path_params: Mapping[str, str], query: Mapping[str, str], token_param: str
) -> str | None:
    """The token a request carries: its ``{token}`` segment, or its ``token_param`` query value."""
    if has_path_token(path):
        return path_params.get(_PATH_TOKEN_NAME)
    return query.get(token_param)


def forwarded_for(values: Iterable[str]) -> str | None:
    """Every ``X-Forwarded-For`` header of a request, joined into one list (None if none)."""
    joined = ", ".join(v for v in values if v.strip())
    return joined or None


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
