"""Containers for continuous recordings and for windows cut from them."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from har_edge.errors import DataError

__all__ = ["UNLABELLED", "Recording", "WindowSet", "check_finite"]

UNLABELLED = -1
"""Label value of samples (or windows) without an activity label."""


def check_finite(values: NDArray[np.floating], *, where: str) -> None:
    """Raise :class:`DataError` naming ``where`` and the first bad row if ``values`` has NaN/inf."""
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise DataError(f"{where}: non-finite value (NaN or inf) at row {row}; every sample must be a finite number")


@dataclass(frozen=True)
class Recording:
    """One continuous multi-channel recording at a fixed sample rate.

    Attributes:
        signals: ``(n, c)`` float32 samples.
        channel_names: ``c`` names, e.g. ``("acc_x", "acc_y", "acc_z")``.
        units: ``c`` units (see :mod:`har_edge.data.units`).
        sample_rate_hz: sampling rate of ``signals``.
        labels: ``(n,)`` int per-sample activity index, :data:`UNLABELLED` where unknown; or None.
        label_names: names indexed by label value.
        subject: volunteer id, or None.
        name: where the recording came from (file, experiment), used in error messages.
    """

    signals: NDArray[np.float32]
    channel_names: tuple[str, ...]
    units: tuple[str, ...]
    sample_rate_hz: float
    labels: NDArray[np.int16] | None = None
    label_names: tuple[str, ...] = ()
    subject: int | None = None
    name: str = "recording"

    def __post_init__(self) -> None:
        if self.signals.ndim != 2 or self.signals.shape[1] != len(self.channel_names):
            raise DataError(
                f"{self.name}: signals shape {self.signals.shape} does not match "
                f"{len(self.channel_names)} channel names {list(self.channel_names)}"
            )
        if len(self.units) != len(self.channel_names):
            raise DataError(f"{self.name}: {len(self.units)} units for {len(self.channel_names)} channels")
        if not self.sample_rate_hz > 0:
            raise DataError(f"{self.name}: sample_rate_hz={self.sample_rate_hz}; expected a positive rate")
        if self.labels is not None and self.labels.shape != (self.signals.shape[0],):
            raise DataError(f"{self.name}: labels shape {self.labels.shape}, expected ({self.signals.shape[0]},)")

    @property
    def n_samples(self) -> int:
        return int(self.signals.shape[0])

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.sample_rate_hz

    def select_channels(self, names: tuple[str, ...] | list[str]) -> "Recording":
        """Return a recording with only ``names``, in that order."""
        idx = channel_indices(self.channel_names, names, where=self.name)
        return Recording(
            signals=self.signals[:, idx],
            channel_names=tuple(names),
            units=tuple(self.units[i] for i in idx),
            sample_rate_hz=self.sample_rate_hz,
            labels=self.labels,
            label_names=self.label_names,
            subject=self.subject,
            name=self.name,
        )


def channel_indices(available: tuple[str, ...] | list[str], wanted: tuple[str, ...] | list[str], *, where: str) -> list[int]:
    """Indices of ``wanted`` in ``available``; unknown names raise :class:`DataError`."""
    missing = [n for n in wanted if n not in available]
    if missing:
        raise DataError(f"{where}: unknown channel(s) {missing}; available channels are {list(available)}")
    return [list(available).index(n) for n in wanted]


@dataclass(frozen=True)
class WindowSet:
    """Fixed-length windows ready for a model.

    Attributes:
        X: ``(n, window_samples, c)`` float32.
        y: ``(n,)`` int label index.
        subject: ``(n,)`` int subject id per window.
        channel_names, units, label_names, sample_rate_hz: as in :class:`Recording`.
    """

    X: NDArray[np.float32]
    y: NDArray[np.int64]
    subject: NDArray[np.int64]
    channel_names: tuple[str, ...]
    units: tuple[str, ...]
    label_names: tuple[str, ...]
    sample_rate_hz: float
    extra: dict[str, NDArray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.X.ndim != 3:
            raise DataError(f"windows must be (n, window_samples, channels); got shape {self.X.shape}")
        n = self.X.shape[0]
        if self.y.shape != (n,) or self.subject.shape != (n,):
            raise DataError(f"{n} windows but y {self.y.shape} and subject {self.subject.shape}")
        if self.X.shape[2] != len(self.channel_names):
            raise DataError(f"windows have {self.X.shape[2]} channels but {len(self.channel_names)} names")

    def __len__(self) -> int:
        return int(self.X.shape[0])

    @property
    def window_samples(self) -> int:
        return int(self.X.shape[1])

    def take(self, index: NDArray) -> "WindowSet":
        """Subset by a boolean mask or integer index array."""
        return WindowSet(
            X=self.X[index],
            y=self.y[index],
            subject=self.subject[index],
            channel_names=self.channel_names,
            units=self.units,
            label_names=self.label_names,
            sample_rate_hz=self.sample_rate_hz,
            extra={k: v[index] for k, v in self.extra.items()},
        )

    def select_channels(self, names: tuple[str, ...] | list[str]) -> "WindowSet":
        idx = channel_indices(self.channel_names, names, where="windows")
        return WindowSet(
            X=self.X[:, :, idx],
            y=self.y,
            subject=self.subject,
            channel_names=tuple(names),
            units=tuple(self.units[i] for i in idx),
            label_names=self.label_names,
            sample_rate_hz=self.sample_rate_hz,
            extra=self.extra,
        )

    def for_subjects(self, subjects: tuple[int, ...] | list[int], *, exclude: bool = False) -> "WindowSet":
        mask = np.isin(self.subject, np.asarray(list(subjects)))
        return self.take(~mask if exclude else mask)
