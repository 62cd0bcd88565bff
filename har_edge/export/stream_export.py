"""Export side of the streaming model: its twin, calibration windows and test windows in stream order.

A streaming run (``[streaming]`` in its config, :mod:`har_edge.models.stream_model`) converts like any
other (fixed batch 1, fused LSTM), but its windows are one hop of new samples plus the convolutions'
context, and the LSTM state runs on from window to window. So its test set is every window of each
held-out recording in order, with ``reset`` ``True`` at each recording's first window: the Keras
reference for window ``i`` is the training network's output at the LSTM step that window ends on,
run over the whole recording from zero state (the first window's context is the normalisation mean,
which is the training network's causal zero padding, so the two agree from the first window on).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from har_edge.data.loaders import UCI_LABELS
from har_edge.data.windowing import segment_windows
from har_edge.inference.bundle import CARRIED_STATE
from har_edge.models.run_dir import RunInfo
from har_edge.models.stream_model import (LabelledStream, build_stream_network, predict_steps, prepare_streams, step_targets,
                                          total_pool)

__all__ = ["StreamTestSet", "build_stream_twin", "stream_manifest_fields", "stream_test_set", "stream_representative"]


@dataclass(frozen=True)
class StreamTestSet:
    """Windows of the test recordings in stream order: ``X (n, W, C)`` normalised, labels ``y (n,)`` (-1: unlabelled),
    the Keras probabilities ``(n, k)`` at each window's last step, ``reset (n,)`` (a recording starts)."""

    X: NDArray[np.float32]
    y: NDArray[np.int64]
    keras_probs: NDArray[np.float32]
    reset: NDArray[np.bool_]
    subjects: list[int]


def build_stream_twin(model: Any, info: RunInfo) -> Any:
    """The export twin (batch 1, window = hop + context) with the trained weights."""
    twin = build_stream_network(info.config.model, n_channels=len(info.channel_names), n_classes=len(info.label_names),
                                window_samples=info.window_samples)
    twin.set_weights(model.get_weights())
    return twin


def stream_manifest_fields(info: RunInfo) -> dict[str, Any]:
    """The manifest keys of a streaming bundle (empty for a window classifier)."""
    s = info.config.streaming
    if s is None:
        return {}
    return {"recurrent_state": CARRIED_STATE, "uncertain_labels": list(info.label_names[len(UCI_LABELS):])}


def _windows(stream: LabelledStream, info: RunInfo) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Normalised windows ``(n, W, C)`` as the device cuts them (the first one's context is the normalisation
    mean, i.e. zeros: ``har_edge.runtime.stream.stream_start_buffer``), and the LSTM step each one ends on ``(n,)``."""
    w, hop = info.window_samples, info.hop_samples
    x = info.normalisation.transform(stream.features)
    x = np.concatenate([np.zeros((w - hop, x.shape[1]), np.float32), x])
    if len(x) < w:
        return np.zeros((0, w, x.shape[1]), np.float32), np.zeros(0, np.int64)
    X = np.ascontiguousarray(segment_windows(x, w, hop), dtype=np.float32)
    ends = (np.arange(len(X)) + 1) * hop  # recording samples consumed after each window
    return X, ends // total_pool(info.config.model) - 1


def stream_test_set(model: Any, info: RunInfo, data_root: Path) -> StreamTestSet:
    """Every window of the held-out recordings, in order, with labels and the training network's outputs."""
    data = prepare_streams(info.config, data_root)
    xs, ys, ps, rs = [], [], [], []
    pool = total_pool(info.config.model)
    for s in data.test:
        X, steps = _windows(s, info)
        if not len(X):
            continue
        probs = predict_steps(model, info.normalisation.transform(s.features))
        xs.append(X)
        ys.append(step_targets(s.labels, pool)[steps])
        ps.append(probs[steps])
        rs.append(np.arange(len(X)) == 0)
    return StreamTestSet(np.concatenate(xs), np.concatenate(ys), np.concatenate(ps), np.concatenate(rs),
                         sorted({s.subject for s in data.test}))


def stream_representative(info: RunInfo, data_root: Path, *, count: int = 600, seed: int = 0) -> NDArray[np.float32]:
    """``count`` windows for int8 calibration ``(count, W, C)``: runs of consecutive windows (in stream order, so a
    calibrator that carries state sees real states) from eight training recordings."""
    data = prepare_streams(info.config, data_root)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(data.train))
    out: list[NDArray[np.float32]] = []
    per = max(1, count // 8)
    for i in order:
        X, _ = _windows(data.train[int(i)], info)
        start = int(rng.integers(0, max(1, len(X) - per)))
        out.append(X[start : start + per])
        if sum(len(o) for o in out) >= count:
            break
    return np.concatenate(out)[:count]
