"""Training-time augmentation of windows: random 3-D rotation, scaling and noise, per sensor triad.

A rotation is applied identically to every ``*_x, *_y, *_z`` triad of a window (the device was
worn at a slightly different angle); scaling and Gaussian noise model sensor gain and noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from har_edge.errors import DataError

__all__ = ["AugmentationSpec", "triad_indices", "augment_windows"]


@dataclass(frozen=True)
class AugmentationSpec:
    rotation_deg: float = 0.0  # max rotation angle about a random axis
    scale: float = 0.0  # gain drawn from 1 ± scale
    noise: float = 0.0  # Gaussian noise std, in the channel's units

    @property
    def enabled(self) -> bool:
        return self.rotation_deg > 0 or self.scale > 0 or self.noise > 0


def triad_indices(channel_names: tuple[str, ...]) -> list[tuple[int, int, int]]:
    """Index triples of ``<name>_x, <name>_y, <name>_z`` channels."""
    out = []
    for i, n in enumerate(channel_names):
        if n.endswith("_x"):
            base = n[:-2]
            try:
                out.append((i, channel_names.index(base + "_y"), channel_names.index(base + "_z")))
            except ValueError:
                raise DataError(f"channel {n!r} has no matching {base}_y/{base}_z; rotation needs whole triads") from None
    return out


def _rotations(n: int, max_rad: float, rng: np.random.Generator) -> NDArray[np.float32]:
    """``n`` random rotation matrices ``(n, 3, 3)`` by angles up to ``max_rad`` (Rodrigues)."""
    axis = rng.standard_normal((n, 3))
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    theta = rng.uniform(-max_rad, max_rad, n)
    K = np.zeros((n, 3, 3))
    K[:, 0, 1], K[:, 0, 2], K[:, 1, 2] = -axis[:, 2], axis[:, 1], -axis[:, 0]
    K[:, 1, 0], K[:, 2, 0], K[:, 2, 1] = axis[:, 2], -axis[:, 1], axis[:, 0]
    s, c = np.sin(theta)[:, None, None], np.cos(theta)[:, None, None]
    return (np.eye(3)[None] + s * K + (1 - c) * (K @ K)).astype(np.float32)


def augment_windows(
    X: NDArray[np.float32], channel_names: tuple[str, ...], spec: AugmentationSpec, rng: np.random.Generator
) -> NDArray[np.float32]:
    """Return an augmented copy of windows ``(n, T, C)`` (raw units, before normalisation)."""
    out = np.array(X, dtype=np.float32, copy=True)
    n = out.shape[0]
    if spec.rotation_deg > 0:
        R = _rotations(n, np.deg2rad(spec.rotation_deg), rng)
        for tri in triad_indices(channel_names):
            idx = list(tri)
            out[:, :, idx] = np.einsum("nij,ntj->nti", R, out[:, :, idx])
    if spec.scale > 0:
        out *= rng.uniform(1 - spec.scale, 1 + spec.scale, (n, 1, out.shape[2])).astype(np.float32)
    if spec.noise > 0:
        out += rng.normal(0, spec.noise, out.shape).astype(np.float32)
    return out
