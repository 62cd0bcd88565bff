"""A tiny seeded forecaster: trained by the CLI, exported (float32, int8), served on the device path and over MQTT."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from har_edge.errors import BundleError
from tests.fixtures.broker import collect_messages
from tests.fixtures.models import SAMPLE_ROOT
from tests.fixtures.no_tensorflow import BLOCK_TENSORFLOW as BLOCK_TF

pytestmark = pytest.mark.tf

MELBOURNE = SAMPLE_ROOT / "weather_melbourne_daily" / "daily-min-temperatures.csv"


def test_run_directory_and_backtest(tiny_forecast_run: Path) -> None:
    for name in ("model.keras", "config.json", "run.json", "normalisation.json", "metrics.json", "backtest.json",
                 "forecasts.npz", "backtest.png"):
        assert (tiny_forecast_run / name).is_file(), name
    bt = json.loads((tiny_forecast_run / "backtest.json").read_text())
    assert bt["protocol"]["origins"] == 104 and bt["protocol"]["horizon"] == 3  # every 7th day of 1989-1990
    assert {"naive", "drift", "lstm (keras)"} <= set(bt["scores"])
    assert json.loads((tiny_forecast_run / "run.json").read_text())["task"] == "forecast"


def test_export_manifest_and_parity(tiny_forecast_run: Path, tiny_forecast_exports: Path) -> None:
    from har_edge.inference.bundle import load_bundle

    keras_mae = json.loads((tiny_forecast_run / "metrics.json").read_text())["backtest"]["mae_mean"]
    for mode, tol in (("float32", 1e-4), ("int8", 0.05)):
        report = json.loads((tiny_forecast_exports / mode / "report.json").read_text())
        assert report["task"] == "forecast" and abs(report["tflite"]["mae_rel_diff_vs_keras"]) <= tol
        b = load_bundle(tiny_forecast_exports / mode)
        fc = b.manifest["forecast"]
        assert b.task == "forecast" and fc["horizon"] == 3 and fc["unit"] == "degC" and fc["step_s"] == 86400.0
        assert fc["transform"] == "change" and fc["backtest"]["mae_mean"] == pytest.approx(report["tflite"]["mae_mean"])
        assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in report["tflite"]["ops"]
    assert report["keras"]["mae_mean"] == pytest.approx(keras_mae)


def test_classifier_and_forecaster_bundles_never_cross(tiny_forecast_exports: Path, float32_bundle: Path) -> None:
    from har_edge.inference.classifier import Classifier
    from har_edge.inference.forecaster import Forecaster

    with pytest.raises(BundleError, match="a 'forecast' bundle, but a 'classification' model is needed"):
        Classifier.from_bundle(tiny_forecast_exports / "float32")
    with pytest.raises(BundleError, match="a 'classification' bundle, but a 'forecast' model is needed"):
        Forecaster.from_bundle(float32_bundle)


def test_numpy_engine_serves_the_linear_head(tiny_forecast_exports: Path) -> None:
    from har_edge.data.series import SeriesSpec, load_series
    from har_edge.inference.forecaster import Forecaster

    s = load_series(SeriesSpec(path=str(MELBOURNE), time_column="Date", columns=("Temp",), units=("degC",), target="Temp",
                               step="1d", fill="interpolate"))
    origins = np.arange(100, 3000, 97)
    with Forecaster.from_bundle(tiny_forecast_exports / "float32") as lite, \
            Forecaster.from_bundle(tiny_forecast_exports / "float32", backend="numpy") as ref:
        a, b = lite.forecast_at(s.times_s, s.values, origins), ref.forecast_at(s.times_s, s.values, origins)
        assert ref.backend == "numpy" and np.abs(a - b).max() < 1e-4
        one = lite.forecast(s.times_s[:101], s.values[:101])
        np.testing.assert_allclose(one.values, a[0], rtol=1e-6)


def _run_without_tensorflow(bundle: Path, csv: Path) -> tuple[list[dict[str, object]], str]:
    code = BLOCK_TF + (
        "from har_edge.cli import main\n"
        f"rc = main(['run', '--bundle', {str(bundle)!r}, '--source', 'csv:{csv}', '--speed', 'max'])\n"
        "assert not any(k.split('.')[0] in ('tensorflow', 'tf_keras') for k in sys.modules)\n"
        "sys.exit(rc)\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert p.returncode == 0, p.stderr[-2000:]
    return [json.loads(x) for x in p.stdout.splitlines() if x.startswith("{")], p.stderr


def test_device_run_without_tensorflow_reproduces_the_backtest(tiny_forecast_exports: Path, tmp_path: Path) -> None:
    from har_edge.data.series import load_series
    from har_edge.forecasting.backtest import make_backtest_set
    from har_edge.forecasting.config import load_forecast_config
    from har_edge.inference.bundle import load_bundle

    bundle = tiny_forecast_exports / "float32"
    # the raw sample lacks two days: the device fills nothing, each gap restarts the 14-row history
    lines, err = _run_without_tensorflow(bundle, MELBOURNE)
    assert len(lines) == 3650 - 3 * 13 and "2 gaps" in err
    assert {"values", "unit", "issued_at", "step_s", "seq", "model_hash", "skill_vs_naive"} <= set(lines[0])
    # the series as training saw it (gaps filled by the config's rule), with Unix-second timestamps
    cfg = load_forecast_config(Path(__file__).resolve().parents[1] / "fixtures" / "tiny_forecast.toml")
    series = load_series(cfg.series, base_dir=SAMPLE_ROOT)
    filled = tmp_path / "filled.csv"
    filled.write_text("timestamp,Temp\n" + "".join(f"{t:.0f},{float(v)!r}\n" for t, v in zip(series.times_s, series.values[:, 0])))
    lines, err = _run_without_tensorflow(bundle, filled)
    assert len(lines) == len(series) - 13 and "0 gaps" in err
    bset = make_backtest_set(series, cfg)
    by_time = {d["issued_at"]: d["values"] for d in lines}
    served = np.array([by_time[float(t)] for t in bset.origin_times_s])
    mae_served = float(np.abs(served - bset.actual).mean())
    assert mae_served == pytest.approx(load_bundle(bundle).manifest["forecast"]["backtest"]["mae_mean"], abs=1e-5)


def test_stream_spacing_rules(tiny_forecast_exports: Path) -> None:
    from har_edge.inference.forecaster import Forecaster
    from har_edge.runtime.forecast_stream import ForecastStream
    from har_edge.runtime.samples import SampleChunk

    day = 86400.0
    with Forecaster.from_bundle(tiny_forecast_exports / "float32") as fc:
        stream = ForecastStream(fc)
        t = np.arange(20) * day
        v = (15 + np.sin(np.arange(20)))[:, None]
        out = stream.feed(SampleChunk(t, v, ("Temp",), ("degC",)))
        assert len(out) == 20 - 13 and out[-1].forecast.values.shape == (3,)
        bad_t = np.array([19 * day, 19.5 * day, 20 * day, 25 * day])  # duplicate, off-grid, good, gap
        out = stream.feed(SampleChunk(bad_t, np.full((4, 1), 15.0), ("Temp",), ("degC",)))
        st = stream.stats
        assert (st.out_of_order, st.off_grid, st.gaps, len(out)) == (1, 1, 1, 1)
        out = stream.feed(SampleChunk(np.array([26 * day]), np.array([[np.nan]]), ("Temp",), ("degC",)))
        assert stream.stats.bad_values == 1 and not out
        with pytest.raises(Exception, match="lacks column"):
            stream.feed(SampleChunk(np.array([27 * day]), np.array([[1.0]]), ("acc_x",), ("g",)))


def test_mqtt_forecasts_retained_with_discovery(mosquitto_broker, tiny_forecast_exports: Path, tmp_path: Path) -> None:
    from har_edge.cli import main

    head = MELBOURNE.read_text().splitlines()[:40]
    csv = tmp_path / "recent.csv"
    csv.write_text("\n".join(head) + "\n")
    with collect_messages(mosquitto_broker, ["har/fc1/forecast/#", "homeassistant/sensor/fc1/#"]) as got:
        rc = main(["run", "--bundle", str(tiny_forecast_exports / "int8"), "--source", f"csv:{csv}", "--speed", "max",
                   "--broker", mosquitto_broker.url, "--device-id", "fc1", "--state-dir", str(tmp_path / "state")])
        assert rc == 0
        assert got.wait_for(lambda ms: sum(m.topic == "har/fc1/forecast/Temp" for m in ms) >= 39 - 13)
        assert got.wait_for(lambda ms: sum(m.topic.endswith("/config") for m in ms) >= 2)
    fcs = [m for m in got.messages if m.topic == "har/fc1/forecast/Temp"]
    p = json.loads(fcs[-1].payload)
    assert fcs[-1].qos == 1 and [json.loads(m.payload)["seq"] for m in fcs] == list(range(1, len(fcs) + 1))
    assert p["unit"] == "degC" and p["step_s"] == 86400.0 and len(p["values"]) == 3 and p["issued_at"] == 350438400.0  # 1981-02-08, the last row
    assert ("warning" in p) == (p["skill_vs_naive"] <= 0) and p["useful"] == (p["skill_vs_naive"] > 0)
    configs = {m.topic: json.loads(m.payload) for m in got.messages if m.topic.endswith("/config")}
    assert set(configs) == {"homeassistant/sensor/fc1/forecast_temp_1/config", "homeassistant/sensor/fc1/forecast_temp_3/config"}
    c3 = configs["homeassistant/sensor/fc1/forecast_temp_3/config"]
    assert c3["state_topic"] == "har/fc1/forecast/Temp" and "[2]" in c3["value_template"] and c3["device_class"] == "temperature"
    # retained: a late subscriber gets the newest forecast at once
    with collect_messages(mosquitto_broker, "har/fc1/forecast/Temp") as late:
        assert late.wait_for(lambda ms: len(ms) >= 1)
        assert late.messages[0].retain and json.loads(late.messages[0].payload)["seq"] == len(fcs)


def test_cli_predict_and_backtest(tiny_forecast_run: Path, tiny_forecast_exports: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    from har_edge.cli import main

    csv = tmp_path / "recent.csv"
    csv.write_text("\n".join(MELBOURNE.read_text().splitlines()[:60]) + "\n")
    assert main(["forecast", "predict", str(tiny_forecast_exports / "float32"), "--input", str(csv), "--backend", "numpy"]) == 0
    out_b = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert main(["forecast", "predict", str(tiny_forecast_run), "--input", str(csv)]) == 0
    out_k = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out_b["origin"] == out_k["origin"] == "1981-02-28T00:00:00" and len(out_b["values"]) == 3
    np.testing.assert_allclose(out_b["values"], out_k["values"], atol=1e-3)
    assert out_b["times"][0] == "1981-03-01T00:00:00"
    rc = main(["forecast", "backtest", str(tiny_forecast_run), "--bundle", str(tiny_forecast_exports / "int8"),
               "--out", str(tmp_path / "bt"), "--data-root", str(SAMPLE_ROOT)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "bundle int8" in text and "naive" in text
    scores = json.loads((tmp_path / "bt" / "backtest.json").read_text())["scores"]
    assert scores["bundle int8"]["mae_mean"] == pytest.approx(scores["lstm (keras)"]["mae_mean"], rel=0.05)
