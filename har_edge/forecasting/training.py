"""Train an LSTM forecaster (TensorFlow side): the classifier's builder and training loop, a linear head.

Seeded; early stopping on the validation span; the backtest (Keras model and the baselines, on
the pinned origins) is run once, at the end, and written with the run (see
:mod:`har_edge.forecasting.run`). Loss: Huber on standardised targets (robust like the MAE we
judge by, smooth near zero).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
from numpy.typing import NDArray

from har_edge.forecasting.backtest import BacktestResult, run_backtest
from har_edge.forecasting.config import ForecastConfig
from har_edge.forecasting.report import format_table, write_backtest
from har_edge.forecasting.run import FORECAST_TASK, ForecastRunInfo, Prepared, prepare
from har_edge.models.builders import build_forecaster
from har_edge.models.keras_backend import import_keras, import_tensorflow
from har_edge.models.run_dir import write_json
from har_edge.models.training import fit_model, load_keras_model, seed_everything, write_run_atomically

__all__ = ["train_forecaster", "keras_forecasts", "backtest_run", "KERAS_METHOD"]

log = logging.getLogger(__name__)
KERAS_METHOD = "lstm (keras)"


def keras_forecasts(model: Any, prep: Prepared, *, batch_size: int = 1024) -> NDArray[np.float64]:
    """Level forecasts ``(k, H)`` of a Keras model at the backtest origins."""
    z = np.asarray(model.predict(prep.test_inputs(), batch_size=batch_size, verbose=0), dtype=np.float32)
    return prep.to_levels(z, prep.bset.origins)


def _summary(result: BacktestResult, method: str) -> dict[str, Any]:
    s, H = result.scores[method], result.bset.horizon
    naive = result.scores["naive"]
    return {"mae_mean": s["mae_mean"], "mae_step1": s["mae_step1"], f"mae_step{H}": s[f"mae_step{H}"],
            "skill_mean": s["skill_mean"], "skill_per_step": s["skill_per_step"],
            "direction_accuracy": s["direction_accuracy"], "naive_mae_mean": naive["mae_mean"],
            "origins": int(len(result.bset.origins)), "horizon": H}


def train_forecaster(cfg: ForecastConfig, data_root: Path | None, out_dir: Path, *, verbose: int = 2,
                     on_progress: Callable[[str], None] | None = None) -> ForecastRunInfo:
    """Train, backtest (Keras + baselines) and write ``out_dir``; returns the run's info."""
    say = on_progress or log.info
    tf = import_tensorflow()
    keras = import_keras()
    seed_everything(cfg.train.seed)
    t0 = time.monotonic()
    prep = prepare(cfg, data_root)
    Xtr, Ytr = prep.normalised(prep.train)
    Xva, Yva = prep.normalised(prep.validation)
    say(f"data: {len(prep.series)} rows; train {len(Xtr)} / validation {len(Xva)} windows of {prep.spec.input_steps} × "
        f"{Xtr.shape[2]} → {prep.spec.horizon} steps; {len(prep.bset.origins)} backtest origins ({time.monotonic() - t0:.1f} s)")
    model = build_forecaster(cfg.model, window_samples=prep.spec.input_steps, n_channels=Xtr.shape[2],
                             horizon=prep.spec.horizon, seed=cfg.train.seed)
    say(f"model: {model.count_params()} parameters ({cfg.model.cell}, units {list(cfg.model.units)})")
    history, train_seconds = fit_model(
        model, Xtr, Ytr, validation_data=(Xva, Yva), train=cfg.train, loss=keras.losses.Huber(delta=1.0),
        verbose=verbose, fit_kwargs={"batch_size": cfg.train.batch_size, "shuffle": True}, say=say,
    )
    result = run_backtest(prep.bset, {KERAS_METHOD: lambda b: keras_forecasts(model, prep)})
    epochs_run = len(history.history["loss"])
    metrics = {
        "task": FORECAST_TASK, "train_seconds": round(train_seconds, 2), "epochs_run": epochs_run,
        "parameters": int(model.count_params()), "n_train": int(len(Xtr)), "n_validation": int(len(Xva)),
        "backtest": _summary(result, KERAS_METHOD),
        "baselines": {n: {"mae_mean": s["mae_mean"], "skill_mean": s["skill_mean"]} for n, s in result.scores.items() if n != KERAS_METHOD},
        "versions": {"tensorflow": tf.__version__, "tf_keras": keras.__version__, "numpy": np.__version__},
    }
    run = {"task": FORECAST_TASK, "feature_spec": prep.spec.to_dict(), "channel_names": list(prep.spec.channel_names),
           "units": list(prep.series.units), "target_unit": prep.bset.unit, "step_s": prep.series.step_s,
           "spacing": prep.series.spacing, "target_normalisation": prep.target_normalisation.to_dict(),
           "spans": prep.spans.describe(prep.series), "series_report": prep.series.report.to_dict()}
    info = ForecastRunInfo(run_dir=Path(out_dir), config=cfg, spec=prep.spec, normalisation=prep.normalisation,
                           target_normalisation=prep.target_normalisation, run=run, metrics=metrics)

    def write(tmp: Path) -> None:
        model.save(tmp / "model.keras")
        write_json(tmp / "config.json", cfg.to_dict())
        write_json(tmp / "run.json", run)
        write_json(tmp / "normalisation.json", prep.normalisation.to_dict())
        write_json(tmp / "metrics.json", metrics)
        write_json(tmp / "history.json", {k: [float(v) for v in vs] for k, vs in history.history.items()})
        write_backtest(tmp, result, extra={"spans": run["spans"]}, title=cfg.name)

    write_run_atomically(Path(out_dir), write)
    s = _summary(result, KERAS_METHOD)
    say(format_table(result, title=f"{cfg.name}: backtest (test span only)"))
    say(f"trained {epochs_run} epochs in {train_seconds:.0f} s; LSTM mean MAE {s['mae_mean']:.3f} {prep.bset.unit}, "
        f"skill vs naive {s['skill_mean']:+.4f}")
    return info


def backtest_run(info: ForecastRunInfo, data_root: Path | None, *, peers: bool = False, extra_methods: dict[str, Any] | None = None,
                 on_progress: Callable[[str], None] | None = None,
                 on_step: Callable[[int, int, str], None] | None = None) -> tuple[BacktestResult, Prepared]:
    """Re-run the pinned backtest of a run: Keras, the baselines, and (``peers``) the statsforecast peers.

    ``on_step(done, total, what)``: progress through the peers' origins (the slow part)."""
    prep = info.prepare(data_root)
    model = load_keras_model(info.run_dir)
    methods: dict[str, Any] = {KERAS_METHOD: lambda b: keras_forecasts(model, prep)}
    methods.update(extra_methods or {})
    result = run_backtest(prep.bset, methods)
    if peers:
        from har_edge.forecasting.backtest import score_all
        from har_edge.forecasting.peers import peer_forecasts

        t0 = time.perf_counter()
        f, costs = peer_forecasts(prep.bset.y, prep.bset.origins, prep.bset.horizon, info.config.backtest, on_progress=on_progress,
                                  on_step=on_step)
        result.forecasts.update(f)
        result.seconds.update({k: v["seconds"] for k, v in costs.items()})
        result.notes["peers"] = {"costs": costs, "budget": {
            "fit_steps": info.config.backtest.peer_fit_steps, "refit_every": info.config.backtest.peer_refit_every,
            "max_fit_seconds_per_peer": info.config.backtest.peer_max_seconds,
            "season_length": info.config.backtest.peer_season_length}, "seconds": round(time.perf_counter() - t0, 1)}
        result.scores = score_all(prep.bset, result.forecasts)
    return result, prep
