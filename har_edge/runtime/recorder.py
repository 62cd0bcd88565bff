"""Recording labelled sessions from any sensor source: ``har-edge record``'s engine (no TensorFlow).

:class:`RecordingWriter` appends samples to ``DIR/<session>.csv`` in the project's CSV schema
(``timestamp,<channels>,label``; values in the source's units, as they arrived) and keeps the JSON sidecar
(:mod:`~har_edge.data.sidecar`) current. Each chunk is written as whole lines in one ``write`` and flushed,
so a killed recorder leaves a file that is valid up to its last full line.

:class:`Recorder` pulls chunks from a source and writes them; the label of a sample is the one
:class:`LabelState` holds when its chunk arrives (``--label``, keyboard or a label topic), or the source's own
label column (a ``csv:`` file being imported). Timestamps: **every received sample is written, in arrival
order, with the source's timestamp unchanged** — repeated, backward and gapped timestamps are counted (in
the sidecar's ``timestamps``) and warned about, never dropped or rewritten; training later leaves out the
samples the device's stream would drop and never windows across a gap (:mod:`~har_edge.data.recordings`).
``duration_s`` counts source time from the first sample: samples at or after it are not part of the
recording. While recording, :class:`RecordingMonitor` checks the rate, the timestamp scale and the units
(``|acc|`` ≈ 1 g, :mod:`~har_edge.data.input_plausibility`, the checks of ``har-edge run``) and reports each problem once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from numpy.typing import NDArray

from har_edge import __version__
from har_edge.data.csv_format import LABEL_COLUMN, TIME_COLUMN
from har_edge.data.input_plausibility import check_gravity, check_rate, rate_mismatch
from har_edge.data.clock import ClockConfig
from har_edge.data.sidecar import RecordingInfo, check_label, sidecar_path, write_sidecar
from har_edge.data.units import unit_scale
from har_edge.errors import DataError
from har_edge.runtime.samples import SampleChunk

__all__ = ["LabelState", "RecordingWriter", "RecordingMonitor", "Recorder", "RecorderStatus"]

log = logging.getLogger(__name__)

SIDECAR_EVERY_S = 5.0  # wall seconds between sidecar updates while recording


class LabelState:
    """The current label, set from any thread (keyboard, MQTT callback); ``""`` = unlabelled."""

    def __init__(self, label: str = "") -> None:
        self._lock = threading.Lock()
        self._label = check_label(label) if label else ""

    def set(self, label: str) -> str:
        """Switch to ``label`` (checked; raises :class:`DataError` for a bad one); returns it."""
        text = check_label(label) if label.strip() else ""
        with self._lock:
            self._label = text
        return text

    def get(self) -> str:
        with self._lock:
            return self._label


class RecordingWriter:
    """Appends samples to ``folder/<session>.csv`` and keeps ``folder/<session>.json`` up to date.

    ``info`` gives the sidecar's fixed fields (session, person, channels, units, ...); counts are filled in.
    An existing recording of the same session is never overwritten.
    """

    def __init__(self, folder: str | Path, info: RecordingInfo) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.csv_path = self.folder / f"{info.session}.csv"
        self.info = replace(info, har_edge_version=__version__,
                            started_at=info.started_at or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
        try:
            self._file: TextIO = self.csv_path.open("x", encoding="utf-8", newline="")
        except FileExistsError:
            raise DataError(f"{self.csv_path}: a recording of session {info.session!r} exists; choose another --session") from None
        self._file.write(",".join([TIME_COLUMN, *info.channels, LABEL_COLUMN]) + "\n")
        self._file.flush()
        self.samples = 0
        self.label_counts: dict[str, int] = {}
        self.unlabelled = 0
        self.first_t: float | None = None
        self.last_t: float | None = None
        self._sidecar_at = 0.0
        self.write_sidecar()

    def write(self, timestamps_s: NDArray[np.float64], values: NDArray[np.float64], labels: list[str]) -> None:
        """Append ``(n,)`` timestamps, ``(n, c)`` values and ``n`` labels as whole lines (one write, flushed)."""
        if len(timestamps_s) == 0:
            return
        lines = [f"{t:.6f}," + ",".join(f"{v:.9g}" for v in row) + f",{lab}\n"
                 for t, row, lab in zip(timestamps_s.tolist(), values.tolist(), labels)]
        self._file.write("".join(lines))
        self._file.flush()
        self.samples += len(lines)
        for lab in labels:
            if lab:
                self.label_counts[lab] = self.label_counts.get(lab, 0) + 1
            else:
                self.unlabelled += 1
        self.first_t = float(timestamps_s[0]) if self.first_t is None else self.first_t
        self.last_t = float(timestamps_s[-1])
        if time.monotonic() - self._sidecar_at > SIDECAR_EVERY_S:
            self.write_sidecar()

    def write_sidecar(self, **fields: Any) -> RecordingInfo:
        """Rewrite the sidecar with the current counts (and ``fields``, e.g. ``stopped_by``)."""
        duration = 0.0 if self.first_t is None or self.last_t is None else self.last_t - self.first_t
        self.info = replace(self.info, samples=self.samples, labels=dict(sorted(self.label_counts.items())),
                            unlabelled_samples=self.unlabelled, duration_s=round(duration, 6), **fields)
        write_sidecar(sidecar_path(self.csv_path), self.info)
        self._sidecar_at = time.monotonic()
        return self.info

    def close(self, **fields: Any) -> RecordingInfo:
        """Close the CSV and write the final sidecar (``stopped_by``, rates, warnings, ...)."""
        if not self._file.closed:
            self._file.close()
        return self.write_sidecar(**fields)


@dataclass
class RecorderStatus:
    """What the live display shows."""

    samples: int
    seconds: float
    rate_hz: float | None
    label: str
    acc_magnitude_g: float | None


class RecordingMonitor:
    """Counts timestamp faults and checks rate, timestamp scale and units as samples arrive; each problem once."""

    def __init__(self, channel_names: tuple[str, ...], units: tuple[str, ...], *, expected_rate_hz: float | None,
                 on_warning: Callable[[str], None]) -> None:
        self.expected_rate_hz = expected_rate_hz
        self.on_warning = on_warning
        self.warnings: list[str] = []
        self.faults = {"duplicate": 0, "backwards": 0, "gaps": 0}
        acc = [i for i, c in enumerate(channel_names) if c in ("acc_x", "acc_y", "acc_z")]
        self._acc = acc if len(acc) == 3 else []
        self._acc_units = units[acc[0]] if self._acc else "g"
        self._acc_scale = unit_scale(self._acc_units, "g") if self._acc else 1.0
        self._steps: list[float] = []
        self._recent = np.zeros((0, 3))
        self._max_t: float | None = None
        self.rate_hz: float | None = None
        self.acc_magnitude_g: float | None = None
        self._checked_units = False

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)
            self.on_warning(message)

    def update(self, t: NDArray[np.float64], values: NDArray[np.float64]) -> None:
        """Take ``(n,)`` timestamps and ``(n, c)`` values as written."""
        start = -np.inf if self._max_t is None else self._max_t
        prev_max = np.maximum.accumulate(np.concatenate([[start], t]))[:-1]  # what each sample must exceed
        self.faults["duplicate"] += int((t == prev_max).sum())
        self.faults["backwards"] += int((t < prev_max).sum())
        good = (t - prev_max)[(t > prev_max) & np.isfinite(prev_max)]
        self._max_t = float(max(start, float(t.max())))
        self._steps = (self._steps + good.tolist())[-500:]
        if len(self._steps) >= 20:
            step = float(np.median(self._steps))
            self.rate_hz = 1.0 / step
            gaps = int((good > ClockConfig().max_gap_s).sum())  # what the device's clock policy calls a gap
            self.faults["gaps"] += gaps
            # without an expected rate, judge the timestamp scale against a typical 50 Hz sensor (5 Hz .. 2 kHz pass)
            scale = check_rate(self.rate_hz, "s", self.expected_rate_hz or 50.0)
            for hint in ((scale.message if scale else None), rate_mismatch(self.rate_hz, self.expected_rate_hz)):
                if hint:
                    self.warn(hint)
            if gaps:
                self.warn(f"a gap of {good.max():.3g} s between samples (samples lost?); training never windows across it")
        if self.faults["duplicate"] or self.faults["backwards"]:
            self.warn("timestamps repeat or go back: the samples are kept as received; training and the device "
                      "leave those out")
        if self._acc:
            self._recent = np.concatenate([self._recent, values[:, self._acc] * self._acc_scale])[-2000:]
            self.acc_magnitude_g = float(np.median(np.linalg.norm(self._recent[-200:], axis=1)))
            if not self._checked_units and len(self._recent) >= 100:
                self._checked_units = True
                finding = check_gravity(self._recent / self._acc_scale, self._acc_units)  # as declared
                if finding:
                    self.warn(finding.message + (f" (declare them: {finding.declare})" if finding.declare else ""))


class Recorder:
    """Source → :class:`RecordingWriter`, with labels, duration, a live status and warnings."""

    def __init__(self, source: Any, writer: RecordingWriter, *, labels: LabelState | None = None,
                 duration_s: float | None = None, expected_rate_hz: float | None = None,
                 on_status: Callable[[RecorderStatus], None] | None = None, on_warning: Callable[[str], None] | None = None,
                 status_every_s: float = 0.5) -> None:
        self.source, self.writer = source, writer
        self.labels = labels  # None: the source's own labels (a csv: file's label column), else unlabelled
        self.duration_s = duration_s
        self.on_status, self.status_every_s = on_status, status_every_s
        self.monitor = RecordingMonitor(writer.info.channels, writer.info.units, on_warning=on_warning or log.warning,
                                        expected_rate_hz=expected_rate_hz or getattr(source, "nominal_rate_hz", None))
        self.label_changes: list[list[Any]] = []
        self._label: str | None = None
        self._t0: float | None = None

    def _labels_for(self, chunk: SampleChunk) -> list[str]:
        if self.labels is not None:
            label = self.labels.get()
            out = [label] * len(chunk)
        else:
            src = getattr(self.source, "last_labels", None)
            out = [str(x) for x in src] if src is not None and len(src) == len(chunk) else [""] * len(chunk)
        for t, lab in zip(chunk.timestamps_s.tolist(), out):
            if lab != self._label:
                self.label_changes.append([round(t, 6), lab])
                self._label = lab
        return out

    def record(self, chunk: SampleChunk) -> bool:
        """Write one chunk; returns False when the duration is reached (the chunk's later samples are not written)."""
        t, values = np.asarray(chunk.timestamps_s, dtype=np.float64), np.asarray(chunk.values, dtype=np.float64)
        if len(t) == 0:
            return True
        if self._t0 is None:
            self._t0 = float(t[0])
        more = True
        if self.duration_s is not None:
            inside = (t - self._t0) < self.duration_s
            more = bool(inside.all())
            cut = len(t) if more else int(np.argmin(inside))
            t, values = t[:cut], values[:cut]
            chunk = SampleChunk(t, values, chunk.channel_names, chunk.units)
        if len(t):
            self.writer.write(t, values, self._labels_for(chunk))
            self.monitor.update(t, values)
        return more

    def status(self) -> RecorderStatus:
        w = self.writer
        seconds = 0.0 if w.first_t is None or w.last_t is None else w.last_t - w.first_t
        return RecorderStatus(w.samples, seconds, self.monitor.rate_hz, self.labels.get() if self.labels else (self._label or ""),
                              self.monitor.acc_magnitude_g)

    def run(self, stop: threading.Event | None = None) -> RecordingInfo:
        """Record until the source ends, the duration is reached or ``stop`` is set; returns the final sidecar."""
        stopped_by = "end_of_source"
        shown = 0.0
        try:
            for chunk in self.source.chunks():
                if not self.record(chunk):
                    stopped_by = "duration"
                    break
                if self.on_status is not None and time.monotonic() - shown >= self.status_every_s:
                    self.on_status(self.status())
                    shown = time.monotonic()
                if stop is not None and stop.is_set():
                    stopped_by = "interrupted"
                    break
            else:
                if stop is not None and stop.is_set():
                    stopped_by = "interrupted"
        except BaseException:
            stopped_by = "error"
            raise
        finally:
            stats = getattr(self.source, "stats", None)
            info = self.writer.close(
                stopped_by=stopped_by, sample_rate_hz=None if self.monitor.rate_hz is None else round(self.monitor.rate_hz, 4),
                timestamps=dict(self.monitor.faults),
                label_changes=self.label_changes, warnings=list(self.monitor.warnings),
                extra=dict(self.writer.info.extra, **({} if stats is None else {"source_stats": stats.as_dict()})))
        return info
