"""The self-describing model bundle: ``model.tflite`` + ``manifest.json`` kept in sync.

Importable with numpy only (the device loads bundles without TensorFlow). The manifest holds
everything the runtime needs: labels, rate, window, hop, channels with units and order, the causal
preprocessing, normalisation, input/output quantisation and the model's SHA-256, which
:func:`load_bundle` checks against the ``.tflite`` bytes so a stale or swapped model is caught.

Manifest (``schema_version`` 1)::

    {"schema_version": 1, "name": ..., "model_file": "model.tflite", "model_sha256": ...,
     "quantization": "float32|float16|dynamic|int8", "labels": [...],
     "sample_rate_hz": 50.0, "window_samples": 128, "hop_samples": 64,
     "channels": [{"name": "body_acc_x", "unit": "g"}, ...],
     "raw_inputs": [{"name": "acc_x", "unit": "g"}, ...],
     "preprocessing": {...} | null,
     "normalisation": {"mean": [...], "std": [...]},
     "input": {"shape": [1, T, C], "dtype": "float32|int8", "scale": s, "zero_point": z},
     "output": {...}, "metrics": {...}, "har_edge_version": ...}
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from har_edge.data.normalisation import Standardiser
from har_edge.data.preprocessing import PreprocessingSpec
from har_edge.errors import BundleError, DataError

__all__ = ["SCHEMA_VERSION", "MANIFEST_NAME", "MODEL_NAME", "Bundle", "load_bundle", "write_bundle", "sha256_bytes"]

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
MODEL_NAME = "model.tflite"
_TFLITE_MAGIC = b"TFL3"
_REQUIRED = ("schema_version", "labels", "sample_rate_hz", "window_samples", "hop_samples", "channels",
             "normalisation", "input", "output", "model_sha256", "quantization")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_tflite_bytes(data: bytes, *, where: str) -> None:
    """Raise :class:`BundleError` unless ``data`` looks like a TFLite flatbuffer."""
    if len(data) < 16 or data[4:8] != _TFLITE_MAGIC:
        raise BundleError(f"{where}: not a TFLite model (missing 'TFL3' identifier; file truncated or corrupted?)")


@dataclass(frozen=True)
class Bundle:
    """A loaded bundle: the model bytes and its parsed manifest."""

    directory: Path
    model_path: Path
    model_bytes: bytes
    manifest: dict[str, Any]

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.manifest["labels"])

    @property
    def channel_names(self) -> tuple[str, ...]:
        return tuple(c["name"] for c in self.manifest["channels"])

    @property
    def channel_units(self) -> tuple[str, ...]:
        return tuple(c["unit"] for c in self.manifest["channels"])

    @property
    def raw_inputs(self) -> tuple[tuple[str, str], ...]:
        """``(name, unit)`` of the sensor channels the device must feed (before preprocessing)."""
        raw = self.manifest.get("raw_inputs") or self.manifest["channels"]
        return tuple((c["name"], c["unit"]) for c in raw)

    @property
    def sample_rate_hz(self) -> float:
        return float(self.manifest["sample_rate_hz"])

    @property
    def window_samples(self) -> int:
        return int(self.manifest["window_samples"])

    @property
    def hop_samples(self) -> int:
        return int(self.manifest["hop_samples"])

    @property
    def model_sha256(self) -> str:
        return str(self.manifest["model_sha256"])

    @property
    def normalisation(self) -> Standardiser:
        return Standardiser.from_dict(self.manifest["normalisation"])

    @property
    def preprocessing(self) -> PreprocessingSpec | None:
        pre = self.manifest.get("preprocessing")
        return None if pre is None else PreprocessingSpec.from_dict(pre)


def _locate(path: Path) -> tuple[Path, Path]:
    """Return ``(model_path, manifest_path)`` for a bundle directory or its ``.tflite`` file."""
    if path.is_dir():
        return path / MODEL_NAME, path / MANIFEST_NAME
    return path, path.with_name(MANIFEST_NAME)


def load_bundle(path: str | os.PathLike[str]) -> Bundle:
    """Load and validate a bundle from its directory or its ``model.tflite`` path.

    Raises:
        BundleError: missing file, bad JSON, missing keys, hash mismatch, or a manifest that
            disagrees with itself (channel count vs normalisation vs input shape).
    """
    path = Path(path)
    model_path, manifest_path = _locate(path)
    if not model_path.is_file():
        raise BundleError(f"{model_path}: model file not found")
    if not manifest_path.is_file():
        raise BundleError(f"{manifest_path}: manifest not found beside {model_path.name} (export writes both)")
    data = model_path.read_bytes()
    check_tflite_bytes(data, where=str(model_path))
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as exc:
        raise BundleError(f"{manifest_path}: not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict):
        raise BundleError(f"{manifest_path}: expected a JSON object")
    missing = [k for k in _REQUIRED if k not in manifest]
    if missing:
        raise BundleError(f"{manifest_path}: missing key(s) {missing}")
    if manifest["schema_version"] != SCHEMA_VERSION:
        raise BundleError(f"{manifest_path}: schema_version {manifest['schema_version']!r}; this har-edge reads {SCHEMA_VERSION}")
    digest = sha256_bytes(data)
    if manifest["model_sha256"] != digest:
        raise BundleError(
            f"{model_path}: SHA-256 {digest[:12]}… does not match the manifest's {str(manifest['model_sha256'])[:12]}… "
            "(model and manifest are out of sync; re-run `har-edge export`)"
        )
    bundle = Bundle(directory=model_path.parent, model_path=model_path, model_bytes=data, manifest=manifest)
    _check_consistency(bundle, manifest_path)
    return bundle


def _check_consistency(bundle: Bundle, where: Path) -> None:
    m = bundle.manifest
    n_ch = len(m["channels"])
    shape = list(m["input"].get("shape", []))
    expected = [1, bundle.window_samples, n_ch]
    if shape != expected:
        raise BundleError(f"{where}: input shape {shape} disagrees with window_samples/channels {expected}")
    if list(m["output"].get("shape", [])) != [1, len(m["labels"])]:
        raise BundleError(f"{where}: output shape {m['output'].get('shape')} disagrees with {len(m['labels'])} labels")
    try:
        norm = bundle.normalisation
        bundle.preprocessing  # noqa: B018 - validates the spec
    except DataError as exc:
        raise BundleError(f"{where}: {exc}") from exc
    if norm.mean.shape[0] != n_ch:
        raise BundleError(f"{where}: normalisation has {norm.mean.shape[0]} channels, the model {n_ch}")
    if not 0 < bundle.hop_samples <= bundle.window_samples * 4:
        raise BundleError(f"{where}: hop_samples={bundle.hop_samples} is not a sensible hop for window {bundle.window_samples}")


def write_bundle(out_dir: str | os.PathLike[str], model_bytes: bytes, manifest: dict[str, Any], *, extra_files: dict[str, bytes] | None = None) -> Bundle:
    """Write a bundle atomically: a temporary directory renamed into place, then re-loaded to validate.

    ``manifest['model_sha256']`` is filled in here, so model and manifest cannot disagree.
    """
    out = Path(out_dir)
    check_tflite_bytes(model_bytes, where="converted model")
    manifest = dict(manifest, schema_version=SCHEMA_VERSION, model_file=MODEL_NAME, model_sha256=sha256_bytes(model_bytes))
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    (tmp / MODEL_NAME).write_bytes(model_bytes)
    (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
    for name, data in (extra_files or {}).items():
        (tmp / name).write_bytes(data)
    load_bundle(tmp)  # validate before it becomes visible
    if out.exists():
        old = out.with_name(out.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out)
    return load_bundle(out)
