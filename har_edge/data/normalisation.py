"""Per-channel standardisation, fitted on training windows only and stored with the run/bundle."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from har_edge.errors import DataError

__all__ = ["Standardiser", "fit_standardiser"]


@dataclass(frozen=True)
class Standardiser:
    """``(x - mean) / std`` per channel; ``mean`` and ``std`` have shape ``(c,)``."""

    mean: NDArray[np.float32]
    std: NDArray[np.float32]
    channel_names: tuple[str, ...] = ()

    def transform(self, x: NDArray[np.floating]) -> NDArray[np.float32]:
        """Standardise ``x`` of shape ``(..., c)``; returns float32 of the same shape."""
        if x.shape[-1] != self.mean.shape[0]:
            raise DataError(f"data has {x.shape[-1]} channels but the normalisation has {self.mean.shape[0]}")
        return ((x - self.mean) / self.std).astype(np.float32, copy=False)

    def inverse(self, x: NDArray[np.floating]) -> NDArray[np.float32]:
        return (x * self.std + self.mean).astype(np.float32, copy=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
            "channel_names": list(self.channel_names),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Standardiser":
        try:
            mean = np.asarray(d["mean"], dtype=np.float32)
            std = np.asarray(d["std"], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"normalisation must have numeric 'mean' and 'std' lists; got {d!r:.200}") from exc
        if mean.shape != std.shape or mean.ndim != 1:
            raise DataError(f"normalisation mean {mean.shape} and std {std.shape} must be equal-length lists")
        if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
            raise DataError("normalisation mean/std must be finite and std > 0")
        return cls(mean=mean, std=std, channel_names=tuple(d.get("channel_names", ())))


def fit_standardiser(
    x_train: NDArray[np.floating], *, channel_names: tuple[str, ...] = (), min_std: float = 1e-6
) -> Standardiser:
    """Fit on training data ``(..., c)`` only (windows ``(n, t, c)`` or samples ``(n, c)``)."""
    flat = np.asarray(x_train, dtype=np.float64).reshape(-1, x_train.shape[-1])
    if flat.shape[0] == 0:
        raise DataError("cannot fit normalisation on zero samples")
    mean = flat.mean(axis=0)
    std = np.maximum(flat.std(axis=0), min_std)
    return Standardiser(mean=mean.astype(np.float32), std=std.astype(np.float32), channel_names=tuple(channel_names))
