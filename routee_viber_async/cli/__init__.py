"""``routee-viber``: the command line (also ``python -m routee_viber_async``).

Credentials and URLs come from the environment, as for ``RouteeViberClient.from_env()``:
``ROUTEE_APPLICATION_ID`` and ``ROUTEE_APPLICATION_SECRET`` (or ``ROUTEE_ACCESS_TOKEN``),
``ROUTEE_BASE_URL``, ``ROUTEE_AUTH_URL``.

Nothing of the SDK (aiohttp, attrs, cattrs) is imported before the arguments are parsed and
the command is known: ``--help`` and ``--version`` answer at once.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from .._version import __version__
from ._exit import EXIT_INTERRUPTED, CommandError, print_error

if TYPE_CHECKING:
    from .._client import RouteeViberClient

__all__ = ["build_parser", "main"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _add_metrics_options(parser: argparse.ArgumentParser, lifetime: str) -> None:
    """``--metrics-port`` and ``--metrics-host``: Prometheus metrics served while ``lifetime``."""
    parser.add_argument(
        "--metrics-port",
        type=_port,
        default=None,
        metavar="P",
        help=f"serve Prometheus metrics on http://HOST:P/metrics while {lifetime} (needs the "
        "prometheus extra; 0 picks a free port, printed at the start)",
    )
    parser.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        metavar="HOST",
        help="the interface of --metrics-port (default %(default)s; 0.0.0.0 for all)",
    )


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be between 0 and 65535, got {value}")
    return value


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def _duration(text: str) -> int:
    """Seconds, from ``3600``, ``90s``, ``30m``, ``12h`` or ``7d``."""
    number, unit = text.strip(), "s"
    if number[-1:].lower() in _DURATION_UNITS:
        number, unit = number[:-1], number[-1].lower()
    try:
        value = float(number) * _DURATION_UNITS[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a duration such as 7d, 12h, 30m or 3600, got {text!r}"
        ) from None
    if not math.isfinite(value) or value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 second, got {text!r}")
    return math.ceil(value)


_TEMPLATE_FILE_HELP = """\
FILE is the JSON body of Routee's "create a template" call; the sender is --sender.
  "category"    "OTP" (its text must contain {{pin}}) or "Transactional"
  "params"      the placeholders: [{"name": "pin", "type": "TEXT"}, ...] (TEXT is the only type)
  "locales"     one text a language: [{"lang": "en", "template": "... {{pin}} ..."}, ...]
  "varExample"  an example value for every placeholder, shown to the moderators
  "callbackUrl", "moderationNotifyEmail"   optional: where to report the moderation result
For example (examples/otp_template.json):

  {
    "category": "OTP",
    "params": [{"name": "pin", "type": "TEXT"}, {"name": "minutes", "type": "TEXT"}],
    "locales": [{"lang": "en", "template": "Your code is {{pin}}, valid for {{minutes}} min."}],
    "varExample": [{"name": "pin", "example": "123456"}, {"name": "minutes", "example": "5"}]
  }

A new template starts PENDING_MODERATION; it can be sent once approved.
"""


def _common_options(*, defaults: bool) -> argparse.ArgumentParser:
    """--timeout and --verbose, accepted before and after every command name.

    The top-level parser holds the defaults; a command's copy uses SUPPRESS so that, given
    before the command name, a value is not reset by the command's own default.
    """
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("options of every command")
    group.add_argument(
        "--timeout",
        type=_positive_float,
        metavar="SECONDS",
        default=None if defaults else argparse.SUPPRESS,
        help="give up on one API call after SECONDS, retries included "
        "(default: 10 s an attempt, 60 s a call)",
    )
    group.add_argument(
        "--verbose",
        action="store_true",
        default=False if defaults else argparse.SUPPRESS,
        help="log the SDK's records (requests, retries, token refreshes) to stderr; "
        "secrets are masked",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(
        prog="routee-viber",
        description="Routee Viber Business Messages from the command line.",
        epilog="Credentials: ROUTEE_APPLICATION_ID and ROUTEE_APPLICATION_SECRET (or "
        "ROUTEE_ACCESS_TOKEN); ROUTEE_BASE_URL and ROUTEE_AUTH_URL override the endpoints. "
        "Exit codes: 0 done, 1 refused by Routee or unreachable, 2 bad usage or input, "
        "130 interrupted.",
        parents=[_common_options(defaults=True)],
    )
    parser.add_argument("--version", action="version", version=f"routee-viber {__version__}")
    common = [_common_options(defaults=False)]
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        parents=common,
        help="fan out OTPs against the built-in sandbox (no credentials needed)",
    )
    demo.add_argument(
        "--count", type=_positive_int, default=1000, help="how many OTPs (default 1000)"
    )
    demo.add_argument("--concurrency", type=_positive_int, default=100, help="sends in flight")
    demo.add_argument(
        "--ui",
        action="store_true",
        help="at the end, leave the sandbox running and print its web inbox's URL (Ctrl+C stops)",
    )

    sandbox = commands.add_parser(
        "sandbox", parents=common, help="serve the local Routee emulator and its web inbox"
    )
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=_port, default=8080, help="0 picks a free port")
    sandbox.add_argument(
        "--moderation",
        choices=["auto", "manual"],
        default="auto",
        help="auto: templates are decided after a moment; manual: by the inbox's Approve and "
        "Reject buttons (default auto)",
    )
    sandbox.add_argument(
        "--allow-remote",
        action="store_true",
        help="serve on a host that is not loopback (the inbox shows OTP pins: refused without it)",
    )

    many = commands.add_parser(
        "send-many",
        parents=common,
        help="send a template to every row of a CSV or JSONL file (resumable)",
    )
    many.add_argument(
        "input", help="CSV (a 'to' column, in any case) or JSONL ('to', 'templateParams')"
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
    many.add_argument("--output", default=None, help="results file (JSONL)")
    many.add_argument("--journal", default=None, help="SQLite journal (INPUT.journal)")
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
    many.add_argument(
        "--max-failures",
        type=_non_negative_int,
        default=20,
        metavar="N",
        help="stop after N sends in a row refused the same way (a wrong --sender, say): the "
        "sends in flight drain, exit 2, and --retry-failed resends the failed rows once the "
        "cause is fixed; 0 never stops (default %(default)s)",
    )
    many.add_argument(
        "--allow-duplicates",
        action="store_true",
        help="do not warn about recipients that appear more than once (every row is sent "
        "either way: nothing is deduplicated)",
    )
    dist = many.add_argument_group(
        "distributed run (the rows are sent by `routee-viber worker` processes)"
    )
    dist.add_argument(
        "--redis",
        metavar="URL",
        default=None,
        help="the Redis of the workers: the journal lives there, --rate is for all workers "
        "together, and the rows are queued encrypted with ROUTEE_FANOUT_KEY",
    )
    dist.add_argument(
        "--run-id",
        default=None,
        help="the run's name in Redis (default: a digest of the input and settings)",
    )
    dist.add_argument(
        "--retention",
        type=_duration,
        default=7 * 86_400,
        metavar="DURATION",
        help="how long the run's keys stay in Redis after its last change (default 7d)",
    )
    dist.add_argument(
        "--chunk-size",
        type=_positive_int,
        default=1000,
        metavar="ROWS",
        help="rows per queued task (default %(default)s)",
    )

    worker = commands.add_parser(
        "worker",
        parents=common,
        help="send the chunks of `send-many --redis` runs (any number, on any machines)",
        description="A worker process of distributed send-many runs: credentials from the "
        "environment (ROUTEE_*), the key of the queued rows from ROUTEE_FANOUT_KEY. "
        "SIGTERM or Ctrl-C drains the sends in flight and exits.",
    )
    worker.add_argument("--redis", metavar="URL", required=True, help="the runs' Redis")
    worker.add_argument(
        "--concurrency", type=_positive_int, default=50, help="sends in flight (default 50)"
    )
    worker.add_argument(
        "--redeliver-after",
        type=_positive_float,
        default=60.0,
        metavar="SECONDS",
        help="a chunk a dead worker took goes to another after this long (default 60)",
    )
    _add_metrics_options(worker, "the worker runs")

    commands.add_parser(
        "keygen",
        parents=common,
        help="print a new ROUTEE_FANOUT_KEY (for send-many --redis and its workers)",
    )

    _add_metrics_options(many, "the run lasts")

    send = commands.add_parser("send", parents=common, help="send one template message")
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

    track = commands.add_parser("track", parents=common, help="the tracking record of a send")
    track.add_argument("tracking_id")
    track.add_argument("--wait", action="store_true", help="wait for a final status")
    track.add_argument(
        "--wait-timeout",
        type=_positive_float,
        default=60.0,
        metavar="SECONDS",
        help="with --wait: how long to wait for a final status (default 60)",
    )

    templates = commands.add_parser(
        "templates", parents=common, help="list, get, create, delete templates"
    )
    actions = templates.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", parents=common, help="every template")
    listing.add_argument("--sender", default=None, help="only this senderInfoTrackingId")
    listing.add_argument("--page-size", type=_positive_int, default=None)
    get = actions.add_parser("get", parents=common, help="one template")
    get.add_argument("template_id")
    create = actions.add_parser(
        "create",
        parents=common,
        help="create a template from a JSON file",
        epilog=_TEMPLATE_FILE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    create.add_argument("file", help="the template as JSON (format below)")
    create.add_argument("--sender", required=True, help="senderInfoTrackingId")
    delete = actions.add_parser("delete", parents=common, help="delete a template")
    delete.add_argument("template_id")
    callback = actions.add_parser(
        "set-callback", parents=common, help="set or remove the moderation callback"
    )
    callback.add_argument("template_id")
    callback.add_argument("url", nargs="?", default=None)
    callback.add_argument("--remove", action="store_true", help="remove the callback URL")
    return parser


def _client_from_env(*, timeout: float | None = None, **options: Any) -> RouteeViberClient:
    """``RouteeViberClient.from_env(**options)``; ``timeout`` bounds each call, retries included."""
    from .._client import RouteeViberClient
    from ._timeout import with_timeout

    return RouteeViberClient.from_env(**with_timeout(options, timeout))


def _command_name(args: argparse.Namespace) -> str:
    """``send``, ``templates get``, ...: the prefix of the command's error lines."""
    action = getattr(args, "action", None)
    return f"{args.command} {action}" if action else str(args.command)


@contextlib.contextmanager
def _sdk_logs_on_stderr(enabled: bool) -> Iterator[None]:
    """--verbose: the SDK's log records, DEBUG and up, on stderr (they never carry a secret)."""
    if not enabled:
        yield
        return
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("routee_viber_async")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def _serve_sandbox(args: argparse.Namespace) -> int:
    from ..sandbox import serve

    try:
        await serve(
            host=args.host,
            port=args.port,
            ui=True,
            moderation=args.moderation,
            allow_remote=args.allow_remote,
        )
    except OSError as exc:  # port in use, unknown host, no permission
        raise CommandError(str(exc)) from None
    return 0


async def _run(args: argparse.Namespace) -> int:
    if args.command == "demo":
        from ._demo import run_demo

        return await run_demo(
            count=args.count,
            concurrency=args.concurrency,
            request_timeout=args.timeout,
            ui=args.ui,
        )
    if args.command == "sandbox":
        return await _serve_sandbox(args)
    if args.command == "keygen":
        from ._fanout_key import ENV_NAME, generate_key

        print(f"{ENV_NAME}={generate_key()}")
        return 0

    def client_factory(**options: Any) -> RouteeViberClient:
        return _client_from_env(timeout=args.timeout, **options)

    if args.command == "send-many":
        from pathlib import Path

        from ._send_many import SendMany

        options: dict[str, Any] = {
            "input": Path(args.input),
            "sender": args.sender,
            "template_id": args.template_id,
            "lang": args.lang,
            "concurrency": args.concurrency,
            "rate": args.rate,
            "output": None if args.output is None else Path(args.output),
            "journal": None if args.journal is None else Path(args.journal),
            "resend_unknown": args.resend_unknown,
            "retry_failed": args.retry_failed,
            "max_failures": args.max_failures,
            "allow_duplicates": args.allow_duplicates,
            "metrics_port": args.metrics_port,
            "metrics_host": args.metrics_host,
        }
        job: SendMany
        if args.redis is None:
            if args.run_id is not None:
                raise CommandError("--run-id names a distributed run: it needs --redis URL")
            job = SendMany(**options)
        else:
            from ._coordinator import DistributedSendMany

            job = DistributedSendMany(
                **options,
                redis=args.redis,
                run_id=args.run_id,
                retention=args.retention,
                chunk_size=args.chunk_size,
            )
        return await job.run(client_factory)
    from ._commands import run_command

    return await run_command(args, client_factory)


def _run_worker(args: argparse.Namespace) -> int:
    """``routee-viber worker``: taskiq runs its own event loop and signal handling."""
    try:
        with _sdk_logs_on_stderr(args.verbose):
            from ._worker import run_worker

            return run_worker(
                args.redis,
                concurrency=args.concurrency,
                redeliver_after=args.redeliver_after,
                metrics_port=args.metrics_port,
                metrics_host=args.metrics_host,
            )
    except CommandError as exc:
        print_error("worker", exc)
        return exc.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    command = _command_name(args)
    if args.command == "worker":
        return _run_worker(args)
    from ._loop import run_command  # not before: --help and --version do without asyncio

    try:
        with _sdk_logs_on_stderr(args.verbose):
            return run_command(_run(args))
    except KeyboardInterrupt:
        print_error(command, "interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:
        from ._commands import exit_code_for

        code = exit_code_for(exc)
        if code is None:  # a bug: its traceback is wanted
            raise
        print_error(command, exc)
        return code
