"""The one-call commands: ``send``, ``track``, ``templates ...``; JSON on stdout."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import orjson

from .. import _json
from .._client import RouteeViberClient
from .._converter import from_wire, to_masked
from .._enums import DeliveryScope
from .._errors import (
    APIStatusError,
    RouteeError,
    TransportError,
    ValidationError,
    WaitTimeoutError,
)
from .._requests import CreateTemplate, SendMessage
from ._exit import EXIT_FAILED, EXIT_USAGE, CommandError

__all__ = ["exit_code_for", "print_json", "run_command"]

ClientFactory = Callable[..., RouteeViberClient]


def print_json(value: Any, stream: IO[str] | None = None) -> None:
    """Pretty JSON of a model (secrets masked) or JSON-ready value."""
    data = to_masked(value)
    out = stream if stream is not None else sys.stdout
    out.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


def _parse_params(pairs: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ValidationError([("INVALID_FIELD", f"--param expects NAME=VALUE, got {name!r}")])
        params[name] = value
    return params


async def run_command(args: argparse.Namespace, client_factory: ClientFactory) -> int:
    """Run a one-call command; returns the exit code (errors are raised, see exit_code_for)."""
    async with client_factory() as client:
        result = await _call(args, client)
    print_json(result)
    return 0


async def _call(args: argparse.Namespace, client: RouteeViberClient) -> Any:
    command = args.command
    if command == "send":
        message = SendMessage(
            sender_info_tracking_id=args.sender,
            to=args.to,
            template_id=args.template_id,
            template_lang=args.lang,
            template_params=_parse_params(args.param),
            delivery_scope=DeliveryScope(args.delivery_scope) if args.delivery_scope else None,
            ttl=args.ttl,
            callback_url=args.callback_url,
            seq=args.seq,
        )
        return await client.messages.send(message)
    if command == "track":
        if args.wait:
            return await client.tracking.wait(args.tracking_id, timeout=args.wait_timeout)
        return await client.tracking.get(args.tracking_id)
    if command == "templates":
        return await _templates(args, client)
    raise AssertionError(command)


async def _templates(args: argparse.Namespace, client: RouteeViberClient) -> Any:
    action = args.action
    if action == "list":
        return [
            template
            async for template in client.templates.list(
                sender_info_tracking_id=args.sender, page_size=args.page_size
            )
        ]
    if action == "get":
        return await client.templates.get(args.template_id)
    if action == "create":
        body = from_wire(_read_json(Path(args.file)), CreateTemplate)
        return await client.templates.create(args.sender, body)
    if action == "delete":
        return await client.templates.delete(args.template_id)
    if action == "set-callback":
        url = None if args.remove else args.url
        if url is None and not args.remove:
            raise ValidationError([("INVALID_FIELD", "give a URL or --remove")])
        return await client.templates.update_callback(args.template_id, url)
    raise AssertionError(action)


def _read_json(path: Path) -> Any:
    try:
        return _json.loads(path.read_bytes())
    except OSError as exc:
        raise ValidationError([("INVALID_FIELD", f"cannot read {path}: {exc.strerror}")]) from None
    except _json.JSONDecodeError:
        raise ValidationError([("INVALID_FIELD", f"{path} is not valid JSON")]) from None


def exit_code_for(error: BaseException) -> int | None:
    """The exit code of an expected failure, or None for a bug (its traceback is wanted).

    Bad input exits 2 whether it was caught locally or refused by Routee's 400, and so does
    a bad environment (missing credentials, a malformed URL); Routee's other refusals, an
    unreachable API, a timeout and a ``track --wait`` without a final status exit 1.
    """
    if isinstance(error, CommandError):
        return error.exit_code
    if isinstance(error, APIStatusError | TransportError | WaitTimeoutError):
        return EXIT_FAILED
    if isinstance(error, RouteeError | ValueError):  # ValidationError, configuration errors
        return EXIT_USAGE
    if isinstance(error, OSError):
        return EXIT_FAILED
    return None
