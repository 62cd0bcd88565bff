from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from har_edge.errors import ModelError
from har_edge.evaluation.metrics import classification_metrics
from har_edge.models.run_dir import load_run_info

pytestmark = pytest.mark.tf


def test_tiny_training_on_real_sample_beats_chance(tiny_run: Path) -> None:
    m = json.loads((tiny_run / "metrics.json").read_text())
    # 6 classes: chance is ~0.17; held-out subjects 2 and 4 of the real HAPT sample
    assert m["test_accuracy"] > 0.55, m["test_accuracy"]
    assert 0 <= m["test_macro_f1"] <= 1 and m["train_seconds"] > 0
    assert m["test_subjects"] == [2, 4] and m["validation_subjects"] == [1, 11]
    for f in ("model.keras", "config.json", "run.json", "normalisation.json", "confusion_matrix.png", "history.json"):
        assert (tiny_run / f).is_file(), f
    info = load_run_info(tiny_run)
    assert info.preprocessing is not None and info.window_samples == 64 and len(info.normalisation.mean) == 9
    assert set(m["test"]["per_class"]) == set(info.label_names)


def test_train_prints_one_line_per_epoch(tiny_run: Path) -> None:
    log = tiny_run.with_name("tiny.train.log").read_text().splitlines()
    epochs = [line for line in log if line.startswith("epoch ")]
    m = json.loads((tiny_run / "metrics.json").read_text())
    assert len(epochs) == m["epochs_run"] and epochs[0].startswith("epoch   1/8  loss ")
    assert "val_acc" in epochs[0] and epochs[0].endswith(" *")  # the first epoch is always the best so far
    assert any(line.startswith("training up to 8 epochs") for line in log)


def test_evaluate_defaults_to_the_runs_own_data_root(tiny_run: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """`har-edge evaluate RUN` right after `make demo`: the run records where its data came from."""
    from har_edge.cli import main

    sample = Path(__file__).resolve().parents[2] / "training" / "sample_data"
    assert json.loads((tiny_run / "run.json").read_text())["data_root"] == str(sample.resolve())
    monkeypatch.setenv("HAR_EDGE_DATA", str(tiny_run / "no-such-dir"))
    assert main(["evaluate", str(tiny_run), "--out", str(tiny_run.with_name("eval-default.json"))]) == 0
    out, err = capsys.readouterr()
    assert "(recorded in" in err
    printed = json.loads(out)["test_accuracy"]
    assert printed == round(printed, 4)  # rounded on screen, full precision in the file


def test_tensorflow_start_up_noise_is_hidden(tmp_path: Path) -> None:
    """TensorFlow's C++ start-up lines (oneDNN, CUDA probing, cuInit) stay off the terminal; -vv logs them once."""
    import os
    import subprocess
    import sys

    code = ("import logging, sys; logging.basicConfig(level=int(sys.argv[1]))\n"
            "from har_edge.models.keras_backend import import_keras\n"
            "k = import_keras(); m = k.Sequential([k.layers.Dense(2)]); m.build((None, 3)); print('ok')\n")
    repo = Path(__file__).resolve().parents[2]

    def run(level: int, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", code, str(level)], capture_output=True, text=True, timeout=300,
                              cwd=repo, env={**os.environ, "PYTHONPATH": str(repo), **env})

    quiet = run(logging.WARNING)
    assert quiet.returncode == 0 and quiet.stdout.strip() == "ok", quiet.stderr
    assert quiet.stderr.strip() == "", quiet.stderr
    shown = run(logging.WARNING, HAR_EDGE_NATIVE_LOGS="1")
    assert "oneDNN" in shown.stderr or "cuda" in shown.stderr.lower(), "TensorFlow printed nothing to hide here"
    debug = run(logging.DEBUG)
    assert debug.stderr.count("TensorFlow start-up messages") == 1


def test_evaluate_recomputes_metrics(tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from har_edge.cli import main

    before = json.loads((tiny_run / "metrics.json").read_text())["test_accuracy"]
    out = tmp_path / "eval.json"
    assert main(["evaluate", str(tiny_run), "--out", str(out), "--data-root", str(Path(__file__).resolve().parents[2] / "training" / "sample_data")]) == 0
    assert json.loads(out.read_text())["test_accuracy"] == pytest.approx(before, abs=1e-9)


def test_run_dir_missing_pieces(tiny_run: Path, tmp_path: Path) -> None:
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_run, broken)
    (broken / "normalisation.json").unlink()
    with pytest.raises(ModelError, match=r"missing \['normalisation.json'\]"):
        load_run_info(broken)
    with pytest.raises(ModelError, match="run directory not found"):
        load_run_info(tmp_path / "nope")


def test_metrics_known_values() -> None:
    m = classification_metrics([0, 0, 1, 1], [0, 1, 1, 1], ["a", "b"])
    assert m["accuracy"] == 0.75 and m["confusion_matrix"] == [[1, 1], [0, 2]]
    assert m["per_class"]["b"]["precision"] == pytest.approx(2 / 3) and m["per_class"]["a"]["recall"] == 0.5


def test_evaluate_numpy_backend_contract(tiny_run: Path, tmp_path: Path) -> None:
    from har_edge.cli import main

    out = tmp_path / "numpy.json"
    root = Path(__file__).resolve().parents[2] / "training" / "sample_data"
    assert main(["evaluate", str(tiny_run), "--backend", "numpy", "--out", str(out), "--data-root", str(root)]) == 0
    r = json.loads(out.read_text())
    assert r["max_abs_diff_vs_keras"] <= 1e-5 and r["argmax_agreement"] == 1.0
    assert r["test_accuracy"] == pytest.approx(r["keras_test_accuracy"], abs=1e-12)


def test_numpy_backend_in_the_runtime_matches_litert(tiny_exports: Path) -> None:
    import numpy as np

    from har_edge.inference.classifier import Classifier

    rng = np.random.default_rng(3)
    X = rng.standard_normal((16, 64, 9)).astype(np.float32)
    with Classifier.from_bundle(tiny_exports / "float32") as lite, Classifier.from_bundle(tiny_exports / "float32", backend="numpy") as ref:
        np.testing.assert_allclose(ref.predict_normalised(X), lite.predict_normalised(X), atol=1e-5)
        assert ref.classify(X[0] * 0).label in ref.labels



def _tiny_regression(keras):  # type: ignore[no-untyped-def]
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)).astype(np.float32), rng.normal(size=(64, 1)).astype(np.float32)
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)]), x, y


@pytest.mark.parametrize("momentum", [0.5, 0.9])
def test_weight_average_ends_on_the_moving_average_of_the_weights(momentum: float) -> None:
    from har_edge.models.keras_backend import import_keras
    from har_edge.models.training import _WeightAverage

    keras = import_keras()
    model, x, y = _tiny_regression(keras)
    model.compile(optimizer=keras.optimizers.Adam(0.1), loss="mse")
    expected = [w.astype(np.float64) for w in model.get_weights()]
    raw: list[list[np.ndarray]] = []
    recorder = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: raw.append(model.get_weights()))
    model.fit(x, y, batch_size=16, epochs=1, validation_data=(x, y), verbose=0, callbacks=[recorder, _WeightAverage(momentum)])
    for weights in raw:
        expected = [momentum * e + (1 - momentum) * w for e, w in zip(expected, weights)]
    assert len(raw) == 4
    for got, want, last in zip(model.get_weights(), expected, raw[-1]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        assert not np.allclose(got, last)  # the average, not the last raw weights


def test_average_weights_in_the_training_loop_validates_and_keeps_the_average() -> None:
    from har_edge.config import TrainConfig
    from har_edge.models.keras_backend import import_keras
    from har_edge.models.training import fit_model

    keras = import_keras()
    results = {}
    for momentum in (0.0, 0.999999):
        model, x, y = _tiny_regression(keras)
        start = model.get_weights()
        cfg = TrainConfig(epochs=2, batch_size=16, learning_rate=0.1, patience=5, average_weights=momentum)
        history, _ = fit_model(model, x, y, validation_data=(x, y), train=cfg, loss="mse", verbose=0,
                               fit_kwargs={"batch_size": 16})
        moved = max(float(np.abs(a - b).max()) for a, b in zip(model.get_weights(), start))
        results[momentum] = (moved, history.history["val_loss"])
    assert results[0.0][0] > 0.1  # plain training moves the weights
    assert results[0.999999][0] < 1e-3  # an average that barely moves is what training ends on
    assert results[0.999999][1][0] != results[0.0][1][0]  # validation judged the average, not the raw weights


def test_average_weights_must_be_a_momentum(tmp_path: Path) -> None:
    from har_edge.config import load_run_config
    from har_edge.errors import ConfigError

    path = tmp_path / "run.toml"
    path.write_text('name = "x"\n[train]\naverage_weights = 1.0\n')
    with pytest.raises(ConfigError, match="average_weights=1.0"):
        load_run_config(path)


def test_clip_norm_reaches_the_optimizer(tmp_path: Path) -> None:
    from har_edge.config import TrainConfig, load_run_config
    from har_edge.errors import ConfigError
    from har_edge.models.keras_backend import import_keras
    from har_edge.models.training import fit_model

    keras = import_keras()
    for clip in (0.0, 0.5):
        model, x, y = _tiny_regression(keras)
        cfg = TrainConfig(epochs=1, batch_size=16, learning_rate=0.1, patience=5, clip_norm=clip)
        fit_model(model, x, y, validation_data=(x, y), train=cfg, loss="mse", verbose=0, fit_kwargs={"batch_size": 16})
        assert model.optimizer.global_clipnorm == (clip or None)
    path = tmp_path / "run.toml"
    path.write_text('name = "x"\n[train]\nclip_norm = -1.0\n')
    with pytest.raises(ConfigError, match="clip_norm=-1.0"):
        load_run_config(path)


def test_a_streaming_model_trains_without_validation_subjects(tmp_path: Path) -> None:
    """``validation_subjects = []``: the final model of a chosen recipe learns from every non-test subject."""
    from har_edge.config import load_run_config
    from har_edge.errors import ConfigError
    from har_edge.models.stream_model import train_stream_run
    from tests.fixtures.models import SAMPLE_ROOT, TINY_CONFIG

    cfg = load_run_config(TINY_CONFIG.with_name("tiny_stream.toml"),
                          overrides={"data": {"validation_subjects": []}, "train": {"epochs": 2, "average_weights": 0.9}})
    info = train_stream_run(cfg, SAMPLE_ROOT, tmp_path / "run", verbose=0)
    assert info.metrics["validation_accuracy"] is None and info.metrics["validation_subjects"] == []
    assert info.metrics["epochs_run"] == 2 and 0 <= info.metrics["test_accuracy"] <= 1
    with pytest.raises(ConfigError, match="validation_subjects is empty"):
        load_run_config(TINY_CONFIG, overrides={"data": {"validation_subjects": []}})


def test_streaming_accuracy_is_weighted_like_the_loss(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Unlabelled steps count for nothing in the accuracy either, so Keras has nothing to warn about."""
    from har_edge.config import load_run_config
    from har_edge.models.stream_model import train_stream_run
    from tests.fixtures.models import SAMPLE_ROOT, TINY_CONFIG

    cfg = load_run_config(TINY_CONFIG.with_name("tiny_stream.toml"), overrides={"train": {"epochs": 1}})
    with caplog.at_level(logging.WARNING):
        train_stream_run(cfg, SAMPLE_ROOT, tmp_path / "run", verbose=0)
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert "accuracy" in history and "val_accuracy" in history
    assert "weighted_metrics" not in caplog.text
