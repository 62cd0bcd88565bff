"""MCU export: C array round trip, headers compile, TFLM arena bisection, TFLM vs LiteRT parity,
and the firmware preprocessing (har_preprocess.h) against the Python CausalPreprocessor.

The tiny models are converted to full int8 in a subprocess (converter paths can segfault) once per
session. Compiler tests skip without g++ unless ``CI`` / ``HAR_EDGE_REQUIRE_FIRMWARE`` is set.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.fixtures.requirements import import_or_skip, skip_or_fail

from har_edge.errors import BundleError, ExportError
from har_edge.export import mcu

REPO = Path(__file__).resolve().parents[2]
WINDOW, HOP, N_CLASSES = 32, 16, 4

_CONVERT = r"""
import sys
from pathlib import Path
import numpy as np
from har_edge.config import ModelConfig
from har_edge.models.builders import build_classifier
from har_edge.models.keras_backend import import_tensorflow
tf = import_tensorflow()
tf.random.set_seed(0)
out = Path(sys.argv[1])
for n_ch in (3, 9):
    model = build_classifier(ModelConfig(units=(8,), conv_filters=(4,)), window_samples=32, n_channels=n_ch,
                             n_classes=4, batch_size=1, seed=0)
    rng = np.random.default_rng(n_ch)
    def rep():
        for _ in range(32):
            yield [rng.standard_normal((1, 32, n_ch)).astype(np.float32)]
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    (out / f"tiny{n_ch}.tflite").write_bytes(conv.convert())
"""

# Add* methods of tflite::MicroMutableOpResolver as spelled in TFLM's
# tensorflow/lite/micro/micro_mutable_op_resolver.h (the last four: newer TFLM releases).
TFLM_RESOLVER_METHODS = """
AddAbs AddAdd AddAddN AddArgMax AddArgMin AddAssignVariable AddAveragePool2D AddBatchToSpaceNd
AddBroadcastArgs AddBroadcastTo AddCallOnce AddCast AddCeil AddCircularBuffer AddConcatenation AddConv2D
AddCos AddCumSum AddDepthToSpace AddDepthwiseConv2D AddDequantize AddDetectionPostprocess AddElu AddEqual
AddEthosU AddExp AddExpandDims AddFill AddFloor AddFloorDiv AddFloorMod AddFullyConnected AddGather
AddGatherNd AddGreater AddGreaterEqual AddHardSwish AddIf AddL2Normalization AddL2Pool2D AddLeakyRelu
AddLess AddLessEqual AddLog AddLogicalAnd AddLogicalNot AddLogicalOr AddLogistic AddMaximum AddMaxPool2D
AddMirrorPad AddMean AddMinimum AddMul AddNeg AddNotEqual AddPack AddPad AddPadV2 AddPrelu AddQuantize
AddReadVariable AddReduceMax AddRelu AddRelu6 AddReshape AddResizeBilinear AddResizeNearestNeighbor AddRound
AddRsqrt AddShape AddSin AddSlice AddSoftmax AddSpaceToBatchNd AddSpaceToDepth AddSplit AddSplitV AddSqueeze
AddSqrt AddSquare AddStridedSlice AddSub AddSvdf AddTanh AddTransposeConv AddTranspose AddUnpack
AddUnidirectionalSequenceLSTM AddVarHandle AddWhile AddZerosLike
AddBatchMatMul AddSum AddSquaredDifference AddLogSoftmax
""".split()


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[int, bytes]:
    for module in ("tensorflow", "tf_keras", "tflite_micro", "ai_edge_litert"):
        import_or_skip(module)
    out = tmp_path_factory.mktemp("mcu_models")
    env = {**os.environ, "TMPDIR": str(out), "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, "-c", _CONVERT, str(out)], env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {n: (out / f"tiny{n}.tflite").read_bytes() for n in (3, 9)}


def _quant(model: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=model)
    io = []
    for d in (it.get_input_details()[0], it.get_output_details()[0]):
        scale, zp = d["quantization"]
        io.append({"shape": [int(s) for s in d["shape"]], "dtype": np.dtype(d["dtype"]).name,
                   "scale": float(scale), "zero_point": int(zp)})
    return io[0], io[1]


def _manifest(model: bytes, n_ch: int) -> dict[str, Any]:
    from har_edge.data.preprocessing import UCI_9CH, PreprocessingSpec, derived_unit

    inp, out = _quant(model)
    if n_ch == 9:
        channels = [{"name": c, "unit": derived_unit(c)} for c in UCI_9CH]
        pre: dict[str, Any] | None = PreprocessingSpec(sample_rate_hz=50.0).to_dict()
    else:
        channels = [{"name": "acc_x", "unit": "g"}, {"name": "acc_y", "unit": "m/s^2"}, {"name": "acc_z", "unit": "g"}]
        pre = None
    return {
        "name": f"tiny{n_ch}", "labels": ["walking", "sitting", "standing", "laying"], "sample_rate_hz": 50.0,
        "window_samples": WINDOW, "hop_samples": HOP, "channels": channels,
        "normalisation": {"mean": [0.05 * k - 0.1 for k in range(n_ch)], "std": [0.5 + 0.1 * k for k in range(n_ch)]},
        "input": inp, "output": out, "preprocessing": pre, "model_sha256": None,
    }


def _litert_int8(model: bytes, x: np.ndarray) -> np.ndarray:
    from har_edge.inference.interpreter import TfliteRunner

    with TfliteRunner(model, backend="litert") as runner:
        return runner.run_batch(x).reshape(len(x), -1)


def _export(model: bytes, n_ch: int, out_dir: Path) -> dict[str, Any]:
    manifest = _manifest(model, n_ch)
    rng = np.random.default_rng(100 + n_ch)
    x = rng.standard_normal((40, WINDOW, n_ch))
    scale, zp = manifest["input"]["scale"], manifest["input"]["zero_point"]
    x_int8 = np.clip(np.round(x / scale) + zp, -128, 127).astype(np.int8)
    y = rng.integers(0, N_CLASSES, len(x))
    ref = _litert_int8(model, x_int8)
    report = mcu.write_mcu_export(model, manifest, out_dir, X_test_int8=x_int8, y_test=y, litert_outputs_int8=ref)
    return {"dir": out_dir, "report": report, "manifest": manifest, "model": model, "ref": ref, "y": y}


@pytest.fixture(scope="session")
def export9(tiny_models: dict[int, bytes], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _export(tiny_models[9], 9, tmp_path_factory.mktemp("mcu9"))


@pytest.fixture(scope="session")
def export3(tiny_models: dict[int, bytes], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _export(tiny_models[3], 3, tmp_path_factory.mktemp("mcu3"))


def _gxx() -> str:
    found = shutil.which("g++")
    if found:
        return found
    skip_or_fail("g++ not found (the firmware host tests compile the generated sources)")


def _compile(args: list[str], cwd: Path) -> None:
    proc = subprocess.run([_gxx(), "-std=c++17", "-Wall", "-Wextra", "-Werror", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, f"g++ {' '.join(args)}:\n{proc.stderr[-4000:]}"


# --------------------------------------------------------------------------- pure tests


def test_unknown_op_raises_export_error() -> None:
    with pytest.raises(ExportError, match="MY_FANCY_OP"):
        mcu.resolver_methods(["FULLY_CONNECTED", "MY_FANCY_OP"])
    with pytest.raises(ExportError, match="CUSTOM:Foo"):
        mcu.resolver_methods(["CUSTOM:Foo"])
    assert mcu.resolver_methods(["UNIDIRECTIONAL_SEQUENCE_LSTM", "CUSTOM:CIRCULAR_BUFFER"]) == [
        "AddUnidirectionalSequenceLSTM", "AddCircularBuffer"]


@pytest.mark.tf
def test_op_table_matches_schema_and_tflm_names() -> None:
    from tensorflow.lite.python import schema_py_generated as schema  # the main venv always has TensorFlow

    builtin_names = {k for k in vars(schema.BuiltinOperator) if not k.startswith("_")}
    assert set(mcu.OP_RESOLVER_METHODS) <= builtin_names
    methods = [*mcu.OP_RESOLVER_METHODS.values(), *mcu.CUSTOM_OP_RESOLVER_METHODS.values()]
    assert set(methods) <= set(TFLM_RESOLVER_METHODS)


def test_c_string_escapes() -> None:
    assert mcu._c_string('a"b\\c') == '"a\\"b\\\\c"'
    assert mcu._c_string("é1") == '"\\xc3\\xa9" "1"'


# --------------------------------------------------------------------------- export (TF + TFLM)


@pytest.mark.tf
def test_c_array_round_trip(export9: dict[str, Any]) -> None:
    cc = (export9["dir"] / "har_model_data.cc").read_text()
    body = cc[cc.index("g_har_model_data[] = {"):cc.index("};")]
    data = bytes(int(h, 16) for h in re.findall(r"0x([0-9a-f]{2})", body))
    assert data == export9["model"]
    assert f"g_har_model_data_len = {len(data)};" in cc
    assert "alignas(16) const unsigned char g_har_model_data[]" in cc
    header = (export9["dir"] / "har_model_data.h").read_text()
    assert "#ifndef HAR_MODEL_DATA_H_" in header and "extern const unsigned int g_har_model_data_len;" in header


@pytest.mark.tf
def test_report_and_headers(export9: dict[str, Any]) -> None:
    rep, d = export9["report"], export9["dir"]
    assert rep["arena_bytes_measured"] > 0
    assert rep["arena_bytes"] == math.ceil(rep["arena_bytes_measured"] * 1.25 / 16) * 16
    assert rep["model_bytes"] == len(export9["model"])
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in rep["ops"] and "FULLY_CONNECTED" in rep["ops"]
    assert sorted(rep["files"]) == sorted(p.name for p in d.iterdir())
    settings = (d / "har_model_settings.h").read_text()
    assert f"kHarTensorArenaBytes = {rep['arena_bytes']};" in settings
    assert f'kHarModelSha256 = "{rep["model_sha256"]}"' in settings
    assert 'kHarLabels[kHarNumClasses] = {"walking", "sitting", "standing", "laying"}' in settings
    assert "#define HAR_HAS_PREPROCESSING 1" in settings and "kHarGravitySos[2][6]" in settings
    resolver = (d / "har_op_resolver.h").read_text()
    assert f"MicroMutableOpResolver<{len(rep['ops'])}>" in resolver
    assert sorted(re.findall(r"r\.(Add\w+)\(\)", resolver)) == sorted(mcu.resolver_methods(rep["ops"]))


@pytest.mark.tf
def test_tflm_matches_litert(export9: dict[str, Any]) -> None:
    tflm = export9["report"]["tflm"]
    assert tflm["n"] == 40
    assert tflm["max_abs_diff_steps"] <= 1 and tflm["passed"] is True
    assert tflm["argmax_agreement"] >= 0.95
    assert 0.0 <= tflm["accuracy"] <= 1.0


_DIFF_KEYS = {"max_abs_diff_steps", "p99_abs_diff_steps", "frac_within_1_step", "argmax_agreement"}


@pytest.mark.tf
def test_tflm_kernel_diagnosis(export9: dict[str, Any]) -> None:
    """TFLM vs LiteRT reference kernels: ops before the LSTM bit-identical, LSTM step 0 within one step."""
    tflm = export9["report"]["tflm"]
    assert tflm["reference_unavailable"] is None and tflm["diagnosis_unavailable"] is None
    for key in ("vs_litert_default", "vs_litert_reference", "litert_reference_vs_default"):
        assert set(tflm[key]) == _DIFF_KEYS
    assert tflm["vs_litert_default"] == {k: tflm[k] for k in _DIFF_KEYS}  # top-level keys: LiteRT default
    diag = tflm["kernel_diagnosis"]
    assert diag["n"] == 40 and diag["against"] == "litert_reference"
    ops = [r["op"] for r in diag["ops"]]
    assert {"CONV_2D", "MAX_POOL_2D", "UNIDIRECTIONAL_SEQUENCE_LSTM", "SOFTMAX"} <= set(ops)
    lstm_at = ops.index("UNIDIRECTIONAL_SEQUENCE_LSTM")
    for row in diag["ops"][:lstm_at]:
        assert row["op"] in ("CONV_2D", "RESHAPE", "MAX_POOL_2D", "EXPAND_DIMS", "SQUEEZE"), row["op"]
        assert row["max_abs_diff_steps"] == 0 and row["frac_exact"] == 1.0, row
    # all 40 windows are diagnosed: the model output row must agree with the output comparison
    assert diag["ops"][-1]["max_abs_diff_steps"] == tflm["vs_litert_reference"]["max_abs_diff_steps"]
    (prof,) = diag["lstm"]
    assert prof["steps"] == WINDOW // 2 == len(prof["max_diff_per_step"])  # one MaxPool halves the window
    assert prof["step0_max_diff_steps"] == prof["max_diff_per_step"][0] <= 1
    assert prof["max_diff_steps"] == max(prof["max_diff_per_step"]) == diag["ops"][lstm_at]["max_abs_diff_steps"]


@pytest.mark.tf
def test_verify_without_litert_reports_reason(export9: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from har_edge.errors import BackendNotAvailable
    from har_edge.export import tflm_host, tflm_parity

    def missing(*args: object, **kwargs: object) -> None:
        raise BackendNotAvailable("no LiteRT here")

    monkeypatch.setattr(tflm_parity, "load_backend", missing)
    x = np.zeros((3, WINDOW, 9), np.int8)
    rep = tflm_host.verify_tflm(export9["model"], x, arena_bytes=export9["report"]["arena_bytes"])
    assert rep["n"] == 3 and rep["passed"] is None and rep["vs_litert_default"] is None
    assert rep["vs_litert_reference"] is None and rep["kernel_diagnosis"] is None
    assert "no LiteRT here" in rep["reference_unavailable"] and "no LiteRT here" in rep["diagnosis_unavailable"]


def test_empty_report_has_parity_keys() -> None:
    rep = mcu._verify(b"", None, None, None, 0, {})
    assert rep["n"] == 0 and rep["passed"] is None
    assert {"vs_litert_default", "vs_litert_reference", "kernel_diagnosis", "diagnosis_unavailable"} <= set(rep)


def test_explain_difference_names_lstm_drift() -> None:
    from har_edge.export.tflm_parity import diagnose, explain_difference

    t, u = 6, 2
    ops = [{"index": 0, "op": "CONV_2D", "outputs": [1],
            "tensors": {1: {"name": "c", "shape": [1, 1, t, 3], "dtype": "int8", "scale": 0.1}}},
           {"index": 1, "op": "UNIDIRECTIONAL_SEQUENCE_LSTM", "outputs": [2],
            "tensors": {2: {"name": "l", "shape": [1, t, u], "dtype": "int8", "scale": 0.1}}}]
    conv = np.arange(2 * t * 3, dtype=np.int8).reshape(2, 1, 1, t, 3)
    lstm = np.zeros((2, 1, t, u), np.int8)
    drift = lstm.copy()
    drift[1, 0, :, 1] = [1, 1, 2, 3, 2, 1]  # step 0 one step, growing to 3 at step 3
    diag = diagnose(ops, {1: conv, 2: lstm}, {1: conv.copy(), 2: drift})
    assert [r["max_abs_diff_steps"] for r in diag["ops"]] == [0, 3]
    assert diag["first_divergent_op"] == {"op_index": 1, "op": "UNIDIRECTIONAL_SEQUENCE_LSTM", "tensor": 2}
    assert diag["lstm"][0]["max_diff_per_step"] == [1, 1, 2, 3, 2, 1]
    assert diag["lstm"][0]["first_step_of_max"] == 3
    text = explain_difference({"vs_litert_reference": None, "litert_reference_vs_default": None,
                               "kernel_diagnosis": diag})
    assert "CONV_2D outputs identical" in text and "growing to 3 by time step 3" in text


@pytest.mark.tf
def test_arena_probe_brackets_measurement(export9: dict[str, Any]) -> None:
    measured = export9["report"]["arena_bytes_measured"]
    assert mcu.probe_arena(export9["model"], measured)
    assert not mcu.probe_arena(export9["model"], measured // 2)


@pytest.mark.tf
def test_unmapped_op_fails_before_writing(tiny_models: dict[int, bytes], tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    table = dict(mcu.OP_RESOLVER_METHODS)
    del table["SOFTMAX"]
    monkeypatch.setattr(mcu, "OP_RESOLVER_METHODS", table)
    with pytest.raises(ExportError, match="SOFTMAX"):
        mcu.write_mcu_export(tiny_models[9], _manifest(tiny_models[9], 9), tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.tf
def test_manifest_errors(tiny_models: dict[int, bytes], tmp_path: Path) -> None:
    model = tiny_models[9]
    bad = _manifest(model, 9)
    del bad["labels"]
    with pytest.raises(BundleError, match="labels"):
        mcu.write_mcu_export(model, bad, tmp_path)
    bad = {**_manifest(model, 9), "model_sha256": "0" * 64}
    with pytest.raises(BundleError, match="model_sha256"):
        mcu.write_mcu_export(model, bad, tmp_path)
    bad = _manifest(model, 9)
    bad["input"] = {**bad["input"], "dtype": "float32"}
    with pytest.raises(ExportError, match="full-int8"):
        mcu.write_mcu_export(model, bad, tmp_path)
    bad = _manifest(model, 9)
    bad["normalisation"] = {"mean": [0.0] * 9, "std": [1.0] * 8 + [0.0]}
    with pytest.raises(BundleError, match="std"):
        mcu.write_mcu_export(model, bad, tmp_path)
    with pytest.raises(ExportError, match="X_test_int8"):
        mcu.write_mcu_export(model, _manifest(model, 9), tmp_path, X_test_int8=np.zeros((2, 32, 9), np.float32))


# --------------------------------------------------------------------------- firmware (g++)

_STUB_RESOLVER = """
#ifndef TENSORFLOW_LITE_MICRO_MICRO_MUTABLE_OP_RESOLVER_H_
#define TENSORFLOW_LITE_MICRO_MICRO_MUTABLE_OP_RESOLVER_H_
typedef enum { kTfLiteOk = 0, kTfLiteError = 1 } TfLiteStatus;
namespace tflite {
template <unsigned int tOpCount>
class MicroMutableOpResolver {
 public:
  unsigned int registered = 0;
%s
 private:
  TfLiteStatus Add() {
    if (registered >= tOpCount) return kTfLiteError;
    ++registered;
    return kTfLiteOk;
  }
};
}  // namespace tflite
#endif
""" % "\n".join(f"  TfLiteStatus {m}() {{ return Add(); }}" for m in TFLM_RESOLVER_METHODS)

_RESOLVER_MAIN = """
#include <cstdio>
#include "har_model_data.h"
#include "har_model_settings.h"
#include "har_op_resolver.h"
#include "har_preprocess.h"
int main() {
  HarOpResolver r;
  if (HarRegisterOps(r) != kTfLiteOk) return 1;
  unsigned long sum = 0;
  for (unsigned int i = 0; i < g_har_model_data_len; ++i) sum += g_har_model_data[i];
  std::printf("%u %u %lu %u %d\\n", r.registered, g_har_model_data_len, sum, kHarTensorArenaBytes,
              static_cast<int>(reinterpret_cast<unsigned long>(g_har_model_data) % 16));
  return 0;
}
"""


@pytest.mark.tf
@pytest.mark.firmware
def test_generated_sources_compile_and_link(export9: dict[str, Any], tmp_path: Path) -> None:
    stub_dir = tmp_path / "stub" / "tensorflow" / "lite" / "micro"
    stub_dir.mkdir(parents=True)
    (stub_dir / "micro_mutable_op_resolver.h").write_text(_STUB_RESOLVER)
    (tmp_path / "main.cc").write_text(_RESOLVER_MAIN)
    d = export9["dir"]
    _compile(["-c", str(d / "har_model_data.cc"), "-o", "har_model_data.o"], tmp_path)
    _compile(["-pedantic", "-I", str(d), "-I", str(tmp_path / "stub"), "main.cc", "har_model_data.o", "-o", "main"],
             tmp_path)
    out = subprocess.run([str(tmp_path / "main")], capture_output=True, text=True, check=True).stdout.split()
    model = export9["model"]
    assert [int(v) for v in out] == [len(export9["report"]["ops"]), len(model), sum(model),
                                     export9["report"]["arena_bytes"], 0]


def _host_pipeline(export: dict[str, Any], tmp_path: Path, raw: np.ndarray, *extra: str) -> tuple[np.ndarray, np.ndarray]:
    exe = tmp_path / "har_host_test"
    _compile(["-O2", *extra, "-I", str(export["dir"]), str(REPO / "firmware_export" / "host_test" / "har_host_test.cc"),
              "-o", str(exe)], tmp_path)
    stdin = "\n".join(" ".join(f"{v:.9g}" for v in row) for row in raw) + "\n"
    proc = subprocess.run([str(exe)], input=stdin, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    feats = np.array([[float(v) for v in ln.split()[1:]] for ln in lines if ln.startswith("F ")])
    wins = np.array([[int(v) for v in ln.split()[1:]] for ln in lines if ln.startswith("W ")])
    return feats, wins


def _raw_stream(n: int = 400) -> np.ndarray:
    rng = np.random.default_rng(7)
    t = np.arange(n) / 50.0
    acc = np.stack([0.2 + 0.3 * np.sin(2 * np.pi * 1.7 * t), -0.1 + 0.2 * np.cos(2 * np.pi * 0.9 * t),
                    0.95 + 0.25 * np.sin(2 * np.pi * 2.3 * t + 1)], axis=1)
    gyro = np.stack([0.8 * np.sin(2 * np.pi * 0.7 * t), 0.4 * np.cos(2 * np.pi * 1.1 * t), 0.1 * t], axis=1)
    return np.concatenate([acc, gyro], axis=1) + 0.05 * rng.standard_normal((n, 6))


def _python_windows(features: np.ndarray, manifest: dict[str, Any]) -> np.ndarray:
    mean = np.asarray(manifest["normalisation"]["mean"])
    std = np.asarray(manifest["normalisation"]["std"])
    scale, zp = manifest["input"]["scale"], manifest["input"]["zero_point"]
    starts = range(0, len(features) - WINDOW + 1, HOP)
    wins = np.stack([features[s:s + WINDOW] for s in starts])
    q = np.clip(np.round(((wins - mean) / std) / scale) + zp, -128, 127)
    return q.reshape(len(wins), -1).astype(np.int64)


@pytest.mark.tf
@pytest.mark.firmware
def test_firmware_preprocessing_matches_python(export9: dict[str, Any], tmp_path: Path) -> None:
    from har_edge.data.preprocessing import CausalPreprocessor, PreprocessingSpec

    raw = _raw_stream()
    expected = CausalPreprocessor(PreprocessingSpec.from_dict(export9["manifest"]["preprocessing"])).process(raw)
    feats, wins = _host_pipeline(export9, tmp_path, raw)
    assert feats.shape == expected.shape
    np.testing.assert_allclose(feats, expected, atol=1e-4)
    py_wins = _python_windows(expected.astype(np.float64), export9["manifest"])
    assert wins.shape == py_wins.shape
    assert np.abs(wins - py_wins).max() <= 1
    assert np.mean(wins == py_wins) > 0.99


@pytest.mark.tf
@pytest.mark.firmware
def test_firmware_float_filters_stay_close(export9: dict[str, Any], tmp_path: Path) -> None:
    """Single-precision filters (-DHAR_PREPROCESS_REAL=float) drift, but stay within a small error."""
    from har_edge.data.preprocessing import CausalPreprocessor, PreprocessingSpec

    raw = _raw_stream()
    expected = CausalPreprocessor(PreprocessingSpec.from_dict(export9["manifest"]["preprocessing"])).process(raw)
    feats, _ = _host_pipeline(export9, tmp_path, raw, "-DHAR_PREPROCESS_REAL=float")
    np.testing.assert_allclose(feats, expected, atol=2e-4)  # measured ~3e-5 over 3000 samples


@pytest.mark.tf
@pytest.mark.firmware
def test_raw_channel_map_without_preprocessing(export3: dict[str, Any], tmp_path: Path) -> None:
    settings = (export3["dir"] / "har_model_settings.h").read_text()
    assert "#define HAR_HAS_RAW_CHANNEL_MAP 1" in settings
    assert export3["report"]["tflm"]["max_abs_diff_steps"] <= 1
    raw = _raw_stream(100)
    feats, wins = _host_pipeline(export3, tmp_path, raw)
    expected = raw[:, :3] * np.array([1.0, 9.80665, 1.0])  # acc_y is in m/s^2 in this manifest
    np.testing.assert_allclose(feats, expected, atol=1e-5)
    assert np.abs(wins - _python_windows(expected, export3["manifest"])).max() <= 1


_SKETCH_STUBS = {
    "Arduino.h": """
#pragma once
#include <cstdint>
#include <cstddef>
struct SerialStub {
  void begin(long) {}
  explicit operator bool() const { return true; }
  template <class T> void print(const T&) {}
  template <class T> void print(const T&, int) {}
  template <class T> void println(const T&) {}
  template <class T> void println(const T&, int) {}
  void println() {}
};
extern SerialStub Serial;
unsigned long micros();
unsigned long millis();
void delay(unsigned long);
""",
    "Arduino_LSM9DS1.h": """
#pragma once
struct ImuStub {
  int begin() { return 1; }
  int accelerationAvailable() { return 1; }
  int gyroscopeAvailable() { return 1; }
  int readAcceleration(float& x, float& y, float& z) { x = y = 0; z = 1; return 1; }
  int readGyroscope(float& x, float& y, float& z) { x = y = z = 0; return 1; }
};
extern ImuStub IMU;
""",
    "Chirale_TensorFlowLite.h": "#pragma once\n",
    "tensorflow/lite/schema/schema_generated.h": """
#pragma once
namespace tflite {
struct Model { unsigned int version() const { return 3; } };
inline const Model* GetModel(const void*) { static Model m; return &m; }
}
""",
    "tensorflow/lite/micro/micro_interpreter.h": """
#pragma once
#include <cstddef>
#include <cstdint>
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"
#define TFLITE_SCHEMA_VERSION (3)
typedef enum { kTfLiteNoType = 0, kTfLiteInt8 = 9 } TfLiteType;
struct TfLiteIntArray { int size; int data[4]; };
struct TfLiteTensor { TfLiteType type; TfLiteIntArray* dims; struct { int8_t* int8; } data; };
namespace tflite {
class MicroInterpreter {
 public:
  template <class R>
  MicroInterpreter(const Model*, const R&, uint8_t*, size_t) {}
  TfLiteStatus AllocateTensors() { return kTfLiteOk; }
  TfLiteStatus Invoke() { return kTfLiteOk; }
  TfLiteStatus Reset() { return kTfLiteOk; }
  TfLiteTensor* input(size_t) { return nullptr; }
  TfLiteTensor* output(size_t) { return nullptr; }
  size_t arena_used_bytes() const { return 0; }
};
}
""",
}


@pytest.mark.tf
@pytest.mark.firmware
def test_sketch_compiles_against_stubs(export9: dict[str, Any], tmp_path: Path) -> None:
    """Syntax/type check of the Arduino sketch with stub Arduino, IMU and TFLM headers."""
    stub = tmp_path / "stub"
    for rel, text in {**_SKETCH_STUBS, "tensorflow/lite/micro/micro_mutable_op_resolver.h": _STUB_RESOLVER}.items():
        (stub / rel).parent.mkdir(parents=True, exist_ok=True)
        (stub / rel).write_text(text)
    sketch = REPO / "devices" / "arduino_nano33_ble_sense" / "har_edge_nano33" / "har_edge_nano33.ino"
    _compile(["-fsyntax-only", "-I", str(stub), "-I", str(export9["dir"]), "-include", "Arduino.h",
              "-x", "c++", str(sketch)], tmp_path)


def _settings_with_smoothing(export: dict[str, Any], out: Path, **extra: Any) -> dict[str, Any]:
    """A copy of ``export``'s headers whose har_model_settings.h is rendered for ``manifest | extra``."""
    shutil.copytree(export["dir"], out)
    manifest = {**export["manifest"], **extra}
    rep = export["report"]
    values = mcu._settings_values(manifest, sha256=rep["model_sha256"], arena_bytes=rep["arena_bytes"],
                                  arena_measured=rep["arena_bytes_measured"], arena_margin=0.25,
                                  model_bytes=rep["model_bytes"], preprocessing=mcu._preprocessing_block(manifest))
    (out / "har_model_settings.h").write_text(mcu._render("har_model_settings.h.tmpl", values))
    return {**export, "dir": out, "manifest": manifest}


@pytest.mark.tf
@pytest.mark.firmware
@pytest.mark.parametrize("extra", [
    {},  # no smoothing in the manifest: the runtime's defaults (mean of the last 2)
    {"smoothing": {"method": "vote", "window": 3, "votes": 2, "confidence_floor": 0.3}},
    {"smoothing": {"method": "hmm", "switch_probability": 0.2, "evidence_weight": 0.7, "confidence_floor": 0.4}},
    {"uncertain_labels": ["laying"], "smoothing": {"method": "hmm", "switch_probability": 0.3, "structure": "postural",
                                                   "forbidden_probability": 1e-4, "leave_transition_probability": 0.6}},
    {"labels": ["walking", "sitting", "standing", "STAND_TO_SIT"], "uncertain_labels": ["STAND_TO_SIT"],
     "smoothing": {"method": "hmm", "switch_probability": 0.3, "evidence_weight": 0.5, "structure": "postural"}},
], ids=["default", "vote", "hmm", "hmm-postural", "hmm-postural-directed"])
def test_firmware_smoothing_matches_the_runtime(export9: dict[str, Any], tmp_path: Path, extra: dict[str, Any]) -> None:
    """har::ActivitySmoother (the sketch's) shows what the runtime's smoother shows for the same probabilities."""
    from har_edge.inference.bundle import output_step
    from har_edge.runtime.decoding import make_smoother
    from har_edge.runtime.smoothing import SmoothingConfig

    export = _settings_with_smoothing(export9, tmp_path / "mcu", **extra)
    labels = tuple(export["manifest"]["labels"])
    rng = np.random.default_rng(11)
    # a sticky random walk over the classes, with noisy softmax outputs
    state, rows = 0, []
    for _ in range(600):
        state = int(rng.integers(0, len(labels))) if rng.random() < 0.05 else state
        logits = rng.normal(0, 1.2, len(labels)) + 4.0 * (np.arange(len(labels)) == state)
        rows.append(np.exp(logits) / np.exp(logits).sum())
    step = output_step(export["manifest"])  # an int8 model's outputs: multiples of its scale, many exactly 0
    assert step > 0
    probs = (np.round(np.asarray(rows) / step) * step).astype(np.float32)
    assert (probs == 0).any()
    exe = tmp_path / "har_host_test"
    _compile(["-O2", "-I", str(export["dir"]), str(REPO / "firmware_export" / "host_test" / "har_host_test.cc"), "-o", str(exe)],
             tmp_path)
    stdin = "\n".join(" ".join(f"{v:.9g}" for v in row) for row in probs) + "\n"
    proc = subprocess.run([str(exe), "smooth"], input=stdin, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    got = [ln.split() for ln in proc.stdout.splitlines()]
    sm = make_smoother(labels, SmoothingConfig(**export["manifest"].get("smoothing", {})),
                       uncertain_labels=tuple(export["manifest"].get("uncertain_labels", ())), output_step=step)
    want = [sm.update(p)[:2] for p in probs]
    shown = [labels[int(g[1])] if int(g[1]) >= 0 else "uncertain" for g in got]
    assert len(got) == len(probs)
    assert shown == [w[0] for w in want]
    np.testing.assert_allclose([float(g[2]) for g in got], [w[1] for w in want], atol=1e-5)
    assert len(set(shown)) > 2  # the sequence really exercised the smoother


@pytest.mark.tf
@pytest.mark.firmware
def test_firmware_streaming_model_windows_match_the_runtime(export9: dict[str, Any], tmp_path: Path) -> None:
    """A streaming model (kHarCarryState): the stream starts with the context at the normalisation mean and the
    firmware cuts the windows the Python runtime cuts (har_edge.runtime.stream.stream_start_buffer)."""

    from har_edge.data.preprocessing import CausalPreprocessor, PreprocessingSpec
    from har_edge.data.windowing import segment_windows
    from har_edge.inference.bundle import Bundle
    from har_edge.runtime.stream import stream_start_buffer

    export = _settings_with_smoothing(export9, tmp_path / "mcu", recurrent_state="carried")
    assert "kHarCarryState = true" in (export["dir"] / "har_model_settings.h").read_text()
    raw = _raw_stream()
    features = CausalPreprocessor(PreprocessingSpec.from_dict(export["manifest"]["preprocessing"])).process(raw)
    _, wins = _host_pipeline(export, tmp_path, raw)
    manifest = export["manifest"]
    bundle = Bundle(tmp_path, tmp_path / "model.tflite", b"", manifest)
    start, _ = stream_start_buffer(bundle)
    assert start.shape == (WINDOW - HOP, 9)
    stream = segment_windows(np.concatenate([start, features]).astype(np.float64), WINDOW, HOP)
    mean, std = np.asarray(manifest["normalisation"]["mean"]), np.asarray(manifest["normalisation"]["std"])
    scale, zp = manifest["input"]["scale"], manifest["input"]["zero_point"]
    py = np.clip(np.round(((stream - mean) / std) / scale) + zp, -128, 127).reshape(len(stream), -1).astype(np.int64)
    assert wins.shape == py.shape and len(wins) == len(raw) // HOP
    assert np.abs(wins - py).max() <= 1 and np.mean(wins == py) > 0.99
    assert (wins[0, : (WINDOW - HOP) * 9] == np.clip(zp, -128, 127)).all()  # the context: zeros once normalised
