"""The ``recordings`` data set: a folder of CSV recordings with JSON sidecars (what ``har-edge record`` writes).

Each ``DIR/<session>.csv`` is read strictly by the project's CSV reader (:mod:`~har_edge.data.csv_format`),
with the channels and units its sidecar (:mod:`~har_edge.data.sidecar`) declares; values are converted to
g and rad/s. Labels come from ``DIR/<session>.segments.csv`` (``start_s,end_s,label``, seconds from the
first sample) when it exists, else from the ``label`` column.

Timestamps, as ``har-edge record`` leaves them (every received sample, the source's own clock), go
through the device's own clock policy (:class:`~har_edge.data.clock.ClockPolicy`, default settings):
samples it drops are dropped here too, and every gap or clock epoch it confirms cuts the recording into
parts, so no training window spans a dropout — exactly what the stream does on the device.
The rate is the median timestamp step; within 2 % of the model's rate it is taken as that rate (as the
device does), otherwise the parts are resampled like every other data set.

Checks (each a :class:`DataError` naming the files): recordings without a sidecar, a missing channel,
mixed rates or units across the folder, a rate below the model's (no upsampling), acceleration that does
not read ~1 g or timestamps that are not seconds (:mod:`~har_edge.data.input_plausibility`, the checks of
``har-edge run``), labels outside the model's set.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from numpy.typing import NDArray

from har_edge.data.clock import ClockConfig, ClockPolicy
from har_edge.data.csv_recording import default_unit, label_indices, read_csv_samples
from har_edge.data.input_plausibility import check_gravity, check_sample_interval
from har_edge.data.recording import Recording
from har_edge.data.resampling import resample_recording
from har_edge.data.sidecar import RecordingInfo, read_sidecar, segments_path, sidecar_path
from har_edge.data.units import convert_units, unit_scale
from har_edge.errors import DataError

__all__ = ["RecordedFile", "find_recordings", "read_recorded_file", "load_recorded_files", "recorded_parts",
           "label_set", "RATE_TOLERANCE"]

log = logging.getLogger(__name__)

RATE_TOLERANCE = 0.02  # within this of the model's rate, samples are taken as they are (as the device's stream)
MIXED_RATE_TOLERANCE = 0.05  # recordings of one folder must agree within this


@dataclass(frozen=True)
class RecordedFile:
    """One recording as read: ``timestamps_s (n,)`` increasing, ``values (n, c)`` in g / rad/s, ``labels (n,)``
    strings (``""`` unlabelled), ``parts`` the ``(start, stop)`` sample ranges between timestamp gaps."""

    csv_path: Path
    info: RecordingInfo
    channel_names: tuple[str, ...]
    timestamps_s: NDArray[np.float64]
    values: NDArray[np.float64]
    labels: NDArray[np.str_]
    rate_hz: float
    parts: tuple[tuple[int, int], ...]
    dropped_samples: int

    @property
    def name(self) -> str:
        return self.csv_path.name


def find_recordings(folder: str | Path) -> list[Path]:
    """The recording CSVs of ``folder`` (sorted; segments files excluded); each must have its sidecar."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: recordings folder not found")
    paths = sorted(p for p in folder.glob("*.csv") if not p.name.endswith(".segments.csv"))
    if not paths:
        raise DataError(f"{folder}: no recordings (*.csv with a .json sidecar); record some with "
                        f"`har-edge record --out {folder} ...`")
    orphans = [p.name for p in paths if not sidecar_path(p).is_file()]
    if orphans:
        raise DataError(f"{folder}: {orphans[:5]} have no .json sidecar; import a CSV with "
                        f"`har-edge record --source csv:FILE --speed max --out {folder} --person ID ...`")
    return paths


def _device_clock(t: NDArray[np.float64]) -> tuple[NDArray[np.intp], list[int], int]:
    """What the device's clock policy keeps of ``t (n,)``: ``(kept row indices, part starts (in kept samples),
    dropped count)``; a part starts at every gap or clock epoch the policy confirms."""
    policy = ClockPolicy(ClockConfig())
    rows = np.arange(len(t), dtype=np.float64)[:, None]
    pieces, drops = policy.process(np.asarray(t, dtype=np.float64), rows)
    dropped = sum(drops.values()) + sum(policy.finish().values())
    kept, starts, n = [], [0], 0
    for piece in pieces:
        if piece.event is not None and n:
            starts.append(n)
        kept.append(piece.values[:, 0].astype(np.intp))
        n += len(piece.timestamps_s)
    return (np.concatenate(kept) if kept else np.zeros(0, np.intp)), starts, dropped


def _read_segments(path: Path, t_rel: NDArray[np.float64]) -> NDArray[np.str_]:
    """Per-sample labels from a segments file (``start_s,end_s,label``; ``start_s <= t < end_s``)."""
    out = np.full(t_rel.shape, "", dtype=object)
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    header = [h.strip() for h in rows[0]] if rows else []
    if header != ["start_s", "end_s", "label"]:
        raise DataError(f"{path}: header {header}; expected start_s,end_s,label (seconds from the first sample)")
    spans = []
    for lineno, row in enumerate(rows[1:], start=2):
        if not row or not "".join(row).strip():
            continue
        try:
            start, end, label = float(row[0]), float(row[1]), row[2].strip()
        except (ValueError, IndexError):
            raise DataError(f"{path}: line {lineno}: {','.join(row)!r}; expected start_s,end_s,label") from None
        if not (np.isfinite(start) and np.isfinite(end) and start < end and label):
            raise DataError(f"{path}: line {lineno}: need start_s < end_s and a label; got {','.join(row)!r}")
        spans.append((start, end, label, lineno))
    spans.sort()
    for (s0, e0, _, l0), (s1, _, _, l1) in zip(spans, spans[1:]):
        if s1 < e0:
            raise DataError(f"{path}: segments of lines {l0} and {l1} overlap ({s1} < {e0})")
    for start, end, label, _ in spans:
        out[(t_rel >= start) & (t_rel < end)] = label
    return out.astype(str)


def read_recorded_file(csv_path: Path, channels: Sequence[str]) -> RecordedFile:
    """Read one recording (``channels`` in g / rad/s) with its sidecar and labels; see the module docstring."""
    info = read_sidecar(sidecar_path(csv_path))
    missing = [c for c in channels if c not in info.channels]
    if missing:
        raise DataError(f"{csv_path}: has channels {list(info.channels)} but the model needs {list(channels)} "
                        f"(missing {missing})")
    rows = read_csv_samples(csv_path, channels=channels)
    units = [info.units[info.channels.index(c)] for c in channels]
    values = convert_units(rows.values, units, [default_unit(c) for c in channels]).astype(np.float64)
    keep, starts, dropped = _device_clock(rows.timestamps)
    t = rows.timestamps[keep]
    if len(t) < 2:
        raise DataError(f"{csv_path}: {len(t)} usable sample(s); a recording needs at least 2")
    step = float(np.median(np.diff(t)))
    if not step > 0:
        raise DataError(f"{csv_path}: timestamps do not increase")
    bounds = np.asarray([*starts, len(t)])
    if segments_path(csv_path).is_file():
        labels = _read_segments(segments_path(csv_path), t - t[0])
    elif rows.labels is not None:
        labels = rows.labels[keep].astype(str)
    else:
        labels = np.full(len(t), "", dtype=str)
    return RecordedFile(csv_path, info, tuple(channels), t, values[keep], labels, 1.0 / step,
                        tuple((int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])), dropped)


def load_recorded_files(folder: str | Path, channels: Sequence[str], *, target_rate_hz: float,
                        only_split: str | None = None) -> list[RecordedFile]:
    """Read every recording of ``folder`` (or those whose sidecar ``split`` is ``only_split``) and check them together."""
    files = [read_recorded_file(p, channels) for p in find_recordings(folder)]
    if only_split is not None:
        files = [f for f in files if f.info.split == only_split]
        if not files:
            raise DataError(f"{folder}: no recording has split = {only_split!r} in its sidecar")
    for f in files:
        if f.dropped_samples:
            log.warning("%s: %d sample(s) with a repeated or backward timestamp left out", f.csv_path, f.dropped_samples)
        scale = check_sample_interval(f.timestamps_s, "s", target_rate_hz)
        if scale:
            raise DataError(f"{f.csv_path}: {scale.message}; timestamps must be seconds")
        acc = [i for i, c in enumerate(channels) if c.startswith("acc_")]
        units = {f.info.units[f.info.channels.index(channels[i])] for i in acc}
        if len(acc) == 3 and len(units) == 1:
            (unit,) = units  # the values are in g now: check them as the sidecar declared them
            finding = check_gravity(f.values[:, acc] / unit_scale(unit, "g"), unit)
            if finding:
                raise DataError(f"{f.csv_path}: {finding.message}; fix \"units\" in {sidecar_path(f.csv_path).name}")
    _check_consistent(files, channels, target_rate_hz)
    return files


def _check_consistent(files: list[RecordedFile], channels: Sequence[str], target_rate_hz: float) -> None:
    def listing(values: list[str]) -> str:
        return ", ".join(f"{f.name}: {v}" for f, v in list(zip(files, values))[:6])

    units = [",".join(f.info.units[f.info.channels.index(c)] for c in channels) for f in files]
    if len(set(units)) > 1:
        raise DataError(f"recordings declare different units ({listing(units)}); one folder holds one sensor setup: "
                        "record each device into its own folder, or fix the sidecars' \"units\"")
    rates = np.array([f.rate_hz for f in files])
    if rates.max() > rates.min() * (1 + MIXED_RATE_TOLERANCE):
        raise DataError(f"recordings have different rates ({listing([f'{r:.1f} Hz' for r in rates])}); "
                        "record at one rate, or keep each rate in its own folder")
    if rates.min() < target_rate_hz * (1 - RATE_TOLERANCE):
        raise DataError(f"recordings are at {rates.min():.1f} Hz but the model runs at {target_rate_hz:g} Hz: "
                        f"set [data] sample_rate_hz = {np.floor(rates.min()):g} or lower (upsampling invents data)")


def label_set(files: list[RecordedFile], wanted: Sequence[str] = ()) -> tuple[str, ...]:
    """``wanted`` if given (each must occur), else every label found, sorted."""
    found = sorted({str(x) for f in files for x in np.unique(f.labels) if x})
    if not found:
        raise DataError("no labelled samples in the recordings: label them with `har-edge record --label` or "
                        "--labels-from, or with a segments file (start_s,end_s,label)")
    absent = [w for w in wanted if w not in found]
    if absent:
        raise DataError(f"label(s) {absent} of [data] labels do not occur in the recordings; found {found}")
    return tuple(wanted) or tuple(found)


def recorded_parts(f: RecordedFile, label_names: tuple[str, ...], *, target_rate_hz: float, subject: int,
                   strict_labels: bool) -> list[Recording]:
    """The gap-free parts of ``f`` as labelled :class:`Recording` s at ``target_rate_hz``.

    Labels outside ``label_names`` raise (``strict_labels``) or become unlabelled.
    """
    labels = f.labels
    if not strict_labels:
        labels = np.where(np.isin(labels, np.asarray(label_names)), labels, "")
    idx, _ = label_indices(labels, label_names, f"{f.csv_path}: labels")
    rate = target_rate_hz if abs(f.rate_hz - target_rate_hz) <= RATE_TOLERANCE * target_rate_hz else f.rate_hz
    out = []
    for k, (a, b) in enumerate(f.parts):
        rec = Recording(f.values[a:b].astype(np.float32), f.channel_names, tuple(default_unit(c) for c in f.channel_names),
                        rate, idx[a:b], label_names, subject, f"{f.csv_path.name}" + (f" part {k + 1}" if len(f.parts) > 1 else ""))
        out.append(resample_recording(rec, target_rate_hz))
    return out
