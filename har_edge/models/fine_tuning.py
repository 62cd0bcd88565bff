"""Fine-tuning: start training from a trained run (``[train] init_from = RUN_DIR``).

The new run keeps the source run's **model architecture, causal preprocessing, input channels, sample
rate, window, hop and normalisation** (so the device sees exactly the inputs the weights were trained for);
only the data (e.g. a folder of your own recordings) and the ``[train]`` settings are new.

Labels: when the new data has the source's label set, the classifier head is kept (labels in the source's
order). A different label set gets a new head: labels the source knew start from their old head weights,
new labels from fresh ones. ``[train] freeze = ["conv0", "lstm0"]`` keeps those layers' weights fixed
(layer names as :mod:`~har_edge.models.builders` gives them); ``keep_source = 0.5`` blends the fine-tuned
weights with the source's after training (:func:`blend_with_source`); ``keep_source_choices = [0.5, 0.25, 0.0]``
lets the validation split pick the blend (:func:`blend_best`); ``replay_source_windows = N`` trains on N of the
source run's own training windows beside the new data (:func:`with_replay`). The result is an ordinary run directory:
``har-edge export`` and the device runtime treat it like any other.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from har_edge.config import PreprocessingConfig, RunConfig
from har_edge.data.datasets import SplitWindows, concat_windows, prepare_windows, stratified_slice
from har_edge.data.recording import WindowSet
from har_edge.errors import ConfigError, ModelError
from har_edge.models.builders import build_classifier
from har_edge.models.run_dir import RunInfo, load_run_info

__all__ = ["SourceRun", "load_source", "resolve_config", "with_run_pipeline", "align_labels", "initial_model", "freeze_layers",
           "blend_with_source", "with_replay"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceRun:
    """The run fine-tuning starts from: its metadata and its tf_keras model."""

    info: RunInfo
    model: Any


def load_source(run_dir: str) -> SourceRun:
    """Load ``run_dir`` (a :class:`ModelError` names what is missing)."""
    from har_edge.models.training import load_keras_model

    info = load_run_info(run_dir)
    return SourceRun(info, load_keras_model(info.run_dir))


def resolve_config(cfg: RunConfig, source: SourceRun) -> RunConfig:
    """``cfg`` with the source run's model, preprocessing, channels, rate, window and hop (the rest stays)."""
    return with_run_pipeline(cfg, source.info)


def with_run_pipeline(cfg: RunConfig, info: RunInfo) -> RunConfig:
    """``cfg`` with ``info``'s model, causal preprocessing (also a UCI run's), input channels, rate, window and hop."""
    pre = info.preprocessing
    pre_cfg = None if pre is None else PreprocessingConfig(
        output_channels=pre.output_channels, gravity_cutoff_hz=pre.gravity_cutoff_hz, gravity_order=pre.gravity_order,
        noise_cutoff_hz=pre.noise_cutoff_hz, noise_order=pre.noise_order)
    data = dataclasses.replace(cfg.data, sample_rate_hz=info.sample_rate_hz, window_samples=info.window_samples,
                               hop_samples=info.hop_samples, channels=info.channel_names)
    return cfg.replace(data=data, preprocessing=pre_cfg, model=info.config.model)


def _relabel(ws: WindowSet, order: tuple[str, ...]) -> WindowSet:
    lookup = np.array([order.index(name) for name in ws.label_names], dtype=np.int64)
    return WindowSet(ws.X, lookup[ws.y], ws.subject, ws.channel_names, ws.units, order, ws.sample_rate_hz, ws.extra)


def align_labels(splits: SplitWindows, source_labels: tuple[str, ...]) -> SplitWindows:
    """Relabel so that labels the source knows come first, in its order (then new ones, sorted)."""
    new = splits.train.label_names
    order = tuple(lab for lab in source_labels if lab in new) + tuple(sorted(lab for lab in new if lab not in source_labels))
    if set(new) == set(source_labels):
        order = source_labels
    if order == new:
        return splits
    return dataclasses.replace(splits, train=_relabel(splits.train, order), validation=_relabel(splits.validation, order),
                               test=_relabel(splits.test, order))


def with_replay(train: WindowSet, source: SourceRun, data_root: Path, count: int, *, seed: int) -> WindowSet:
    """``train`` plus a seeded, class-stratified ``count`` of the source run's own training windows (its data
    set through its config: same preprocessing, channels, window), labelled in ``train``'s label order; the
    source's classes the new data lacks are left out. Returns ``(n + ≤count, W, C)`` windows.

    A minute per activity pulls the network towards one person; windows of the people it learned from keep
    what still holds for everyone in the batches.
    """
    src = prepare_windows(source.info.config, data_root).train
    if src.channel_names != train.channel_names or src.units != train.units or src.window_samples != train.window_samples:
        raise ConfigError(f"train.replay_source_windows: {source.info.run_dir}'s windows are {src.window_samples} samples of "
                          f"{list(src.channel_names)} in {list(src.units)}; the new data's are {train.window_samples} "
                          f"of {list(train.channel_names)} in {list(train.units)}")
    lookup = np.array([train.label_names.index(n) if n in train.label_names else -1 for n in src.label_names], np.int64)
    src = src.take(lookup[src.y] >= 0)
    if not len(src):
        raise ConfigError(f"train.replay_source_windows: {source.info.run_dir} has no training windows of "
                          f"{list(train.label_names)}")
    src = WindowSet(src.X, lookup[src.y], src.subject, src.channel_names, src.units, train.label_names, src.sample_rate_hz)
    src = stratified_slice(src, count, seed=seed)
    log.info("replay: %d of %s's training windows beside %d new ones", len(src), source.info.run_dir, len(train))
    return concat_windows(train, src)


def initial_model(source: SourceRun, cfg: RunConfig, label_names: tuple[str, ...], *, seed: int) -> tuple[Any, dict[str, Any]]:
    """The source's network with a head for ``label_names`` and ``cfg.train.freeze`` applied (uncompiled).

    Returns ``(model, provenance)``; provenance goes into the run's metrics.
    """
    info = source.info
    model = build_classifier(cfg.model, window_samples=info.window_samples, n_channels=len(info.channel_names),
                             n_classes=len(label_names), seed=seed)
    src_layers = {layer.name: layer for layer in source.model.layers}
    head = model.layers[-1]
    for layer in model.layers[:-1]:
        if layer.weights:
            src = src_layers.get(layer.name)
            if src is None:
                raise ModelError(f"{info.run_dir}: the source model has no layer {layer.name!r} (layers: {sorted(src_layers)})")
            _copy(layer, src.get_weights(), info)
    w_src, b_src = source.model.layers[-1].get_weights()
    kept = [lab for lab in label_names if lab in info.label_names]
    if tuple(label_names) == info.label_names:
        _copy(head, [w_src, b_src], info)
        head_kind = "kept"
    else:
        w, b = head.get_weights()
        for j, lab in enumerate(label_names):
            if lab in info.label_names:
                i = info.label_names.index(lab)
                w[:, j], b[j] = w_src[:, i], b_src[i]
        head.set_weights([w, b])
        head_kind = f"new ({len(kept)} of {len(label_names)} labels start from the source's head)"
    frozen = freeze_layers(model, cfg.train.freeze)
    log.info("fine-tuning from %s: head %s, frozen %s", info.run_dir, head_kind, frozen or "nothing")
    return model, {"init_from": str(info.run_dir), "source_labels": list(info.label_names), "head": head_kind,
                   "frozen_layers": frozen, "keep_source": cfg.train.keep_source,
                   "source_test_accuracy": info.metrics.get("test_accuracy")}


def blend_with_source(model: Any, source: SourceRun, label_names: tuple[str, ...], keep_source: float) -> None:
    """Weight-space interpolation (WiSE-FT, Wortsman et al., CVPR 2022): every weight becomes
    ``keep_source × source + (1 − keep_source) × fine-tuned``; head columns of labels the source lacks stay fine-tuned.

    It keeps what the source learned from many people while adapting to the new data, and costs nothing at
    run time (the architecture is unchanged).
    """
    if keep_source == 0:
        return
    src_layers = {layer.name: layer for layer in source.model.layers}
    head = model.layers[-1]
    for layer in model.layers[:-1]:
        if layer.weights:
            layer.set_weights([keep_source * s + (1 - keep_source) * f
                               for s, f in zip(src_layers[layer.name].get_weights(), layer.get_weights())])
    (w_src, b_src), (w, b) = source.model.layers[-1].get_weights(), head.get_weights()
    for j, lab in enumerate(label_names):
        if lab in source.info.label_names:
            i = source.info.label_names.index(lab)
            w[:, j] = keep_source * w_src[:, i] + (1 - keep_source) * w[:, j]
            b[j] = keep_source * b_src[i] + (1 - keep_source) * b[j]
    head.set_weights([w, b])


def blend_best(model: Any, source: SourceRun, label_names: tuple[str, ...], keeps: tuple[float, ...],
               score: Callable[[], float]) -> tuple[float, dict[str, float]]:
    """:func:`blend_with_source` with each of ``keeps``; the one ``score()`` rates best (the validation accuracy of
    the blended model) stays in ``model`` (ties: the first). Returns ``(keep, {keep: score})``.

    How much of the source to keep depends on the person: one close to the people the source learned from
    gains from keeping much of it, one far from them from keeping little. Their own validation blocks decide.
    """
    fine = model.get_weights()
    scores: dict[str, float] = {}
    for keep in keeps:
        model.set_weights(fine)
        blend_with_source(model, source, label_names, keep)
        scores[str(keep)] = round(float(score()), 4)
    best = max(keeps, key=lambda k: (scores[str(k)], -keeps.index(k)))
    model.set_weights(fine)
    blend_with_source(model, source, label_names, best)
    return best, scores


def _copy(layer: Any, weights: list[np.ndarray], info: RunInfo) -> None:
    shapes = [tuple(w.shape) for w in layer.get_weights()]
    if shapes != [tuple(w.shape) for w in weights]:
        raise ModelError(f"{info.run_dir}: layer {layer.name!r} has weights {[tuple(w.shape) for w in weights]}, "
                         f"expected {shapes}")
    layer.set_weights(weights)


def freeze_layers(model: Any, names: tuple[str, ...]) -> list[str]:
    """Set ``trainable = False`` on the named layers; unknown names raise :class:`ConfigError` listing the choices."""
    with_weights = [layer.name for layer in model.layers if layer.weights]
    unknown = [n for n in names if n not in with_weights]
    if unknown:
        raise ConfigError(f"[train] freeze names {unknown}; layers with weights are {with_weights}")
    for layer in model.layers:
        if layer.name in names:
            layer.trainable = False
    return [n for n in with_weights if n in names]
