"""har-edge: human activity recognition from raw accelerometer data to the edge.

Layers import one way: data → models → export → runtime → transport; cli sits on top.
TensorFlow is only imported by ``har_edge.models`` and ``har_edge.export`` (the ``train`` extra).
"""

from __future__ import annotations

from har_edge.errors import (
    BackendNotAvailable,
    BundleError,
    ConfigError,
    DataError,
    ExportError,
    HarEdgeError,
    ModelError,
    SourceError,
    TransportError,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "HarEdgeError",
    "ConfigError",
    "DataError",
    "ModelError",
    "ExportError",
    "BundleError",
    "BackendNotAvailable",
    "SourceError",
    "TransportError",
]
