"""Offline evaluation: classification metrics and the scoring of streamed classifications against labels.

TensorFlow-free; used by training (``models``), export, the benchmarks and the demo. Not on the
device path: a device classifies, it does not score.
"""

from __future__ import annotations

from har_edge.evaluation.metrics import classification_metrics, plot_confusion_matrix
from har_edge.evaluation.stream_scoring import activity_segments, score_stream, window_truth

__all__ = ["activity_segments", "classification_metrics", "plot_confusion_matrix", "score_stream", "window_truth"]
