"""``routee-viber``: the command line (also ``python -m routee_viber_async``).

Credentials and URLs come from the environment, as for ``RouteeViberClient.from_env()``:
``ROUTEE_APPLICATION_ID`` and ``ROUTEE_APPLICATION_SECRET`` (or ``ROUTEE_ACCESS_TOKEN``),
``ROUTEE_BASE_URL``, ``ROUTEE_AUTH_URL``.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._client import RouteeViberClient
from .._errors import RouteeError
from ._commands import is_usage_error, print_error, run_command
from ._send_many import EXIT_INTERRUPTED, EXIT_USAGE, SendMany

__all__ = ["build_parser", "main"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be between 0 and 65535, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(
        prog="routee-viber",
        description="Routee Viber Business Messages from the command line.",
        epilog="Credentials: ROUTEE_APPLICATION_ID and ROUTEE_APPLICATION_SECRET (or "
        "ROUTEE_ACCESS_TOKEN); ROUTEE_BASE_URL and ROUTEE_AUTH_URL override the endpoints.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo", help="fan out OTPs against the built-in sandbox (no credentials needed)"
    )
    demo.add_argument(
        "--count", type=_positive_int, default=1000, help="how many OTPs (default 1000)"
    )
    demo.add_argument("--concurrency", type=_positive_int, default=100, help="sends in flight")

    sandbox = commands.add_parser("sandbox", help="serve the local Routee emulator")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=_port, default=8080, help="0 picks a free port")

    many = commands.add_parser(
        "send-many", help="send a template to every row of a CSV or JSONL file (resumable)"
    )
    many.add_argument(
        "input", type=Path, help="CSV (a 'to' column) or JSONL ('to', 'templateParams')"
    )
    many.add_argument("--sender", required=True, help="senderInfoTrackingId")
    many.add_argument("--template-id", required=True)
    many.add_argument("--lang", required=True, help="templateLang, e.g. en")
    many.add_argument(
        "--concurrency", type=_positive_int, default=50, help="sends in flight (default 50)"
    )
    many.add_argument(
        "--rate", type=_positive_float, default=None, help="at most this many sends a second"
    )
    many.add_argument("--output", type=Path, default=None, help="results file (JSONL)")
    many.add_argument("--journal", type=Path, default=None, help="SQLite journal (INPUT.journal)")
    many.add_argument(
        "--resend-unknown",
        action="store_true",
        help="send again the rows whose outcome is unknown (they may be delivered twice)",
    )
    many.add_argument(
        "--retry-failed",
        action="store_true",
        help="send again the rows that certainly failed (Routee refused them or was never "
        "reached); never the unknown ones",
    )

    send = commands.add_parser("send", help="send one template message")
    send.add_argument("--sender", required=True, help="senderInfoTrackingId")
    send.add_argument("--to", required=True, help="recipient, E.164 (+30...)")
    send.add_argument("--template-id", required=True)
    send.add_argument("--lang", required=True, help="templateLang, e.g. en")
    send.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="template parameter"
    )
    send.add_argument("--delivery-scope", choices=["PRIMARY_DEVICE", "ALL_DEVICES"])
    send.add_argument("--ttl", type=int)
    send.add_argument("--seq", type=int)
    send.add_argument("--callback-url")

    track = commands.add_parser("track", help="the tracking record of a send")
    track.add_argument("tracking_id")
    track.add_argument("--wait", action="store_true", help="wait for a final status")
    track.add_argument(
        "--timeout", type=_positive_float, default=60.0, help="with --wait (seconds)"
    )

    templates = commands.add_parser("templates", help="list, get, create, delete templates")
    actions = templates.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="every template")
    listing.add_argument("--sender", default=None, help="only this senderInfoTrackingId")
    listing.add_argument("--page-size", type=_positive_int, default=None)
    get = actions.add_parser("get", help="one template")
    get.add_argument("template_id")
    create = actions.add_parser("create", help="create a template from a JSON file")
    create.add_argument("file", help="the body as Routee documents it (category, params, ...)")
    create.add_argument("--sender", required=True, help="senderInfoTrackingId")
    delete = actions.add_parser("delete", help="delete a template")
    delete.add_argument("template_id")
    callback = actions.add_parser("set-callback", help="set or remove the moderation callback")
    callback.add_argument("template_id")
    callback.add_argument("url", nargs="?", default=None)
    callback.add_argument("--remove", action="store_true", help="remove the callback URL")
    return parser


def _client_from_env(**options: Any) -> RouteeViberClient:
    return RouteeViberClient.from_env(**options)


async def _run(args: argparse.Namespace) -> int:
    if args.command == "demo":
        from ._demo import run_demo

        return await run_demo(count=args.count, concurrency=args.concurrency)
    if args.command == "sandbox":
        from ..sandbox import serve

        await serve(host=args.host, port=args.port)
        return 0
    if args.command == "send-many":
        job = SendMany(
            input=args.input,
            sender=args.sender,
            template_id=args.template_id,
            lang=args.lang,
            concurrency=args.concurrency,
            rate=args.rate,
            output=args.output,
            journal=args.journal,
            resend_unknown=args.resend_unknown,
            retry_failed=args.retry_failed,
        )
        return await job.run(_client_from_env)
    return await run_command(args, _client_from_env)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return asyncio.run(_run(args))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except RouteeError as exc:
        print_error(exc)
        return EXIT_USAGE if is_usage_error(exc) else 1
    except ValueError as exc:  # missing credentials in the environment, bad option values
        print(f"routee-viber: {exc}", file=sys.stderr)
        return EXIT_USAGE
