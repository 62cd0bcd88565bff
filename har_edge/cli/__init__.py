"""``har-edge`` command line: train, evaluate, export, run, doctor, record, forecast.

Each subcommand parses arguments, calls the library and maps :class:`HarEdgeError` to exit code 1
with a one-line message. Logging is configured here, once.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable, Sequence

from har_edge import __version__
from har_edge.errors import HarEdgeError

__all__ = ["main", "build_parser"]


def _add_data_root(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", help="data sets directory (default: $HAR_EDGE_DATA, else ../shared/data beside the repo)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="har-edge", description="Human activity recognition from raw sensor data to the edge.")
    parser.add_argument("--version", action="version", version=f"har-edge {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a classifier from a TOML config and write a run directory")
    p.add_argument("--config", required=True, help="training config, e.g. training/configs/uci_har_9ch.toml")
    p.add_argument("--out", required=True, help="run directory to write")
    p.add_argument("--quiet", action="store_true", help="no per-epoch progress")
    p.add_argument("--seed", type=int, help="override [train] seed (weights, shuffling, augmentation)")
    p.add_argument("--recordings", help="override [data] path: a folder of recordings (dataset = \"recordings\")")
    p.add_argument("--init-from", help="override [train] init_from: fine-tune this run directory")
    _add_data_root(p)

    p = sub.add_parser("evaluate", help="recompute a run's test metrics (Keras or the NumPy reference engine)")
    p.add_argument("run_dir")
    p.add_argument("--backend", choices=["keras", "numpy"], default="keras")
    p.add_argument("--out", help="write the metrics JSON here (default: RUN_DIR/metrics.json for keras)")
    p.add_argument("--recordings", help="evaluate on this folder of recordings (har-edge record) instead of the run's test split")
    p.add_argument("--split", choices=["train", "test"], help="with --recordings: only recordings whose sidecar has this split")
    _add_data_root(p)

    p = sub.add_parser("export", help="quantise a run to TFLite bundles with a parity report (and MCU sources)")
    p.add_argument("run_dir")
    p.add_argument("--quant", default="int8", help="float32 | float16 | dynamic | int8 | all (default int8)")
    p.add_argument("--out", required=True, help="output directory (bundle + report.json)")
    p.add_argument("--target", choices=["mcu"], help="also write microcontroller sources under OUT/mcu")
    p.add_argument("--no-interpreter-check", action="store_true", help="skip loading each model in every interpreter")
    _add_data_root(p)

    from har_edge.cli.run import add_run_parsers
    from har_edge.cli.record import add_record_parser

    add_run_parsers(sub)
    from har_edge.cli.forecast import add_forecast_parser

    add_forecast_parser(sub, _add_data_root)
    add_record_parser(sub)
    return parser


def _setup_logging(verbose: int) -> None:
    """Log to stderr; every handler redacts passwords (:mod:`har_edge.redaction`), threads never print tracebacks."""
    import threading

    from har_edge.redaction import RedactingFilter, redact

    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())

    def thread_error(hook: threading.ExceptHookArgs) -> None:  # e.g. an exception in paho's network thread
        name = hook.thread.name if hook.thread is not None else "?"
        log = logging.getLogger("har_edge")
        log.error("thread %s failed: %s: %s", name, getattr(hook.exc_type, "__name__", "?"), redact(str(hook.exc_value)))
        if verbose >= 2 and hook.exc_value is not None:
            log.debug("traceback of thread %s", name, exc_info=hook.exc_value)

    threading.excepthook = thread_error


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {}
    from har_edge.cli import commands, forecast, record, run

    handlers.update(train=commands.cmd_train, evaluate=commands.cmd_evaluate, export=commands.cmd_export,
                    run=run.cmd_run, doctor=run.cmd_doctor, forecast=forecast.cmd_forecast,
                    record=record.cmd_record)
    from har_edge.redaction import redact

    try:
        return handlers[args.command](args)
    except HarEdgeError as exc:
        print(f"har-edge {args.command}: error: {redact(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"har-edge {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: one line (secrets masked); the traceback only with -vv
        logging.getLogger("har_edge").debug("traceback", exc_info=True)
        print(f"har-edge {args.command}: internal error: {type(exc).__name__}: {redact(str(exc))} "
              "(run with -vv for the traceback)", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
