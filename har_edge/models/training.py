"""Train a recurrent classifier from a :class:`~har_edge.config.RunConfig` and write a run directory.

Seeded; early stopping on the validation subjects; the held-out test subjects are evaluated once,
at the end. See :mod:`har_edge.models.run_dir` for what is written.

The task-neutral loop is shared with the forecaster (:mod:`har_edge.forecasting.training`):
:func:`seed_everything`, :func:`fit_model` (compile, early stopping on ``val_loss`` with the best
weights restored, learning-rate decay on plateau, the ``max_minutes`` time limit) and
:func:`write_run_atomically` (a run directory appears whole or not at all).
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from har_edge.config import RunConfig, TrainConfig
from har_edge.data.datasets import SplitWindows, pin_labels, prepare_windows
from har_edge.data.augmentation import AugmentationSpec, augment_windows
from har_edge.data.normalisation import Standardiser, fit_standardiser
from har_edge.errors import ConfigError, ModelError
from har_edge.models import fine_tuning
from har_edge.models.builders import build_classifier
from har_edge.evaluation.metrics import classification_metrics, plot_confusion_matrix
from har_edge.models.keras_backend import import_keras, import_tensorflow
from har_edge.models.run_dir import RunInfo, write_json

__all__ = ["train_run", "load_keras_model", "predict_probabilities", "evaluate_windows", "seed_everything", "fit_model",
           "write_run_atomically"]

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow (``tf_keras.utils.set_random_seed``)."""
    keras = import_keras()
    keras.utils.set_random_seed(seed)


def load_keras_model(run_dir: Path) -> Any:
    """Load ``RUN_DIR/model.keras`` with tf_keras."""
    keras = import_keras()
    path = Path(run_dir) / "model.keras"
    if not path.is_file():
        raise ModelError(f"{path}: model file not found")
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:  # noqa: BLE001 - Keras raises many types for a bad file
        raise ModelError(f"{path}: cannot load the Keras model ({type(exc).__name__}: {exc})") from exc


def predict_probabilities(model: Any, X: np.ndarray, *, batch_size: int = 512) -> np.ndarray:
    """Softmax outputs ``(n, n_classes)`` for normalised windows ``(n, T, C)``."""
    return np.asarray(model.predict(X, batch_size=batch_size, verbose=0), dtype=np.float32)


def evaluate_windows(probabilities: np.ndarray, y_true: np.ndarray, label_names: tuple[str, ...]) -> dict[str, Any]:
    return classification_metrics(y_true, probabilities.argmax(axis=1), label_names)


def _AugmentedBatches(X: np.ndarray, y: np.ndarray, channels: tuple[str, ...], aug: AugmentationSpec,
                      norm: Standardiser, batch_size: int, seed: int) -> Any:
    """A keras ``Sequence`` giving freshly augmented, normalised batches each epoch."""
    keras = import_keras()
    rng = np.random.default_rng(seed)

    class Batches(keras.utils.Sequence):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.order = rng.permutation(len(X))

        def __len__(self) -> int:
            return int(np.ceil(len(X) / batch_size))

        def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
            idx = self.order[i * batch_size : (i + 1) * batch_size]
            return norm.transform(augment_windows(X[idx], channels, aug, rng)), y[idx]

        def on_epoch_end(self) -> None:
            self.order = rng.permutation(len(X))

    return Batches()


class _TimeLimit:
    def __new__(cls, max_minutes: float) -> Any:  # build a real keras Callback lazily
        keras = import_keras()

        class TimeLimit(keras.callbacks.Callback):  # type: ignore[name-defined]
            def on_train_begin(self, logs: Any = None) -> None:
                self.start = time.monotonic()

            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                if (time.monotonic() - self.start) / 60 > max_minutes:
                    log.warning("time limit of %.1f min reached after epoch %d; stopping", max_minutes, epoch + 1)
                    self.model.stop_training = True

        return TimeLimit()


class _WeightAverage:
    """An exponential moving average of the weights, updated after every batch with ``momentum``.

    Validation sees the average (swapped in around each evaluation), and training ends on the average of
    the epoch with the best validation loss, so early stopping and the learning-rate schedule judge the
    weights that are kept. Must come after ``EarlyStopping`` (whose raw best weights it replaces).
    """

    def __new__(cls, momentum: float) -> Any:  # build a real keras Callback lazily
        keras = import_keras()

        class WeightAverage(keras.callbacks.Callback):  # type: ignore[name-defined]
            def on_train_begin(self, logs: Any = None) -> None:
                self.average = [np.array(w, dtype=np.float64) for w in self.model.get_weights()]
                self.raw: list[Any] | None = None
                self.best: tuple[float, list[Any]] | None = None

            def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
                for a, w in zip(self.average, self.model.get_weights()):
                    a *= momentum
                    a += (1 - momentum) * w

            def on_test_begin(self, logs: Any = None) -> None:
                if self.raw is None:
                    self.raw = self.model.get_weights()
                    self.model.set_weights(self.average)

            def on_test_end(self, logs: Any = None) -> None:
                if self.raw is not None:
                    self.model.set_weights(self.raw)
                    self.raw = None

            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                if "val_loss" not in (logs or {}):  # no validation data: training ends on the last average
                    return
                loss = float(logs["val_loss"])
                if self.best is None or loss < self.best[0]:
                    self.best = (loss, [a.copy() for a in self.average])

            def on_train_end(self, logs: Any = None) -> None:
                chosen = self.average if self.best is None else self.best[1]
                self.model.set_weights([a.astype(w.dtype) for a, w in zip(chosen, self.model.get_weights())])

        return WeightAverage()


class _EpochLog:
    """One line per epoch through ``say``: the fit's metrics (loss, accuracy, ...; validation too), seconds,
    ``*`` when the validation loss is the best so far (what early stopping keeps)."""

    def __new__(cls, say: Callable[[str], None], epochs: int) -> Any:  # build a real keras Callback lazily
        keras = import_keras()

        class EpochLog(keras.callbacks.Callback):  # type: ignore[name-defined]
            def on_train_begin(self, logs: Any = None) -> None:
                self.best = float("inf")

            def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
                self.t_epoch = time.monotonic()

            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                logs = dict(logs or {})
                val = float(logs.get("val_loss", float("nan")))
                mark = " *" if val < self.best else ""
                self.best = min(self.best, val)
                names = [k for k in logs if not k.startswith("val_") and k not in ("lr", "learning_rate")]
                shown = [*names, *(f"val_{k}" for k in names if f"val_{k}" in logs)]
                parts = "  ".join(f"{k.replace('accuracy', 'acc')} {float(logs[k]):.3f}" for k in shown)
                say(f"epoch {epoch + 1:>3}/{epochs}  {parts}  {time.monotonic() - self.t_epoch:.1f} s{mark}")

        return EpochLog()


def fit_model(model: Any, x: Any, y: Any, *, validation_data: tuple[Any, ...] | None, train: TrainConfig, loss: Any,
              metrics: list[Any] | None = None, verbose: int = 2, fit_kwargs: dict[str, Any] | None = None,
              say: Callable[[str], None] | None = None, sample_weighted: bool = False) -> tuple[Any, float]:
    """Compile and fit ``model`` with the project's training loop; returns ``(history, fit_seconds)``.

    Adam at ``train.learning_rate`` (gradients clipped to a global norm of ``train.clip_norm`` if set);
    early stopping on ``val_loss`` (patience ``train.patience``, best weights restored); the learning rate
    halves after ``patience // 3`` flat epochs; training stops after the epoch that passes
    ``train.max_minutes``. With ``train.average_weights`` (a momentum), validation and the final model use
    an exponential moving average of the weights. ``x`` may be arrays or a ``keras.utils.Sequence`` (then
    ``y`` is None and ``fit_kwargs`` empty); ``validation_data`` is ``(x, y)`` or ``(x, y, sample_weight)``,
    or None: then the training loss drives early stopping and the schedule, and an average of the weights
    is the last one.
    With ``say`` and ``verbose`` > 0, one line per epoch goes to ``say`` (instead of Keras's own progress output).
    """
    keras = import_keras()
    optimizer = keras.optimizers.Adam(train.learning_rate, global_clipnorm=train.clip_norm or None)
    # sample_weighted: the batches carry weights (unlabelled steps count for nothing), and so do the metrics
    model.compile(optimizer=optimizer, loss=loss, metrics=[] if sample_weighted else metrics or [],
                  weighted_metrics=metrics or [] if sample_weighted else None)
    monitor = "loss" if validation_data is None else "val_loss"
    callbacks = [
        keras.callbacks.EarlyStopping(monitor=monitor, patience=train.patience, restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau(monitor=monitor, factor=0.5, patience=max(2, train.patience // 3), min_lr=1e-5),
        _TimeLimit(train.max_minutes),
    ]
    if train.average_weights:
        callbacks.append(_WeightAverage(train.average_weights))
    if say is not None and verbose > 0:
        callbacks.append(_EpochLog(say, train.epochs))
        say(f"training up to {train.epochs} epochs (early stopping after {train.patience} without a better "
            f"{'validation' if validation_data is not None else 'training'} loss, at most {train.max_minutes:g} min)")
        verbose = 0
    t_fit = time.monotonic()
    history = model.fit(x, y, validation_data=validation_data, epochs=train.epochs, callbacks=callbacks, verbose=verbose,
                        **(fit_kwargs or {}))
    return history, time.monotonic() - t_fit


def write_run_atomically(out: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_dir)``, then rename ``tmp_dir`` over ``out`` (no half-written run directory)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        write(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)


def train_run(
    cfg: RunConfig,
    data_root: Path,
    out_dir: Path,
    *,
    verbose: int = 2,
    splits: SplitWindows | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> RunInfo:
    """Train, evaluate on the held-out subjects and write ``out_dir``.

    ``verbose`` > 0: one line per epoch through ``on_progress`` (``*`` marks a new best validation
    loss, which early stopping keeps); 0: none.

    Returns:
        The :class:`RunInfo` of the written run (``metrics`` filled).
    """
    say = on_progress or log.info
    if cfg.streaming is not None:  # a streaming model trains on whole-recording sequences
        from har_edge.models.stream_model import train_stream_run

        return train_stream_run(cfg, data_root, out_dir, verbose=verbose, on_progress=on_progress)
    tf = import_tensorflow()
    keras = import_keras()
    seed_everything(cfg.train.seed)
    t0 = time.monotonic()
    source = fine_tuning.load_source(cfg.train.init_from) if cfg.train.init_from else None
    if source is not None:  # fine-tuning keeps the source's model, preprocessing, channels, rate, window
        cfg = fine_tuning.resolve_config(cfg, source)
    splits = splits or prepare_windows(cfg, data_root)
    if source is not None:
        splits = fine_tuning.align_labels(splits, source.info.label_names)
    cfg = pin_labels(cfg, splits.train.label_names)  # recordings: evaluate and export read the labels in this order
    train, val, test = splits.train, splits.validation, splits.test
    if source is not None and cfg.train.replay_source_windows:
        train = fine_tuning.with_replay(train, source, Path(data_root), cfg.train.replay_source_windows, seed=cfg.train.seed)
    if splits.summary:
        say(splits.summary)
    say(f"data: train {len(train)} / validation {len(val)} / test {len(test)} windows, "
        f"{train.window_samples} samples × {len(train.channel_names)} channels ({time.monotonic() - t0:.1f} s)")
    norm = source.info.normalisation if source is not None else fit_standardiser(train.X, channel_names=train.channel_names)
    Xtr, Xva, Xte = (norm.transform(w.X) for w in (train, val, test))
    n_classes = len(train.label_names)
    provenance: dict[str, Any] = {}
    if source is not None:
        model, provenance = fine_tuning.initial_model(source, cfg, train.label_names, seed=cfg.train.seed)
        if cfg.train.replay_source_windows:
            provenance["replayed_source_windows"] = len(train) - len(splits.train)
        say(f"fine-tuning {source.info.run_dir}: head {provenance['head']}, frozen {provenance['frozen_layers'] or 'nothing'}")
    else:
        model = build_classifier(cfg.model, window_samples=train.window_samples, n_channels=Xtr.shape[2], n_classes=n_classes, seed=cfg.train.seed)
    say(f"model: {model.count_params()} parameters ({cfg.model.cell}, units {list(cfg.model.units)}, conv {list(cfg.model.conv_filters)})")
    aug = AugmentationSpec(cfg.train.augment_rotation_deg, cfg.train.augment_scale, cfg.train.augment_noise)
    fit_x: Any = Xtr
    fit_kwargs: dict[str, Any] = {"batch_size": cfg.train.batch_size, "shuffle": True}
    if aug.enabled:
        fit_x = _AugmentedBatches(train.X, train.y, train.channel_names, aug, norm, cfg.train.batch_size, cfg.train.seed)
        fit_kwargs = {}
    history, train_seconds = fit_model(
        model, fit_x, None if aug.enabled else train.y, validation_data=(Xva, val.y) if len(val) else None,
        train=cfg.train,
        loss=keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"], verbose=verbose, fit_kwargs=fit_kwargs,
        say=say,
    )
    if source is not None and cfg.train.keep_source_choices:
        if not len(val):
            raise ConfigError(f"{cfg.name}: train.keep_source_choices are judged on the validation split, which is empty")
        keep, scores = fine_tuning.blend_best(model, source, train.label_names, cfg.train.keep_source_choices,
                                              lambda: float(np.mean(predict_probabilities(model, Xva).argmax(axis=1) == val.y)))
        provenance.update(keep_source=keep, keep_source_validation_accuracy=scores)
        say(f"keep_source {keep:g} (validation accuracy by keep_source: {scores})")
    elif source is not None:
        fine_tuning.blend_with_source(model, source, train.label_names, cfg.train.keep_source)
    val_metrics = (evaluate_windows(predict_probabilities(model, Xva), val.y, train.label_names) if len(val)
                   else {"accuracy": None})
    test_probs = predict_probabilities(model, Xte)
    test_metrics = evaluate_windows(test_probs, test.y, train.label_names)
    epochs_run = len(history.history["loss"])
    metrics = {
        "test_accuracy": test_metrics["accuracy"],
        "test_macro_f1": test_metrics["macro_f1"],
        "validation_accuracy": val_metrics["accuracy"],
        "train_seconds": round(train_seconds, 2),
        "epochs_run": epochs_run,
        "parameters": int(model.count_params()),
        "test_subjects": sorted(set(int(s) for s in test.subject)),
        "validation_subjects": sorted(set(int(s) for s in val.subject)),
        "n_train": len(train), "n_validation": len(val), "n_test": len(test),
        "test": test_metrics,
        "versions": {"tensorflow": tf.__version__, "tf_keras": keras.__version__, "numpy": np.__version__},
        **({"fine_tuned_from": provenance} if provenance else {}),
        **({"split": splits.summary} if splits.summary else {}),
    }
    info = RunInfo(
        run_dir=Path(out_dir), config=cfg, label_names=train.label_names, channel_names=train.channel_names,
        units=train.units, sample_rate_hz=train.sample_rate_hz, window_samples=train.window_samples,
        hop_samples=cfg.data.hop_samples, preprocessing=splits.preprocessing, normalisation=norm, metrics=metrics,
        data_root=Path(data_root),
    )
    _write_run(info, model, history.history)
    say(f"test ({len(test)} windows, held-out subjects): accuracy {metrics['test_accuracy']:.4f}, "
        f"macro-F1 {metrics['test_macro_f1']:.4f}; trained {epochs_run} epochs in {train_seconds:.0f} s")
    return info


def _write_run(info: RunInfo, model: Any, history: dict[str, list[float]]) -> None:
    """Write into a temporary directory, then rename over ``info.run_dir`` (no half-written run)."""

    def write(tmp: Path) -> None:
        model.save(tmp / "model.keras")
        write_json(tmp / "config.json", info.config.to_dict())
        write_json(tmp / "run.json", info.to_run_json())
        write_json(tmp / "normalisation.json", info.normalisation.to_dict())
        write_json(tmp / "metrics.json", info.metrics)
        write_json(tmp / "history.json", {k: [float(v) for v in vs] for k, vs in history.items()})
        cm = info.metrics["test"]["confusion_matrix"]
        plot_confusion_matrix(cm, info.label_names, tmp / "confusion_matrix.png",
                              title=f"{info.config.name}: test accuracy {info.metrics['test_accuracy']:.3f}")

    write_run_atomically(info.run_dir, write)
