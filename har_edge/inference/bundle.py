"""The self-describing model bundle: the manifest travels inside ``model.tflite``, with a ``manifest.json`` copy.

Importable with numpy only (the device loads bundles without TensorFlow). Export embeds the
manifest as the ``.tflite`` metadata entry ``har_edge_manifest`` (compact JSON), so the model file
alone is a complete bundle, and writes the same manifest beside it as ``manifest.json`` for people
and tools (plus ``model_sha256``, the file's hash, which a file cannot contain about itself). The
embedded manifest carries ``weights_sha256``, checked at load: in schema 3 the SHA-256 of the whole
``.tflite`` file with the 64 hex digits of that very value zeroed (:func:`content_sha256`), so it covers
every byte that can change the output — constants, operator options, tensor shapes, types and
quantisation, opcodes — and the manifest itself; export writes the file, then fills the digits in place
(:func:`seal_model`). Schemas 1 and 2 named the constants only
(:func:`~har_edge.inference.flatbuffer.weights_sha256`) and still load, checked that way;
:func:`reseal_model` upgrades such a file to schema 3 in place, without TensorFlow. When both exist they
must agree; bundles from before embedding (sidecar only) still load. The manifest holds
everything the runtime needs: labels, rate, window, hop, channels with units and order, the causal
preprocessing, normalisation, input/output quantisation and the model's SHA-256, which
:func:`load_bundle` checks against the ``.tflite`` bytes so a stale or swapped model is caught.

Manifest (``schema_version`` 3; task-neutral: ``task`` says what the model's output means)::

    {"schema_version": 3, "task": "classification", "name": ..., "model_file": "model.tflite",
     "model_sha256": ..., "weights_sha256": ...,
     "quantization": "float32|float16|dynamic|int8",
     "labels": [...],                                    (classification: one name per output)
     "sample_rate_hz": 50.0, "window_samples": 128, "hop_samples": 64,
     "channels": [{"name": "body_acc_x", "unit": "g"}, ...],
     "raw_inputs": [{"name": "acc_x", "unit": "g"}, ...],
     "preprocessing": {...} | null,
     "normalisation": {"mean": [...], "std": [...]},
     "input": {"shape": [1, T, C], "dtype": "float32|int8", "scale": s, "zero_point": z},
     "output": {...}, "metrics": {...}, "har_edge_version": ...,
     "recurrent_state": "reset" | "carried",             (optional, default "reset")
     "uncertain_labels": [...],                          (optional, default [])
     "smoothing": {...}}                                 (optional, default {})

``recurrent_state``: ``reset`` (every window from zero LSTM state, as all bundles before it) or
``carried`` (a streaming model: each window holds only the samples since the last one plus the
convolution's context, and the LSTM state runs on from invoke to invoke; the runtime resets it only
at the start of a stream). ``uncertain_labels``: output classes that are not an activity to show
(e.g. a postural-transition class); the runtime shows ``uncertain`` when one of them wins.
``smoothing``: the smoothing chosen for this model (keys of the runtime's ``SmoothingConfig``); the
device uses it unless its own config sets smoothing, and the MCU export writes it for the firmware.

Schema 1 (before ``task`` existed) is read as a classification bundle; schema 2 differs from 3 only in
what ``weights_sha256`` covers. Readers before schema 3 refuse schema-3 bundles (their weights hash would
not match). A task wrapper states the task it reads with :meth:`Bundle.require_task`,
so a classifier never runs a forecaster's bundle nor the reverse. Each task adds its required keys
and checks to :data:`TASK_CHECKS`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from har_edge.data.normalisation import Standardiser
from har_edge.data.preprocessing import PreprocessingSpec
from har_edge.errors import BundleError, DataError, ModelError
from har_edge.inference.flatbuffer import TfliteModel, read_tflite, weights_sha256

__all__ = [
    "SCHEMA_VERSION",
    "RESET_STATE",
    "CARRIED_STATE",
    "output_step",
    "READABLE_SCHEMA_VERSIONS",
    "CLASSIFICATION",
    "TASK_CHECKS",
    "MANIFEST_NAME",
    "MODEL_NAME",
    "EMBEDDED_MANIFEST_KEY",
    "embedded_manifest_bytes",
    "prepare_manifest",
    "content_sha256",
    "seal_model",
    "reseal_model",
    "Bundle",
    "load_bundle",
    "write_bundle",
    "sha256_bytes",
    "check_tflite_bytes",
]

SCHEMA_VERSION = 3
READABLE_SCHEMA_VERSIONS = (1, 2, 3)
_WHOLE_FILE_HASH_SINCE = 3  # schema from which weights_sha256 is content_sha256 (before: the constants only)
_HASH_KEY = b'"weights_sha256":"'
_HASH_HEX = 64
CLASSIFICATION = "classification"
MANIFEST_NAME = "manifest.json"
MODEL_NAME = "model.tflite"
RESET_STATE, CARRIED_STATE = "reset", "carried"
EMBEDDED_MANIFEST_KEY = "har_edge_manifest"
_TFLITE_MAGIC = b"TFL3"
_REQUIRED = ("schema_version", "task", "sample_rate_hz", "window_samples", "hop_samples", "channels",
             "normalisation", "input", "output", "model_sha256", "quantization")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_tflite_bytes(data: bytes, *, where: str) -> None:
    """Raise :class:`BundleError` unless ``data`` looks like a TFLite flatbuffer."""
    if len(data) < 16 or data[4:8] != _TFLITE_MAGIC:
        raise BundleError(f"{where}: not a TFLite model (missing 'TFL3' identifier; file truncated or corrupted?)")


def output_step(manifest: dict[str, Any]) -> float:
    """The quantisation step of a manifest's output (an int8 model's output scale); 0.0 for a float output."""
    out = manifest.get("output") or {}
    return float(out.get("scale") or 0.0) if out.get("dtype") in ("int8", "uint8") else 0.0


@dataclass(frozen=True)
class Bundle:
    """A loaded bundle: the model bytes and its parsed manifest."""

    directory: Path
    model_path: Path
    model_bytes: bytes
    manifest: dict[str, Any]

    @property
    def task(self) -> str:
        """What the model's output means: ``"classification"`` (schema 1 bundles are classification)."""
        return str(self.manifest.get("task", CLASSIFICATION))

    def require_task(self, task: str) -> None:
        """Raise :class:`BundleError` unless this bundle's task is ``task``."""
        if self.task != task:
            raise BundleError(f"{self.model_path}: a {self.task!r} bundle, but a {task!r} model is needed here "
                              f"(export the right run, or use the command for {self.task} bundles)")

    @property
    def labels(self) -> tuple[str, ...]:
        """Class names in output order (classification bundles)."""
        self.require_task(CLASSIFICATION)
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
    def carries_state(self) -> bool:
        """True for a streaming model whose recurrent state runs on between invokes (``recurrent_state = "carried"``)."""
        return self.manifest.get("recurrent_state", RESET_STATE) == CARRIED_STATE

    @property
    def uncertain_labels(self) -> tuple[str, ...]:
        """Output classes shown as ``uncertain`` (not an activity), e.g. a postural-transition class."""
        return tuple(self.manifest.get("uncertain_labels") or ())

    @property
    def output_step(self) -> float:
        """The output's quantisation step (:func:`output_step`)."""
        return output_step(self.manifest)

    @property
    def smoothing(self) -> dict[str, Any]:
        """The smoothing chosen for this model (``SmoothingConfig`` keys); ``{}``: the runtime's defaults."""
        return dict(self.manifest.get("smoothing") or {})

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


def _hash_digits(data: bytes, model: TfliteModel, where: str) -> int | None:
    """File offset of the 64 hex digits of the embedded manifest's ``weights_sha256`` (None: no embedded manifest)."""
    index = model.metadata_buffers.get(EMBEDDED_MANIFEST_KEY)
    if index is None:
        return None
    start = model.buffer_offsets[index]
    raw = model.buffers[index]
    at = raw.find(_HASH_KEY)
    if start is None or at < 0 or raw.find(_HASH_KEY, at + 1) >= 0 or at + len(_HASH_KEY) + _HASH_HEX > len(raw):
        raise BundleError(f"{where}: the embedded manifest has no single weights_sha256 value (corrupted?)")
    return start + at + len(_HASH_KEY)


def content_sha256(model_bytes: bytes, model: TfliteModel | None = None, *, where: str = "model") -> str:
    """SHA-256 of the whole ``.tflite`` with the digits of its embedded ``weights_sha256`` read as zeros.

    Every byte of the file counts (graph, options, constants, metadata, the manifest itself) except the
    64 digits that state the hash, so a model can name it (schema 3's ``weights_sha256``).
    """
    data = bytes(model_bytes)
    parsed = model if model is not None else _read(data, where)
    pos = _hash_digits(data, parsed, where)
    if pos is None:
        return sha256_bytes(data)
    return sha256_bytes(data[:pos] + b"0" * _HASH_HEX + data[pos + _HASH_HEX:])


def _read(data: bytes, where: str) -> TfliteModel:
    try:
        return read_tflite(data, where=where)
    except ModelError as exc:
        raise BundleError(str(exc)) from exc


def seal_model(model_bytes: bytes, *, where: str = "model") -> bytes:
    """Fill the embedded manifest's ``weights_sha256`` with :func:`content_sha256` of the file, in place (same size)."""
    data = bytes(model_bytes)
    model = _read(data, where)
    pos = _hash_digits(data, model, where)
    if pos is None:
        raise BundleError(f"{where}: no embedded manifest to seal")
    return data[:pos] + content_sha256(data, model, where=where).encode("ascii") + data[pos + _HASH_HEX:]


def reseal_model(model_bytes: bytes, *, where: str = "model") -> bytes:
    """A schema-2 (or 3) export as schema 3: ``schema_version`` set to 3 and the whole-file hash sealed in place.

    Needs no TensorFlow (the file keeps its size and layout). Schema-1 models lack the ``task`` key: re-export those.
    """
    data = bytes(model_bytes)
    model = _read(data, where)
    index = model.metadata_buffers.get(EMBEDDED_MANIFEST_KEY)
    start = model.buffer_offsets[index] if index is not None else None
    if index is None or start is None:
        raise BundleError(f"{where}: no embedded manifest; re-export the model")
    raw = model.buffers[index]
    at = [m for m in (raw.find(b'"schema_version":' + v) for v in (b"2", b"3")) if m >= 0]
    if len(at) != 1:
        raise BundleError(f"{where}: embedded manifest is not schema 2 or 3; re-export the model")
    digit = start + at[0] + len(b'"schema_version":')
    return seal_model(data[:digit] + str(SCHEMA_VERSION).encode() + data[digit + 1:], where=where)


def prepare_manifest(manifest: dict[str, Any], model_bytes: bytes) -> dict[str, Any]:
    """``manifest`` with ``schema_version``, ``model_file`` and ``weights_sha256`` of ``model_bytes`` set (no ``model_sha256``).

    For a model that embeds its (sealed) manifest this is the embedded value; export calls it first on the bare
    model (a placeholder), embeds the manifest, then :func:`seal_model` fills in the real hash.
    """
    weights = content_sha256(model_bytes, where="converted model")
    body = {k: v for k, v in manifest.items() if k != "model_sha256"}
    return dict(body, schema_version=SCHEMA_VERSION, task=body.get("task", CLASSIFICATION), model_file=MODEL_NAME,
                weights_sha256=weights)


def embedded_manifest_bytes(manifest: dict[str, Any]) -> bytes:
    """The manifest as export embeds it: compact, key-sorted JSON without ``model_sha256``."""
    body = {k: v for k, v in manifest.items() if k != "model_sha256"}
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode("utf-8")


def _parse_manifest(text: str | bytes, where: str) -> dict[str, Any]:
    try:
        manifest = json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, absurd nesting
        raise BundleError(f"{where}: not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict):
        raise BundleError(f"{where}: expected a JSON object")
    return manifest


def _embedded(data: bytes, model: TfliteModel, model_path: Path, digest: str) -> dict[str, Any] | None:
    raw = model.metadata.get(EMBEDDED_MANIFEST_KEY)
    if raw is None:
        return None
    where = f"{model_path} (embedded manifest)"
    manifest = _parse_manifest(raw, where)
    version = manifest.get("schema_version")
    if isinstance(version, bool) or version not in READABLE_SCHEMA_VERSIONS:
        raise BundleError(f"{where}: schema_version {version!r}; this har-edge reads {list(READABLE_SCHEMA_VERSIONS)} "
                          "(exported by a newer har-edge? upgrade it on this device)")
    expected = manifest.get("weights_sha256")
    if version >= _WHOLE_FILE_HASH_SINCE:
        actual, what = content_sha256(data, model, where=str(model_path)), "content"
    else:
        actual, what = weights_sha256(model), "weights"
    if expected != actual:
        raise BundleError(f"{model_path}: weights SHA-256 {actual[:12]}… does not match the embedded manifest's "
                          f"{str(expected)[:12]}… (the model's {what} were changed or corrupted; re-export it)")
    return dict(manifest, model_sha256=digest)


def _check_sidecar_agrees(sidecar: dict[str, Any], manifest: dict[str, Any], manifest_path: Path, model_path: Path) -> None:
    if sidecar.get("model_sha256") != manifest["model_sha256"]:
        raise BundleError(
            f"{model_path}: SHA-256 {manifest['model_sha256'][:12]}… does not match {manifest_path.name}'s "
            f"{str(sidecar.get('model_sha256'))[:12]}… (model and manifest are out of sync; re-run `har-edge export` "
            f"or delete {manifest_path.name}: the model carries its own manifest)")
    differ = sorted(k for k in set(sidecar) | set(manifest) if sidecar.get(k) != manifest.get(k))
    if differ:
        raise BundleError(f"{manifest_path}: disagrees with the manifest embedded in {model_path.name} on {differ} "
                          f"(edited by hand? re-run `har-edge export`, or delete {manifest_path.name})")


def load_bundle(path: str | os.PathLike[str]) -> Bundle:
    """Load and validate a bundle from its directory or a ``.tflite`` path (the file alone suffices).

    The manifest embedded in the model is used; a ``manifest.json`` beside it must agree with it.
    A model without an embedded manifest needs ``manifest.json`` (bundles from older exports).

    Raises:
        BundleError: missing file, not a TFLite flatbuffer, bad JSON, missing keys, hash mismatch,
            embedded and sidecar manifests that disagree, or a manifest that disagrees with itself
            (channel count vs normalisation vs input shape).
    """
    path = Path(path)
    model_path, manifest_path = _locate(path)
    if not model_path.is_file():
        raise BundleError(f"{model_path}: model file not found")
    data = model_path.read_bytes()
    check_tflite_bytes(data, where=str(model_path))
    model = _read(data, str(model_path))
    digest = sha256_bytes(data)
    sidecar = _parse_manifest(manifest_path.read_bytes(), str(manifest_path)) if manifest_path.is_file() else None
    manifest = _embedded(data, model, model_path, digest)
    where = manifest_path if sidecar is not None else model_path
    if manifest is None:
        if sidecar is None:
            raise BundleError(f"{model_path}: no manifest embedded in the model and no {manifest_path.name} beside it "
                              "(export with `har-edge export`, which embeds one)")
        manifest = sidecar
        if manifest.get("model_sha256") != digest:
            raise BundleError(
                f"{model_path}: SHA-256 {digest[:12]}… does not match the manifest's {str(manifest.get('model_sha256'))[:12]}… "
                "(model and manifest are out of sync; re-run `har-edge export`)"
            )
    elif sidecar is not None:
        _check_sidecar_agrees(sidecar, manifest, manifest_path, model_path)
    version = manifest.get("schema_version")
    if version not in READABLE_SCHEMA_VERSIONS:
        raise BundleError(f"{where}: schema_version {version!r}; this har-edge reads {list(READABLE_SCHEMA_VERSIONS)} "
                          "(exported by a newer har-edge? upgrade it on this device)")
    if version == 1:
        manifest = dict(manifest, task=CLASSIFICATION)  # schema 1 had only classifiers
    missing = [k for k in _REQUIRED if k not in manifest]
    if missing:
        raise BundleError(f"{where}: missing key(s) {missing}")
    if manifest["task"] not in TASK_CHECKS:
        raise BundleError(f"{where}: task {manifest['task']!r}; this har-edge knows {sorted(TASK_CHECKS)}")
    bundle = Bundle(directory=model_path.parent, model_path=model_path, model_bytes=data, manifest=manifest)
    try:
        _check_consistency(bundle, where)
        _check_model_io(model, manifest, where)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:  # a field of the wrong type or shape
        if isinstance(exc, BundleError):
            raise
        raise BundleError(f"{where}: malformed manifest ({type(exc).__name__}: {exc})") from None
    return bundle


def _check_model_io(model: TfliteModel, manifest: dict[str, Any], where: Path) -> None:
    """The manifest's input/output shape and dtype must be the model's own."""
    for which, indices in (("input", model.inputs), ("output", model.outputs)):
        if len(indices) != 1:
            raise BundleError(f"{where}: the model has {len(indices)} {which} tensors; a har-edge bundle has one")
        t = model.tensors[indices[0]]
        declared = manifest[which]
        if [int(d) for d in declared.get("shape", [])] != list(t.shape):
            raise BundleError(f"{where}: {which}.shape={declared.get('shape')} but the model's {which} tensor "
                              f"{t.name!r} is {list(t.shape)}")
        if declared.get("dtype") not in (None, t.dtype):
            raise BundleError(f"{where}: {which}.dtype={declared.get('dtype')!r} but the model's {which} tensor is {t.dtype}")


def _check_classification(manifest: dict[str, Any], where: Path) -> None:
    labels = manifest.get("labels")
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x for x in labels):
        raise BundleError(f"{where}: labels={labels!r}; a classification bundle needs a list of class names")
    if list(manifest["output"].get("shape", [])) != [1, len(labels)]:
        raise BundleError(f"{where}: output shape {manifest['output'].get('shape')} disagrees with {len(labels)} labels")
    uncertain = manifest.get("uncertain_labels") or []
    if not isinstance(uncertain, list) or not set(uncertain) < set(labels):
        raise BundleError(f"{where}: uncertain_labels={uncertain!r}; expected a list of some (not all) of the labels {labels}")


TASK_CHECKS: dict[str, Callable[[dict[str, Any], Path], None]] = {CLASSIFICATION: _check_classification}
"""Per task: a check of its own manifest keys (raises :class:`BundleError`)."""


def _check_consistency(bundle: Bundle, where: Path) -> None:
    m = bundle.manifest
    n_ch = len(m["channels"])
    shape = list(m["input"].get("shape", []))
    expected = [1, bundle.window_samples, n_ch]
    if shape != expected:
        raise BundleError(f"{where}: input shape {shape} disagrees with window_samples/channels {expected}")
    TASK_CHECKS[bundle.task](m, where)
    try:
        norm = bundle.normalisation
        bundle.preprocessing  # noqa: B018 - validates the spec
    except DataError as exc:
        raise BundleError(f"{where}: {exc}") from exc
    if norm.mean.shape[0] != n_ch:
        raise BundleError(f"{where}: normalisation has {norm.mean.shape[0]} channels, the model {n_ch}")
    if not isinstance(m.get("smoothing") or {}, dict):
        raise BundleError(f"{where}: smoothing={m.get('smoothing')!r}; expected a table of smoothing settings")
    state = m.get("recurrent_state", RESET_STATE)
    if state not in (RESET_STATE, CARRIED_STATE):
        raise BundleError(f"{where}: recurrent_state={state!r}; expected {RESET_STATE!r} or {CARRIED_STATE!r}")
    if state == CARRIED_STATE and bundle.hop_samples > bundle.window_samples:
        raise BundleError(f"{where}: a carried-state model needs hop_samples <= window_samples (got {bundle.hop_samples} > "
                          f"{bundle.window_samples}): samples between windows would never reach the LSTM")
    if not 0 < bundle.hop_samples <= bundle.window_samples * 4:
        raise BundleError(f"{where}: hop_samples={bundle.hop_samples} is not a sensible hop for window {bundle.window_samples}")


def write_bundle(out_dir: str | os.PathLike[str], model_bytes: bytes, manifest: dict[str, Any], *, extra_files: dict[str, bytes] | None = None) -> Bundle:
    """Write a bundle atomically: a temporary directory renamed into place, then re-loaded to validate.

    ``model_bytes`` normally carries the manifest already (:func:`prepare_manifest` +
    :func:`embedded_manifest_bytes`, embedded by the exporter); ``manifest.json`` is written beside it
    with ``model_sha256`` filled in here, and the re-load checks that the two agree.
    """
    out = Path(out_dir)
    check_tflite_bytes(model_bytes, where="converted model")
    manifest = dict(prepare_manifest(manifest, model_bytes), model_sha256=sha256_bytes(model_bytes))
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
