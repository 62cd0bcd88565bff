"""Progress display for long CLI steps: a tqdm bar on a terminal, one line per step otherwise."""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, TextIO

__all__ = ["StepProgress"]


class StepProgress:
    """``on_step(done, total, what)`` callback for the library's long jobs (e.g. ``export_run``).

    On a terminal (and with tqdm installed) it draws one bar with the current step as its text;
    otherwise (logs, CI, pipes) it prints ``<name> [k/n] <what> (elapsed s)`` once per step (jobs of more
    than 20 steps: at most every ``line_every_s``), and ``<name> done in N s`` at the end.
    Use as a context manager so the bar is closed on errors too.
    """

    def __init__(self, name: str, *, stream: TextIO | None = None, bar: bool | None = None, line_every_s: float = 10.0) -> None:
        self.name = name
        self.stream = stream or sys.stderr
        self._want_bar = self.stream.isatty() if bar is None else bar
        self._bar: Any = None
        self._t0 = time.monotonic()
        self._last_line = -float("inf")
        self.line_every_s = line_every_s  # without a bar, jobs of many short steps print at most this often

    def _make_bar(self, total: int) -> Any:
        try:
            from tqdm import tqdm
        except ImportError:
            return None
        return tqdm(total=total, desc=self.name, unit="step", file=self.stream, leave=True,
                    bar_format="{desc}: {n}/{total} {bar} {elapsed} {postfix}")

    def __call__(self, done: int, total: int, what: str) -> None:
        if self._want_bar and self._bar is None:
            self._bar = self._make_bar(total)
            if self._bar is None:
                self._want_bar = False
        if self._bar is not None:
            self._bar.n = done
            self._bar.set_postfix_str(what if done < total else "done", refresh=True)
            if done >= total:
                self.close()
            return
        now = time.monotonic()
        elapsed = now - self._t0
        if done >= total:
            print(f"{self.name} done in {elapsed:.0f} s", file=self.stream, flush=True)
        elif total <= 20 or now - self._last_line >= self.line_every_s:
            self._last_line = now
            print(f"{self.name} [{done + 1}/{total}] {what} ({elapsed:.0f} s)", file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Callable[[int, int, str], None]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
