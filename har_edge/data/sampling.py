"""Class-stratified sampling: the one implementation, used for smoke-test slices and int8 calibration sets."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from har_edge.errors import DataError

__all__ = ["stratified_indices"]


def stratified_indices(y: NDArray[np.integer], count: int, *, seed: int) -> NDArray[np.int64]:
    """Sorted indices of a seeded sample with up to ``count // n_classes`` (at least 1) items per class of ``y`` ``(n,)``.

    Classes with fewer items give all they have, so the result may hold fewer than ``count``.
    The same ``y``, ``count`` and ``seed`` always give the same indices.
    """
    if count < 1:
        raise DataError(f"count={count}; expected a positive number of samples")
    y = np.asarray(y)
    classes = np.unique(y)
    if classes.size == 0:
        return np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    per_class = max(1, count // len(classes))
    idx = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:per_class] for c in classes])
    return np.sort(idx).astype(np.int64)
