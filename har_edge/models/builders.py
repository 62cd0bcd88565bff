"""Keras (tf_keras) model builders: recurrent networks that convert to fused TFLite ops.

One body for every task: ``Input (T, C)`` → optional ``Conv1D`` + ``MaxPooling1D`` blocks → one or
more ``LSTM`` / ``SimpleRNN`` layers (all but the last return sequences) → ``Dropout`` → optional
``Dense(relu)`` → a head: ``Dense(softmax)`` over classes (:func:`build_classifier`) or a linear
``Dense(H)`` of multi-step forecasts (:func:`build_forecaster`). :func:`build_network` is the one
builder both call. No I/O here.
"""

from __future__ import annotations

from typing import Any

from har_edge.config import ModelConfig
from har_edge.errors import ConfigError
from har_edge.models.keras_backend import import_keras

__all__ = ["HEADS", "build_network", "build_classifier", "build_forecaster"]

# head -> (activation, output layer name, model name prefix)
HEADS = {"softmax": ("softmax", "probabilities", "har"), "linear": ("linear", "forecast", "forecast")}


def build_network(
    model: ModelConfig, *, window_samples: int, n_channels: int, n_outputs: int, head: str = "softmax",
    batch_size: int | None = None, seed: int = 0
) -> Any:
    """Build an uncompiled tf_keras recurrent network with a ``softmax`` or ``linear`` head.

    Args:
        head: ``"softmax"`` (class probabilities) or ``"linear"`` (regression, e.g. H forecast steps).
        batch_size: ``None`` for training; ``1`` for the export twin (fixed batch → fused LSTM op).

    Returns:
        A ``tf_keras.Model`` mapping ``(batch, window_samples, n_channels)`` to ``(batch, n_outputs)``.
    """
    if head not in HEADS:
        raise ConfigError(f"head={head!r}; expected one of {sorted(HEADS)}")
    activation, out_name, prefix = HEADS[head]
    keras = import_keras()
    layers = keras.layers
    init = lambda k: keras.initializers.GlorotUniform(seed=seed + k)  # noqa: E731
    inputs = keras.Input(shape=(window_samples, n_channels), batch_size=batch_size, name="window")
    x = inputs
    for i, filters in enumerate(model.conv_filters):
        x = layers.Conv1D(filters, model.conv_kernel, padding="same", activation="relu", kernel_initializer=init(10 + i), name=f"conv{i}")(x)
        if model.conv_pool > 1:
            x = layers.MaxPooling1D(model.conv_pool, name=f"pool{i}")(x)
    if model.cell == "lstm":
        cell = layers.LSTM
    elif model.cell == "simple_rnn":
        cell = layers.SimpleRNN
    else:
        raise ConfigError(f"model.cell={model.cell!r}; expected 'lstm' or 'simple_rnn'")
    for i, units in enumerate(model.units):
        last = i == len(model.units) - 1
        x = cell(units, return_sequences=not last, kernel_initializer=init(20 + i),
                 recurrent_initializer=keras.initializers.Orthogonal(seed=seed + 30 + i), name=f"{model.cell}{i}")(x)
    if model.dropout > 0:
        x = layers.Dropout(model.dropout, seed=seed, name="dropout")(x)
    if model.dense_units:
        x = layers.Dense(model.dense_units, activation="relu", kernel_initializer=init(40), name="dense_hidden")(x)
    outputs = layers.Dense(n_outputs, activation=activation, kernel_initializer=init(50), name=out_name)(x)
    return keras.Model(inputs, outputs, name=f"{prefix}_{model.cell}")


def build_classifier(
    model: ModelConfig, *, window_samples: int, n_channels: int, n_classes: int, batch_size: int | None = None, seed: int = 0
) -> Any:
    """A classifier: :func:`build_network` with a softmax head over ``n_classes``."""
    return build_network(model, window_samples=window_samples, n_channels=n_channels, n_outputs=n_classes,
                         head="softmax", batch_size=batch_size, seed=seed)


def build_forecaster(
    model: ModelConfig, *, window_samples: int, n_channels: int, horizon: int, batch_size: int | None = None, seed: int = 0
) -> Any:
    """A multi-step forecaster: :func:`build_network` with a linear head of ``horizon`` outputs."""
    return build_network(model, window_samples=window_samples, n_channels=n_channels, n_outputs=horizon,
                         head="linear", batch_size=batch_size, seed=seed)
