"""Corrupted models: every loader path ends in BundleError / ModelError, and no corruption loads silently.

Runs without TensorFlow (the device venvs too) on ``float32_bundle``; the bundle is re-sealed in place
to the current manifest schema where a test needs the whole-file weights hash.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from har_edge.errors import BundleError, ModelError
from har_edge.inference.bundle import load_bundle
from har_edge.inference.classifier import Classifier
from har_edge.inference.flatbuffer import read_tflite
from tests.fixtures.hostile import model_mutations

ALLOWED = (BundleError, ModelError)


def _try_numpy_backend(path: Path, window: np.ndarray) -> tuple[str, np.ndarray | None]:
    try:
        with Classifier.from_bundle(path, backend="numpy") as clf:
            return "ok", clf.probabilities_normalised(window)
    except ALLOWED as exc:
        return type(exc).__name__, None


def test_numpy_backend_on_corrupted_models_raises_only_bundle_errors(float32_bundle: Path, tmp_path: Path) -> None:
    """Problem 5: ``--backend numpy`` on a corrupted model ended in IndexError (LiteRT gave a clean error)."""
    data = (Path(float32_bundle) / "model.tflite").read_bytes()
    b = load_bundle(float32_bundle)
    window = np.zeros((b.window_samples, len(b.channel_names)), np.float32)
    path = tmp_path / "m.tflite"
    crashes = []
    for i, blob in enumerate(model_mutations(data, 400, seed=5)):
        path.write_bytes(blob)
        try:
            _try_numpy_backend(path, window)
        except Exception as exc:  # noqa: BLE001 - what the test hunts for
            crashes.append(f"case {i}: {type(exc).__name__}: {exc}")
    assert not crashes, "\n".join(crashes[:20])


def test_reader_validates_every_index(float32_bundle: Path) -> None:
    data = (Path(float32_bundle) / "model.tflite").read_bytes()
    crashes = []
    for i, blob in enumerate(model_mutations(data, 2000, seed=11)):
        try:
            m = read_tflite(blob, where="fuzzed.tflite")
        except ModelError as exc:
            assert "fuzzed.tflite" in str(exc)
            continue
        except Exception as exc:  # noqa: BLE001
            crashes.append(f"case {i}: {type(exc).__name__}: {exc}")
            continue
        n = len(m.tensors)
        bad = [v for op in m.operators for v in (*op.inputs, *op.outputs) if not -1 <= v < n]
        bad += [v for v in (*m.inputs, *m.outputs) if not 0 <= v < n]
        if bad:
            crashes.append(f"case {i}: tensor indices {bad[:5]} outside 0..{n - 1} passed the reader")
    assert not crashes, "\n".join(crashes[:20])


def _sealed_copy(bundle: Path, out: Path) -> Path:
    """The bundle's model alone, its embedded manifest re-sealed to the current schema (whole-file hash)."""
    from har_edge.inference.bundle import reseal_model

    out.mkdir(parents=True, exist_ok=True)
    target = out / "model.tflite"
    target.write_bytes(reseal_model((Path(bundle) / "model.tflite").read_bytes()))
    return target


def test_no_single_byte_corruption_loads(float32_bundle: Path, tmp_path: Path) -> None:
    """Problem 5: single-byte flips outside the weights (operator options, shapes, opcodes, ...) loaded and ran."""
    sealed = _sealed_copy(float32_bundle, tmp_path / "sealed")
    data = sealed.read_bytes()
    load_bundle(sealed)  # the sealed original loads
    rng = np.random.default_rng(3)
    loaded = []
    path = tmp_path / "flip.tflite"
    for p in rng.choice(len(data), 300, replace=False):
        blob = bytearray(data)
        blob[int(p)] ^= int(rng.integers(1, 256))
        path.write_bytes(bytes(blob))
        try:
            load_bundle(path)
        except BundleError:
            continue
        loaded.append(int(p))
    assert not loaded, f"{len(loaded)} of 300 single-byte flips loaded, at offsets {loaded[:10]}"


def test_old_bundles_still_load(float32_bundle: Path, tmp_path: Path) -> None:
    """A schema-2 bundle (buffers-only weights hash) keeps loading; sealing it again gives a schema-3 file."""
    copy = tmp_path / "b"
    shutil.copytree(float32_bundle, copy)
    assert load_bundle(copy).manifest["schema_version"] in (1, 2, 3)
    sealed = load_bundle(_sealed_copy(copy, tmp_path / "s"))
    assert sealed.manifest["schema_version"] == 3
