"""Statistical peers from ``statsforecast`` (the optional extra ``har-edge[forecast]``), on the backtest's origins.

Peers: ``auto_ets`` (AutoETS), ``auto_arima`` (AutoARIMA), ``auto_theta`` (AutoTheta), ``mstl`` (MSTL
with an AutoETS trend, for hourly data) and ``ets_ana`` (ETS forced to additive error, no trend,
additive season: on hourly temperature AutoETS picks a non-seasonal model and forecasts like naive).

Time budget: each peer fits on the ``peer_fit_steps`` rows up to an origin, refits every
``peer_refit_every`` origins and in between calls ``forward()`` (the fitted coefficients applied to
the rows from the fit's first row to the new origin: states updated, no re-estimation; starting
where the fit started keeps the seasonal states in phase). A peer whose fits have taken
more than ``peer_max_seconds`` in total stops refitting and only forwards; the counts are reported.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from numpy.typing import NDArray

from har_edge.errors import BackendNotAvailable, DataError
from har_edge.forecasting.config import BacktestConfig

__all__ = ["PEER_NAMES", "make_peer", "peer_forecasts", "PeerRun"]

log = logging.getLogger(__name__)

PEER_NAMES = {"auto_ets": "AutoETS", "auto_arima": "AutoARIMA", "auto_theta": "AutoTheta", "mstl": "MSTL",
              "ets_ana": "ETS(ANA)"}


def _models() -> Any:
    try:
        from statsforecast import models
    except ImportError as exc:
        raise BackendNotAvailable('the statistical peers need statsforecast: pip install "har-edge[forecast]"') from exc
    return models


def make_peer(name: str, season_length: int) -> Any:
    """A fresh statsforecast model for ``name`` (see the module docstring)."""
    m = _models()
    s = max(1, int(season_length))
    if name == "auto_ets":
        return m.AutoETS(season_length=s)
    if name == "auto_arima":
        return m.AutoARIMA(season_length=s)
    if name == "auto_theta":
        return m.AutoTheta(season_length=s)
    if name == "mstl":
        if s < 2:
            raise DataError("the mstl peer needs peer_season_length >= 2 (it decomposes a season)")
        return m.MSTL(season_length=s, trend_forecaster=m.AutoETS(model="ZZN"))
    if name == "ets_ana":
        if s < 2:
            raise DataError("the ets_ana peer needs peer_season_length >= 2")
        return m.AutoETS(model="ANA", season_length=s)
    raise DataError(f"unknown peer {name!r}; expected one of {sorted(PEER_NAMES)}")


@dataclass
class PeerRun:
    """What one peer cost: fits, forwards, fit seconds, total seconds, and whether the budget stopped refits."""

    fits: int = 0
    forwards: int = 0
    fit_seconds: float = 0.0
    seconds: float = 0.0
    budget_reached: bool = False
    failures: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"fits": self.fits, "forwards": self.forwards, "fit_seconds": round(self.fit_seconds, 2),
                "seconds": round(self.seconds, 2), "budget_reached": self.budget_reached, "failures": self.failures}


def _one_peer(name: str, y: NDArray[np.float64], origins: NDArray[np.int64], horizon: int, b: BacktestConfig,
              on_progress: Callable[[str], None] | None,
              on_origin: Callable[[int, str], None] | None = None) -> tuple[NDArray[np.float64], PeerRun]:
    out = np.empty((len(origins), horizon))
    run = PeerRun()
    t_start = time.perf_counter()
    model: Any = None
    start = 0
    for i, t in enumerate(origins):
        if on_origin is not None:
            on_origin(i, f"{PEER_NAMES[name]}: origin {i + 1}/{len(origins)}")
        refit = model is None or (i % b.peer_refit_every == 0 and run.fit_seconds < b.peer_max_seconds)
        if refit:
            start = max(0, int(t) + 1 - b.peer_fit_steps)
        # forward() runs the fitted model over new data from its first row, so the data must start where the fit's
        # did (the same phase of the season): between refits the window grows from the fit's first row
        hist = y[start: t + 1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                if refit:
                    t0 = time.perf_counter()
                    model = make_peer(name, b.peer_season_length).fit(hist)
                    run.fit_seconds += time.perf_counter() - t0
                    run.fits += 1
                    pred = model.predict(h=horizon)["mean"]
                else:
                    pred = model.forward(y=hist, h=horizon)["mean"]
                    run.forwards += 1
            except Exception as exc:  # noqa: BLE001 - a failed fit scores as naive for that origin, counted
                run.failures += 1
                log.warning("peer %s failed at origin %d (%s: %s); naive forecast used there", name, int(t), type(exc).__name__, exc)
                pred = np.repeat(y[t], horizon)
        out[i] = np.asarray(pred, dtype=np.float64)
        if i % b.peer_refit_every == 0 and run.fit_seconds >= b.peer_max_seconds:
            run.budget_reached = True
    run.seconds = time.perf_counter() - t_start
    if on_progress:
        on_progress(f"peer {PEER_NAMES[name]}: {run.fits} fits, {run.forwards} forwards, {run.seconds:.0f} s"
                    f"{' (fit budget reached)' if run.budget_reached else ''}")
    return out, run


def peer_forecasts(y: NDArray[np.float64], origins: NDArray[np.int64], horizon: int, b: BacktestConfig, *,
                   peers: tuple[str, ...] | None = None,
                   on_progress: Callable[[str], None] | None = None,
                   on_step: Callable[[int, int, str], None] | None = None) -> tuple[dict[str, NDArray[np.float64]], dict[str, Any]]:
    """Level forecasts ``{PEER_NAMES[name]: (k, H)}`` and the cost of each peer.

    ``on_step(done, total, what)`` is called before every origin of every peer (and once at the end).
    """
    _models()
    forecasts, costs = {}, {}
    names = list(peers if peers is not None else b.peers)
    total = len(names) * len(origins)
    for p, name in enumerate(names):
        step = None if on_step is None else (lambda i, what, p=p: on_step(p * len(origins) + i, total, what))
        f, run = _one_peer(name, np.asarray(y, np.float64), origins, horizon, b, on_progress, step)
        forecasts[PEER_NAMES[name]] = f
        costs[PEER_NAMES[name]] = run.to_dict()
    if on_step is not None:
        on_step(total, total, "done")
    return forecasts, costs
