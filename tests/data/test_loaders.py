from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from har_edge.data.csv_recording import load_csv_recording, write_csv_recording
from har_edge.data.loaders import UCI_CHANNELS, load_hapt_raw, load_uci_har_npz, load_uci_har_official, load_wisdm_watch
from har_edge.data.recording import UNLABELLED
from har_edge.errors import DataError

SAMPLE_ROOT = Path(__file__).resolve().parents[2] / "training" / "sample_data"


def _write_official(root: Path, n: int = 5, t: int = 16) -> Path:
    """A tiny folder in the official UCI HAR layout; returns the 'UCI HAR Dataset' folder."""
    base = root / "UCI HAR Dataset"
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        sig = base / split / "Inertial Signals"
        sig.mkdir(parents=True)
        for k, ch in enumerate(UCI_CHANNELS):
            np.savetxt(sig / f"{ch}_{split}.txt", rng.standard_normal((n, t)) + k, fmt="%.7e")
        np.savetxt(base / split / f"y_{split}.txt", (np.arange(n) % 6) + 1, fmt="%d")
        np.savetxt(base / split / f"subject_{split}.txt", np.full(n, 2 if split == "test" else 1), fmt="%d")
    return base


def test_uci_official_folder_and_zip(tmp_path: Path) -> None:
    base = _write_official(tmp_path)
    ws = load_uci_har_official(tmp_path, "train")
    assert ws.X.shape == (5, 16, 9) and ws.channel_names == UCI_CHANNELS
    assert ws.y.tolist() == [0, 1, 2, 3, 4] and set(ws.subject) == {1}
    assert abs(ws.X[:, :, 8].mean() - 8) < 1  # channel order kept
    zpath = tmp_path / "UCI HAR Dataset.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for f in base.rglob("*.txt"):
            zf.write(f, f.relative_to(tmp_path))
    wz = load_uci_har_official(zpath, "test")
    np.testing.assert_allclose(wz.X, load_uci_har_official(base, "test").X)


def test_uci_official_errors(tmp_path: Path) -> None:
    base = _write_official(tmp_path)
    with pytest.raises(DataError, match="no such folder"):
        load_uci_har_official(tmp_path / "nope", "train")
    (base / "train" / "Inertial Signals" / "body_gyro_y_train.txt").unlink()
    with pytest.raises(DataError, match="body_gyro_y_train.txt: file not found"):
        load_uci_har_official(base, "train")
    np.savetxt(base / "test" / "y_test.txt", [1, 2, 9, 1, 1], fmt="%d")
    with pytest.raises(DataError, match="label 9 at row 2; expected 1..6"):
        load_uci_har_official(base, "test")
    with pytest.raises(DataError, match="split 'dev'"):
        load_uci_har_official(base, "dev")


def test_uci_npz(tmp_path: Path) -> None:
    d = tmp_path / "uci_har"
    d.mkdir()
    X = np.zeros((4, 128, 9), np.float32)
    np.savez(d / "uci_har_reconstructed_train.npz", X=X, y=np.arange(4, dtype=np.int8), subject=np.ones(4, np.int8), channels=np.array(UCI_CHANNELS))
    ws = load_uci_har_npz(tmp_path, "train")
    assert ws.X.shape == (4, 128, 9) and ws.sample_rate_hz == 50
    X[1, 3, 2] = np.inf
    np.savez(d / "uci_har_reconstructed_train.npz", X=X, y=np.arange(4, dtype=np.int8), subject=np.ones(4, np.int8), channels=np.array(UCI_CHANNELS))
    with pytest.raises(DataError, match="non-finite"):
        load_uci_har_npz(tmp_path, "train")
    with pytest.raises(DataError, match="uci_har_reconstructed_test.npz: file not found"):
        load_uci_har_npz(tmp_path, "test")


def test_hapt_sample_streams() -> None:
    recs = load_hapt_raw(SAMPLE_ROOT)
    assert len(recs) == 9
    r = recs[0]
    assert r.channel_names[:3] == ("acc_x", "acc_y", "acc_z") and r.units[3] == "rad/s" and r.sample_rate_hz == 50
    assert r.label_names[0] == "WALKING" and r.labels is not None
    # labels.txt row 1 of experiment 1: STANDING (id 5) from sample 250 to 1232, 1-based inclusive
    assert r.labels[248] == UNLABELLED and r.labels[249] == 4 and r.labels[1231] == 4 and r.labels[1232] == 6
    assert {x.subject for x in recs} == {1, 2, 3, 4, 5, 6, 7, 8, 11}


def test_hapt_bad_file(tmp_path: Path) -> None:
    p = tmp_path / "hapt_raw"
    p.mkdir()
    (p / "hapt_raw_streams.npz").write_bytes(b"garbage")
    with pytest.raises(DataError, match="hapt_raw_streams.npz: not a readable .npz"):
        load_hapt_raw(tmp_path)


def test_wisdm_fixture(tmp_path: Path) -> None:
    d = tmp_path / "wisdm2019_watch_accel_subset"
    d.mkdir()
    act = np.repeat(np.array([0, 3], np.int8), 50)
    np.savez(d / "wisdm2019_watch_accel_subset.npz", acc=np.full((100, 3), 9.8, np.float32), subject=np.full(100, 1600, np.int16),
             activity=act, subject_ids=np.array([1600], np.int16), subject_offsets=np.array([0, 100]),
             activity_names=np.array(["walking", "jogging", "stairs", "sitting", "standing", "kicking_soccer_ball"]), fs_hz=np.array(20))
    recs = load_wisdm_watch(tmp_path)
    assert len(recs) == 2 and recs[0].units == ("m/s^2",) * 3 and recs[1].labels[0] == 3 and recs[0].sample_rate_hz == 20


def test_csv_round_trip(tmp_path: Path) -> None:
    rec = load_hapt_raw(SAMPLE_ROOT)[0]
    short = type(rec)(rec.signals[200:600], rec.channel_names, rec.units, 50.0, rec.labels[200:600], rec.label_names, 1, "x")
    path = write_csv_recording(short, tmp_path / "rec.csv")
    back = load_csv_recording(path, label_names=rec.label_names)
    assert back.sample_rate_hz == 50 and back.channel_names == rec.channel_names
    np.testing.assert_allclose(back.signals, short.signals, atol=1e-5)
    np.testing.assert_array_equal(back.labels, short.labels)


def test_csv_custom_columns_units_and_rate(tmp_path: Path) -> None:
    p = tmp_path / "phone.csv"
    lines = ["time_ms,ax,ay,az"] + [f"{i * 20},0,0,9.80665" for i in range(10)]
    p.write_text("\n".join(lines) + "\n")
    rec = load_csv_recording(p, columns={"acc_x": "ax", "acc_y": "ay", "acc_z": "az"}, units={c: "m/s^2" for c in ("acc_x", "acc_y", "acc_z")},
                             time_column="time_ms", time_scale_s=1e-3, channels=["acc_x", "acc_y", "acc_z"])
    assert rec.sample_rate_hz == 50 and np.allclose(rec.signals[:, 2], 1.0)
    with pytest.raises(DataError, match="timestamps imply 50.000 Hz but sample_rate_hz=100"):
        load_csv_recording(p, columns={"acc_x": "ax", "acc_y": "ay", "acc_z": "az"}, time_column="time_ms", time_scale_s=1e-3,
                           channels=["acc_x", "acc_y", "acc_z"], sample_rate_hz=100)


@pytest.mark.parametrize(
    "body,match",
    [
        ("timestamp,acc_x,acc_y\n0,1,2\n", r"missing column\(s\) \['acc_z'\]"),
        ("timestamp,acc_x,acc_y,acc_z\n0,1,2,3\n0.02,1,x,3\n", r"line 3, column 'acc_y': 'x' is not a number"),
        ("timestamp,acc_x,acc_y,acc_z\n0,1,2,3\n0.02,1,nan,3\n", r"line 3, column 'acc_y': value is NaN or inf"),
        ("timestamp,acc_x,acc_y,acc_z\n0,1,2,3\n0.02,1,2,3\n0.01,1,2,3\n", r"line 4: timestamp 0.01 does not increase"),
        ("timestamp,acc_x,acc_y,acc_z\n0,1,2,3\n0.02,1,2\n", r"line 3 has 3 fields; expected 4"),
        ("", "empty file"),
        ("timestamp,acc_x,acc_y,acc_z,label\n0,1,2,3,FLYING\n0.02,1,2,3,\n", r"unknown label\(s\) \['FLYING'\]"),
    ],
)
def test_csv_bad_input(tmp_path: Path, body: str, match: str) -> None:
    p = tmp_path / "bad.csv"
    p.write_text(body)
    with pytest.raises(DataError, match=match) as info:
        load_csv_recording(p, label_names=("WALKING",))
    assert "bad.csv" in str(info.value)


def test_csv_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nope.csv: file not found"):
        load_csv_recording(tmp_path / "nope.csv")


def test_unknown_channel_selection() -> None:
    rec = load_hapt_raw(SAMPLE_ROOT)[0]
    with pytest.raises(DataError, match=r"unknown channel\(s\) \['mag_x'\]"):
        rec.select_channels(["acc_x", "mag_x"])


def test_wisdm_through_prepare_windows(tmp_path: Path) -> None:
    """A WISDM-like watch file (20 Hz, m/s²) → g → causal preprocessing → windows split by subject."""
    from har_edge.config import DataConfig, PreprocessingConfig, RunConfig
    from har_edge.data.datasets import prepare_windows

    d = tmp_path / "wisdm2019_watch_accel_subset"
    d.mkdir()
    rng = np.random.default_rng(0)
    subjects = [1600, 1601, 1602]
    n = 200
    acc = (rng.normal(0, 1, (n * 3, 3)) + [0, 0, 9.80665]).astype(np.float32)
    act = np.tile(np.repeat(np.array([0, 3], np.int8), n // 2), 3)
    np.savez(d / "wisdm2019_watch_accel_subset.npz", acc=acc, subject=np.repeat(subjects, n).astype(np.int16), activity=act,
             subject_ids=np.array(subjects, np.int16), subject_offsets=np.array([0, n, 2 * n, 3 * n]),
             activity_names=np.array(["walking", "jogging", "stairs", "sitting", "standing", "kicking_soccer_ball"]), fs_hz=np.array(20))
    cfg = RunConfig(
        data=DataConfig(dataset="wisdm", sample_rate_hz=20, window_samples=40, hop_samples=20, test_subjects=(1602,), validation_subjects=(1601,)),
        preprocessing=PreprocessingConfig(output_channels=("body_acc_z", "total_acc_z"), noise_cutoff_hz=8.0),
    )
    s = prepare_windows(cfg, tmp_path)
    assert s.train.X.shape[1:] == (40, 2) and set(s.train.subject) == {1600} and set(s.test.subject) == {1602}
    assert abs(float(s.train.X[:, :, 1].mean()) - 1.0) < 0.05  # m/s² converted to g, gravity in total_acc
    assert abs(float(s.train.X[:, :, 0].mean())) < 0.1  # and removed from body_acc
    assert s.preprocessing is not None and s.preprocessing.used_inputs == ("acc_x", "acc_y", "acc_z")
