"""The device side: classify windows and streams with a bundle — numpy + an interpreter, no TensorFlow.

>>> from har_edge.runtime import Classifier, StreamClassifier, open_source   # doctest: +SKIP
"""

from __future__ import annotations

from har_edge.inference.classifier import Classifier, Prediction
from har_edge.data.clock import ClockConfig, SegmentEvent
from har_edge.runtime.plausibility import PlausibilityLimits
from har_edge.runtime.samples import SampleChunk, SourceStats
from har_edge.runtime.smoothing import ActivityEvent, SmoothingConfig
from har_edge.runtime.sources import open_source
from har_edge.runtime.stream import StreamClassifier, StreamResult

__all__ = [
    "ActivityEvent",
    "Classifier",
    "ClockConfig",
    "PlausibilityLimits",
    "SegmentEvent",
    "Prediction",
    "SampleChunk",
    "SmoothingConfig",
    "SourceStats",
    "StreamClassifier",
    "StreamResult",
    "open_source",
]
