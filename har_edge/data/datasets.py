"""Turn a :class:`~har_edge.config.DataConfig` into subject-split windows (train / validation / test).

The test split (held-out subjects) is only evaluated once, at the end of training; model
selection uses the validation subjects, which are a subset of the training subjects.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from har_edge.config import DataConfig, PreprocessingConfig, RunConfig
from har_edge.data.loaders import UCI_LABELS, load_hapt_raw, load_uci_har_npz, load_wisdm_watch
from har_edge.data.preprocessing import PreprocessingSpec, preprocess_recording
from har_edge.data.recording import Recording, WindowSet
from har_edge.data.resampling import resample_recording
from har_edge.data.sampling import stratified_indices
from har_edge.data.units import convert_units
from har_edge.data.windowing import windows_from_recordings
from har_edge.errors import DataError

__all__ = ["SplitWindows", "preprocessing_spec_for", "prepare_windows", "split_by_subject", "stratified_slice"]


@dataclass(frozen=True)
class SplitWindows:
    train: WindowSet
    validation: WindowSet
    test: WindowSet
    preprocessing: PreprocessingSpec | None  # the causal spec the device must repeat (raw-stream data sets)


def split_by_subject(windows: WindowSet, test_subjects: tuple[int, ...], validation_subjects: tuple[int, ...]) -> tuple[WindowSet, WindowSet, WindowSet]:
    """Split into train / validation / test by subject id; raises if any split is empty."""
    test = windows.for_subjects(test_subjects)
    rest = windows.for_subjects(test_subjects, exclude=True)
    val = rest.for_subjects(validation_subjects)
    train = rest.for_subjects(validation_subjects, exclude=True)
    for name, ws in (("train", train), ("validation", val), ("test", test)):
        if len(ws) == 0:
            raise DataError(f"the {name} split is empty; subjects present: {sorted(set(windows.subject.tolist()))}")
    return train, val, test


def stratified_slice(windows: WindowSet, max_windows: int | None, *, seed: int) -> WindowSet:
    """A seeded, class-stratified subset of at most ``max_windows`` windows (all if None)."""
    if max_windows is None or len(windows) <= max_windows:
        return windows
    return windows.take(stratified_indices(windows.y, max_windows, seed=seed))


def preprocessing_spec_for(pre: PreprocessingConfig, data: DataConfig) -> PreprocessingSpec:
    return PreprocessingSpec(
        sample_rate_hz=data.sample_rate_hz,
        output_channels=pre.output_channels or PreprocessingSpec(data.sample_rate_hz).output_channels,
        gravity_cutoff_hz=pre.gravity_cutoff_hz,
        gravity_order=pre.gravity_order,
        noise_cutoff_hz=pre.noise_cutoff_hz,
        noise_order=pre.noise_order,
    )


def _basic_activities(recs: list[Recording]) -> list[Recording]:
    """HAPT: keep the six UCI activities (labels 0..5); transitions become unlabelled."""
    out = []
    for r in recs:
        labels = r.labels.copy()  # type: ignore[union-attr]
        labels[labels >= len(UCI_LABELS)] = -1
        out.append(Recording(r.signals, r.channel_names, r.units, r.sample_rate_hz, labels, UCI_LABELS, r.subject, r.name))
    return out


def load_recordings(cfg: DataConfig, data_root: Path, *, transitions: bool = False) -> list[Recording]:
    """The raw labelled recordings of a stream data set, at ``cfg.sample_rate_hz``, units g / rad/s.

    HAPT: labels are the six basic activities (postural transitions unlabelled), or with
    ``transitions=True`` all twelve labels of the data set (``STAND_TO_SIT`` …).
    """
    if cfg.dataset == "hapt_raw":
        recs = load_hapt_raw(data_root)
        recs = recs if transitions else _basic_activities(recs)
    elif cfg.dataset == "wisdm":
        recs = [
            Recording(convert_units(r.signals, r.units, ("g",) * 3), r.channel_names, ("g",) * 3, r.sample_rate_hz,
                      r.labels, r.label_names, r.subject, r.name)
            for r in load_wisdm_watch(data_root)
        ]
    else:
        raise DataError(f"dataset {cfg.dataset!r} has no raw recordings")
    return [resample_recording(r, cfg.sample_rate_hz) for r in recs]


def prepare_windows(cfg: RunConfig, data_root: Path) -> SplitWindows:
    """Load, preprocess, window, select channels and split by subject, as ``cfg`` says."""
    d = cfg.data
    spec = None
    if d.dataset == "uci_har":
        windows = _concat(load_uci_har_npz(data_root, "train"), load_uci_har_npz(data_root, "test"))
        if d.window_samples != windows.window_samples:
            raise DataError(f"uci_har windows have {windows.window_samples} samples; config says {d.window_samples}")
    else:
        recs = load_recordings(d, data_root)
        if cfg.preprocessing is not None:
            spec = preprocessing_spec_for(cfg.preprocessing, d)
            recs = [preprocess_recording(r, spec) for r in recs]
        windows = windows_from_recordings(recs, d.window_samples, d.hop_samples, mode=d.windowing,  # type: ignore[arg-type]
                                          policy=d.label_policy)  # type: ignore[arg-type]
    if d.channels:
        windows = windows.select_channels(d.channels)
    if spec is None and d.dataset == "uci_har":
        # The UCI windows were filtered offline (zero-phase); the device repeats the same recipe
        # causally from raw acc (g) + gyro (rad/s). This is the one known train/serve difference.
        spec = PreprocessingSpec(sample_rate_hz=windows.sample_rate_hz, output_channels=windows.channel_names)
    train, val, test = split_by_subject(windows, d.test_subjects, d.validation_subjects)
    seed = cfg.train.seed
    return SplitWindows(
        train=stratified_slice(train, d.max_train_windows, seed=seed),
        validation=stratified_slice(val, d.max_train_windows and max(1, d.max_train_windows // 4), seed=seed),
        test=stratified_slice(test, d.max_test_windows, seed=seed),
        preprocessing=spec,
    )


def _concat(a: WindowSet, b: WindowSet) -> WindowSet:
    return WindowSet(
        X=np.concatenate([a.X, b.X]),
        y=np.concatenate([a.y, b.y]),
        subject=np.concatenate([a.subject, b.subject]),
        channel_names=a.channel_names,
        units=a.units,
        label_names=a.label_names,
        sample_rate_hz=a.sample_rate_hz,
    )
