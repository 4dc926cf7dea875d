"""asyncio-native SDK for Routee's Viber Business Messages API (OTP and transactional templates).

>>> async with RouteeViberClient(credentials=ClientCredentials(app_id, secret)) as client:
...     result = await client.messages.send(SendMessage(sender, "+306912345678", tid, "en",
...                                                     {"pin": "482910"}))
"""

from typing import TYPE_CHECKING

from ._version import __version__

if TYPE_CHECKING:
    # Imported on first use at run time (see __getattr__): ``import routee_viber_async.cli``,
    # and so ``routee-viber --help``, must not pay for aiohttp, attrs and cattrs.
    from ._auth import AccessToken, ClientCredentials, StaticToken, TokenProvider
    from ._client import DEFAULT_AUTH_URL, DEFAULT_BASE_URL, RouteeViberClient
    from ._config import RetryBudget, RetryPolicy
    from ._enums import (
        DeliveryScope,
        DeliveryStatus,
        Label,
        LegacyOtpType,
        MessageKind,
        TemplateCategory,
        TemplateStatus,
    )
    from ._errors import (
        APIStatusError,
        AuthenticationError,
        ClientClosedError,
        ConfigurationError,
        InvalidResponseError,
        NotFoundError,
        PermissionDeniedError,
        RateLimitError,
        RequestTimeoutError,
        ResponseTooLargeError,
        RouteeError,
        ServerError,
        TransportError,
        UnprocessableError,
        ValidationError,
        ValidationIssue,
        WaitTimeoutError,
        outcome_unknown,
    )
    from ._hooks import AttemptEvent, CallEvent, Hooks, RetryEvent, TokenFetchEvent
    from ._masking import secret_params, set_secret_params
    from ._ratelimit import RateLimiter, RateLimiterUnavailableError
    from ._requests import (
        CreateTemplate,
        LegacyOtp,
        OtpParams,
        SendMessage,
        TemplateCallbackUpdate,
    )
    from ._responses import (
        CallbackStatus,
        DeleteConfirmation,
        DeliveryCallback,
        ModerationCallback,
        OtpResult,
        SendResult,
        Template,
        TemplateInfo,
        TrackingRecord,
        TrackingStatus,
    )
    from ._template_parts import TemplateLocale, TemplateParam, VarExample
    from .resources import (
        MessagesResource,
        SendManyIterator,
        SendOutcome,
        TemplatesResource,
        TrackingResource,
    )

__all__ = [
    "APIStatusError",
    "AccessToken",
    "AttemptEvent",
    "AuthenticationError",
    "CallEvent",
    "CallbackStatus",
    "ClientClosedError",
    "ClientCredentials",
    "ConfigurationError",
    "CreateTemplate",
    "DEFAULT_AUTH_URL",
    "DEFAULT_BASE_URL",
    "DeleteConfirmation",
    "DeliveryCallback",
    "DeliveryScope",
    "DeliveryStatus",
    "Hooks",
    "InvalidResponseError",
    "Label",
    "LegacyOtp",
    "LegacyOtpType",
    "MessageKind",
    "MessagesResource",
    "ModerationCallback",
    "NotFoundError",
    "OtpParams",
    "OtpResult",
    "PermissionDeniedError",
    "RateLimitError",
    "RateLimiter",
    "RateLimiterUnavailableError",
    "RequestTimeoutError",
    "ResponseTooLargeError",
    "RetryBudget",
    "RetryEvent",
    "RetryPolicy",
    "RouteeError",
    "RouteeViberClient",
    "SendManyIterator",
    "SendMessage",
    "SendOutcome",
    "SendResult",
    "ServerError",
    "StaticToken",
    "Template",
    "TemplateCallbackUpdate",
    "TemplateCategory",
    "TemplateInfo",
    "TemplateLocale",
    "TemplateParam",
    "TemplateStatus",
    "TemplatesResource",
    "TokenFetchEvent",
    "TokenProvider",
    "TrackingRecord",
    "TrackingResource",
    "TrackingStatus",
    "TransportError",
    "UnprocessableError",
    "ValidationError",
    "ValidationIssue",
    "VarExample",
    "WaitTimeoutError",
    "outcome_unknown",
    "secret_params",
    "set_secret_params",
    "__version__",
]


#: The submodules that define the names of __all__.
_SOURCES = (
    "_auth",
    "_client",
    "_config",
    "_enums",
    "_errors",
    "_hooks",
    "_masking",
    "_ratelimit",
    "_requests",
    "_responses",
    "_template_parts",
    "resources",
)

if not TYPE_CHECKING:

    def __getattr__(name: str) -> object:
        """Import the SDK on first use of a public name."""
        if name not in __all__:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        _load_public_names()
        return globals()[name]


def _load_public_names() -> None:
    """Import every public name into the package, as a plain ``from ... import`` would."""
    import importlib

    import attrs

    modules = [importlib.import_module(f".{source}", __name__) for source in _SOURCES]
    for name in __all__:
        if name in globals():
            continue
        defined = [getattr(module, name) for module in modules if hasattr(module, name)]
        if not defined:
            raise AttributeError(f"{__name__}.{name} is in __all__ but in none of {_SOURCES}")
        obj = defined[0]
        # Tracebacks and reprs read ``routee_viber_async.X``, not the private module (as httpx
        # does). String annotations are resolved first, while the defining module is still the
        # one they name.
        if isinstance(obj, type) and obj.__module__.startswith(__name__ + "."):
            if attrs.has(obj):
                attrs.resolve_types(obj)
            obj.__module__ = __name__
        globals()[name] = obj
