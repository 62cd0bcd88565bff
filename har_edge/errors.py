"""The one exception tree of har-edge.

::

    HarEdgeError
    ├── ConfigError (ValueError)        a config file or option is wrong
    │   └── ImplausibleInputError       declared units / timestamp unit evidently do not fit the data
    ├── DataError (ValueError)          a recording, column or value is wrong
    │   └── RecordError                 one input record (CSV line, JSON sample, message) is malformed
    ├── ModelError                      a model or run directory is unusable
    ├── ExportError                     conversion / quantisation / MCU export failed
    ├── BundleError                     a model bundle is missing, corrupt or inconsistent
    ├── BackendNotAvailable (ImportError)  no interpreter package installed
    ├── SourceError                     a sensor source cannot be opened or read
    └── TransportError                  MQTT publishing failed

Library code raises these; only the CLI prints them.
"""

from __future__ import annotations

__all__ = [
    "HarEdgeError",
    "ConfigError",
    "ImplausibleInputError",
    "DataError",
    "RecordError",
    "ModelError",
    "ExportError",
    "BundleError",
    "BackendNotAvailable",
    "SourceError",
    "TransportError",
]


class HarEdgeError(Exception):
    """Base class of every error har-edge raises on purpose."""


class ConfigError(HarEdgeError, ValueError):
    """A configuration file, option or argument is invalid."""


class ImplausibleInputError(ConfigError):
    """The input's declared units or timestamp unit evidently do not fit its values (the message names the fix)."""


class DataError(HarEdgeError, ValueError):
    """Input data is missing or malformed (the message names file, field and value)."""


class RecordError(DataError):
    """One input record is malformed; ``reason`` is the counter key a device loop counts it under.

    Training data raises it (naming file, line, column and value); a device source counts the
    ``reason`` and skips the record.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class ModelError(HarEdgeError):
    """A trained model or run directory is missing pieces or inconsistent."""


class ExportError(HarEdgeError):
    """Converting or quantising a model failed, or the result is not deployable."""


class BundleError(HarEdgeError):
    """A model bundle (``model.tflite`` + manifest) is missing, corrupt or inconsistent."""


class BackendNotAvailable(HarEdgeError, ImportError):
    """No usable inference backend; the message names the extra to install."""


class SourceError(HarEdgeError):
    """A sensor source cannot be opened or read."""


class TransportError(HarEdgeError):
    """Publishing to MQTT failed."""
