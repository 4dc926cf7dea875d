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
from .._errors import ConfigurationError, RouteeError, ValidationError
from .._requests import CreateTemplate, SendMessage

__all__ = ["print_json", "print_error", "run_command"]

ClientFactory = Callable[..., RouteeViberClient]


def print_json(value: Any, stream: IO[str] | None = None) -> None:
    """Pretty JSON of a model (secrets masked) or JSON-ready value."""
    data = to_masked(value)
    out = stream if stream is not None else sys.stdout
    out.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


def print_error(error: BaseException, stream: IO[str] | None = None) -> None:
    """An error as one JSON object on stderr (never with a secret: our errors carry none)."""
    report: dict[str, Any] = {"error": type(error).__name__, "message": str(error)}
    if isinstance(error, ValidationError) and error.issues:
        report["issues"] = [{"code": c, "message": m} for c, m in error.issues]
    status = getattr(error, "status", None)
    if status is not None:
        report["status"] = status
    out = stream if stream is not None else sys.stderr
    out.write(_json.dumps_str(report) + "\n")


def _parse_params(pairs: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ValidationError([("INVALID_FIELD", f"--param expects NAME=VALUE, got {name!r}")])
        params[name] = value
    return params


async def run_command(args: argparse.Namespace, client_factory: ClientFactory) -> int:
    """Run a one-call command; returns the exit code (1 for an API error)."""
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
            return await client.tracking.wait(args.tracking_id, timeout=args.timeout)
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


def is_usage_error(error: RouteeError) -> bool:
    """Local validation failures and a missing configuration are bad usage (exit 2); API
    answers are failures (exit 1)."""
    if isinstance(error, ConfigurationError):
        return True
    return isinstance(error, ValidationError) and error.status is None
