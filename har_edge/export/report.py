"""Human-readable table of an export parity report.

Differences are signed as everywhere in har-edge: TFLite − Keras, so a drop in accuracy is negative.
"""

from __future__ import annotations

from typing import Any

__all__ = ["format_report", "format_forecast_report"]


def format_report(report: dict[str, Any]) -> str:
    if report.get("task") == "forecast":
        return format_forecast_report(report)
    k = report["keras"]
    rows = [("mode", "accuracy", "macro-F1", "Δacc pp", "size B", "max|Δp|", "argmax=", "ms/win", "interpreters")]
    rows.append(("keras", f"{k['test_accuracy']:.4f}", f"{k['test_macro_f1']:.4f}", "-", "-", "-", "-", "-", "-"))
    for mode, e in report["modes"].items():
        interp = e.get("interpreters", {})
        ok = ",".join(n for n, v in interp.items() if v == "ok") or "-"
        rows.append((mode, f"{e['test_accuracy']:.4f}", f"{e['test_macro_f1']:.4f}", f"{e['accuracy_delta_pp']:+.2f}",
                     str(e["size_bytes"]), f"{e['max_abs_diff_vs_keras']:.2e}", f"{e['argmax_agreement']:.4f}",
                     f"{e['latency_ms_per_window']:.3f}", ok))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append(f"test windows: {report['n_test_windows']} from held-out subjects {report['test_subjects']}")
    for mode, e in report["modes"].items():
        bad = {n: v for n, v in e.get("interpreters", {}).items() if v != "ok"}
        for name, verdict in bad.items():
            lines.append(f"{mode} in {name}: {_interpreter_note(mode, name, verdict)}")
        lines.append(f"{mode} ops: {', '.join(e['ops'])}")
    if "mcu" in report:
        lines.append(_mcu_line(report["mcu"]))
    return "\n".join(lines)


# what the stack is known not to run (../shared/notes/stack.md): reported as such, not as a surprise
_EXPECTED = {
    ("float16", "tflm"): "TFLite Micro runs float32 and full-int8 models only",
    ("dynamic", "tflm"): "TFLite Micro runs float32 and full-int8 models only",
    ("dynamic", "tflite-runtime"): "tflite-runtime 2.14 lacks the newer FULLY_CONNECTED kernel version",
}


def _interpreter_note(mode: str, interpreter: str, verdict: str) -> str:
    if verdict == "not installed":
        return "not installed here (not checked)"
    reason = verdict.removeprefix("fails: ").split(": ", 1)[-1] if verdict.startswith("fails") else verdict
    expected = _EXPECTED.get((mode, interpreter))
    return f"does not run, as expected ({expected}): {reason}" if expected else f"FAILS: {reason}"


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _mcu_line(m: dict[str, Any]) -> str:
    tflm = m.get("tflm") or {}
    margin = m.get("arena_margin")
    text = (f"mcu: arena {m.get('arena_bytes')} B (measured {m.get('arena_bytes_measured')} B"
            f" + {_fmt(None if margin is None else 100 * margin, '.0f')} % margin), "
            f"TFLM accuracy {_fmt(tflm.get('accuracy'), '.3f')}")
    if tflm.get("max_abs_diff_steps") is not None:
        text += (f", vs LiteRT int8 max {tflm['max_abs_diff_steps']} steps "
                 f"({_fmt(100 * tflm['frac_within_1_step'], '.2f')} % within 1, argmax agreement "
                 f"{_fmt(tflm.get('argmax_agreement'), '.3f')})")
    return text


def format_forecast_report(report: dict[str, Any]) -> str:
    """One row per mode: backtest MAE (mean, step 1, step H) vs Keras, skill, size, latency, interpreters."""
    H, k = report["horizon"], report["keras"]
    rows = [("mode", "MAE mean", "MAE@1", f"MAE@{H}", "vs keras", "skill", "max|Δ|", "size B", "ms/fc", "interpreters")]
    rows.append(("keras", f"{k['mae_mean']:.4f}", "-", "-", "-", "-" if k.get("skill_mean") is None else f"{k['skill_mean']:+.4f}",
                 "-", "-", "-", "-"))
    for mode, e in report["modes"].items():
        ok = ",".join(n for n, v in e.get("interpreters", {}).items() if v == "ok") or "-"
        rows.append((mode, f"{e['mae_mean']:.4f}", f"{e['mae_step1']:.4f}", f"{e[f'mae_step{H}']:.4f}",
                     f"{100 * e['mae_rel_diff_vs_keras']:+.3f} %", f"{e['skill_mean']:+.4f}", f"{e['max_abs_diff_vs_keras']:.2e}",
                     str(e["size_bytes"]), f"{e['latency_ms_per_forecast']:.3f}", ok))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append(f"backtest: {report['origins']} origins, horizon {H}, target {report['target']} [{report['unit']}]; "
                 "MAE through the device's Forecaster")
    for mode, e in report["modes"].items():
        if e["skill_mean"] <= 0:
            lines.append(f"WARNING {mode}: skill vs naive {e['skill_mean']:+.4f} <= 0 (no better than the random walk)")
        lines.append(f"{mode} ops: {', '.join(e['ops'])}")
    return "\n".join(lines)
