"""Input plausibility: catch evidently wrong units or timestamp scales in the first seconds of a stream.

A CSV in m/s² declared as g, or timestamps in milliseconds read as seconds, run without any error
and give wrong activities (or, replayed in real time, nothing). Two physical facts expose them (the checks themselves are :mod:`har_edge.data.input_plausibility`,
shared with ``har-edge record`` and training on recordings):

* **gravity**: the median magnitude of the total acceleration over a few seconds is about 1 g
  (0.5–2 g whether the wearer rests, walks or runs). ~9.8 means m/s², ~1000 mg, ~0.1 g read as m/s²;
  ~0 means gravity was removed (a "linear acceleration" stream), which no unit fixes.
* **sample interval**: the median interval between timestamps gives a sample rate near the model's
  rate (a tenth to 40×: the stream resamples). 50 Hz in milliseconds reads as 0.05 Hz; microseconds
  and nanoseconds are further off; seconds read as milliseconds look like 50 kHz.

:class:`CheckedSource` wraps any source: it scales timestamps by the declared ``timestamp_unit``,
checks the nominal rate at once (CSV files estimate it on opening) and the first
``check_samples`` samples before passing them on, and then — by ``mode`` — refuses with an
:class:`~har_edge.errors.ImplausibleInputError` naming the likely cause and the fix (``refuse``,
the default), converts (``convert``: acceleration units relabelled, timestamps rescaled; logged),
only logs a warning (``warn``) or does nothing (``off``). Gyroscope units are not checked (a
resting gyroscope reads about 0 in any unit).

This is about systematic mistakes in what the input *declares*; single absurd values and clock jumps in
an otherwise right stream are the stream's business (:mod:`har_edge.runtime.plausibility`,
:mod:`har_edge.runtime.clock`): counted and dropped sample by sample, never refused.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import numpy as np

from har_edge.data.input_plausibility import (ACC_CHANNELS, TIMESTAMP_UNITS, UNIT_NAMES, Finding, check_gravity,
                                              check_rate, check_sample_interval)
from har_edge.errors import ConfigError, ImplausibleInputError
from har_edge.runtime.samples import SampleChunk

__all__ = ["TIMESTAMP_UNITS", "CHECK_MODES", "Finding", "check_gravity", "check_sample_interval", "check_rate",
           "CheckedSource"]

log = logging.getLogger(__name__)

CHECK_MODES = ("refuse", "convert", "warn", "off")



class CheckedSource:
    """A source whose timestamps are scaled to seconds and whose first samples are checked (see the module doc).

    Args:
        source: any :class:`~har_edge.runtime.sources.Source`.
        expected_rate_hz: the model's sample rate.
        timestamp_unit: the unit the source's timestamps are in (``s``, ``ms``, ``us``, ``ns``).
        mode: ``refuse`` | ``convert`` | ``warn`` | ``off``.
        check_samples: how many samples to look at before the first chunk is passed on.

    Raises:
        ConfigError: bad ``timestamp_unit`` or ``mode``.
        ImplausibleInputError: (``refuse``) at once when the source's nominal rate gives the
            timestamps away, else from :meth:`chunks` after the first ``check_samples`` samples.
    """

    def __init__(self, source: Any, *, expected_rate_hz: float, timestamp_unit: str = "s", mode: str = "refuse",
                 check_samples: int | None = None) -> None:
        if timestamp_unit not in TIMESTAMP_UNITS:
            raise ConfigError(f"timestamp unit {timestamp_unit!r}; expected one of {', '.join(TIMESTAMP_UNITS)}")
        if mode not in CHECK_MODES:
            raise ConfigError(f"input check {mode!r}; expected one of {', '.join(CHECK_MODES)}")
        self.source = source
        self.mode = mode
        self.expected_rate_hz = float(expected_rate_hz)
        self.timestamp_unit = timestamp_unit
        self.check_samples = check_samples or max(50, int(round(3.0 * self.expected_rate_hz)))
        self.findings: list[Finding] = []
        self._acc_unit: str | None = None  # replacement unit of acc_* after a conversion
        # the Source protocol: what the stream classifier sees (units and rate after any declared/converted scale)
        self.channel_names: tuple[str, ...] = tuple(source.channel_names)
        self.units: tuple[str, ...] = tuple(source.units)
        self.stats = source.stats
        self.nominal_rate_hz: float | None = None
        self._update_rate()
        nominal = getattr(source, "nominal_rate_hz", None)
        if nominal and mode != "off":  # the source computed it as if its timestamps were seconds
            rate = float(nominal) / TIMESTAMP_UNITS[timestamp_unit]
            finding = check_rate(rate, timestamp_unit, self.expected_rate_hz,
                                 f"the source's timestamps, read as {UNIT_NAMES[timestamp_unit]}, give {rate:.4g} Hz")
            if finding is not None:
                self._handle(finding)

    def _update_rate(self) -> None:
        nominal = getattr(self.source, "nominal_rate_hz", None)
        self.nominal_rate_hz = None if nominal is None else float(nominal) / TIMESTAMP_UNITS[self.timestamp_unit]

    def __getattr__(self, name: str) -> Any:  # e.g. CsvReplaySource.last_labels
        if name == "source":
            raise AttributeError(name)
        return getattr(self.source, name)

    def close(self) -> None:
        self.source.close()

    def __enter__(self) -> CheckedSource:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def chunks(self) -> Iterator[SampleChunk]:
        """The source's chunks, timestamps in seconds; the first ``check_samples`` are checked before any is yielded."""
        held: list[SampleChunk] = []
        n_held = 0
        checked = self.mode == "off"
        for chunk in self.source.chunks():
            chunk = self._rescale(chunk)
            if checked:
                yield self._relabel(chunk)
                continue
            held.append(chunk)
            n_held += len(chunk)
            if n_held >= self.check_samples:
                checked = True
                yield from (self._relabel(c) for c in self._check(held))
                held = []
        if held:  # a short stream: check what there is
            yield from (self._relabel(c) for c in self._check(held))

    # -- internals -----------------------------------------------------------------------------

    def _rescale(self, chunk: SampleChunk) -> SampleChunk:
        seconds = TIMESTAMP_UNITS[self.timestamp_unit]
        if seconds == 1.0:
            return chunk
        return SampleChunk(np.asarray(chunk.timestamps_s, dtype=np.float64) * seconds, chunk.values,
                           chunk.channel_names, chunk.units)

    def _relabel(self, chunk: SampleChunk) -> SampleChunk:
        if self._acc_unit is None:
            return chunk
        units = tuple(self._acc_unit if n in ACC_CHANNELS else u for n, u in zip(chunk.channel_names, chunk.units))
        return SampleChunk(chunk.timestamps_s, chunk.values, chunk.channel_names, units)

    def _check(self, chunks: list[SampleChunk]) -> list[SampleChunk]:
        """Check the held chunks (timestamps already in seconds); returns them, rescaled if the unit was converted."""
        t = np.concatenate([np.asarray(c.timestamps_s, dtype=np.float64) for c in chunks])
        dt = np.diff(t[np.isfinite(t)])
        dt = dt[dt > 0]
        if dt.size >= 4:
            before = self.timestamp_unit
            median_s = float(np.median(dt))
            finding = check_rate(1.0 / median_s, before, self.expected_rate_hz,
                                 f"the median interval between the first {dt.size + 1} timestamps is "
                                 f"{median_s / TIMESTAMP_UNITS[before]:.4g} {before} ({1.0 / median_s:.4g} Hz)")
            if finding is not None:
                self._handle(finding)
            if self.timestamp_unit != before:  # converted: rescale what is held
                factor = TIMESTAMP_UNITS[self.timestamp_unit] / TIMESTAMP_UNITS[before]
                chunks = [SampleChunk(np.asarray(c.timestamps_s, dtype=np.float64) * factor, c.values, c.channel_names,
                                      c.units) for c in chunks]
        names = chunks[0].channel_names
        if all(a in names for a in ACC_CHANNELS):
            idx = [names.index(a) for a in ACC_CHANNELS]
            units = {chunks[0].units[i] for i in idx}
            if len(units) == 1:
                acc = np.concatenate([np.asarray(c.values, dtype=np.float64)[:, idx] for c in chunks])
                finding = check_gravity(acc, units.pop())
                if finding is not None:
                    self._handle(finding)
        return chunks

    def _handle(self, finding: Finding) -> None:
        self.findings.append(finding)
        fixable = finding.likely is not None
        if self.mode == "refuse" or (self.mode == "convert" and not fixable):
            fix = f". Declare them: {finding.declare}, or pass --input-check convert" if fixable else ""
            raise ImplausibleInputError(f"implausible input: {finding.message}{fix}")
        if self.mode == "warn":
            log.warning("implausible input (--input-check warn: going on unchanged): %s", finding.message)
            return
        if finding.what == "acc_unit" and finding.likely is not None:
            acc_unit = self._acc_unit = finding.likely
            self.units = tuple(acc_unit if n in ACC_CHANNELS else u for n, u in zip(self.channel_names, self.units))
            log.warning("implausible input, converted (--input-check convert): acceleration read as %s", finding.likely)
        elif finding.what == "timestamp_unit" and finding.likely is not None:
            self.timestamp_unit = finding.likely
            self._update_rate()
            log.warning("implausible input, converted (--input-check convert): timestamps read as %s",
                        UNIT_NAMES[finding.likely])

