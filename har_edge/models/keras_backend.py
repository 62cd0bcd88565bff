"""Import Keras 2 (``tf_keras``) — the API whose LSTM converts to the fused TFLite LSTM op.

Keras 3 LSTMs do not fuse (see ``../shared/notes/stack.md``), so every model here is built with
``tf_keras``. Import through :func:`import_keras` so a missing ``train`` extra gives a clear error.

TensorFlow's native start-up lines (oneDNN, "Could not find cuda drivers", ``failed call to cuInit``,
CPU feature flags) are written by C++ code straight to file descriptor 2, before and outside Python's
logging, and twice (TensorFlow and tf_keras each load the library). :func:`import_tensorflow` catches
them once: stderr is pointed at a temporary file while TensorFlow is imported and its devices are
enumerated, and the captured text is logged once at DEBUG (``har-edge -vv``) — or attached to the
error when the import fails. Set ``HAR_EDGE_NATIVE_LOGS=1`` to let them through unchanged.
"""

from __future__ import annotations

import logging
import os
from types import ModuleType

from har_edge.errors import BackendNotAvailable
from har_edge.native_output import captured_native_stderr, native_output_shown

__all__ = ["import_keras", "import_tensorflow"]

log = logging.getLogger(__name__)
_QUIET_DONE = False


def _import_quietly() -> ModuleType:
    global _QUIET_DONE
    with captured_native_stderr() as captured:
        try:
            import tensorflow as tf

            try:
                import tf_keras  # noqa: F401 - loads the library a second time: same lines again
            except ImportError:
                pass
            tf.config.list_physical_devices()  # device discovery: where "failed call to cuInit" is logged
        except ImportError as exc:
            tail = " | ".join(captured().strip().splitlines()[-3:])
            raise BackendNotAvailable(
                'TensorFlow is needed for training and export: pip install "har-edge[train]"'
                + (f" (TensorFlow said: {tail})" if tail else "")
            ) from exc
        noise = captured().strip()
    _QUIET_DONE = True
    if noise:
        log.debug("TensorFlow start-up messages (hidden; HAR_EDGE_NATIVE_LOGS=1 shows them):\n%s", noise)
    return tf


def import_tensorflow() -> ModuleType:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not _QUIET_DONE and not native_output_shown():
        return _import_quietly()
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
