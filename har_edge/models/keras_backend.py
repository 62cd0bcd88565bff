"""Import Keras 2 (``tf_keras``) — the API whose LSTM converts to the fused TFLite LSTM op.

Keras 3 LSTMs do not fuse (see ``../shared/notes/stack.md``), so every model here is built with
``tf_keras``. Import through :func:`import_keras` so a missing ``train`` extra gives a clear error.
"""

from __future__ import annotations

import os
from types import ModuleType

from har_edge.errors import BackendNotAvailable

__all__ = ["import_keras", "import_tensorflow"]


def import_tensorflow() -> ModuleType:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf
    except ImportError as exc:
        raise BackendNotAvailable(
            'TensorFlow is needed for training and export: pip install "har-edge[train]"'
        ) from exc
    return tf


def import_keras() -> ModuleType:
    import_tensorflow()
    try:
        import tf_keras
    except ImportError as exc:
        raise BackendNotAvailable('tf-keras is needed for training and export: pip install "har-edge[train]"') from exc
    return tf_keras
