"""``har-edge data prepare``: tiny archives in the official layouts become data roots the loaders read."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from har_edge.data.loaders import UCI_CHANNELS, load_hapt_raw, load_uci_har_npz, load_wisdm_watch
from har_edge.data.official import prepare
from har_edge.errors import DataError


def _zip(folder: Path, dest: Path, *, prefix: str = "") -> Path:
    with zipfile.ZipFile(dest, "w") as zf:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                zf.write(f, prefix + f.relative_to(folder).as_posix())
        zf.writestr("__MACOSX/._junk", b"\x00\x05")  # what a Mac adds; must be ignored
    return dest


def _nest(inner: Path, dest: Path) -> Path:
    """UCI's download: a zip holding the data set's own zip."""
    with zipfile.ZipFile(dest, "w") as zf:
        zf.write(inner, inner.name)
        zf.writestr("README.txt", "outer wrapper")
    return dest


# -- UCI HAR: UCI HAR Dataset/{train,test}/Inertial Signals/*.txt ------------------------------


def _uci_official(root: Path, n: int = 6) -> tuple[Path, dict[str, np.ndarray]]:
    base = root / "UCI HAR Dataset"
    rng = np.random.default_rng(4)
    truth = {}
    for split, subjects in (("train", [1, 3]), ("test", [2, 4])):
        sig = base / split / "Inertial Signals"
        sig.mkdir(parents=True)
        X = rng.normal(0, 1, (n, 128, 9)).astype(np.float32)
        for k, ch in enumerate(UCI_CHANNELS):
            np.savetxt(sig / f"{ch}_{split}.txt", X[:, :, k], fmt="%.7e")
        y = (np.arange(n) % 6) + 1
        np.savetxt(base / split / f"y_{split}.txt", y, fmt="%d")
        np.savetxt(base / split / f"subject_{split}.txt", np.repeat(subjects, n // 2), fmt="%d")
        truth[split] = X
        truth[f"y_{split}"] = y - 1
    (base / "activity_labels.txt").write_text("1 WALKING\n2 WALKING_UPSTAIRS\n")
    return base, truth


@pytest.mark.parametrize("form", ["folder", "zip", "zip in zip"])
def test_prepare_uci_har(tmp_path: Path, form: str) -> None:
    base, truth = _uci_official(tmp_path / "download")
    source = {"folder": tmp_path / "download",
              "zip": _zip(tmp_path / "download", tmp_path / "UCI HAR Dataset.zip"),
              "zip in zip": _nest(_zip(tmp_path / "download", tmp_path / "UCI HAR Dataset.zip"), tmp_path / "uci240.zip")}[form]
    out = tmp_path / "data"
    done = prepare("uci-har", source, out)
    assert [p.name for p in done.files] == ["uci_har_train.npz", "uci_har_test.npz"]
    for split in ("train", "test"):
        ws = load_uci_har_npz(out, split)
        np.testing.assert_allclose(ws.X, truth[split], rtol=1e-6)
        np.testing.assert_array_equal(ws.y, truth[f"y_{split}"])
    assert "sha256" in (out / "uci_har" / "SOURCE.md").read_text()


def test_official_uci_windows_take_precedence_over_the_reconstructed_ones(tmp_path: Path) -> None:
    _uci_official(tmp_path / "download")
    out = tmp_path / "data"
    (out / "uci_har").mkdir(parents=True)
    np.savez(out / "uci_har" / "uci_har_reconstructed_test.npz", X=np.zeros((1, 128, 9), np.float32), y=np.zeros(1, np.int8),
             subject=np.ones(1, np.int8), channels=np.array(UCI_CHANNELS))
    assert len(load_uci_har_npz(out, "test")) == 1
    prepare("uci-har", tmp_path / "download", out)
    assert len(load_uci_har_npz(out, "test")) == 6


# -- HAPT: RawData/{acc,gyro}_expNN_userNN.txt, RawData/labels.txt, activity_labels.txt --------

HAPT_NAMES = ["WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING", "LAYING", "STAND_TO_SIT",
              "SIT_TO_STAND", "SIT_TO_LIE", "LIE_TO_SIT", "STAND_TO_LIE", "LIE_TO_STAND"]


def _hapt_official(root: Path) -> dict[int, np.ndarray]:
    raw = root / "RawData"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(5)
    acc = {}
    for exp, user, n in ((1, 1, 300), (2, 1, 250), (3, 2, 280)):
        a = rng.normal(0, 1, (n, 3))
        np.savetxt(raw / f"acc_exp{exp:02d}_user{user:02d}.txt", a, fmt="%.8e")
        np.savetxt(raw / f"gyro_exp{exp:02d}_user{user:02d}.txt", rng.normal(0, 1, (n, 3)), fmt="%.8e")
        acc[exp] = a
    (raw / "labels.txt").write_text("1 1 5 10 120\n1 1 7 121 160\n2 1 1 1 250\n3 2 4 30 200\n")
    (root / "activity_labels.txt").write_text("".join(f"{i} {name}          \n" for i, name in enumerate(HAPT_NAMES, 1)))
    (root / "Train").mkdir()
    (root / "Train" / "X_train.txt").write_text("0 0\n")  # the feature files the converter ignores
    return acc


def test_prepare_hapt(tmp_path: Path) -> None:
    acc = _hapt_official(tmp_path / "hapt")
    out = tmp_path / "data"
    prepare("hapt", _zip(tmp_path / "hapt", tmp_path / "hapt.zip"), out)
    recs = load_hapt_raw(out)
    assert [(r.subject, r.n_samples) for r in recs] == [(1, 300), (1, 250), (2, 280)]
    np.testing.assert_allclose(recs[0].signals[:, :3], acc[1], rtol=1e-6, atol=1e-6)
    labels = recs[0].labels
    assert labels is not None and (labels[9:120] == 4).all() and (labels[120:160] == 6).all() and labels[0] == -1
    assert recs[0].label_names == tuple(HAPT_NAMES)


def test_prepare_hapt_names_what_is_missing(tmp_path: Path) -> None:
    _hapt_official(tmp_path / "hapt")
    (tmp_path / "hapt" / "RawData" / "gyro_exp02_user01.txt").unlink()
    with pytest.raises(DataError, match=r"experiments \[\(2, 1\)\] lack an acc or a gyro file"):
        prepare("hapt", tmp_path / "hapt", tmp_path / "data")
    (tmp_path / "hapt" / "RawData" / "labels.txt").unlink()
    (tmp_path / "hapt" / "RawData" / "acc_exp02_user01.txt").unlink()
    with pytest.raises(DataError, match="RawData/labels.txt: file not found"):
        prepare("hapt", tmp_path / "hapt", tmp_path / "data")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="RawData/acc_exp01_user01.txt: file not found"):
        prepare("hapt", tmp_path / "empty", tmp_path / "data")


# -- WISDM 2019: wisdm-dataset/raw/watch/accel/data_<id>_accel_watch.txt ------------------------


def _wisdm_official(root: Path) -> None:
    base = root / "wisdm-dataset" / "raw"
    for device in ("watch", "phone"):
        (base / device / "accel").mkdir(parents=True)
        (base / device / "gyro").mkdir(parents=True)
    rng = np.random.default_rng(6)
    for sid in (1600, 1601):
        lines = []
        t = 1_000_000_000
        for code in ("A", "F", "D", "M"):  # F (typing) is not one of the six kept activities
            for _ in range(40):
                x, y, z = rng.normal(0, 9.8, 3)
                lines.append(f"{sid},{code},{t},{x:.6f},{y:.6f},{z:.6f};")
                t += 50_000_000  # 20 Hz in nanoseconds
        (base / "watch" / "accel" / f"data_{sid}_accel_watch.txt").write_text("\n".join(lines) + "\n")
        (base / "phone" / "accel" / f"data_{sid}_accel_phone.txt").write_text(lines[0] + "\n")


def test_prepare_wisdm(tmp_path: Path) -> None:
    _wisdm_official(tmp_path / "w")
    inner = _zip(tmp_path / "w", tmp_path / "wisdm-dataset.zip")
    out = tmp_path / "data"
    prepare("wisdm", _nest(inner, tmp_path / "uci507.zip"), out)
    recs = load_wisdm_watch(out)
    assert [(r.subject, r.n_samples, r.label_names[int(r.labels[0])]) for r in recs] == [  # type: ignore[index]
        (1600, 40, "walking"), (1600, 40, "sitting"), (1600, 40, "kicking_soccer_ball"),
        (1601, 40, "walking"), (1601, 40, "sitting"), (1601, 40, "kicking_soccer_ball")]
    assert recs[0].sample_rate_hz == 20 and recs[0].units == ("m/s^2",) * 3


def test_prepare_wisdm_reports_a_bad_line(tmp_path: Path) -> None:
    _wisdm_official(tmp_path / "w")
    f = tmp_path / "w" / "wisdm-dataset" / "raw" / "watch" / "accel" / "data_1601_accel_watch.txt"
    f.write_text(f.read_text() + "1601,A,12,not-a-number,0,0;\n")
    with pytest.raises(DataError, match=r"data_1601_accel_watch.txt: line 161: could not convert"):
        prepare("wisdm", tmp_path / "w", tmp_path / "data")


def test_unknown_dataset_and_missing_input(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown data set 'mnist'"):
        prepare("mnist", tmp_path, tmp_path / "out")
    with pytest.raises(DataError, match="nope.zip: no such folder or zip file"):
        prepare("hapt", tmp_path / "nope.zip", tmp_path / "out")
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable zip file"):
        prepare("hapt", bad, tmp_path / "out")


def test_cli_data_prepare(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from har_edge.cli import main

    _hapt_official(tmp_path / "hapt")
    assert main(["data", "prepare", "hapt", "--from", str(tmp_path / "hapt"), "--out", str(tmp_path / "data")]) == 0
    out = capsys.readouterr().out
    assert "3 experiments of 2 volunteers" in out and f"--data-root {tmp_path / 'data'}" in out
    assert main(["data", "prepare", "hapt", "--from", str(tmp_path / "none"), "--out", str(tmp_path / "data")]) == 1
    assert "no such folder or zip file" in capsys.readouterr().err
