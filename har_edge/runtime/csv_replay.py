"""CSV replay source: a recording paced in real time (or faster), parsed in numpy blocks.

See :mod:`har_edge.runtime.sources` for the CSV schema; open one with ``open_source("csv:PATH")``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from har_edge.data.csv_format import open_csv, read_csv_rows
from har_edge.errors import DataError, SourceError
from har_edge.runtime.samples import SampleChunk
from har_edge.runtime.source_base import DEFAULT_CHUNK_SAMPLES, _parse_speed, _resolve_units, _SourceBase

__all__ = ["CsvReplaySource"]

# Every source module logs under the name it had before the split, so logging
# configuration (and caplog filters) keyed on ``har_edge.runtime.sources`` still apply.
logger = logging.getLogger("har_edge.runtime.sources")


class CsvReplaySource(_SourceBase):
    """Replays a CSV recording; ``speed`` 1.0 = real time, k = k× faster, ``"max"`` = no pacing.

    The file is read by the same reader as training data (:mod:`har_edge.data.csv_format`), in its
    lenient mode: a bad line is counted and skipped. ``last_labels`` holds the ``(n,)`` label strings
    of the chunk last yielded when the file has a ``label`` column (``None`` otherwise); labels never
    reach the values.
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
        if channel_names is not None:
            from har_edge.runtime.source_base import DEFAULT_CHANNELS, _resolve_channels

            channel_names = _resolve_channels(channel_names, DEFAULT_CHANNELS)
        try:
            self._layout, self._header_lines, peek = open_csv(self.path, channel_names=channel_names, columns=columns)
        except DataError as exc:
            raise SourceError(str(exc)) from None  # it names the file
        self.last_labels: NDArray[np.str_] | None = None
        names = self._layout.channel_names
        super().__init__(f"csv:{self.path}", names, _resolve_units(names, units), nominal_rate_hz=self._estimate_rate(peek),
                         chunk_samples=chunk_samples, axis_map=axis_map)

    def _estimate_rate(self, lines: list[str]) -> float | None:
        times = []
        for line in lines[:500]:
            try:
                times.append(float(line.split(",")[self._layout.time_index]))
            except (ValueError, IndexError):
                continue
        dt = np.diff(np.asarray(times))
        dt = dt[np.isfinite(dt) & (dt > 0)]
        return float(1.0 / np.median(dt)) if dt.size else None

    def chunks(self) -> Iterator[SampleChunk]:
        """Yield chunks of at most ``chunk_samples`` rows, each when its last sample is due."""
        if self.closed:
            return
        t0_data = t0_wall = None
        step = self.chunk_samples
        rows = read_csv_rows(self.path, self._layout, skip_lines=self._header_lines, stop=lambda: self.closed,
                             on_bad=lambda reason, detail, n: self._count_bad(reason, detail, n))
        for block in rows:
            t, values, labels = block.timestamps, block.values, block.labels
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
