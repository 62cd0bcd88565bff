"""Catch what native libraries (TensorFlow, LiteRT, the TFLite converter) write straight to stderr.

TensorFlow and LiteRT print start-up and progress lines from C++ (oneDNN, CUDA probing, ``failed
call to cuInit``, ``Created TensorFlow Lite XNNPACK delegate``, the converter's calibration summary)
to file descriptor 2, outside Python's logging and ``warnings``. :func:`captured_native_stderr`
points descriptor 2 at a temporary file for the duration of a block so callers can log that text
once at DEBUG, or attach it to an error. No library can do this for us: the writes come from C++.
"""

from __future__ import annotations

import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["captured_native_stderr", "native_output_shown"]

SHOW_ENV_VAR = "HAR_EDGE_NATIVE_LOGS"


def native_output_shown() -> bool:
    """True when ``$HAR_EDGE_NATIVE_LOGS`` asks to let native output through unchanged."""
    return os.environ.get(SHOW_ENV_VAR, "").strip().lower() in ("1", "true", "yes")


@contextmanager
def captured_native_stderr() -> Iterator[Callable[[], str]]:
    """Redirect file descriptor 2 (C/C++ writes and Python ``warnings`` included) inside the block.

    Yields a function returning the text captured so far. Does nothing (yields ``""``) when
    :func:`native_output_shown` or when there is no real descriptor 2.
    """
    if native_output_shown():
        yield lambda: ""
        return
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):
            yield lambda: ""
            return
        os.dup2(tmp.fileno(), 2)
        caught: list[warnings.WarningMessage] = []

        def text() -> str:
            tmp.flush()
            tmp.seek(0)
            native = tmp.read().decode("utf-8", errors="replace")
            python = "".join(f"{w.category.__name__}: {w.message}\n" for w in caught)
            return native + python

        try:
            with warnings.catch_warnings(record=True) as caught_now:
                warnings.simplefilter("always")
                caught = caught_now
                yield text
        finally:
            try:
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            os.dup2(saved, 2)
            os.close(saved)
