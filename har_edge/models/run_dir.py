"""The run directory written by ``har-edge train`` and read by evaluate and export.

Layout::

    RUN_DIR/
      model.keras            the trained tf_keras model (dynamic batch)
      config.json            the resolved training config
      run.json               labels, channels, units, rate, window, hop, preprocessing, and the data root
                             it was trained on (absolute; evaluate and export default to it)
      normalisation.json     per-channel mean/std fitted on the training subjects only
      metrics.json           test metrics (accuracy, macro-F1, per class, confusion, train_seconds)
      confusion_matrix.png
      history.json           per-epoch loss/accuracy
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from har_edge.config import RunConfig, run_config_from_dict
from har_edge.data.normalisation import Standardiser
from har_edge.data.preprocessing import PreprocessingSpec
from har_edge.errors import ConfigError, DataError, ModelError

__all__ = ["RunInfo", "load_run_info", "write_json", "read_json", "REQUIRED_FILES"]

REQUIRED_FILES = ("model.keras", "config.json", "run.json", "normalisation.json")


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (temporary name, then rename)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    tmp.replace(path)


def read_json(path: Path) -> Any:
    if not path.is_file():
        raise ModelError(f"{path}: file not found")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path}: not valid JSON ({exc})") from exc


@dataclass(frozen=True)
class RunInfo:
    """Everything about a trained run except the Keras model itself."""

    run_dir: Path
    config: RunConfig
    label_names: tuple[str, ...]
    channel_names: tuple[str, ...]
    units: tuple[str, ...]
    sample_rate_hz: float
    window_samples: int
    hop_samples: int
    preprocessing: PreprocessingSpec | None
    normalisation: Standardiser
    metrics: dict[str, Any]
    data_root: Path | None = None  # the data root the run was trained on (None: runs written before it was recorded)

    @property
    def model_path(self) -> Path:
        return self.run_dir / "model.keras"

    def to_run_json(self) -> dict[str, Any]:
        return {
            "label_names": list(self.label_names),
            "channel_names": list(self.channel_names),
            "units": list(self.units),
            "sample_rate_hz": self.sample_rate_hz,
            "window_samples": self.window_samples,
            "hop_samples": self.hop_samples,
            "preprocessing": None if self.preprocessing is None else self.preprocessing.to_dict(),
            "data_root": None if self.data_root is None else str(Path(self.data_root).resolve()),
        }


def load_run_info(run_dir: str | Path) -> RunInfo:
    """Read a run directory; a missing or malformed piece raises :class:`ModelError` naming it."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ModelError(f"{run_dir}: run directory not found")
    missing = [f for f in REQUIRED_FILES if not (run_dir / f).exists()]
    if missing:
        raise ModelError(f"{run_dir}: run directory is missing {missing} (was `har-edge train` completed?)")
    try:
        cfg = run_config_from_dict(read_json(run_dir / "config.json"), where=str(run_dir / "config.json"))
        run = read_json(run_dir / "run.json")
        norm = Standardiser.from_dict(read_json(run_dir / "normalisation.json"))
        pre = run.get("preprocessing")
        metrics_path = run_dir / "metrics.json"
        return RunInfo(
            run_dir=run_dir,
            config=cfg,
            label_names=tuple(run["label_names"]),
            channel_names=tuple(run["channel_names"]),
            units=tuple(run["units"]),
            sample_rate_hz=float(run["sample_rate_hz"]),
            window_samples=int(run["window_samples"]),
            hop_samples=int(run["hop_samples"]),
            preprocessing=None if pre is None else PreprocessingSpec.from_dict(pre),
            normalisation=norm,
            metrics=read_json(metrics_path) if metrics_path.exists() else {},
            data_root=Path(run["data_root"]) if run.get("data_root") else None,
        )
    except (KeyError, TypeError, ValueError, ConfigError, DataError) as exc:
        raise ModelError(f"{run_dir}: run metadata is malformed ({exc})") from exc
