from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from har_edge.config import load_run_config
from har_edge.data.normalisation import Standardiser, fit_standardiser
from har_edge.data.paths import resolve_data_root
from har_edge.data.recording import Recording
from har_edge.data.resampling import StreamResampler, resample_recording
from har_edge.data.units import convert_units, unit_scale
from har_edge.errors import ConfigError, DataError

REPO = Path(__file__).resolve().parents[2]


def test_standardiser_fit_on_train_only_and_round_trip() -> None:
    rng = np.random.default_rng(0)
    train = rng.normal(3.0, 2.0, (200, 16, 3)).astype(np.float32)
    s = fit_standardiser(train)
    z = s.transform(train)
    np.testing.assert_allclose(z.reshape(-1, 3).mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(z.reshape(-1, 3).std(0), 1, atol=1e-4)
    assert Standardiser.from_dict(s.to_dict()).to_dict() == s.to_dict()
    with pytest.raises(DataError, match="4 channels but the normalisation has 3"):
        s.transform(np.zeros((2, 4)))
    with pytest.raises(DataError, match="std > 0"):
        Standardiser.from_dict({"mean": [0.0], "std": [0.0]})


def test_units() -> None:
    assert unit_scale("m/s^2", "g") == pytest.approx(1 / 9.80665)
    assert unit_scale("deg/s", "rad/s") == pytest.approx(np.pi / 180)
    np.testing.assert_allclose(convert_units(np.array([[9.80665, 180.0]]), ["m/s2", "dps"], ["g", "rad/s"]), [[1.0, np.pi]], rtol=1e-6)
    with pytest.raises(DataError, match="cannot convert 'g'"):
        unit_scale("g", "rad/s")
    with pytest.raises(DataError, match="unknown unit 'furlong'"):
        unit_scale("furlong", "g")


def test_resample_recording_poly() -> None:
    t = np.arange(400) / 20.0
    sig = np.sin(2 * np.pi * 1.0 * t)[:, None].astype(np.float32)
    rec = Recording(sig, ("acc_x",), ("g",), 20.0, np.zeros(400, np.int16), ("a",))
    up = resample_recording(rec, 50.0)
    assert up.n_samples == 1000 and up.labels is not None and up.labels.shape == (1000,)
    tt = np.arange(1000) / 50.0
    np.testing.assert_allclose(up.signals[50:-50, 0], np.sin(2 * np.pi * tt)[50:-50], atol=0.02)


def test_stream_resampler_chunked_and_gaps() -> None:
    t = np.arange(0, 10, 0.01)  # 100 Hz
    x = np.sin(2 * np.pi * 0.5 * t)[:, None]
    r = StreamResampler(50.0, source_rate_hz=100.0)
    outs = [r.process(t[i : i + 33], x[i : i + 33]) for i in range(0, len(t), 33)]
    tg = np.concatenate([o[0] for o in outs])
    assert np.allclose(np.diff(tg), 0.02)
    assert abs(len(tg) - 500) <= 1
    r2 = StreamResampler(50.0)
    tg1, _ = r2.process(np.array([0.0, 0.1]), np.zeros((2, 1)))
    tg2, _ = r2.process(np.array([5.0, 5.1]), np.zeros((2, 1)))  # 4.9 s gap: grid restarts, nothing fabricated
    assert r2.gaps == 1 and len(tg2) == 6 and tg2[0] == 5.0


def test_configs_in_repo_load() -> None:
    from har_edge.config import read_toml
    from har_edge.forecasting.config import load_forecast_config

    for p in (REPO / "training" / "configs").glob("*.toml"):
        cfg = load_forecast_config(p) if "series" in read_toml(p) else load_run_config(p)  # forecast configs have [series]
        assert cfg.name == p.stem


def test_config_errors(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text('[model]\ncell = "gru"\n')
    with pytest.raises(ConfigError, match="model.cell='gru'"):
        load_run_config(p)
    p.write_text("[model]\nunit = [3]\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['unit'\]"):
        load_run_config(p)
    p.write_text("[model\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_run_config(p)


def test_data_root_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAR_EDGE_DATA", str(tmp_path))
    assert resolve_data_root() == tmp_path
    assert resolve_data_root(REPO / "training" / "sample_data") == REPO / "training" / "sample_data"
    monkeypatch.setenv("HAR_EDGE_DATA", str(tmp_path / "missing"))
    with pytest.raises(DataError, match=r"missing \(\$HAR_EDGE_DATA\) is not a directory"):
        resolve_data_root()


def test_uci_windows_carry_the_causal_device_recipe() -> None:
    """UCI-HAR-trained models are deployable: their run records the causal preprocessing from raw acc/gyro.

    Runs on a fresh clone: the repository ships a UCI-format sample (training/sample_data/uci_har).
    """
    from har_edge.config import DataConfig, RunConfig
    from har_edge.data.datasets import prepare_windows

    root = Path(__file__).resolve().parents[2] / "training" / "sample_data"
    cfg = RunConfig(data=DataConfig(dataset="uci_har", channels=("total_acc_x", "total_acc_y", "total_acc_z"),
                                    test_subjects=(2, 4), validation_subjects=(1,)))
    s = prepare_windows(cfg, root)
    assert s.preprocessing is not None and s.preprocessing.used_inputs == ("acc_x", "acc_y", "acc_z")
    assert s.preprocessing.output_channels == s.train.channel_names == ("total_acc_x", "total_acc_y", "total_acc_z")
    assert (len(s.train), len(s.validation), len(s.test)) == (36, 18, 36)
    assert set(s.train.subject.tolist()) == {3, 11} and set(s.test.subject.tolist()) == {2, 4}
    assert s.train.X.shape[1:] == (128, 3) and set(s.train.y.tolist()) == set(range(6))
