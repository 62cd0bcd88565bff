"""The streaming model: trained on whole-recording sequences, run on the device one hop at a time with its LSTM state carried.

Architecture (``[model]`` + ``[streaming]`` of the config): ``Conv1D`` (``causal`` padding) +
``MaxPooling1D`` blocks → one ``LSTM`` returning every step → ``Dropout`` → ``Dense(softmax)`` per step.
Trained with Keras on random crops of ``sequence_samples`` of the training subjects' causally
preprocessed recordings, with a label per LSTM step (the label of the step's last sample; unlabelled
samples and each crop's first ``warmup_samples`` carry no loss). The HAPT postural transitions are one
class (``transition_label``) or keep their own classes (``transition_classes = "each"``); the device
shows them as ``uncertain``.

The export twin (:func:`build_stream_network` with ``window_samples``) has a fixed batch of 1, ``valid``
convolutions and an LSTM returning its last step only: its input is one hop of new samples plus the
:func:`context_samples` the convolutions need from before it — exactly the window the device's
:mod:`har_edge.data.windowing` cuts with ``window = hop + context``, ``hop = hop``, after a context of
normalisation means at the start (the causal padding) — and, because the runtime does not reset the
fused LSTM op between invokes, it computes what the training network computes on the whole stream. ``(conv_kernel - 1)`` must be divisible by ``conv_pool`` and the hop
by the total pooling, so that pooling pairs line up the same way in every invoke.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from numpy.typing import NDArray

from har_edge.config import ModelConfig, RunConfig, StreamingConfig
from har_edge.data.augmentation import AugmentationSpec, augment_windows
from har_edge.data.datasets import load_recordings, preprocessing_spec_for
from har_edge.data.loaders import UCI_LABELS
from har_edge.data.normalisation import Standardiser, fit_standardiser
from har_edge.data.preprocessing import PreprocessingSpec, preprocess_recording
from har_edge.data.recording import UNLABELLED
from har_edge.errors import ConfigError, DataError
from har_edge.evaluation.metrics import classification_metrics
from har_edge.models.keras_backend import import_keras, import_tensorflow

__all__ = ["LabelledStream", "StreamSplits", "total_pool", "context_samples", "stream_label_names", "build_stream_network",
           "prepare_streams", "step_targets", "predict_steps", "train_stream_run"]

log = logging.getLogger(__name__)


def total_pool(model: ModelConfig) -> int:
    """Input samples per LSTM step."""
    return max(1, model.conv_pool) ** len(model.conv_filters)


def context_samples(model: ModelConfig) -> int:
    """Samples before a hop that the causal convolutions read (each invoke repeats them)."""
    ctx, scale = 0, 1
    for _ in model.conv_filters:
        ctx += (model.conv_kernel - 1) * scale
        scale *= max(1, model.conv_pool)
    return ctx


def stream_label_names(s: StreamingConfig, data_label_names: tuple[str, ...]) -> tuple[str, ...]:
    """The six activities, plus one transition class, or the data set's own transition classes."""
    if s.transition_classes == "each":
        return UCI_LABELS + tuple(data_label_names[len(UCI_LABELS):])
    return UCI_LABELS + ((s.transition_label,) if s.transition_classes == "one" else ())


def build_stream_network(model: ModelConfig, *, n_channels: int, n_classes: int, window_samples: int | None = None,
                         seed: int = 0) -> Any:
    """The training network (``window_samples=None``: any length, a softmax per LSTM step ``(b, T / pool, k)``) or
    the export twin (batch 1, ``window_samples`` = hop + context, ``valid`` convolutions, the last step's softmax ``(1, k)``)."""
    keras = import_keras()
    layers = keras.layers
    init = lambda k: keras.initializers.GlorotUniform(seed=seed + k)  # noqa: E731
    twin = window_samples is not None
    inputs = keras.Input(shape=(window_samples, n_channels), batch_size=1 if twin else None, name="window")
    x = inputs
    for i, filters in enumerate(model.conv_filters):
        x = layers.Conv1D(filters, model.conv_kernel, padding="valid" if twin else "causal", activation="relu",
                          kernel_initializer=init(10 + i), name=f"conv{i}")(x)
        if model.conv_pool > 1:
            x = layers.MaxPooling1D(model.conv_pool, name=f"pool{i}")(x)
    x = layers.LSTM(model.units[0], return_sequences=not twin, kernel_initializer=init(20),
                    recurrent_initializer=keras.initializers.Orthogonal(seed=seed + 30), name="lstm0")(x)
    if model.dropout > 0:
        x = layers.Dropout(model.dropout, seed=seed, name="dropout")(x)
    outputs = layers.Dense(n_classes, activation="softmax", kernel_initializer=init(50), name="probabilities")(x)
    return keras.Model(inputs, outputs, name="har_stream_lstm")


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class LabelledStream:
    """One preprocessed recording: ``features (n, C)`` float32, ``labels (n,)`` class indices (:data:`UNLABELLED`: none)."""

    features: NDArray[np.float32]
    labels: NDArray[np.int64]
    subject: int
    name: str


@dataclass(frozen=True)
class StreamSplits:
    train: list[LabelledStream]
    validation: list[LabelledStream]
    test: list[LabelledStream]
    preprocessing: PreprocessingSpec
    label_names: tuple[str, ...]
    channel_names: tuple[str, ...]
    units: tuple[str, ...]


def _class_labels(labels: NDArray[np.integer], transitions: str) -> NDArray[np.int64]:
    """HAPT labels 0..11 → 0..5 (activities) and the transitions 6..11 as they are (``each``), all 6 (``one``)
    or unlabelled (``none``)."""
    lab = np.asarray(labels, dtype=np.int64)
    if transitions == "each":
        return lab
    return np.where(lab >= len(UCI_LABELS), len(UCI_LABELS) if transitions == "one" else UNLABELLED, lab)


def prepare_streams(cfg: RunConfig, data_root: Path) -> StreamSplits:
    """The raw recordings, causally preprocessed, labelled per sample, split by subject."""
    if cfg.streaming is None or cfg.preprocessing is None:
        raise ConfigError("a streaming model needs [streaming] and [preprocessing] in its config")
    d = cfg.data
    spec = preprocessing_spec_for(cfg.preprocessing, d)
    splits: dict[str, list[LabelledStream]] = {"train": [], "validation": [], "test": []}
    channels: tuple[str, ...] = ()
    units: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    for rec in load_recordings(d, data_root, transitions=True):
        pre = preprocess_recording(rec, spec)
        if d.channels:
            pre = pre.select_channels(d.channels)
        channels, units = pre.channel_names, pre.units
        item = LabelledStream(pre.signals.astype(np.float32), _class_labels(rec.labels, cfg.streaming.transition_classes),  # type: ignore[arg-type]
                              int(rec.subject or -1), rec.name)
        names = rec.label_names
        split = "test" if item.subject in d.test_subjects else "validation" if item.subject in d.validation_subjects else "train"
        splits[split].append(item)
    for name, items in splits.items():
        if not items and not (name == "validation" and not d.validation_subjects):
            raise DataError(f"the {name} split has no recordings")
    return StreamSplits(splits["train"], splits["validation"], splits["test"], spec,
                        stream_label_names(cfg.streaming, names), channels, units)


def step_targets(labels: NDArray[np.integer], pool: int) -> NDArray[np.int64]:
    """The label of each LSTM step: that of its last input sample, ``(n // pool,)``."""
    return np.asarray(labels, dtype=np.int64)[pool - 1 :: pool][: len(labels) // pool]


def _padded(streams: list[LabelledStream], norm: Standardiser, pool: int) -> tuple[NDArray[np.float32], NDArray[np.int64], NDArray[np.float32]]:
    """Whole recordings, zero-padded to one length: ``X (n, T, C)``, step targets and weights ``(n, T / pool)``."""
    length = max(len(s.labels) for s in streams)
    length += (-length) % pool
    X = np.zeros((len(streams), length, streams[0].features.shape[1]), np.float32)
    y = np.zeros((len(streams), length // pool), np.int64)
    w = np.zeros_like(y, dtype=np.float32)
    for i, s in enumerate(streams):
        X[i, : len(s.labels)] = norm.transform(s.features)
        t = step_targets(s.labels, pool)
        y[i, : len(t)] = np.maximum(t, 0)
        w[i, : len(t)] = t != UNLABELLED
    return X, y, w


def _crop_batches(streams: list[LabelledStream], s: StreamingConfig, pool: int, channels: tuple[str, ...],
                  aug: AugmentationSpec, norm: Standardiser, batch_size: int, seed: int) -> Any:
    """A keras ``Sequence`` of random crops (augmented, normalised) with step targets and weights."""
    keras = import_keras()
    rng = np.random.default_rng(seed)
    usable = [x for x in streams if len(x.labels) >= s.sequence_samples]
    if not usable:
        raise DataError(f"no training recording is as long as sequence_samples={s.sequence_samples}")
    sizes = np.array([len(x.labels) - s.sequence_samples + 1 for x in usable], dtype=np.float64)
    warm = s.warmup_samples // pool

    class Crops(keras.utils.Sequence):  # type: ignore[name-defined]
        def __len__(self) -> int:
            return int(np.ceil(s.crops_per_epoch / batch_size))

        def __getitem__(self, i: int) -> tuple[NDArray[np.float32], NDArray[np.int64], NDArray[np.float32]]:
            which = rng.choice(len(usable), size=batch_size, p=sizes / sizes.sum())
            X = np.empty((batch_size, s.sequence_samples, len(channels)), np.float32)
            y = np.empty((batch_size, s.sequence_samples // pool), np.int64)
            for b, r in enumerate(which):
                start = int(rng.integers(0, sizes[r]))
                X[b] = usable[r].features[start : start + s.sequence_samples]
                y[b] = step_targets(usable[r].labels[start : start + s.sequence_samples], pool)
            w = (y != UNLABELLED).astype(np.float32)
            w[:, :warm] = 0.0
            X = augment_windows(X, channels, aug, rng) if aug.enabled else X
            return norm.transform(X), np.maximum(y, 0), w

    return Crops()


def predict_steps(model: Any, features_norm: NDArray[np.float32]) -> NDArray[np.float32]:
    """Per-step probabilities ``(n // pool, k)`` of one whole normalised recording ``(n, C)``, from zero state."""
    return np.asarray(model.predict(features_norm[None], batch_size=1, verbose=0)[0], dtype=np.float32)


# --------------------------------------------------------------------------- training


def _evaluate(model: Any, streams: list[LabelledStream], norm: Standardiser, pool: int,
              labels: tuple[str, ...]) -> dict[str, Any]:
    """Per-step accuracy on whole recordings (every labelled step; and on the six activities' steps only)."""
    ys, ps = [], []
    for s in streams:
        probs = predict_steps(model, norm.transform(s.features))
        t = step_targets(s.labels, pool)[: len(probs)]
        keep = t != UNLABELLED
        ys.append(t[keep])
        ps.append(probs[: len(t)][keep].argmax(axis=1))
    y, p = np.concatenate(ys), np.concatenate(ps)
    m = classification_metrics(y, p, labels)
    act = y < len(UCI_LABELS)
    m["activity_step_accuracy"] = float(np.mean(p[act] == y[act]))
    return m


def train_stream_run(cfg: RunConfig, data_root: Path, out_dir: Path, *, verbose: int = 2,
                     on_progress: Callable[[str], None] | None = None) -> Any:
    """Train the streaming model of ``cfg`` and write the run directory (``window`` = hop + context, ``hop``)."""
    from har_edge.models.run_dir import RunInfo
    from har_edge.models.training import _write_run, fit_model, seed_everything

    say = on_progress or log.info
    s = cfg.streaming
    if s is None:
        raise ConfigError("train_stream_run needs a [streaming] table")
    tf = import_tensorflow()
    keras = import_keras()
    seed_everything(cfg.train.seed)
    t0 = time.monotonic()
    data = prepare_streams(cfg, data_root)
    pool = total_pool(cfg.model)
    norm = fit_standardiser(np.concatenate([x.features for x in data.train]), channel_names=data.channel_names)
    labels = data.label_names
    say(f"data: {len(data.train)} / {len(data.validation)} / {len(data.test)} recordings (train / validation / test), "
        f"{sum(len(x.labels) for x in data.train) / 50 / 3600:.2f} h of training stream ({time.monotonic() - t0:.1f} s)")
    model = build_stream_network(cfg.model, n_channels=len(data.channel_names), n_classes=len(labels), seed=cfg.train.seed)
    say(f"model: {model.count_params()} parameters (streaming: conv {list(cfg.model.conv_filters)}, LSTM {cfg.model.units[0]}, "
        f"hop {s.hop_samples}, context {context_samples(cfg.model)})")
    aug = AugmentationSpec(cfg.train.augment_rotation_deg, cfg.train.augment_scale, cfg.train.augment_noise)
    batches = _crop_batches(data.train, s, pool, data.channel_names, aug, norm, cfg.train.batch_size, cfg.train.seed)
    # the crops carry per-step weights (unlabelled steps and the warm-up count for nothing): the loss is weighted
    # no validation subjects (validation_subjects = []): a final model on every training subject, for a recipe chosen before
    validation = _padded(data.validation, norm, pool) if data.validation else None
    history, train_seconds = fit_model(model, batches, None, validation_data=validation,
                                       train=cfg.train, loss=keras.losses.SparseCategoricalCrossentropy(),
                                       metrics=["accuracy"], verbose=verbose, say=say, sample_weighted=True)
    test_m = _evaluate(model, data.test, norm, pool, labels)
    val_m = _evaluate(model, data.validation, norm, pool, labels) if data.validation else {"accuracy": None}
    metrics = {
        "test_accuracy": test_m["accuracy"], "test_macro_f1": test_m["macro_f1"],
        "test_activity_step_accuracy": test_m["activity_step_accuracy"],
        "validation_accuracy": val_m["accuracy"], "train_seconds": round(train_seconds, 2),
        "epochs_run": len(history.history["loss"]), "parameters": int(model.count_params()),
        "test_subjects": sorted({x.subject for x in data.test}), "validation_subjects": sorted({x.subject for x in data.validation}),
        "scored": "every labelled LSTM step of the whole test recordings, run from zero state like the device",
        "test": test_m, "versions": {"tensorflow": tf.__version__, "tf_keras": keras.__version__, "numpy": np.__version__},
    }
    info = RunInfo(run_dir=Path(out_dir), config=cfg, label_names=labels, channel_names=data.channel_names, units=data.units,
                   sample_rate_hz=cfg.data.sample_rate_hz, window_samples=s.hop_samples + context_samples(cfg.model),
                   hop_samples=s.hop_samples, preprocessing=data.preprocessing, normalisation=norm, metrics=metrics,
                   data_root=None if data_root is None else Path(data_root))
    _write_run(info, model, history.history)
    say(f"test (whole recordings of the held-out subjects, per LSTM step): accuracy {test_m['accuracy']:.4f}, "
        f"six activities {test_m['activity_step_accuracy']:.4f}; trained {metrics['epochs_run']} epochs in {train_seconds:.0f} s")
    return info
