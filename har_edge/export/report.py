"""Human-readable table of an export parity report."""

from __future__ import annotations

from typing import Any

__all__ = ["format_report"]


def format_report(report: dict[str, Any]) -> str:
    k = report["keras"]
    rows = [("mode", "accuracy", "macro-F1", "Δacc pp", "size B", "max|Δp|", "argmax=", "ms/win", "interpreters")]
    rows.append(("keras", f"{k['test_accuracy']:.4f}", f"{k['test_macro_f1']:.4f}", "-", "-", "-", "-", "-", "-"))
    for mode, e in report["modes"].items():
        interp = e.get("interpreters", {})
        ok = ",".join(n for n, v in interp.items() if v == "ok") or "-"
        rows.append((mode, f"{e['test_accuracy']:.4f}", f"{e['test_macro_f1']:.4f}", f"{e['accuracy_drop_pp']:+.2f}",
                     str(e["size_bytes"]), f"{e['max_abs_diff_vs_keras']:.2e}", f"{e['argmax_agreement']:.4f}",
                     f"{e['latency_ms_per_window']:.3f}", ok))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append(f"test windows: {report['n_test_windows']} from held-out subjects {report['test_subjects']}")
    for mode, e in report["modes"].items():
        bad = {n: v for n, v in e.get("interpreters", {}).items() if v != "ok"}
        if bad:
            lines.append(f"{mode}: " + "; ".join(f"{n} {v}" for n, v in bad.items()))
        lines.append(f"{mode} ops: {', '.join(e['ops'])}")
    if "mcu" in report:
        m = report["mcu"]
        lines.append(f"mcu: arena {m.get('arena_bytes')} B (measured {m.get('arena_bytes_measured')} B + margin), "
                     f"TFLM accuracy {m.get('tflm', {}).get('accuracy')}, max diff {m.get('tflm', {}).get('max_abs_diff_steps')} steps")
    return "\n".join(lines)
