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


def _add_data_root(p: argparse.ArgumentParser, *, run_default: bool = False) -> None:
    default = ("the data root recorded in the run's run.json when that folder exists, else $HAR_EDGE_DATA, "
               "else ../shared/data beside the repo") if run_default else "$HAR_EDGE_DATA, else ../shared/data beside the repo"
    p.add_argument("--data-root", metavar="DIR", help=f"data sets directory (default: {default}; "
                   "`har-edge data prepare` makes one from the official downloads)")


def _arena_margin(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (a fraction: 0.25 = 25 %)") from None
    if not 0 <= value <= 10:
        raise argparse.ArgumentTypeError(f"{value:g} is outside 0..10 (a fraction of the measured arena: 0.25 = 25 %)")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="har-edge", description="Human activity recognition from raw sensor data to the edge.")
    parser.add_argument("--version", action="version", version=f"har-edge {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more logging: -v info, -vv debug (also TensorFlow's hidden start-up lines) (default: warnings only)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train a classifier from a TOML config and write a run directory",
                       description="Train a classifier from a TOML config; prints one line per epoch and writes RUN_DIR.")
    p.add_argument("--config", required=True, metavar="TOML", help="training config, e.g. training/configs/hapt_device.toml (required)")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory to write (required; replaced if it exists)")
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines (default: one line per epoch)")
    p.add_argument("--seed", type=int, help="override the config's [train] seed (weights, shuffling, augmentation) (default: the config's)")
    p.add_argument("--recordings", metavar="DIR", help="override [data] path: a folder of recordings (dataset = \"recordings\") "
                   "(default: the config's data)")
    p.add_argument("--init-from", metavar="RUN_DIR", help="override [train] init_from: fine-tune this run directory "
                   "(default: the config's, else from scratch)")
    _add_data_root(p)

    p = sub.add_parser("evaluate", help="recompute a run's test metrics (Keras or the NumPy reference engine)",
                       description="Recompute a run's test metrics on its held-out subjects (or on recordings).")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `har-edge train`")
    p.add_argument("--backend", choices=["keras", "numpy"], default="keras",
                   help="keras: the trained model; numpy: the TF-free NumPy reference engine, compared with Keras (default: keras)")
    p.add_argument("--out", metavar="JSON", help="write the metrics JSON here (default: RUN_DIR/metrics.json for keras, nothing for numpy)")
    p.add_argument("--recordings", metavar="DIR", help="evaluate on this folder of recordings (har-edge record) instead of "
                   "the run's test split (default: the test split)")
    p.add_argument("--split", choices=["train", "test"], help="with --recordings: only recordings whose sidecar has this split "
                   "(default: all)")
    _add_data_root(p, run_default=True)

    p = sub.add_parser("export", help="quantise a run to TFLite bundles with a parity report (and MCU sources)",
                       description="Convert a run to TFLite bundles (model + manifest), evaluate each in LiteRT against Keras, "
                                   "and optionally write TFLite Micro sources.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `har-edge train`")
    p.add_argument("--quant", default="int8", metavar="MODE",
                   help="float32 | float16 | dynamic | int8 | all (default: int8; float32 for a Raspberry Pi, int8 for a microcontroller)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory: bundle + report.json (required; replaced if it exists)")
    p.add_argument("--target", choices=["mcu"], help="also write microcontroller (TFLite Micro) sources under OUT/mcu; "
                   'needs --quant int8 or all and the mcu extra, e.g. pip install ".[mcu]" (default: none)')
    p.add_argument("--arena-margin", type=_arena_margin, default=0.25, metavar="FRACTION",
                   help="MCU tensor arena = measured arena × (1 + FRACTION); a 32-bit board needs a different size than the "
                        "64-bit host where it is measured (default: 0.25)")
    p.add_argument("--no-interpreter-check", action="store_true",
                   help="skip loading each model in every installed interpreter (default: check LiteRT, tflite-runtime, tf.lite, TFLM)")
    _add_data_root(p, run_default=True)

    p = sub.add_parser("data", help="prepare data sets: convert the official downloads into the files the loaders read",
                       description="Data set tools.")
    data_sub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    from har_edge.data.official import DATASETS

    q = data_sub.add_parser("prepare", help="convert an official download (zip or unpacked folder) into a data root",
                            description="Convert the official download of a data set into DIR, usable as --data-root.")
    q.add_argument("dataset", choices=sorted(DATASETS), help="; ".join(f"{k}: {v[0]}" for k, v in sorted(DATASETS.items())))
    q.add_argument("--from", dest="source", required=True, metavar="ZIP_OR_DIR",
                   help="the downloaded zip (a zip inside it is opened too) or the folder it unpacks to (required)")
    q.add_argument("--out", required=True, metavar="DIR", help="data root to write into (required; other data sets in it are kept)")

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
                    data=commands.cmd_data, run=run.cmd_run, doctor=run.cmd_doctor, forecast=forecast.cmd_forecast,
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
