"""The JSON sidecar beside every recorded CSV: who, where, what and how it was recorded.

``har-edge record`` writes ``DIR/<session>.csv`` (the project's CSV schema, the source's own timestamps
and units, a ``label`` column) and ``DIR/<session>.json``::

    {"format": "har-edge-recording/1", "session": "walking-alice-20250101-101500", "person": "alice",
     "device": "pi-belt", "placement": "belt, right hip", "split": "", "label": "walking",
     "source": "i2c:mpu6050", "channels": ["acc_x", ...], "units": ["g", ...],
     "sample_rate_hz": 50.01, "nominal_rate_hz": 50.0, "samples": 3000, "duration_s": 59.98,
     "labels": {"walking": 3000}, "unlabelled_samples": 0, "label_changes": [[t, "walking"], ...],
     "timestamps": {"duplicate": 0, "backwards": 0, "gaps": 0}, "started_at": "2025-01-01T10:15:00Z",
     "stopped_by": "duration", "warnings": [], "har_edge_version": "0.1.0"}

``channels`` and ``units`` describe the CSV's columns (values are stored as they arrived); ``person`` and
``session`` group recordings for the train / validation / test split; ``split`` is ``""`` (the training
config decides), ``"train"`` (never chosen for test) or ``"test"`` (always held out, like Edge Impulse's
test category).
``stopped_by`` is ``""`` while recording (a killed recorder leaves it so; the CSV is still valid up to its
last full line). People may edit ``person``, ``placement``, ``split`` and add keys of their own (kept).
A segments file ``DIR/<session>.segments.csv`` (``start_s,end_s,label``, seconds from the first sample)
replaces the label column when present.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from har_edge.data.units import normalise_unit_name
from har_edge.errors import DataError

__all__ = ["SIDECAR_FORMAT", "SPLITS", "RecordingInfo", "check_label", "read_sidecar", "write_sidecar",
           "sidecar_path", "segments_path"]

SIDECAR_FORMAT = "har-edge-recording/1"
SPLITS = ("", "train", "test")
_LABEL = re.compile(r"^[^,\"\r\n]{1,64}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,127}$")


def check_label(label: str, *, where: str = "label") -> str:
    """A label as it goes into the CSV: stripped, 1–64 characters, no comma, quote or newline."""
    text = str(label).strip()
    if not _LABEL.match(text):
        raise DataError(f"{where} {label!r}: a label is 1-64 characters without comma, quote or newline")
    return text


def check_name(value: str, *, what: str) -> str:
    """A person or session id: letters, digits and ``_.@+-`` (it becomes part of a file name)."""
    if not _NAME.match(str(value)):
        raise DataError(f"{what} {value!r}: use letters, digits and _.@+- (starting with a letter or digit)")
    return str(value)


@dataclass(frozen=True)
class RecordingInfo:
    """One sidecar; see the module docstring for the fields."""

    session: str
    person: str
    channels: tuple[str, ...]
    units: tuple[str, ...]
    device: str = ""
    placement: str = ""
    split: str = ""
    label: str = ""
    source: str = ""
    sample_rate_hz: float | None = None
    nominal_rate_hz: float | None = None
    samples: int = 0
    duration_s: float = 0.0
    labels: dict[str, int] = field(default_factory=dict)
    unlabelled_samples: int = 0
    label_changes: list[list[Any]] = field(default_factory=list)
    timestamps: dict[str, int] = field(default_factory=dict)
    started_at: str = ""
    stopped_by: str = ""
    warnings: list[str] = field(default_factory=list)
    har_edge_version: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        extra = d.pop("extra")
        d["channels"], d["units"] = list(self.channels), list(self.units)
        return {"format": SIDECAR_FORMAT, **d, **extra}

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, where: str) -> RecordingInfo:
        if not isinstance(d, dict):
            raise DataError(f"{where}: expected a JSON object")
        if d.get("format", SIDECAR_FORMAT) != SIDECAR_FORMAT:
            raise DataError(f"{where}: format {d.get('format')!r}; expected {SIDECAR_FORMAT!r}")
        missing = [k for k in ("session", "person", "channels", "units") if k not in d]
        if missing:
            raise DataError(f"{where}: missing key(s) {missing}")
        known = {f.name for f in fields(cls)} - {"extra"}
        kwargs = {k: v for k, v in d.items() if k in known}
        extra = {k: v for k, v in d.items() if k not in known and k != "format"}
        channels, units = d["channels"], d["units"]
        if not isinstance(channels, list) or not isinstance(units, list) or len(channels) != len(units) or not channels:
            raise DataError(f"{where}: channels {channels!r} and units {units!r} must be equal-length, non-empty lists")
        try:
            kwargs["units"] = tuple(normalise_unit_name(str(u)) for u in units)
        except DataError as exc:
            raise DataError(f"{where}: {exc}") from None
        kwargs["channels"] = tuple(str(c) for c in channels)
        kwargs["person"] = check_name(str(d["person"]), what=f"{where}: person")
        kwargs["session"] = str(d["session"])
        if d.get("split", "") not in SPLITS:
            raise DataError(f"{where}: split {d.get('split')!r}; expected \"\" (automatic), \"train\" or \"test\"")
        for key in ("sample_rate_hz", "nominal_rate_hz"):
            value = d.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0):
                raise DataError(f"{where}: {key}={value!r}; expected a positive number or null")
        try:
            return cls(**kwargs, extra=extra)
        except TypeError as exc:
            raise DataError(f"{where}: {exc}") from None


def sidecar_path(csv_path: Path) -> Path:
    return csv_path.with_suffix(".json")


def segments_path(csv_path: Path) -> Path:
    return csv_path.with_name(csv_path.stem + ".segments.csv")


def read_sidecar(path: Path) -> RecordingInfo:
    """Read and check a sidecar; a missing file or bad content raises :class:`DataError` naming it."""
    if not path.is_file():
        raise DataError(f"{path}: sidecar not found")
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable JSON sidecar ({exc})") from None
    return RecordingInfo.from_dict(d, where=str(path))


def write_sidecar(path: Path, info: RecordingInfo) -> None:
    """Write atomically (temporary file, then rename): a reader never sees half a sidecar."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(info.to_dict(), indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
