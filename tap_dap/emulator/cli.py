"""``dap-emulator serve``: run the emulator until SIGTERM/SIGINT.

The first line on stdout is the base URL (e.g. ``http://127.0.0.1:43123``), flushed, so a test or
script can start the server on ``--port 0`` and read where it listens.
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
import threading
from pathlib import Path
from types import FrameType

from tap_dap.emulator.app import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    EmulatorApp,
    ServeOptions,
)
from tap_dap.emulator.datasets import DATASETS, DatasetOptions
from tap_dap.emulator.errors import EmulatorError
from tap_dap.emulator.faults import parse_limits
from tap_dap.emulator.jobs import JobSettings
from tap_dap.emulator.server import make_server
from tap_dap.emulator.values import NULL_SHARE

SERVE_EPILOG = """\
admin API (loopback only, no auth), under /_emulator/:
  GET  tables | clock | requests | truth/<ns>/<table>   inspect (truth: live rows as JSONL)
  POST advance {namespace, table, inserts, updates, deletes}   synthetic changes now
  POST changes/<ns>/<table>   body: DAP JSONL records ({"meta": {"ts", "action"}, "key", "value"})
       appended to a --data table; meta.ts is honoured (it must be after the clock's last tick,
       else 400) or, when absent, stamped at the current clock
  POST schema {namespace, table, add_column | add_enum_value | schema + version [, ts]}
       a new schema version; "schema" + "version" is a whole recorded VersionedSchema
  POST reload {namespace, table}; POST/DELETE faults

replaying a recorded timeline:
  dap-emulator serve --data DIR --clock-start data    # DIR/<ns>/<table>/schema.json + changes.jsonl
  ... snapshot (tap-dap, dap initdb) ...
  POST /_emulator/schema {..., "schema": {...}, "version": 2, "ts": "..."}   # if the schema moved
  POST /_emulator/changes/<ns>/<table> with the next recorded lines
  ... incremental (tap-dap, dap syncdb) ...
"""


def _positive(kind: type, minimum: float) -> object:
    def convert(text: str) -> object:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {text}")
        return value

    return convert


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dap-emulator", description="A local DAP API emulator.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve", help="serve the DAP API (first stdout line: base URL)",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=SERVE_EPILOG)
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default: 127.0.0.1, loopback only)")
    serve.add_argument("--port", type=_positive(int, 0), default=0,
                       help="port (default 0: a free one; meltano.yml's emulator environment "
                       "expects 8765)")
    serve.add_argument("--dataset", choices=DATASETS, default=None,
                       help="canvas (default) or empty; with --data, default empty")
    serve.add_argument("--data", type=Path,
                       help="fixture dir: <ns>/<table>/schema.json + changes.jsonl")
    serve.add_argument("--clock-start", metavar="TIMESTAMP|data", default=None,
                       help="run the clock from this ISO 8601 time (e.g. 2024-06-01T00:00:00Z) "
                            "instead of the wall clock, or from just after the latest --data "
                            "change ('data'); it then runs at wall-clock speed and jumps forward "
                            "to later appended changes. Replays recorded timelines (see below)")
    serve.add_argument("--rows", type=_positive(int, 0), default=100, help="rows per canvas table")
    serve.add_argument("--seed", type=int, default=0,
                       help="seed of the generated rows (same seed, same data; default 0)")
    serve.add_argument("--null-share", type=float, default=NULL_SHARE, metavar="FRACTION",
                       help=f"share of NULLs in nullable columns of generated rows (default "
                            f"{NULL_SHARE}); DAP leaves them out of its rows, so more nulls "
                            f"mean narrower rows: 0.78 gives canvas.submissions rows of about "
                            f"480 bytes, like production Canvas data")
    serve.add_argument("--tables", default="", help="comma list of table or ns.table names")
    serve.add_argument("--client-id", default=DEFAULT_CLIENT_ID,
                       help=f"the one client ID accepted (default {DEFAULT_CLIENT_ID})")
    serve.add_argument("--client-secret", default=DEFAULT_CLIENT_SECRET,
                       help="its secret (default: the built-in one meltano.yml's emulator "
                       "environment uses)")
    serve.add_argument("--job-latency", type=_positive(float, 0), default=0.0, metavar="SECONDS",
                       help="how long each query job stays waiting/running (default 0)")
    serve.add_argument("--rows-per-object", type=_positive(int, 1), default=250_000,
                       help="rows per result object of a job (default 250000)")
    serve.add_argument("--token-ttl", type=_positive(int, 1), default=3600, metavar="SECONDS",
                       help="lifetime of access tokens (default 3600, as DAP)")
    serve.add_argument("--url-ttl", type=_positive(int, 1), default=900, metavar="SECONDS",
                       help="lifetime of pre-signed object URLs (default 900)")
    serve.add_argument("--compression-level", type=int, choices=range(1, 10), default=1,
                       metavar="1-9", help="gzip level of result objects (default 1: fastest)")
    serve.add_argument("--rate-limits", nargs="?", const="published", default=None,
                       metavar="ENDPOINT=PER_MINUTE,...",
                       help="enforce the published limits (or the given ones) with 429")
    serve.add_argument("--verbose", action="store_true", help="log every request to stderr")
    return parser


def options_from(args: argparse.Namespace) -> ServeOptions:
    dataset = args.dataset or ("empty" if args.data else "canvas")
    tables = tuple(t.strip() for t in args.tables.split(",") if t.strip())
    return ServeOptions(
        dataset=DatasetOptions(dataset, args.data, args.rows, args.seed, tables,
                               args.clock_start, args.null_share),
        client_id=args.client_id,
        client_secret=args.client_secret,
        token_ttl=args.token_ttl,
        url_ttl=args.url_ttl,
        jobs=JobSettings(latency=args.job_latency, rows_per_object=args.rows_per_object,
                         compression_level=args.compression_level),
        rate_limits=parse_limits(args.rate_limits) if args.rate_limits else None,
    )


def serve(args: argparse.Namespace) -> None:
    app = EmulatorApp(options_from(args))
    try:
        server = make_server(app, args.host, args.port, args.verbose)
    except OSError as exc:
        app.close()
        raise EmulatorError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    host, port = server.server_address[:2]
    shown = f"[{host}]" if server.address_family == socket.AF_INET6 else host
    print(f"http://{shown}:{port}", flush=True)

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        app.close()


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        serve(args)
    except EmulatorError as exc:
        sys.exit(f"dap-emulator: {exc}")


if __name__ == "__main__":
    main()
