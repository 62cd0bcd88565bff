"""Backtest outputs: a printed table, ``backtest.json``, ``forecasts.npz`` (re-scorable) and ``backtest.png``.

``forecasts.npz`` holds ``origins`` ``(k,)``, ``origin_times_s`` ``(k,)``, ``actual`` ``(k, H)``,
``last`` ``(k,)`` and one ``(k, H)`` array per method (``method__<name>``), so any run can be re-scored
with :func:`har_edge.forecasting.backtest.score_all` without re-running a model.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from har_edge.forecasting.backtest import REFERENCE, BacktestResult
from har_edge.inference.forecaster import skill_warning

__all__ = ["format_table", "backtest_summary", "write_backtest", "load_forecasts", "plot_backtest", "skill_warning"]


def _f(v: Any, digits: int = 3) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def format_table(result: BacktestResult, *, title: str = "") -> str:
    """One row per method: MAE step 1 / step H / mean, RMSE, MASE, sMAPE, skill, direction accuracy."""
    b, H = result.bset, result.bset.horizon
    head = ("method", "MAE@1", f"MAE@{H}", "MAE mean", "RMSE", "MASE", "sMAPE %", "skill", "dir acc", "seconds")
    rows = [head]
    for name, s in sorted(result.scores.items(), key=lambda kv: kv[1]["mae_mean"]):
        rows.append((name, _f(s["mae_step1"]), _f(s[f"mae_step{H}"]), _f(s["mae_mean"]), _f(s["rmse"]), _f(s["mase"]),
                     _f(s["smape"], 2), _f(s["skill_mean"], 4), "-" if name == REFERENCE else _f(s["direction_accuracy"]),
                     _f(result.seconds.get(name, result.seconds.get("baselines")), 1)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    d = b.describe()
    up = result.up_move_share()
    top = [title] if title else []
    top.append(f"{b.target} [{b.unit}], {d['origins']} origins {d['first_origin']} .. {d['last_origin']} every "
               f"{d['origin_every']} step(s), horizon {H}; MASE scale {b.mase_scale:.4f} (in-sample m={b.seasonal_period} naive)")
    lines = top + lines
    lines.append(f"up-move share (direction accuracy of 'always up'): {_f(up['all_steps'])} over all steps, {_f(up['step1'])} at step 1")
    for name, s in result.scores.items():
        if name != REFERENCE and not name.startswith(("seasonal_naive", "drift", "moving_average")):
            w = skill_warning(s["skill_mean"])
            if w:
                lines.append(f"WARNING {name}: {w}")
    return "\n".join(lines)


def backtest_summary(result: BacktestResult, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON document of a backtest (protocol, scores per method, costs, up-move share)."""
    return {"protocol": result.bset.describe(), "scores": result.scores, "seconds": result.seconds,
            "up_move_share": result.up_move_share(), "notes": result.notes, **(extra or {})}


def write_backtest(out_dir: str | Path, result: BacktestResult, *, extra: dict[str, Any] | None = None,
                   title: str = "", plot: bool = True) -> dict[str, Any]:
    """Write ``backtest.json``, ``forecasts.npz`` and (``plot``) ``backtest.png`` into ``out_dir``; returns the JSON."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = backtest_summary(result, extra)
    (out / "backtest.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    b = result.bset
    arrays = {"origins": b.origins, "origin_times_s": b.origin_times_s, "actual": b.actual, "last": b.last}
    arrays.update({f"method__{name}": f for name, f in result.forecasts.items()})
    np.savez_compressed(out / "forecasts.npz", **arrays)  # type: ignore[arg-type]
    if plot:
        plot_backtest(result, out / "backtest.png", title=title)
    return summary


def load_forecasts(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``(arrays, forecasts_by_method)`` from a ``forecasts.npz``."""
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    return ({k: v for k, v in arrays.items() if not k.startswith("method__")},
            {k[len("method__"):]: v for k, v in arrays.items() if k.startswith("method__")})


def plot_backtest(result: BacktestResult, path: Path, *, title: str = "", methods: int = 5) -> None:
    """MAE per step of the best ``methods`` (left) and forecast vs actual at three origins (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    b, H = result.bset, result.bset.horizon
    order = sorted(result.scores, key=lambda n: result.scores[n]["mae_mean"])
    shown = list(dict.fromkeys(order[:methods] + [REFERENCE]))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.5))
    steps = np.arange(1, H + 1)
    for name in shown:
        ax1.plot(steps, result.scores[name]["mae_per_step"], marker=".", label=name)
    ax1.set_xlabel("step ahead")
    ax1.set_ylabel(f"MAE [{b.unit}]")
    ax1.set_title("MAE per step over all origins")
    ax1.legend(fontsize=8)
    picks = np.linspace(0, len(b.origins) - 1, 3).astype(int)
    hist = min(3 * H, int(b.origins[0]))
    for j, i in enumerate(picks):
        t = int(b.origins[i])
        x0 = j * (hist + H + 5)
        ax2.plot(np.arange(x0, x0 + hist + 1), b.y[t - hist: t + 1], color="black", lw=1, label="history" if j == 0 else None)
        ax2.plot(np.arange(x0 + hist + 1, x0 + hist + 1 + H), b.actual[i], color="black", ls="--", label="actual" if j == 0 else None)
        for k, name in enumerate(shown[:4]):
            ax2.plot(np.arange(x0 + hist + 1, x0 + hist + 1 + H), result.forecasts[name][i], color=f"C{k}",
                     label=name if j == 0 else None)
    ax2.set_title("forecast vs actual at three origins")
    ax2.set_ylabel(f"{b.target} [{b.unit}]")
    ax2.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
