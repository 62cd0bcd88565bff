from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from har_edge.errors import BundleError, ExportError, ModelError
from har_edge.inference.bundle import load_bundle
from har_edge.inference.classifier import Classifier

pytestmark = pytest.mark.tf
SAMPLE_ROOT = Path(__file__).resolve().parents[2] / "training" / "sample_data"


def test_all_modes_report(tiny_exports: Path) -> None:
    report = json.loads((tiny_exports / "report.json").read_text())
    assert set(report["modes"]) == {"float32", "float16", "dynamic", "int8"}
    k = report["keras"]["test_accuracy"]
    for mode, e in report["modes"].items():
        assert 0 <= e["test_accuracy"] <= 1 and e["size_bytes"] > 0
        assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in e["ops"] and not any(o.startswith("Flex") for o in e["ops"])
        assert e["interpreters"]["litert"] == "ok", e["interpreters"]
        assert (tiny_exports / mode / "model.tflite").is_file() and (tiny_exports / mode / "manifest.json").is_file()
    f32 = report["modes"]["float32"]
    assert f32["test_accuracy"] == pytest.approx(k, abs=0.002) and f32["argmax_agreement"] > 0.995
    assert f32["p99_abs_diff_vs_keras"] < 1e-4
    # float exports clear the converter's LSTM cell clip (Keras never clips): float32 is Keras, to rounding
    assert f32["lstm_cell_clip"] == 0.0 and f32["max_abs_diff_vs_keras"] < 1e-5
    assert report["modes"]["int8"]["lstm_cell_clip"] == 10.0
    i8 = report["modes"]["int8"]
    assert i8["input"]["dtype"] == "int8" and i8["input"]["scale"] > 0 and i8["size_bytes"] < f32["size_bytes"]
    assert abs(i8["accuracy_delta_pp"]) < 5  # tiny model; the real target is measured in benchmarks
    # TFLite Micro runs float32 and int8 only (stack notes)
    assert i8["interpreters"]["tflm"] == "ok" and f32["interpreters"]["tflm"] == "ok"
    assert report["modes"]["float16"]["interpreters"]["tflm"].startswith("fails")


def test_manifest_is_self_describing(tiny_exports: Path) -> None:
    b = load_bundle(tiny_exports / "int8" / "model.tflite")
    m = b.manifest
    assert m["schema_version"] == 3 and m["task"] == "classification" and m["quantization"] == "int8"
    assert b.window_samples == 64 and b.hop_samples == 32 and b.sample_rate_hz == 50
    assert b.channel_names[0] == "body_acc_x" and b.channel_units[3] == "rad/s"
    assert [n for n, _ in b.raw_inputs] == ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
    assert b.preprocessing is not None and b.preprocessing.gravity_cutoff_hz == 0.3
    assert len(m["normalisation"]["mean"]) == 9 and m["input"]["zero_point"] in range(-128, 128)
    assert m["metrics"]["tflite"]["test_accuracy"] > 0.3


@pytest.mark.parametrize("mode", ["float32", "int8"])
def test_two_invokes_of_one_window_agree_in_every_interpreter(tiny_exports: Path, mode: str) -> None:
    """The fused LSTM op keeps state between invokes; the runtime resets before each one."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 9)).astype(np.float32)
    other = rng.standard_normal((64, 9)).astype(np.float32) * 3
    for backend in ("litert", "tensorflow"):
        with Classifier.from_bundle(tiny_exports / mode, backend=backend) as clf:
            a = clf.probabilities_normalised(x)
            clf.probabilities_normalised(other)
            b = clf.probabilities_normalised(x)
            np.testing.assert_array_equal(a, b)
    # TFLite Micro: reset() before every invoke
    from tflite_micro.python.tflite_micro import runtime

    b = load_bundle(tiny_exports / mode)
    it = runtime.Interpreter.from_bytes(b.model_bytes)
    with Classifier(b) as clf:
        q = clf.quantise_input(x[None])
    outs = []
    for inp in (q, q * 0 + (q.max() if mode == "int8" else 2), q):
        it.reset()
        it.set_input(inp, 0)
        it.invoke()
        outs.append(it.get_output(0).copy())
    np.testing.assert_array_equal(outs[0], outs[2])


def test_corrupt_and_truncated_models(tiny_exports: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(tiny_exports / "float32", bad)
    data = (bad / "model.tflite").read_bytes()
    (bad / "model.tflite").write_bytes(data[: len(data) // 2])
    with pytest.raises(BundleError, match="malformed TFLite flatbuffer .*truncated or corrupted"):
        load_bundle(bad)
    (bad / "model.tflite").write_bytes(b"\x00" * 100)
    with pytest.raises(BundleError, match="not a TFLite model"):
        load_bundle(bad / "model.tflite")
    (bad / "model.tflite").write_bytes(data)
    man = json.loads((bad / "manifest.json").read_text())
    man["window_samples"] = 128
    (bad / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(BundleError, match=r"manifest.json: disagrees with the manifest embedded in model.tflite on \['window_samples'\]"):
        load_bundle(bad)
    (bad / "manifest.json").write_text(json.dumps(dict(man, window_samples=64, model_sha256="0" * 64)))
    with pytest.raises(BundleError, match="out of sync"):
        load_bundle(bad)
    (bad / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match="manifest.json: not valid JSON"):
        load_bundle(bad)
    # a flipped bit in a weight: the embedded manifest's weights hash catches it
    from har_edge.inference.flatbuffer import read_tflite

    parsed = read_tflite(data)
    big = max(range(len(parsed.buffers)), key=lambda i: len(parsed.buffers[i]) if i not in parsed.metadata_buffers.values() else -1)
    flipped = bytearray(data)
    flipped[parsed.buffer_offsets[big] + 3] ^= 0x10
    (bad / "manifest.json").unlink()
    (bad / "model.tflite").write_bytes(bytes(flipped))
    with pytest.raises(BundleError, match="weights SHA-256 .* does not match the embedded manifest"):
        load_bundle(bad)


def test_the_model_file_alone_is_a_bundle(tiny_exports: Path, tmp_path: Path) -> None:
    """The manifest travels inside model.tflite: a lone copy, renamed, loads to the same bundle."""
    for mode in ("float32", "int8"):
        full = load_bundle(tiny_exports / mode)
        lone = tmp_path / f"har-{mode}.tflite"
        shutil.copyfile(tiny_exports / mode / "model.tflite", lone)
        b = load_bundle(lone)
        assert b.manifest == full.manifest and b.model_sha256 == full.model_sha256
        assert json.loads((tiny_exports / mode / "manifest.json").read_text()) == full.manifest
        with Classifier(b) as clf, Classifier(full) as ref:
            x = np.zeros((b.window_samples, len(b.channel_names)), np.float32)
            np.testing.assert_array_equal(clf.probabilities_normalised(x), ref.probabilities_normalised(x))


def test_legacy_sidecar_only_bundles_still_load(tiny_exports: Path, tmp_path: Path) -> None:
    """A model without the embedded manifest needs manifest.json; the manifest must match the model's tensors."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    from har_edge.inference.bundle import EMBEDDED_MANIFEST_KEY

    legacy = tmp_path / "legacy"
    shutil.copytree(tiny_exports / "float32", legacy)
    model = schema.ModelT.InitFromPackedBuf(bytearray((legacy / "model.tflite").read_bytes()), 0)
    model.metadata = [m for m in model.metadata if m.name.decode() != EMBEDDED_MANIFEST_KEY]
    plain = flatbuffer_utils.convert_object_to_bytearray(model)
    man = json.loads((legacy / "manifest.json").read_text())
    (legacy / "model.tflite").write_bytes(plain)
    (legacy / "manifest.json").write_text(json.dumps(dict(man, model_sha256=hashlib.sha256(plain).hexdigest())))
    assert load_bundle(legacy).manifest["labels"] == man["labels"]
    (legacy / "manifest.json").write_text(json.dumps(dict(man, model_sha256=hashlib.sha256(plain).hexdigest(),
                                                          window_samples=32, input=dict(man["input"], shape=[1, 32, 9]),
                                                          normalisation=man["normalisation"])))
    with pytest.raises(BundleError, match=r"input.shape=\[1, 32, 9\] but the model's input tensor .* is \[1, 64, 9\]"):
        load_bundle(legacy)
    (legacy / "manifest.json").unlink()
    with pytest.raises(BundleError, match="no manifest embedded in the model and no manifest.json beside it"):
        load_bundle(legacy)


def test_export_errors_leave_no_bundle(tiny_run: Path, tmp_path: Path) -> None:
    from har_edge.export.pipeline import export_run

    out = tmp_path / "out"
    with pytest.raises(ExportError, match="unknown --quant 'int4'"):
        export_run(tiny_run, "int4", out, data_root=SAMPLE_ROOT)
    with pytest.raises(ExportError, match="--target mcu needs the int8 model"):
        export_run(tiny_run, "float32", out, data_root=SAMPLE_ROOT, target="mcu")
    with pytest.raises(ExportError, match="arena margin -1"):
        export_run(tiny_run, "int8", out, data_root=SAMPLE_ROOT, target="mcu", arena_margin=-1)
    broken = tmp_path / "broken"
    shutil.copytree(tiny_run, broken)
    (broken / "model.keras").write_bytes(b"junk")
    with pytest.raises(ModelError, match="model.keras: cannot load the Keras model"):
        export_run(broken, "float32", out, data_root=SAMPLE_ROOT)
    assert not out.exists() and not list(tmp_path.glob("out.*"))


def test_mcu_export_without_tflite_micro_names_the_extra_before_converting(
    tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    from har_edge.errors import BackendNotAvailable
    from har_edge.export.pipeline import export_run

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tflite_micro" else real(name, *a))
    with pytest.raises(BackendNotAvailable, match=r'install the mcu extra, e.g. pip install ".\[mcu\]" in a clone \(tflite-micro has wheels for Linux x86-64 only\)'):
        export_run(tmp_path / "not-even-a-run", "int8", tmp_path / "out", data_root=SAMPLE_ROOT, target="mcu")


def test_cli_export_single_mode_contract(tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from har_edge.cli import main

    out = tmp_path / "f32"
    # no --data-root and a $HAR_EDGE_DATA that does not exist: the run's recorded data root is used
    monkeypatch.setenv("HAR_EDGE_DATA", str(tmp_path / "elsewhere"))
    rc = main(["export", str(tiny_run), "--quant", "float32", "--out", str(out), "--no-interpreter-check"])
    assert rc == 0
    err = capsys.readouterr().err
    assert f"data root: {SAMPLE_ROOT.resolve()} (recorded in" in err
    assert "export [1/3] test windows and Keras predictions" in err and "export done in" in err  # progress, not silence
    r = json.loads((out / "report.json").read_text())
    assert 0 <= r["keras"]["test_accuracy"] <= 1 and 0 <= r["tflite"]["test_accuracy"] <= 1 and r["tflite"]["size_bytes"] > 0
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "model.tflite", "report.json"]
    assert main(["export", str(tmp_path / "nope"), "--quant", "int8", "--out", str(tmp_path / "x"), "--data-root", str(SAMPLE_ROOT)]) == 1
