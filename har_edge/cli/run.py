"""``run`` and ``doctor`` (device side: no TensorFlow). Filled in by the runtime work."""

from __future__ import annotations

import argparse

__all__ = ["add_run_parsers", "cmd_run", "cmd_doctor"]


def add_run_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    sub.add_parser("run", help="stream sensor samples through a bundle")
    sub.add_parser("doctor", help="check backend, bundle and broker")


def cmd_run(args: argparse.Namespace) -> int:
    return 2


def cmd_doctor(args: argparse.Namespace) -> int:
    return 2
