"""A local emulator of Routee's Viber API for tests, demos and development.

``async with Sandbox(**options) as sb:`` serves it on a free loopback port; point a client at
``sb.base_url``/``sb.auth_url`` with ``sb.credentials``. It enforces the rules and error shapes
of Routee's reference (seeds 000 and 001), moderates templates, moves messages through their
delivery statuses, POSTs moderation and delivery callbacks and injects faults (:class:`FaultRates`,
:meth:`Sandbox.inject_fault`). With ``ui=True`` it serves a web inbox at ``/`` (messages as
the handset shows them, templates, controls), on the JSON API under ``/_sandbox/``.
``serve()`` runs one until cancelled (``routee-viber sandbox``).
"""

from __future__ import annotations

from ._callbacks import CallbackRecord
from ._delivery import Fate
from ._faults import FaultKind, FaultRates
from ._options import SandboxOptions
from ._sandbox import InboxMessage, Sandbox, SentMessage, serve

__all__ = [
    "CallbackRecord",
    "Fate",
    "FaultKind",
    "FaultRates",
    "InboxMessage",
    "Sandbox",
    "SandboxOptions",
    "SentMessage",
    "serve",
]

for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith(__name__ + "._"):
        _obj.__module__ = __name__
del _name, _obj
