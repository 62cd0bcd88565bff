"""Fine-tuning a trained run on one person's recordings: what is kept, freeze, a new head, export and the device path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from har_edge.errors import ConfigError
from tests.fixtures.models import SAMPLE_ROOT

pytestmark = pytest.mark.tf

FINE_TUNE = """name = "tiny_personal"
[data]
dataset = "recordings"
path = "set by --recordings"
split_by = "time"
split_block_s = 10.0
train_hop_samples = 16
[train]
epochs = 3
batch_size = 64
learning_rate = 0.002
patience = 3
seed = 3
keep_source = 0.5
freeze = ["conv0"]
"""


@pytest.fixture(scope="module")
def fine_tuned_run(tmp_path_factory: pytest.TempPathFactory, tiny_run: Path, personal_recordings: Path) -> Path:
    """``har-edge train --config ... --init-from TINY --recordings PERSONAL`` (a few seconds)."""
    from har_edge.cli import main

    folder = tmp_path_factory.mktemp("ft")
    (folder / "fine_tune.toml").write_text(FINE_TUNE)
    out = folder / "run"
    assert main(["train", "--config", str(folder / "fine_tune.toml"), "--init-from", str(tiny_run), "--recordings",
                 str(personal_recordings), "--out", str(out), "--quiet"]) == 0
    return out


def test_fine_tuned_run_keeps_the_source_pipeline(fine_tuned_run: Path, tiny_run: Path) -> None:
    ft, src = (json.loads((r / "config.json").read_text()) for r in (fine_tuned_run, tiny_run))
    assert ft["model"] == src["model"] and ft["preprocessing"]["output_channels"] == src["preprocessing"]["output_channels"]
    assert (ft["data"]["sample_rate_hz"], ft["data"]["window_samples"], ft["data"]["hop_samples"]) == (50.0, 64, 32)
    assert ft["train"]["init_from"] == str(tiny_run) and ft["data"]["dataset"] == "recordings"
    assert json.loads((fine_tuned_run / "normalisation.json").read_text()) == json.loads((tiny_run / "normalisation.json").read_text())
    run_ft, run_src = (json.loads((r / "run.json").read_text()) for r in (fine_tuned_run, tiny_run))
    assert run_ft["preprocessing"] == run_src["preprocessing"] and run_ft["channel_names"] == run_src["channel_names"]
    assert run_ft["label_names"] == run_src["label_names"] and ft["data"]["labels"] == run_src["label_names"]
    m = json.loads((fine_tuned_run / "metrics.json").read_text())
    prov = m["fine_tuned_from"]
    assert prov["head"] == "kept" and prov["frozen_layers"] == ["conv0"] and prov["keep_source"] == 0.5
    assert "split by time" in m["split"] and "recordings marked test" in m["split"]
    assert m["test_accuracy"] > 0.4 and m["n_test"] > 50


def test_freeze_is_honoured(fine_tuned_run: Path, tiny_run: Path) -> None:
    from har_edge.models.training import load_keras_model

    ft, src = load_keras_model(fine_tuned_run), load_keras_model(tiny_run)
    for a, b in zip(ft.get_layer("conv0").get_weights(), src.get_layer("conv0").get_weights()):
        np.testing.assert_array_equal(a, b)  # frozen (and blended with itself: unchanged)
    assert any(not np.array_equal(a, b) for a, b in zip(ft.get_layer("lstm0").get_weights(), src.get_layer("lstm0").get_weights()))


def test_new_label_set_gets_a_new_head_from_the_old_rows(tiny_run: Path) -> None:
    from har_edge.models import fine_tuning
    from har_edge.models.run_dir import load_run_info

    source = fine_tuning.load_source(str(tiny_run))
    cfg = fine_tuning.resolve_config(load_run_info(tiny_run).config, source)
    labels = ("SITTING", "WALKING", "JUMPING")
    model, prov = fine_tuning.initial_model(source, cfg, labels, seed=0)
    (w, b), (w_src, b_src) = model.layers[-1].get_weights(), source.model.layers[-1].get_weights()
    assert b.shape == (3,)
    assert w.shape[1] == 3 and prov["head"].startswith("new (2 of 3")
    src_labels = source.info.label_names
    for j, lab in enumerate(labels[:2]):
        np.testing.assert_array_equal(w[:, j], w_src[:, src_labels.index(lab)])
        assert b[j] == b_src[src_labels.index(lab)]
    before = w[:, 2].copy()
    fine_tuning.blend_with_source(model, source, labels, 0.5)
    w2 = model.layers[-1].get_weights()[0]
    np.testing.assert_array_equal(w2[:, 2], before)  # a label the source lacks keeps its fine-tuned weights
    with pytest.raises(ConfigError, match=r"freeze names \['lstm9'\]; layers with weights are \['conv0', 'lstm0'"):
        fine_tuning.freeze_layers(model, ("lstm9",))


def test_labels_follow_the_source_order() -> None:
    from har_edge.data.datasets import SplitWindows
    from har_edge.data.recording import WindowSet
    from har_edge.models.fine_tuning import align_labels

    ws = WindowSet(np.zeros((3, 4, 1), np.float32), np.array([0, 1, 2]), np.zeros(3, np.int64), ("a",), ("g",),
                   ("jump", "sit", "walk"), 50.0)
    out = align_labels(SplitWindows(ws, ws, ws, None), ("walk", "run", "sit"))
    assert out.train.label_names == ("walk", "sit", "jump") and out.train.y.tolist() == [2, 1, 0]


def test_evaluate_the_generic_model_on_the_same_test_windows(tiny_run: Path, fine_tuned_run: Path, personal_recordings: Path,
                                                           tmp_path: Path) -> None:
    from har_edge.cli import main

    out = tmp_path / "generic.json"
    assert main(["evaluate", str(tiny_run), "--recordings", str(personal_recordings), "--split", "test", "--out", str(out)]) == 0
    generic = json.loads(out.read_text())
    assert generic["n_test"] == json.loads((fine_tuned_run / "metrics.json").read_text())["n_test"]
    assert 0 < generic["test_accuracy"] <= 1 and generic["recordings"] == str(personal_recordings)
    assert "fine_tuned_from" not in json.loads((tiny_run / "metrics.json").read_text())  # the run itself is untouched


def test_export_and_device_runtime_work_on_a_fine_tuned_run(fine_tuned_run: Path, personal_recordings: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from har_edge.cli import main
    from har_edge.export.pipeline import export_run

    report = export_run(fine_tuned_run, "all", tmp_path / "bundles", data_root=SAMPLE_ROOT, representative_count=120,
                        check_interpreters=False)
    keras_acc = report["keras"]["test_accuracy"]
    assert keras_acc == pytest.approx(json.loads((fine_tuned_run / "metrics.json").read_text())["test_accuracy"], abs=1e-9)
    assert report["modes"]["float32"]["test_accuracy"] == pytest.approx(keras_acc, abs=0.01)
    assert abs(report["modes"]["int8"]["test_accuracy"] - keras_acc) < 0.05
    capsys.readouterr()
    assert main(["run", "--bundle", str(tmp_path / "bundles" / "int8"), "--source", f"csv:{personal_recordings / 'rest.csv'}",
                 "--speed", "max"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert len(lines) > 50 and {x["activity"] for x in lines} <= {*json.loads((fine_tuned_run / "run.json").read_text())["label_names"],
                                                                  "uncertain"}


def test_blend_best_keeps_the_blend_the_score_rates_best(tiny_run: Path) -> None:
    """keep_source_choices: each blend is scored (the validation accuracy); the best stays, ties go to the first listed."""
    from har_edge.models import fine_tuning
    from har_edge.models.run_dir import load_run_info

    source = fine_tuning.load_source(str(tiny_run))
    cfg = fine_tuning.resolve_config(load_run_info(tiny_run).config, source)
    labels = source.info.label_names
    model, _ = fine_tuning.initial_model(source, cfg, labels, seed=0)
    model.set_weights([w + 1.0 for w in model.get_weights()])  # "fine-tuned": every weight moved by 1
    fine, src = model.get_weights(), source.model.get_weights()
    rated = iter([0.5, 0.9, 0.9])
    keep, scores = fine_tuning.blend_best(model, source, labels, (0.5, 0.25, 0.0), lambda: next(rated))
    assert keep == 0.25 and scores == {"0.5": 0.5, "0.25": 0.9, "0.0": 0.9}
    for got, f, s in zip(model.get_weights(), fine, src):
        np.testing.assert_allclose(got, 0.25 * s + 0.75 * f, rtol=1e-6)


def test_keep_source_choices_are_checked(tmp_path: Path) -> None:
    from har_edge.config import load_run_config

    for train, match in (("keep_source_choices = [0.5, 0.0]", "need train.init_from"),
                         ('init_from = "."\nkeep_source_choices = [0.5, 1.0]', r"keep_source_choices=\[0.5, 1.0\]"),
                         ('init_from = "."\nkeep_source = 0.5\nkeep_source_choices = [0.5]', "no keep_source beside them"),
                         ('init_from = "."\nkeep_source_choices = [0.5, 0.0]\n[data]\ndataset = "recordings"\npath = "x"\n'
                          'validation_fraction = 0.0', "judged on the validation split.*leaves none")):
        path = tmp_path / "ft.toml"
        path.write_text(f'name = "x"\n[train]\n{train}\n')
        with pytest.raises(ConfigError, match=match):
            load_run_config(path)


def test_a_fine_tuned_run_records_the_keep_source_its_validation_chose(tiny_run: Path, personal_recordings: Path,
                                                                       tmp_path: Path) -> None:
    from har_edge.cli import main

    (tmp_path / "ft.toml").write_text(FINE_TUNE.replace("keep_source = 0.5", "keep_source_choices = [0.5, 0.0]"))
    out = tmp_path / "run"
    assert main(["train", "--config", str(tmp_path / "ft.toml"), "--init-from", str(tiny_run), "--recordings",
                 str(personal_recordings), "--out", str(out), "--quiet"]) == 0
    prov = json.loads((out / "metrics.json").read_text())["fine_tuned_from"]
    assert prov["keep_source"] in (0.5, 0.0) and set(prov["keep_source_validation_accuracy"]) == {"0.5", "0.0"}
    best = max(prov["keep_source_validation_accuracy"].values())
    assert prov["keep_source_validation_accuracy"][str(prov["keep_source"])] == best


def test_fine_tuning_without_validation_keeps_the_last_average(tiny_run: Path, personal_recordings: Path,
                                                               tmp_path: Path) -> None:
    """validation_fraction = 0: every block trains, the run has no validation figures, and it still exports."""
    from har_edge.cli import main

    text = FINE_TUNE.replace("split_block_s = 10.0", "split_block_s = 10.0\nvalidation_fraction = 0.0")
    (tmp_path / "ft.toml").write_text(text.replace("keep_source = 0.5", "keep_source = 0.0\naverage_weights = 0.9"))
    out = tmp_path / "run"
    assert main(["train", "--config", str(tmp_path / "ft.toml"), "--init-from", str(tiny_run), "--recordings",
                 str(personal_recordings), "--out", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_validation"] == 0 and metrics["validation_accuracy"] is None
    assert metrics["epochs_run"] == 3 and 0 <= metrics["test_accuracy"] <= 1
    history = json.loads((out / "history.json").read_text())
    assert "val_loss" not in history and len(history["loss"]) == 3


def test_replay_adds_the_source_runs_own_windows_in_the_new_label_order(tiny_run: Path) -> None:
    """replay_source_windows: a class-stratified draw of the source's training windows, relabelled to the new
    data's label order; the source's classes the new data lacks stay out."""
    from har_edge.data.datasets import prepare_windows
    from har_edge.models import fine_tuning

    source = fine_tuning.load_source(str(tiny_run))
    src = prepare_windows(source.info.config, SAMPLE_ROOT).train
    keep = src.label_names[:2][::-1]  # two of the source's classes, in the other order
    mine = src.take(np.flatnonzero(src.y == 0)[:5])
    mine = type(mine)(mine.X, np.ones(5, np.int64), mine.subject, mine.channel_names, mine.units, keep, mine.sample_rate_hz)
    out = fine_tuning.with_replay(mine, source, SAMPLE_ROOT, 40, seed=0)
    assert len(out) == 45 and out.label_names == keep
    np.testing.assert_array_equal(out.X[:5], mine.X)
    replayed_y, replayed_X = out.y[5:], out.X[5:]
    assert set(replayed_y) == {0, 1} and abs(int((replayed_y == 0).sum()) - 20) <= 1
    for x, y in zip(replayed_X[:10], replayed_y[:10]):  # each replayed window is a source window of that class
        same = np.flatnonzero(np.all(src.X == x, axis=(1, 2)))
        assert len(same) and src.label_names[src.y[same[0]]] == keep[y]
    other = type(mine)(mine.X, mine.y, mine.subject, mine.channel_names, mine.units, ("nothing_it_knows", "b"), mine.sample_rate_hz)
    with pytest.raises(ConfigError, match="has no training windows of"):
        fine_tuning.with_replay(other, source, SAMPLE_ROOT, 40, seed=0)


def test_a_fine_tuned_run_with_replay_trains_on_both(tiny_run: Path, personal_recordings: Path, tmp_path: Path) -> None:
    from har_edge.cli import main
    from har_edge.config import load_run_config

    (tmp_path / "ft.toml").write_text(FINE_TUNE.replace("keep_source = 0.5", "replay_source_windows = 30"))
    out = tmp_path / "run"
    assert main(["train", "--config", str(tmp_path / "ft.toml"), "--init-from", str(tiny_run), "--recordings",
                 str(personal_recordings), "--out", str(out), "--quiet", "--data-root", str(SAMPLE_ROOT)]) == 0
    (tmp_path / "own.toml").write_text(FINE_TUNE.replace("keep_source = 0.5", "epochs = 1").replace("epochs = 3\n", ""))
    own = tmp_path / "own"
    assert main(["train", "--config", str(tmp_path / "own.toml"), "--init-from", str(tiny_run), "--recordings",
                 str(personal_recordings), "--out", str(own), "--quiet"]) == 0
    n = [json.loads((d / "metrics.json").read_text())["n_train"] for d in (out, own)]
    assert n[0] == n[1] + 30
    assert json.loads((out / "metrics.json").read_text())["fine_tuned_from"]["replayed_source_windows"] == 30
    for train, match in (("replay_source_windows = 10", "need train.init_from"),
                         ('init_from = "."\nreplay_source_windows = -1', "replay_source_windows=-1; expected a whole number")):
        (tmp_path / "bad.toml").write_text(f'name = "x"\n[train]\n{train}\n')
        with pytest.raises(ConfigError, match=match):
            load_run_config(tmp_path / "bad.toml")
