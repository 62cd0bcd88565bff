"""Turn a :class:`~har_edge.config.DataConfig` into subject-split windows (train / validation / test).

The test split (held-out subjects) is only evaluated once, at the end of training; model
selection uses the validation subjects, which are a subset of the training subjects. A folder of
recordings (``dataset = "recordings"``) is split by person, session or time block instead
(:mod:`~har_edge.data.recording_split`), after the same resampling, preprocessing and windowing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from har_edge.config import DataConfig, PreprocessingConfig, RunConfig
from har_edge.data.loaders import UCI_LABELS, load_hapt_raw, load_uci_har_npz, load_wisdm_watch
from har_edge.data.preprocessing import PreprocessingSpec, preprocess_recording
from har_edge.data.recording import Recording, WindowSet
from har_edge.data.recording_split import GroupedWindows, cut_blocks, split_groups
from har_edge.data.recordings import find_recordings, label_set, load_recorded_files, recorded_parts
from har_edge.data.resampling import resample_recording
from har_edge.data.sidecar import read_sidecar, sidecar_path
from har_edge.data.sampling import stratified_indices
from har_edge.data.units import convert_units
from har_edge.data.windowing import windows_from_recordings
from har_edge.errors import DataError

__all__ = ["SplitWindows", "preprocessing_spec_for", "prepare_windows", "recording_windows", "pin_labels",
           "split_by_subject", "stratified_slice", "concat_windows"]


@dataclass(frozen=True)
class SplitWindows:
    train: WindowSet
    validation: WindowSet
    test: WindowSet
    preprocessing: PreprocessingSpec | None  # the causal spec the device must repeat (raw-stream data sets)
    summary: str = ""  # how the split was made, when the data set chose it (recordings)


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
    if d.dataset == "recordings":
        return _split_recordings(cfg)
    if d.dataset == "uci_har":
        windows = concat_windows(load_uci_har_npz(data_root, "train"), load_uci_har_npz(data_root, "test"))
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


def _raw_channels(cfg: RunConfig, spec: PreprocessingSpec | None) -> tuple[str, ...]:
    """The raw channels to read from recordings: the preprocessing's inputs, else ``data.channels``, else those
    every sidecar declares."""
    if spec is not None:
        return spec.used_inputs
    if cfg.data.channels:
        return cfg.data.channels
    infos = [read_sidecar(sidecar_path(p)) for p in find_recordings(cfg.data.path)]
    return tuple(c for c in infos[0].channels if all(c in i.channels for i in infos))


def recording_windows(cfg: RunConfig, *, label_names: tuple[str, ...] | None = None, only_split: str | None = None,
                      split_by: str | None = None, hops: tuple[int, ...] = ()) -> list[GroupedWindows]:
    """Windows of the ``data.path`` recordings through ``cfg``'s resampling, preprocessing and windowing.

    One :class:`GroupedWindows` per hop of ``hops`` (default ``data.hop_samples``). ``label_names`` (a trained
    run's labels): every label must be one of them; else the labels are ``data.labels`` or all found.
    ``only_split``: only recordings whose sidecar split is that.
    """
    d = cfg.data
    spec = preprocessing_spec_for(cfg.preprocessing, d) if cfg.preprocessing is not None else None
    files = load_recorded_files(d.path, _raw_channels(cfg, spec), target_rate_hz=d.sample_rate_hz, only_split=only_split)
    names = label_names if label_names is not None else label_set(files, d.labels)
    persons = tuple(sorted({f.info.person for f in files}))
    by = split_by or d.split_by
    block = int(round(d.split_block_s * d.sample_rate_hz))
    if by == "time" and block < 2 * d.window_samples:
        raise DataError(f"data.split_block_s = {d.split_block_s} s holds fewer than two windows of {d.window_samples} "
                        f"samples at {d.sample_rate_hz:g} Hz; make it longer")
    pieces, groups, marked, kept = [], [], [], []
    for f in files:
        parts = recorded_parts(f, names, target_rate_hz=d.sample_rate_hz, subject=persons.index(f.info.person),
                               strict_labels=label_names is not None)
        for p_i, part in enumerate(parts):
            rec = preprocess_recording(part, spec) if spec is not None else part
            blocks = cut_blocks(rec, block) if by == "time" and f.info.split != "test" else [rec]  # test stays whole
            for b_i, piece in enumerate(blocks):
                pieces.append(piece)
                groups.append({"person": f.info.person, "session": f.info.session}.get(by, f"{f.name}:{p_i}:{b_i}"))
                marked.append(f.info.split == "test")
                kept.append(f.info.split == "train")
    out = []
    for hop in hops or (d.hop_samples,):
        windows = windows_from_recordings(pieces, d.window_samples, hop, mode=d.windowing,  # type: ignore[arg-type]
                                          policy=d.label_policy)  # type: ignore[arg-type]
        if d.channels and spec is not None:
            windows = windows.select_channels(d.channels)
        rec_idx = windows.extra["recording"]
        out.append(GroupedWindows(windows, np.asarray(groups)[rec_idx], np.asarray(marked, dtype=bool)[rec_idx], by, persons,
                                  np.asarray(kept, dtype=bool)[rec_idx]))
    return out


def pin_labels(cfg: RunConfig, label_names: tuple[str, ...]) -> RunConfig:
    """A recordings config with ``data.labels`` fixed to the trained label order, so that evaluate and export
    read the folder with the labels the model outputs (even after recordings with other labels are added)."""
    if cfg.data.dataset != "recordings" or cfg.data.labels == label_names:
        return cfg
    return cfg.replace(data=dataclasses.replace(cfg.data, labels=label_names))


def _split_recordings(cfg: RunConfig) -> SplitWindows:
    d, seed = cfg.data, cfg.train.seed
    train_hop = d.train_hop_samples or d.hop_samples
    gw, gw_train = recording_windows(cfg, hops=(d.hop_samples, train_hop))
    train, val, test, summary = split_groups(gw, test_groups=d.test_groups, validation_groups=d.validation_groups, seed=seed,
                                               validation_fraction=d.validation_fraction)
    if train_hop != d.hop_samples:  # the same groups, cut more densely for training
        train = np.isin(gw_train.group, sorted(set(gw.group[train].tolist()))) & ~gw_train.marked_test
        summary += f"; training windows every {train_hop} samples: {int(train.sum())}"
    spec = preprocessing_spec_for(cfg.preprocessing, d) if cfg.preprocessing is not None else None
    return SplitWindows(
        train=stratified_slice(gw_train.windows.take(train), d.max_train_windows, seed=seed),
        validation=stratified_slice(gw.windows.take(val), d.max_train_windows and max(1, d.max_train_windows // 4), seed=seed),
        test=stratified_slice(gw.windows.take(test), d.max_test_windows, seed=seed),
        preprocessing=spec,
        summary=f"recordings of {len(gw.persons)} person(s) in {d.path}: {summary}",
    )


def concat_windows(a: WindowSet, b: WindowSet) -> WindowSet:
    """``a``'s windows then ``b``'s (same channels, units and label order)."""
    return WindowSet(
        X=np.concatenate([a.X, b.X]),
        y=np.concatenate([a.y, b.y]),
        subject=np.concatenate([a.subject, b.subject]),
        channel_names=a.channel_names,
        units=a.units,
        label_names=a.label_names,
        sample_rate_hz=a.sample_rate_hz,
    )
