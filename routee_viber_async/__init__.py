"""asyncio-native SDK for Routee's Viber Business Messages API (OTP and transactional templates).

>>> async with RouteeViberClient(credentials=ClientCredentials(app_id, secret)) as client:
...     result = await client.messages.send(SendMessage(sender, "+306912345678", tid, "en",
...                                                     {"pin": "482910"}))
"""

import attrs as _attrs

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
from ._masking import secret_params, set_secret_params
from ._requests import (
    CreateTemplate,
    LegacyOtp,
    OtpParams,
    SendMessage,
    TemplateCallbackUpdate,
    TemplateLocale,
    TemplateParam,
    VarExample,
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
from ._version import __version__
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
    "AuthenticationError",
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
    "RequestTimeoutError",
    "ResponseTooLargeError",
    "RetryBudget",
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

# Tracebacks and reprs read ``routee_viber_async.X``, not the private module (as httpx does).
# String annotations are resolved first, while the defining module is still the one they name.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) and _obj.__module__.startswith(__name__ + "."):
        if _attrs.has(_obj):
            _attrs.resolve_types(_obj)
        _obj.__module__ = __name__
del _name, _obj
