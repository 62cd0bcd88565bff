"""The ``recordings`` data set: a folder written by ``har-edge record``, split by person / session / time, and its errors."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from har_edge.config import DataConfig, PreprocessingConfig, RunConfig, load_run_config
from har_edge.data.datasets import prepare_windows, recording_windows
from har_edge.data.recordings import find_recordings, read_recorded_file
from har_edge.data.sidecar import RecordingInfo, read_sidecar, write_sidecar
from har_edge.errors import ConfigError, DataError
from tests.fixtures.recordings import copy_folder, record, sample_person_csv

ACC_ONLY = PreprocessingConfig(output_channels=("body_acc_x", "body_acc_y", "body_acc_z", "total_acc_x", "total_acc_y", "total_acc_z"))


def config(path: Path, **data: object) -> RunConfig:
    d = DataConfig(dataset="recordings", path=str(path), sample_rate_hz=50.0, window_samples=64, hop_samples=32)
    return RunConfig(data=dataclasses.replace(d, **data), preprocessing=ACC_ONLY)  # type: ignore[arg-type]


def sessions(ws_subject: np.ndarray, persons: tuple[str, ...]) -> set[str]:
    return {persons[int(i)] for i in np.unique(ws_subject)}


def test_person_split_keeps_each_person_in_one_split(people_recordings: Path) -> None:
    s = prepare_windows(config(people_recordings), Path("."))
    persons = ("p1", "p3", "p5", "p6")
    train, val, test = (sessions(w.subject, persons) for w in (s.train, s.validation, s.test))
    assert train and val and test and not (train & val) and not (train & test) and not (val & test)
    assert train | val | test == set(persons)
    assert s.train.label_names == tuple(sorted(s.train.label_names))  # every label found, sorted
    assert "split by person" in s.summary and s.preprocessing is not None
    again = prepare_windows(config(people_recordings), Path("."))  # seeded
    assert np.array_equal(again.test.subject, s.test.subject)


def test_recordings_marked_train_are_never_chosen_for_test(people_recordings: Path, tmp_path: Path) -> None:
    folder = copy_folder(people_recordings, tmp_path / "f")
    persons = ("p1", "p3", "p5", "p6")
    first = sessions(prepare_windows(config(folder), Path(".")).test.subject, persons)
    for name in first:
        info = read_sidecar(folder / f"s{name[1:]}.json")
        write_sidecar(folder / f"s{name[1:]}.json", dataclasses.replace(info, split="train"))
    again = sessions(prepare_windows(config(folder), Path(".")).test.subject, persons)
    assert again and not again & first


def test_named_test_and_validation_people(people_recordings: Path) -> None:
    s = prepare_windows(config(people_recordings, test_groups=("p6",), validation_groups=("p1",)), Path("."))
    persons = ("p1", "p3", "p5", "p6")
    assert sessions(s.test.subject, persons) == {"p6"} and sessions(s.validation.subject, persons) == {"p1"}
    with pytest.raises(DataError, match=r"names \['nobody'\].*persons"):
        prepare_windows(config(people_recordings, test_groups=("nobody",)), Path("."))


def test_one_person_cannot_be_split_by_person(personal_recordings: Path) -> None:
    with pytest.raises(DataError, match="one person only \\(me\\).*split_by"):
        prepare_windows(config(personal_recordings), Path("."))


def test_time_split_of_one_person_with_marked_test(personal_recordings: Path) -> None:
    gw, = recording_windows(config(personal_recordings, split_by="time"))
    s = prepare_windows(config(personal_recordings, split_by="time", train_hop_samples=16), Path("."))
    # test = exactly the recording marked split = "test"; train/validation = disjoint 10 s blocks of the other
    assert len(s.test) == int(gw.marked_test.sum())
    starts = {name: set(zip(w.extra["recording"].tolist(), w.extra["start"].tolist())) for name, w in (("v", s.validation),)}
    assert starts["v"] and "training windows every 16 samples" in s.summary
    assert len(s.train) > 1.5 * (len(gw.windows) - len(s.test) - len(s.validation))  # denser training windows
    block = 10 * 50
    for w in (s.train, s.validation):  # no window crosses a 10 s block boundary
        assert ((w.extra["start"] % block) + 64 <= block).all()


def test_time_split_without_validation(personal_recordings: Path) -> None:
    with_val = prepare_windows(config(personal_recordings, split_by="time"), Path("."))
    s = prepare_windows(config(personal_recordings, split_by="time", validation_fraction=0.0), Path("."))
    assert len(s.validation) == 0 and "validation 0" in s.summary
    assert len(s.train) == len(with_val.train) + len(with_val.validation)  # the validation blocks train instead
    assert np.array_equal(s.test.X, with_val.test.X)  # the test set does not move


def test_session_split_and_marked_test(people_recordings: Path, tmp_path: Path) -> None:
    folder = copy_folder(people_recordings, tmp_path / "f")
    info = read_sidecar(folder / "s6.json")
    write_sidecar(folder / "s6.json", dataclasses.replace(info, split="test"))
    s = prepare_windows(config(folder, split_by="session"), Path("."))
    assert sessions(s.test.subject, ("p1", "p3", "p5", "p6")) == {"p6"}
    with pytest.raises(DataError, match="marked split = \"test\".*test_groups"):
        prepare_windows(config(folder, split_by="session", test_groups=("s1",)), Path("."))


def test_a_class_with_too_little_data(people_recordings: Path, tmp_path: Path, sample_csvs: dict[int, Path]) -> None:
    folder = copy_folder(people_recordings, tmp_path / "f")
    short = sample_person_csv(tmp_path / "raw", 7, seconds=6)
    assert record("--source", f"csv:{short}", "--out", str(folder), "--person", "p7", "--label", "JUMPING") == 0
    with pytest.raises(DataError, match="label 'JUMPING' has too little training data"):
        prepare_windows(config(folder), Path("."))
    # leaving it out with [data] labels works
    labels = ("LAYING", "SITTING", "STANDING", "WALKING")
    s = prepare_windows(config(folder, labels=labels), Path("."))
    assert s.train.label_names == labels and set(np.unique(s.train.y)) == set(range(4))


def test_mixed_rates_and_units_and_wrong_units(people_recordings: Path, tmp_path: Path) -> None:
    folder = copy_folder(people_recordings, tmp_path / "rates")
    csv = folder / "s6.csv"
    lines = csv.read_text().splitlines()
    csv.write_text("\n".join(lines[:1] + [f"{float(ln.split(',')[0]) * 2:.6f}," + ln.split(",", 1)[1] for ln in lines[1:]]) + "\n")
    with pytest.raises(DataError, match="different rates.*s6.csv: 25.0 Hz"):
        prepare_windows(config(folder), Path("."))
    folder = copy_folder(people_recordings, tmp_path / "units")
    info = read_sidecar(folder / "s6.json")
    write_sidecar(folder / "s6.json", dataclasses.replace(info, units=("mg",) * 3 + info.units[3:]))
    with pytest.raises(DataError, match="look like g, not mg"):
        prepare_windows(config(folder), Path("."))
    write_sidecar(folder / "s6.json", dataclasses.replace(info, units=("m/s^2",) * 3 + info.units[3:]))
    with pytest.raises(DataError, match="s6.csv: .* is 1.02 m/s\\^2 .*look like g, not m/s\\^2"):
        prepare_windows(config(folder), Path("."))
    folder = copy_folder(people_recordings, tmp_path / "mixed")
    for name in ("s5", "s6"):  # genuinely m/s^2, declared so: plausible, but the folder mixes units
        csv, info = folder / f"{name}.csv", read_sidecar(folder / f"{name}.json")
        rows = [ln.split(",") for ln in csv.read_text().splitlines()]
        csv.write_text("\n".join([",".join(rows[0])] + [",".join([r[0], *(f"{float(v) * 9.80665:.6f}" for v in r[1:4]), *r[4:]])
                                                      for r in rows[1:]]) + "\n")
        write_sidecar(folder / f"{name}.json", dataclasses.replace(info, units=("m/s^2",) * 3 + info.units[3:]))
    with pytest.raises(DataError, match="different units.*s1.csv: g,g,g.*s5.csv: m/s\\^2"):
        prepare_windows(config(folder), Path("."))


def test_rate_below_the_model_and_missing_pieces(people_recordings: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="model runs at 100 Hz.*sample_rate_hz = 50"):
        prepare_windows(config(people_recordings, sample_rate_hz=100.0), Path("."))
    folder = copy_folder(people_recordings, tmp_path / "f")
    (folder / "s6.json").unlink()
    with pytest.raises(DataError, match="s6.csv'\\] have no .json sidecar.*har-edge record --source csv:"):
        find_recordings(folder)
    with pytest.raises(DataError, match="no recordings"):
        find_recordings(tmp_path / "f" / "..")
    write_recording(tmp_path / "acc", "rec", np.arange(500) / 50.0)
    with pytest.raises(DataError, match="rec.csv: has channels \\['acc_x', 'acc_y', 'acc_z'\\] but the model needs.*gyro_x"):
        prepare_windows(RunConfig(data=config(tmp_path / "acc").data, preprocessing=PreprocessingConfig()), Path("."))


def write_recording(folder: Path, name: str, t: np.ndarray, labels: list[str] | None = None, **info: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    acc = rng.normal(0, 0.05, (len(t), 3)) + [0, 0, 1]
    rows = [f"{ti:.6f},{a:.5f},{b:.5f},{c:.5f},{labels[i] if labels else 'walking'}" for i, (ti, (a, b, c)) in enumerate(zip(t, acc))]
    (folder / f"{name}.csv").write_text("timestamp,acc_x,acc_y,acc_z,label\n" + "\n".join(rows) + "\n")
    write_sidecar(folder / f"{name}.json", RecordingInfo(session=name, person="me", channels=("acc_x", "acc_y", "acc_z"),
                                                         units=("g",) * 3, **info))  # type: ignore[arg-type]
    return folder / f"{name}.csv"


def test_timestamps_as_recorded_duplicates_dropped_gaps_cut(tmp_path: Path) -> None:
    t = np.arange(400) / 50.0
    t = np.concatenate([t[:100], t[99:100], t[100:150], [1.0], t[150:], t[-1] + 5 + t])  # duplicate, one backwards, a 5 s gap
    f = read_recorded_file(write_recording(tmp_path, "rec", t), ("acc_x", "acc_y", "acc_z"))
    assert f.dropped_samples == 2 and len(f.timestamps_s) == 800
    assert f.parts == ((0, 400), (400, 800)) and f.rate_hz == pytest.approx(50.0)


def test_segments_file_replaces_the_label_column(tmp_path: Path) -> None:
    csv = write_recording(tmp_path, "rec", np.arange(500) / 50.0)
    (tmp_path / "rec.segments.csv").write_text("start_s,end_s,label\n0,4,sitting\n6,10,standing\n")
    f = read_recorded_file(csv, ("acc_x", "acc_y", "acc_z"))
    assert list(np.unique(f.labels[:200])) == ["sitting"] and list(np.unique(f.labels[200:300])) == [""]
    assert list(np.unique(f.labels[300:])) == ["standing"]
    (tmp_path / "rec.segments.csv").write_text("start_s,end_s,label\n0,4,sitting\n3,10,standing\n")
    with pytest.raises(DataError, match="overlap"):
        read_recorded_file(csv, ("acc_x", "acc_y", "acc_z"))
    (tmp_path / "rec.segments.csv").write_text("from,to,what\n")
    with pytest.raises(DataError, match="expected start_s,end_s,label"):
        read_recorded_file(csv, ("acc_x", "acc_y", "acc_z"))


def test_sidecar_checks(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    base = {"session": "s", "person": "me", "channels": ["acc_x"], "units": ["g"]}
    for change, message in (({"split": "later"}, "split 'later'"), ({"units": ["furlong"]}, "unknown unit"),
                            ({"person": "a/b"}, "person 'a/b'"), ({"format": "other/2"}, "format"),
                            ({"sample_rate_hz": -1}, "sample_rate_hz=-1")):
        path.write_text(json.dumps({**base, **change}))
        with pytest.raises(DataError, match=message):
            read_sidecar(path)
    path.write_text(json.dumps({k: v for k, v in base.items() if k != "person"}))
    with pytest.raises(DataError, match=r"missing key\(s\) \['person'\]"):
        read_sidecar(path)
    path.write_text(json.dumps({**base, "notes": "kept"}))
    info = read_sidecar(path)
    write_sidecar(path, info)
    assert json.loads(path.read_text())["notes"] == "kept"


def test_config_validation(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[data]\ndataset = "recordings"\n')
    with pytest.raises(ConfigError, match="needs data.path"):
        load_run_config(cfg)
    cfg.write_text('[data]\ndataset = "recordings"\npath = "mine"\nsplit_by = "window"\n')
    with pytest.raises(ConfigError, match="split_by='window'"):
        load_run_config(cfg)
    cfg.write_text('[data]\ndataset = "recordings"\npath = "mine"\n[train]\nfreeze = ["conv0"]\n')
    with pytest.raises(ConfigError, match="need train.init_from"):
        load_run_config(cfg)
    cfg.write_text('[data]\ndataset = "recordings"\npath = "mine"\nwindow_samples = 10\n[train]\ninit_from = "../run"\n')
    with pytest.raises(ConfigError, match="keeps the source run's.*remove \\[data\\] window_samples"):
        load_run_config(cfg)
    cfg.write_text('[data]\ndataset = "recordings"\npath = "mine"\n[train]\ninit_from = "../run"\n')
    loaded = load_run_config(cfg)
    assert loaded.data.path == str(tmp_path / "mine") and loaded.train.init_from == str(tmp_path.parent / "run")
    over = load_run_config(cfg, overrides={"data": {"path": "/elsewhere"}})
    assert over.data.path == "/elsewhere"
    cfg.write_text('[data]\ndataset = "wisdm"\npath = "mine"\n')
    with pytest.raises(ConfigError, match="recordings\\\" only"):
        load_run_config(cfg)
    for data, match in (('validation_fraction = 1.0', "validation_fraction=1.0; expected a number, 0 <= fraction < 1"),
                        ('validation_fraction = "none"', "validation_fraction: expected a number, got 'none'"),
                        ('validation_fraction = 0.0\nvalidation_groups = ["p1"]', "validation_groups names groups.*use one")):
        cfg.write_text(f'[data]\ndataset = "recordings"\npath = "mine"\n{data}\n')
        with pytest.raises(ConfigError, match=match):
            load_run_config(cfg)
    cfg.write_text('[data]\ndataset = "wisdm"\nvalidation_fraction = 0.0\n')
    with pytest.raises(ConfigError, match="validation_fraction applies to dataset = \\\"recordings\\\" only"):
        load_run_config(cfg)
