"""Forecasting with the activity pipeline: series → windows → LSTM (linear head) → bundle → device → MQTT.

TensorFlow-free except :mod:`har_edge.forecasting.training` (which calls :mod:`har_edge.models`).
See ``docs/forecasting.md``.

>>> from har_edge.forecasting.config import load_forecast_config     # doctest: +SKIP
>>> from har_edge.forecasting.training import train_forecaster        # doctest: +SKIP
"""

from __future__ import annotations

from har_edge.forecasting.backtest import BacktestResult, BacktestSet, make_backtest_set, run_backtest, score_all
from har_edge.forecasting.config import ForecastConfig, forecast_config_from_dict, load_forecast_config

__all__ = ["BacktestResult", "BacktestSet", "ForecastConfig", "forecast_config_from_dict", "load_forecast_config",
           "make_backtest_set", "run_backtest", "score_all"]
