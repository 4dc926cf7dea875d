"""API resources: each builds requests and parses answers; the transport does the HTTP."""

from ._fanout import SendManyIterator, SendOutcome
from ._messages import MessagesResource
from ._templates import TemplatesResource
from ._tracking import TrackingResource

__all__ = [
    "MessagesResource",
    "SendManyIterator",
    "SendOutcome",
    "TemplatesResource",
    "TrackingResource",
]
