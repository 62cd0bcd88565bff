"""Frozen configuration dataclasses and the strict TOML reader for training configs.

A training config (``training/configs/*.toml``) has the tables ``[data]``, ``[preprocessing]``
(raw-stream data sets only), ``[model]`` and ``[train]``, optionally ``[streaming]`` (a streaming
model) and ``[smoothing]`` (the device smoothing the exported bundle carries, keys of
``har_edge.runtime.smoothing.SmoothingConfig``, checked by ``har-edge train``); unknown keys are errors.
Relative paths in a config file (``[data] path``, ``[train] init_from``) are relative to the file's folder.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from har_edge.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["DataConfig", "PreprocessingConfig", "ModelConfig", "TrainConfig", "StreamingConfig", "RunConfig", "load_run_config",
           "read_toml"]


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "uci_har"  # uci_har | hapt_raw | wisdm | recordings
    channels: tuple[str, ...] = ()  # empty = all channels the dataset (or preprocessing) gives
    sample_rate_hz: float = 50.0
    window_samples: int = 128
    hop_samples: int = 64
    windowing: str = "per_segment"  # per_segment: windows inside each labelled run | continuous: from sample 0
    label_policy: str = "pure"  # continuous windowing: "pure" (every sample) or "majority" (> 50 %) labels
    test_subjects: tuple[int, ...] = (2, 4, 9, 10, 12, 13, 18, 20, 24)
    validation_subjects: tuple[int, ...] = (1, 11, 21, 30)
    max_train_windows: int | None = None  # for smoke tests: a seeded stratified slice
    max_test_windows: int | None = None
    # dataset = "recordings" (a folder written by `har-edge record`; see har_edge.data.recordings)
    path: str = ""  # the folder of recordings (CSV + JSON sidecar each)
    split_by: str = "person"  # person | session | time (blocks of split_block_s inside each recording)
    split_block_s: float = 10.0
    test_groups: tuple[str, ...] = ()  # persons / sessions held out for test (empty: sidecar split marks, else automatic)
    validation_groups: tuple[str, ...] = ()  # persons / sessions for early stopping (empty: automatic)
    validation_fraction: float = 0.2  # automatic choice: share of groups per label held out for validation; 0 = none
    labels: tuple[str, ...] = ()  # label set and order (empty: every label found); other labels are left out
    train_hop_samples: int | None = None  # hop of the training windows only (denser from little data); default hop_samples


@dataclass(frozen=True)
class PreprocessingConfig:
    output_channels: tuple[str, ...] = ()
    gravity_cutoff_hz: float = 0.3
    gravity_order: int = 3
    noise_cutoff_hz: float | None = 20.0
    noise_order: int = 3


@dataclass(frozen=True)
class ModelConfig:
    cell: str = "lstm"  # lstm | simple_rnn
    units: tuple[int, ...] = (64,)
    dropout: float = 0.2
    conv_filters: tuple[int, ...] = ()
    conv_kernel: int = 5
    conv_pool: int = 2
    dense_units: int = 0


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 60
    batch_size: int = 64
    learning_rate: float = 2e-3
    patience: int = 10
    seed: int = 42
    max_minutes: float = 9.0
    augment_rotation_deg: float = 0.0
    augment_scale: float = 0.0
    augment_noise: float = 0.0
    init_from: str = ""  # fine-tune: a run directory whose model, preprocessing, channels and normalisation are kept
    freeze: tuple[str, ...] = ()  # layer names (e.g. "conv0", "lstm0") kept fixed while fine-tuning
    keep_source: float = 0.0  # fine-tuning: final weights = keep_source × source + (1 − keep_source) × fine-tuned
    keep_source_choices: tuple[float, ...] = ()  # instead: each is tried, the best on the validation split kept (ties: the first)
    clip_norm: float = 0.0  # clip the global gradient norm to this (0: off): no single batch throws the weights far
    average_weights: float = 0.0  # momentum of a moving average of the weights after each batch (0: off); validation and the result use it
    replay_source_windows: int = 0  # fine-tuning: this many of the source run's own training windows (class-stratified) train beside the new data


@dataclass(frozen=True)
class StreamingConfig:
    """``[streaming]``: a streaming model (``har_edge.models.stream_model``) instead of a window classifier.

    Trained on crops of ``sequence_samples`` of whole recordings with a label per LSTM step (causal
    convolutions, the LSTM returns every step); on the device it consumes ``hop_samples`` new samples per
    invoke and carries its LSTM state from invoke to invoke. ``transition_classes``: the HAPT postural
    transitions become ``one`` class named ``transition_label``, or ``each`` keeps its own class
    (``STAND_TO_SIT`` …), or ``none`` leaves them unlabelled; transition classes are shown as ``uncertain``. The first
    ``warmup_samples`` of each crop carry no loss (on the device the state is always warm).
    ``crops_per_epoch`` random crops make one epoch.
    """

    hop_samples: int = 16
    sequence_samples: int = 2048
    transition_label: str = "TRANSITION"
    transition_classes: str = "one"
    warmup_samples: int = 128
    crops_per_epoch: int = 400


@dataclass(frozen=True)
class RunConfig:
    name: str = "run"
    data: DataConfig = field(default_factory=DataConfig)
    preprocessing: PreprocessingConfig | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    streaming: StreamingConfig | None = None
    smoothing: dict[str, Any] | None = None  # the device smoothing the bundle carries (har_edge.runtime.smoothing.SmoothingConfig)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for optional in ("preprocessing", "streaming", "smoothing"):
            if d[optional] is None:
                del d[optional]
        return _plain(d)

    def replace(self, **sections: Any) -> "RunConfig":
        return dataclasses.replace(self, **sections)


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items() if v is not None}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def _build(cls: type, table: dict[str, Any], where: str) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table, got {type(table).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed keys are {sorted(fields)}")
    kwargs = {}
    defaults = cls()
    for key, value in table.items():
        default = getattr(defaults, key)
        if isinstance(default, tuple):
            if not isinstance(value, list):
                raise ConfigError(f"{where}.{key}: expected a list, got {value!r}")
            value = tuple(value)
        elif isinstance(default, bool) or default is None:
            pass
        elif isinstance(default, (int, float)) and not isinstance(value, (int, float)):
            raise ConfigError(f"{where}.{key}: expected a number, got {value!r}")
        elif isinstance(default, float):
            value = float(value)
        elif isinstance(default, str) and not isinstance(value, str):
            raise ConfigError(f"{where}.{key}: expected a string, got {value!r}")
        kwargs[key] = value
    return cls(**kwargs)


def _table(value: Any, where: str) -> dict[str, Any]:
    """A table passed on as it is (its keys are checked where it is used)."""
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a table, got {type(value).__name__}")
    return dict(value)


def run_config_from_dict(d: dict[str, Any], *, where: str = "config") -> RunConfig:
    """Build and validate a :class:`RunConfig` from a parsed TOML/JSON dict."""
    allowed = {"name", "data", "preprocessing", "model", "train", "streaming", "smoothing"}
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown table(s) {unknown}; allowed are {sorted(allowed)}")
    cfg = RunConfig(
        name=str(d.get("name", "run")),
        data=_build(DataConfig, d.get("data", {}), f"{where} [data]"),
        preprocessing=_build(PreprocessingConfig, d["preprocessing"], f"{where} [preprocessing]") if "preprocessing" in d else None,
        model=_build(ModelConfig, d.get("model", {}), f"{where} [model]"),
        train=_build(TrainConfig, d.get("train", {}), f"{where} [train]"),
        streaming=_build(StreamingConfig, d["streaming"], f"{where} [streaming]") if "streaming" in d else None,
        smoothing=_table(d["smoothing"], f"{where} [smoothing]") if "smoothing" in d else None,
    )
    _validate(cfg, where)
    return cfg


DATASETS = ("uci_har", "hapt_raw", "wisdm", "recordings")


def _validate(cfg: RunConfig, where: str) -> None:
    if cfg.data.dataset not in DATASETS:
        raise ConfigError(f"{where}: data.dataset={cfg.data.dataset!r}; expected 'uci_har', 'hapt_raw', 'wisdm' or 'recordings'")
    _validate_recordings(cfg, where)
    if cfg.data.windowing not in ("per_segment", "continuous"):
        raise ConfigError(f"{where}: data.windowing={cfg.data.windowing!r}; expected 'per_segment' or 'continuous'")
    if cfg.data.label_policy not in ("pure", "majority"):
        raise ConfigError(f"{where}: data.label_policy={cfg.data.label_policy!r}; expected 'pure' or 'majority'")
    if cfg.data.windowing == "per_segment" and cfg.data.label_policy != "pure":
        raise ConfigError(f"{where}: data.label_policy={cfg.data.label_policy!r} needs data.windowing = \"continuous\" "
                          "(per-segment windows lie inside one labelled run, so they are always pure)")
    if cfg.model.cell not in ("lstm", "simple_rnn"):
        raise ConfigError(f"{where}: model.cell={cfg.model.cell!r}; expected 'lstm' or 'simple_rnn'")
    if not cfg.model.units or any(u < 1 for u in cfg.model.units):
        raise ConfigError(f"{where}: model.units={list(cfg.model.units)}; expected a list of positive integers")
    if not 0 <= cfg.model.dropout < 1:
        raise ConfigError(f"{where}: model.dropout={cfg.model.dropout}; expected 0 <= dropout < 1")
    if cfg.data.window_samples < 2 or cfg.data.hop_samples < 1:
        raise ConfigError(f"{where}: window_samples/hop_samples must be positive (got {cfg.data.window_samples}/{cfg.data.hop_samples})")
    if set(cfg.data.test_subjects) & set(cfg.data.validation_subjects):
        raise ConfigError(f"{where}: validation_subjects overlap test_subjects")
    if not cfg.data.validation_subjects and cfg.streaming is None and cfg.data.dataset != "recordings":
        raise ConfigError(f"{where}: data.validation_subjects is empty; only a streaming model ([streaming]) trains "
                          "without validation subjects (early stopping then watches the training loss)")
    if cfg.data.dataset == "hapt_raw" and cfg.preprocessing is None:
        raise ConfigError(f"{where}: dataset 'hapt_raw' needs a [preprocessing] table (the causal device preprocessing)")
    if cfg.streaming is not None:
        _validate_streaming(cfg, where)


def _validate_streaming(cfg: RunConfig, where: str) -> None:
    s, m = cfg.streaming, cfg.model
    if s is None:
        return
    if cfg.data.dataset != "hapt_raw":
        raise ConfigError(f"{where}: [streaming] needs whole labelled recordings (data.dataset = 'hapt_raw')")
    if len(m.units) != 1 or m.cell != "lstm" or m.dense_units:
        raise ConfigError(f"{where}: [streaming] supports one LSTM layer and no dense_units (model.units={list(m.units)}, "
                          f"cell={m.cell!r}, dense_units={m.dense_units})")
    pool = max(1, m.conv_pool) ** len(m.conv_filters)
    if m.conv_filters and (m.conv_kernel - 1) % max(1, m.conv_pool):
        raise ConfigError(f"{where}: [streaming] needs (conv_kernel - 1) divisible by conv_pool so pooling stays aligned "
                          f"from invoke to invoke (got kernel {m.conv_kernel}, pool {m.conv_pool})")
    for key in ("hop_samples", "sequence_samples"):
        if getattr(s, key) < pool or getattr(s, key) % pool:
            raise ConfigError(f"{where}: streaming.{key}={getattr(s, key)}; expected a positive multiple of the pooling {pool}")
    if s.transition_classes not in ("one", "each", "none") or (s.transition_classes == "one" and not s.transition_label):
        raise ConfigError(f"{where}: streaming.transition_classes={s.transition_classes!r} (transition_label="
                          f"{s.transition_label!r}); expected 'one' (with a transition_label), 'each' or 'none'")
    if not 0 <= s.warmup_samples < s.sequence_samples or s.crops_per_epoch < 1:
        raise ConfigError(f"{where}: streaming.warmup_samples={s.warmup_samples} must be below sequence_samples="
                          f"{s.sequence_samples}, crops_per_epoch={s.crops_per_epoch} >= 1")


def _validate_recordings(cfg: RunConfig, where: str) -> None:
    d = cfg.data
    if d.dataset == "recordings" and not d.path:
        raise ConfigError(f"{where}: dataset 'recordings' needs data.path = the folder `har-edge record --out` wrote")
    if d.dataset != "recordings" and (d.path or d.test_groups or d.validation_groups or d.labels or d.train_hop_samples):
        raise ConfigError(f"{where}: data.path, test_groups, validation_groups, labels and train_hop_samples apply to "
                          "dataset = \"recordings\" only")
    if d.train_hop_samples is not None and (isinstance(d.train_hop_samples, bool) or not isinstance(d.train_hop_samples, int)
                                            or d.train_hop_samples < 1):
        raise ConfigError(f"{where}: data.train_hop_samples={d.train_hop_samples!r}; expected a positive integer")
    if d.split_by not in ("person", "session", "time"):
        raise ConfigError(f"{where}: data.split_by={d.split_by!r}; expected 'person', 'session' or 'time'")
    if not d.split_block_s > 0:
        raise ConfigError(f"{where}: data.split_block_s={d.split_block_s}; expected a positive number of seconds")
    if d.split_by == "time" and (d.test_groups or d.validation_groups):
        raise ConfigError(f"{where}: split_by = \"time\" picks its blocks itself; test_groups/validation_groups name "
                          "persons or sessions (mark test recordings with `har-edge record --split test` instead)")
    if set(d.test_groups) & set(d.validation_groups):
        raise ConfigError(f"{where}: data.validation_groups overlap data.test_groups")
    if isinstance(d.validation_fraction, bool) or not isinstance(d.validation_fraction, (int, float)) \
            or not 0 <= d.validation_fraction < 1:
        raise ConfigError(f"{where}: data.validation_fraction={d.validation_fraction!r}; expected a number, "
                          "0 <= fraction < 1 (0: no validation split; early stopping then watches the training loss)")
    if d.dataset != "recordings" and d.validation_fraction != DataConfig.validation_fraction:
        raise ConfigError(f"{where}: data.validation_fraction applies to dataset = \"recordings\" only "
                          "(the public data sets name validation_subjects)")
    if cfg.train.keep_source_choices and d.validation_fraction == 0:
        raise ConfigError(f"{where}: train.keep_source_choices are judged on the validation split and "
                          "data.validation_fraction = 0 leaves none")
    if d.validation_groups and d.validation_fraction == 0:
        raise ConfigError(f"{where}: data.validation_groups names groups for validation and data.validation_fraction = 0 "
                          "asks for none; use one")
    if (cfg.train.freeze or cfg.train.keep_source or cfg.train.keep_source_choices or cfg.train.replay_source_windows) \
            and not cfg.train.init_from:
        raise ConfigError(f"{where}: train.freeze, keep_source, keep_source_choices and replay_source_windows need "
                          "train.init_from (the run fine-tuning starts from)")
    r = cfg.train.replay_source_windows
    if isinstance(r, bool) or not isinstance(r, int) or r < 0:
        raise ConfigError(f"{where}: train.replay_source_windows={r!r}; expected a whole number of windows >= 0 (0: no replay)")
    if cfg.train.keep_source_choices and (cfg.train.keep_source or not all(
            isinstance(k, (int, float)) and not isinstance(k, bool) and 0 <= k < 1 for k in cfg.train.keep_source_choices)):
        raise ConfigError(f"{where}: train.keep_source_choices={list(cfg.train.keep_source_choices)}; expected numbers "
                          "0 <= k < 1, and no keep_source beside them")
    if not cfg.train.clip_norm >= 0:
        raise ConfigError(f"{where}: train.clip_norm={cfg.train.clip_norm}; expected a gradient norm >= 0 (0: no clipping)")
    if not 0 <= cfg.train.average_weights < 1:
        raise ConfigError(f"{where}: train.average_weights={cfg.train.average_weights}; expected 0 <= average_weights < 1 (a momentum)")
    if not 0 <= cfg.train.keep_source < 1:
        raise ConfigError(f"{where}: train.keep_source={cfg.train.keep_source}; expected 0 <= keep_source < 1")


# what a fine-tuned run keeps from the run it starts from (a config with init_from must not set them)
KEPT_BY_INIT_FROM = {"data": ("sample_rate_hz", "window_samples", "hop_samples", "channels"), "tables": ("model", "preprocessing")}


def _check_init_from_keys(d: dict[str, Any], where: str) -> None:
    train = d.get("train", {})
    if not isinstance(train, dict) or not train.get("init_from"):
        return
    data = d.get("data", {}) if isinstance(d.get("data", {}), dict) else {}
    clash = [f"[data] {k}" for k in KEPT_BY_INIT_FROM["data"] if k in data]
    clash += [f"[{t}]" for t in KEPT_BY_INIT_FROM["tables"] if t in d]
    if clash:
        raise ConfigError(f"{where}: [train] init_from keeps the source run's model, preprocessing, rate, window, hop "
                          f"and channels; remove {', '.join(clash)} from this config (train_hop_samples may be set)")


def _resolve_paths(d: dict[str, Any], base: Path) -> dict[str, Any]:
    """Make ``[data] path`` and ``[train] init_from`` absolute, relative to ``base`` (the config file's folder)."""
    out = dict(d)
    for table, key in (("data", "path"), ("train", "init_from")):
        section = out.get(table)
        if isinstance(section, dict) and isinstance(section.get(key), str) and section[key]:
            p = Path(section[key]).expanduser()
            out[table] = dict(section, **{key: str(p if p.is_absolute() else (base / p).resolve())})
    return out


def read_toml(path: str | Path, *, what: str = "config file") -> dict[str, Any]:
    """Parse a TOML file a person edits; a missing file or bad TOML raises :class:`ConfigError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: {what} not found")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from exc


def load_run_config(path: str | Path, *, overrides: dict[str, dict[str, Any]] | None = None) -> RunConfig:
    """Read a training config TOML file strictly; relative paths in it are taken from its folder.

    ``overrides`` (from command-line flags) replace keys of its tables, e.g. ``{"data": {"path": "/abs/dir"}}``.
    """
    d = read_toml(path)
    for table, values in (overrides or {}).items():
        section = d.get(table, {})
        d[table] = dict(section if isinstance(section, dict) else {}, **values)
    _check_init_from_keys(d, str(path))
    return run_config_from_dict(_resolve_paths(d, Path(path).resolve().parent), where=str(path))
