"""The TensorFlow-free inference core: bundles, interpreters, the NumPy reference engine, the classifier and the forecaster.

Sits above :mod:`har_edge.data` and below the exporter (which writes and verifies bundles with
it) and :mod:`har_edge.runtime` (which streams with it). It imports numpy, scipy (via ``data``)
and, lazily, an interpreter package; never TensorFlow, nor the TensorFlow side of the package
(``models``, ``export``): layers import one way.

>>> from har_edge.inference import Classifier, load_bundle   # doctest: +SKIP
"""

from __future__ import annotations

from har_edge.inference.bundle import CLASSIFICATION, SCHEMA_VERSION, Bundle, load_bundle, write_bundle
from har_edge.inference.classifier import Classifier, Prediction
from har_edge.inference.flatbuffer import model_ops, read_tflite
from har_edge.inference.forecaster import FORECAST, Forecast, Forecaster  # registers the forecast task's manifest check
from har_edge.inference.interpreter import BACKENDS, TfliteRunner, load_backend
from har_edge.inference.reference import ReferenceModel
from har_edge.inference.runner import NumpyRunner, Runner, open_runner

__all__ = [
    "BACKENDS",
    "CLASSIFICATION",
    "FORECAST",
    "SCHEMA_VERSION",
    "Bundle",
    "Classifier",
    "Forecast",
    "Forecaster",
    "NumpyRunner",
    "Prediction",
    "ReferenceModel",
    "Runner",
    "TfliteRunner",
    "load_backend",
    "load_bundle",
    "model_ops",
    "open_runner",
    "read_tflite",
    "write_bundle",
]
