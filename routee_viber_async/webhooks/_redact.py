"""A ``logging.Filter`` that keeps webhook tokens out of the web server's access log.

uvicorn's access log (logger ``uvicorn.access``) and aiohttp's (``aiohttp.access``) print each
request line, query string included, so a callback URL's ``?token=SECRET`` or its path token
(``/routee/delivery/SECRET``) would be written to every log file. Attach the filter to their
handlers or loggers::

    import logging
    from routee_viber_async.webhooks import RedactTokenFilter

    logging.getLogger("uvicorn.access").addFilter(RedactTokenFilter())
    logging.getLogger("aiohttp.access").addFilter(RedactTokenFilter())
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from .._masking import MASK, query_value_pattern

__all__ = ["DEFAULT_TOKEN_PATHS", "RedactTokenFilter"]

#: The path-token routes of the integrations (``delivery_path="/routee/delivery/{token}"``).
DEFAULT_TOKEN_PATHS: Final = ("/routee/delivery/{token}", "/routee/moderation/{token}")

_TOKEN_PLACEHOLDER: Final = "{token}"


class RedactTokenFilter(logging.Filter):
    """Replaces webhook tokens in a log record (message, arguments, extras) with ``***``.

    ``params``: query parameters whose values are masked (default ``token``, the routers'
    ``token_param``). ``paths``: route templates whose ``{token}`` segment is masked wherever
    the template appears in a line (so a router mounted under a prefix is covered too). The
    record is always let through: only its text changes.
    """

    def __init__(
        self,
        name: str = "",
        *,
        params: Iterable[str] = ("token",),
        paths: Iterable[str] = DEFAULT_TOKEN_PATHS,
    ) -> None:
        super().__init__(name)
        self._query = query_value_pattern(list(params))
        self._paths = [_path_pattern(template) for template in paths]

    def redact(self, text: str) -> str:
        """``text`` with every token it holds replaced by ``***``."""
        text = self._query.sub(rf"\g<1>{MASK}", text)
        for pattern in self._paths:
            text = pattern.sub(rf"\g<1>{MASK}", text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record in place; always keep it."""
        if isinstance(record.msg, str):
            record.msg = self.redact(record.msg)
        record.args = self._redact_args(record.args)
        for key, value in list(vars(record).items()):
            if isinstance(value, str) and key != "msg":
                setattr(record, key, self.redact(value))
        return True

    def _redact_args(self, args: Any) -> Any:
        if isinstance(args, tuple):
            return tuple(self._redact_value(arg) for arg in args)
        if isinstance(args, Mapping):
            return {key: self._redact_value(value) for key, value in args.items()}
        return args

    def _redact_value(self, value: object) -> object:
        return self.redact(value) if isinstance(value, str) else value


def _path_pattern(template: str) -> re.Pattern[str]:
    if template.count(_TOKEN_PLACEHOLDER) != 1:
        raise ValueError("a token path holds {token} once, e.g. /routee/delivery/{token}")
    before, after = template.split(_TOKEN_PLACEHOLDER)
    return re.compile(rf"({re.escape(before)})[^/?#\s\"']+(?={re.escape(after)})")
