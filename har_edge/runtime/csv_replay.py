"""CSV replay source: a recording paced in real time (or faster), parsed in numpy blocks.

See :mod:`har_edge.runtime.sources` for the CSV schema; open one with ``open_source("csv:PATH")``.
"""

from __future__ import annotations

import io
import logging
import math
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from har_edge.errors import SourceError
from har_edge.runtime.sample_formats import _column_plan, _split_header
from har_edge.runtime.samples import SampleChunk
from har_edge.runtime.source_base import (
    DEFAULT_CHANNELS,
    DEFAULT_CHUNK_SAMPLES,
    _parse_speed,
    _resolve_units,
    _SourceBase,
)

__all__ = ["CsvReplaySource"]

# Every source module logs under the name it had before the split, so logging
# configuration (and caplog filters) keyed on ``har_edge.runtime.sources`` still apply.
logger = logging.getLogger("har_edge.runtime.sources")

_BLOCK_BYTES = 4_000_000  # CSV lines read and parsed per numpy call
_Array = NDArray[np.float64]


class CsvReplaySource(_SourceBase):
    """Replays a CSV recording; ``speed`` 1.0 = real time, k = k× faster, ``"max"`` = no pacing.

    ``last_labels`` holds the ``(n,)`` label strings of the chunk last yielded when the file
    has a ``label`` column (``None`` otherwise); labels never reach the values.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        speed: float | str = 1.0,
        channel_names: Sequence[str] | None = None,
        units: Sequence[str] | Mapping[str, str] | None = None,
        columns: Mapping[str, str] | None = None,
        axis_map: Mapping[str, str] | None = None,
        chunk_samples: int = DEFAULT_CHUNK_SAMPLES,
    ) -> None:
        self.path = Path(path)
        self.speed = _parse_speed(speed)
        if not self.path.is_file():
            raise SourceError(f"CSV recording not found: {str(self.path)!r}")
        try:
            with self.path.open(encoding="utf-8-sig", errors="replace") as f:
                header_line, self._header_lineno = "", 0
                while not header_line.strip():
                    header_line = f.readline()
                    self._header_lineno += 1
                    if not header_line:
                        raise SourceError(f"{str(self.path)!r} is empty; expected a header line")
                peek = f.readlines(64_000)
        except OSError as exc:
            raise SourceError(f"cannot read CSV recording {str(self.path)!r}: {exc}") from None
        header = _split_header(header_line)
        try:
            float(header[0])
        except ValueError:
            pass
        else:
            raise SourceError(
                f"{str(self.path)!r} has no header (first line {header_line.strip()[:80]!r}); "
                f"expected a first line like timestamp,{','.join(DEFAULT_CHANNELS)}"
            )
        names, self._t_col, self._ch_cols, self._label_col = _column_plan(
            header, channel_names, columns, repr(str(self.path))
        )
        self._n_fields = len(header)
        self._dirty = False  # the previous block had unparsable lines
        self.last_labels: NDArray[np.str_] | None = None
        super().__init__(
            f"csv:{self.path}",
            names,
            _resolve_units(names, units),
            nominal_rate_hz=self._estimate_rate(peek),
            chunk_samples=chunk_samples,
            axis_map=axis_map,
        )

    def _estimate_rate(self, lines: list[str]) -> float | None:
        times = []
        for line in lines[:500]:
            try:
                times.append(float(line.split(",")[self._t_col]))
            except (ValueError, IndexError):
                continue
        dt = np.diff(np.asarray(times))
        dt = dt[np.isfinite(dt) & (dt > 0)]
        return float(1.0 / np.median(dt)) if dt.size else None

    def _loadtxt(self, lines: list[str]) -> _Array:
        return np.loadtxt(
            io.StringIO("".join(lines)), delimiter=",", usecols=[self._t_col, *self._ch_cols],
            dtype=np.float64, ndmin=2, comments=None,
        )

    def _parse_slow(self, lines: list[str], linenos: NDArray[np.intp]) -> tuple[_Array, NDArray[np.intp]]:
        out, idx = [], []
        for i, line in enumerate(lines):
            fields = line.split(",")
            try:
                out.append([float(fields[k]) for k in (self._t_col, *self._ch_cols)])
                idx.append(i)
            except ValueError:
                self._count_bad("non_numeric", f"line {linenos[i]}: {line.strip()!r}")
        return np.asarray(out, dtype=np.float64).reshape(-1, 1 + len(self._ch_cols)), np.asarray(idx, np.intp)

    def _parse_lines(self, lines: list[str], linenos: NDArray[np.intp]) -> tuple[_Array, NDArray[np.intp]]:
        """Parse ``(m, 1 + c)`` floats (timestamp first); returns the rows and their indices in ``lines``.

        numpy parses the whole block. A block with unparsable lines (and every block after a
        dirty one) is parsed in pieces of 512 lines; in a failing piece the rows before the one
        numpy's error names are kept, that row is counted bad and parsing resumes after it.
        """
        if not self._dirty:
            try:
                return self._loadtxt(lines), np.arange(len(lines))
            except ValueError:
                self._dirty = True
        parts, dirty = [], False
        for s0 in range(0, len(lines), 512):
            rows, idx = self._parse_piece(lines[s0 : s0 + 512], linenos[s0 : s0 + 512])
            parts.append((rows, idx + s0))
            dirty = dirty or len(idx) < len(lines[s0 : s0 + 512])
        self._dirty = dirty
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def _parse_piece(self, lines: list[str], linenos: NDArray[np.intp]) -> tuple[_Array, NDArray[np.intp]]:
        parts = [(np.empty((0, 1 + len(self._ch_cols))), np.empty(0, np.intp))]
        start, skipped = 0, 0
        while start < len(lines):
            if skipped >= 8:  # a badly damaged piece: line by line is cheaper than more retries
                rows, idx = self._parse_slow(lines[start:], linenos[start:])
                parts.append((rows, idx + start))
                break
            try:
                parts.append((self._loadtxt(lines[start:]), np.arange(start, len(lines))))
                break
            except ValueError as exc:
                match = re.search(r"at row (\d+)", str(exc))
                row = start + int(match[1]) if match else -1
            resume = start
            if start <= row < len(lines):
                try:
                    head = self._loadtxt(lines[start:row]) if row > start else None
                except ValueError:
                    head = None
                else:
                    resume = row
                    if head is not None:
                        parts.append((head, np.arange(start, row)))
                    parsed, _ = self._parse_slow(lines[row : row + 1], linenos[row : row + 1])
                    if not len(parsed):  # confirmed bad (and counted): skip it
                        start, skipped = row + 1, skipped + 1
                        continue
            rows, idx = self._parse_slow(lines[resume:], linenos[resume:])
            parts.append((rows, idx + resume))
            break
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def _blocks(self) -> Iterator[tuple[_Array, _Array, NDArray[np.str_] | None]]:
        """Yield ``(timestamps (m,), values (m, c), labels (m,) | None)`` of the good rows per block."""
        lineno, want = self._header_lineno + 1, self._n_fields - 1
        self._dirty = False
        with self.path.open(encoding="utf-8-sig", errors="replace") as f:
            for _ in range(self._header_lineno):
                f.readline()
            while not self.closed:
                lines = f.readlines(_BLOCK_BYTES)
                if not lines:
                    return
                linenos = np.arange(lineno, lineno + len(lines))
                lineno += len(lines)
                counts = np.fromiter((ln.count(",") for ln in lines), np.intp, len(lines))
                if not (counts == want).all():
                    good = np.flatnonzero(counts == want)
                    wrong = [i for i in np.flatnonzero(counts != want) if lines[i].strip()]  # blank: skip
                    for k, i in enumerate(wrong):
                        self._count_bad(
                            "wrong_field_count",
                            f"line {linenos[i]}: {counts[i] + 1} fields, header has {self._n_fields}: "
                            f"{lines[i].strip()!r}",
                            1 if k < 3 else len(wrong) - 3,
                        )
                        if k >= 3:
                            break
                    lines, linenos = [lines[i] for i in good], linenos[good]
                    if not lines:
                        continue
                rows, idx = self._parse_lines(lines, linenos)
                finite = np.isfinite(rows).all(axis=1)
                if not finite.all():
                    where = linenos[idx[~finite][:3]].tolist()
                    self._count_bad("non_finite", f"NaN or inf at lines {where}...", int((~finite).sum()))
                    rows, idx = rows[finite], idx[finite]
                if not len(rows):
                    continue
                labels = None
                if self._label_col is not None:
                    k = self._label_col
                    labels = np.asarray([lines[i].split(",")[k].strip() for i in idx])
                yield np.ascontiguousarray(rows[:, 0]), np.ascontiguousarray(rows[:, 1:]), labels

    def chunks(self) -> Iterator[SampleChunk]:
        """Yield chunks of at most ``chunk_samples`` rows, each when its last sample is due."""
        if self.closed:
            return
        t0_data = t0_wall = None
        step = self.chunk_samples
        for t, values, labels in self._blocks():
            for start in range(0, len(t), step):
                ts = t[start : start + step]
                if math.isfinite(self.speed):
                    if t0_data is None or t0_wall is None:
                        t0_data, t0_wall = float(ts[0]), time.monotonic()
                    delay = t0_wall + (float(ts[-1]) - t0_data) / self.speed - time.monotonic()
                    if delay > 0 and self._closed.wait(delay):
                        return
                if self.closed:
                    return
                self.last_labels = None if labels is None else labels[start : start + step]
                yield self._chunk(ts, values[start : start + step])
        logger.info("%s: replay finished: %s", self.name, self.stats.as_dict())
