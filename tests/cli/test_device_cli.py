from __future__ import annotations

from pathlib import Path

import pytest

from har_edge.cli import main
from har_edge.cli.run import load_device_config
from har_edge.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_example_device_config_parses() -> None:
    cfg = load_device_config(str(REPO / "devices" / "raspberry-pi" / "config.example.toml"))
    assert cfg["source"].startswith("i2c:mpu6050") and cfg["smoothing"] == {}  # the bundle's own smoothing
    assert cfg["mqtt"]["discovery"] is True and cfg["state_dir"] == "/var/lib/har-edge"


def test_device_config_errors(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text('bundel = "x"\n')
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['bundel'\]"):
        load_device_config(str(p))
    with pytest.raises(ConfigError, match="device config not found"):
        load_device_config(str(tmp_path / "none.toml"))


@pytest.mark.mqtt
def test_doctor_checks_bundle_and_broker(float32_bundle: Path, mosquitto_broker, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--bundle", str(float32_bundle), "--broker", mosquitto_broker.url]) == 0
    out = capsys.readouterr().out
    assert "[ok] bundle" in out and "[ok] state reset" in out and "[ok] broker: connected" in out
    port = mosquitto_broker.port
    mosquitto_broker.stop()
    assert main(["doctor", "--bundle", str(float32_bundle), "--broker", f"mqtt://127.0.0.1:{port}"]) == 1
    assert "[FAIL] broker: cannot reach" in capsys.readouterr().out


def test_doctor_reports_a_broken_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--bundle", str(tmp_path)]) == 1
    assert "[FAIL] bundle" in capsys.readouterr().out


def test_run_with_declared_source_units(float32_bundle: Path, heldout_recording, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A phone CSV in m/s² and deg/s with its own column names gives the same activities as the g / rad/s one."""
    import json

    import numpy as np

    rec = heldout_recording
    n = 1500
    t = np.arange(n) / 50.0
    sig = rec.signals[:n].astype(np.float64)
    std = tmp_path / "std.csv"
    phone = tmp_path / "phone.csv"
    std.write_text("timestamp,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z\n" + "\n".join(
        ",".join(f"{v:.7f}" for v in [t[i], *sig[i]]) for i in range(n)) + "\n")
    conv = sig * np.array([9.80665] * 3 + [180 / np.pi] * 3)
    phone.write_text("time,ax,ay,az,gx,gy,gz\n" + "\n".join(",".join(f"{v:.7f}" for v in [t[i], *conv[i]]) for i in range(n)) + "\n")
    cfg = tmp_path / "device.toml"
    cfg.write_text('[source_options]\nunits = { acc = "m/s^2", gyro = "deg/s" }\n'
                   'columns = { timestamp = "time", acc_x = "ax", acc_y = "ay", acc_z = "az", gyro_x = "gx", gyro_y = "gy", gyro_z = "gz" }\n')
    assert main(["run", "--bundle", str(float32_bundle), "--source", f"csv:{std}", "--speed", "max"]) == 0
    ref = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    assert main(["run", "--config", str(cfg), "--bundle", str(float32_bundle), "--source", f"csv:{phone}", "--speed", "max"]) == 0
    got = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    assert len(got) == len(ref) > 10
    assert [g["activity"] for g in got] == [r["activity"] for r in ref]


def test_run_hop_and_bundle_smoothing_settings(float32_bundle: Path, heldout_csv: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """--hop-samples classifies more often; the device config's [smoothing] keys override the bundle's own smoothing."""
    import json

    from har_edge.cli.run import smoothing_config
    from har_edge.inference.bundle import load_bundle
    from har_edge.runtime.smoothing import SmoothingConfig

    assert main(["run", "--bundle", str(float32_bundle), "--source", f"csv:{heldout_csv}", "--speed", "max"]) == 0
    base = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    hop = load_bundle(float32_bundle).hop_samples
    assert main(["run", "--bundle", str(float32_bundle), "--source", f"csv:{heldout_csv}", "--speed", "max",
                 "--hop-samples", str(hop // 2)]) == 0
    halved = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(halved) in (2 * len(base) - 1, 2 * len(base))
    bundle = load_bundle(float32_bundle)
    carrying = type(bundle)(bundle.directory, bundle.model_path, bundle.model_bytes,
                            dict(bundle.manifest, smoothing={"method": "hmm", "switch_probability": 0.2}))
    assert smoothing_config(bundle, {"smoothing": {}}) == SmoothingConfig()
    assert smoothing_config(carrying, {"smoothing": {}}) == SmoothingConfig(method="hmm", switch_probability=0.2)
    assert smoothing_config(carrying, {"smoothing": {"method": "none"}}).method == "none"
    with pytest.raises(ConfigError, match="unknown key"):
        smoothing_config(carrying, {"smoothing": {"windw": 3}})


def test_example_config_clock_and_plausibility_tables() -> None:
    from har_edge.data.clock import ClockConfig
    from har_edge.runtime.plausibility import PlausibilityLimits

    cfg = load_device_config(str(REPO / "devices" / "raspberry-pi" / "config.example.toml"))
    assert ClockConfig.from_dict(cfg["clock"]) == ClockConfig()
    assert PlausibilityLimits.from_dict(cfg["plausibility"]) == PlausibilityLimits()
    with pytest.raises(ConfigError, match="unknown key"):
        PlausibilityLimits.from_dict({"acc_max": 1})
    with pytest.raises(ConfigError, match="acc_max_g"):
        PlausibilityLimits(acc_max_g=-1)
