"""Render ``benchmarks/results/summary.md`` from the JSON the benchmark scripts wrote: the README's figures.

Run: ``python benchmarks/summary.py [--runs runs/final]`` (``make bench`` runs it last);
``--only Personalisation`` after rerunning one benchmark on its own renders that section and keeps the others.

Every table of the README's results section is printed here between ``<!-- readme:NAME -->`` and
``<!-- /readme -->`` markers; ``--update-readme`` copies each block into the same markers in README.md,
and ``tests/test_readme_figures.py`` checks that they agree: the README quotes only what the scripts
measured. A section whose JSON is missing says so instead of inventing a figure.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"

# static description of the published configs (the figures come from the JSON)
CONFIGS: dict[str, tuple[str, str, str]] = {
    "uci_har_9ch": ("UCI-HAR windows, 9 ch", "Conv1D(32) + LSTM(64)", "≥ 0.93 (stretch 0.95)"),
    "uci_har_acc3": ("UCI-HAR, total_acc only", "Conv1D(32) + LSTM(64)", "≥ 0.88"),
    "hapt_device": ("raw HAPT streams → causal preprocessing", "Conv1D(24) + LSTM(48)", "(deployable model)"),
    "uci_har_9ch_rnn": ("UCI-HAR windows, 9 ch", "Conv1D(32) + SimpleRNN(64)", "(LSTM vs RNN, `docs/`)"),
    "wisdm_watch": ("WISDM 2019 watch, 20 Hz, acc only → causal preprocessing; subjects 1641–1650 held out",
                    "Conv1D(32) + LSTM(48)", "(a second device and rate)"),
    "hapt_stream": ("whole raw HAPT recordings, a label per LSTM step incl. a transition class; accuracy per step",
                    "Conv1D(24) + LSTM(48), state carried, hop 16", "(deployable streaming model)"),
}
TARGETS = {"uci_har_9ch": (0.93, 0.95), "uci_har_acc3": (0.88, None)}


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _pp(value: float) -> str:
    """Signed percentage points with a real minus sign: a drop is negative (and zero has no sign)."""
    return "0.00 pp" if abs(value) < 0.005 else f"{value:+.2f} pp".replace("-", "−")


def _signed(value: float, fmt: str) -> str:
    """``value`` formatted with an explicit sign and a real minus sign (``fmt`` like ``"+.3f"``)."""
    return format(value, fmt).replace("-", "−")


def _block(name: str, lines: list[str]) -> list[str]:
    return [f"<!-- readme:{name} -->", *lines, "<!-- /readme -->", ""]


def training() -> list[str]:
    d = _load("train_targets")
    if d is None:
        return ["_not measured: run `python benchmarks/train_targets.py`_", ""]
    rows = ["| config | data | model | params | test accuracy | macro-F1 | train time | target |",
            "|---|---|---|---|---|---|---|---|"]
    for name, r in d["results"].items():
        data, model, target = CONFIGS.get(name, ("?", "?", ""))
        if name in TARGETS:
            goal, stretch = TARGETS[name]
            target = f"≥ {goal} {'✓' if r['test_accuracy'] >= goal else '✗'}"
            if stretch:
                target += f" (stretch {stretch} {'✓' if r['test_accuracy'] >= stretch else '✗'})"
        rows.append(f"| `{name}` | {data} | {model} | {r['parameters']:,} | **{r['test_accuracy']:.3f}** | "
                    f"{r['test_macro_f1']:.3f} | {r['train_seconds']:.0f} s | {target} |")
    return _block("training", rows)


def seeds_and_augmentation() -> list[str]:
    out: list[str] = []
    s = _load("seed_spread")
    if s is None:
        out += ["_seed spread not measured: run `python benchmarks/seed_spread.py`_", ""]
    else:
        rows = ["| seed | Keras test accuracy | int8 test accuracy | int8 vs its Keras model |", "|---|---|---|---|"]
        rows += [f"| {seed} | {r['keras_test_accuracy']:.4f} | {r['int8_test_accuracy']:.4f} | {_pp(r['int8_change_pp'])} |"
                 for seed, r in s["seeds"].items()]
        m = s["summary"]
        rows.append(f"| mean / range | {m['keras_mean']:.4f} / {m['keras_range_pp']:.2f} pp | | "
                    f"largest change {m['max_abs_int8_change_pp']:.2f} pp |")
        out += _block("seed_spread", rows)
    a = _load("augmentation_ablation")
    if a is None:
        out += ["_augmentation ablation not measured: run `python benchmarks/augmentation_ablation.py`_", ""]
    else:
        rows = ["| config | no augmentation, patience 10 | augmentation, patience 15 | gain |", "|---|---|---|---|"]
        rows += [f"| `{n}` | {r['without_augmentation_patience_10']:.4f} | {r['with_augmentation']:.4f} | {_pp(r['gain_pp'])} |"
                 for n, r in a["results"].items()]
        out += _block("augmentation", rows)
    return out


def _runs_in(interp: dict[str, str]) -> str:
    names = {"litert": "LiteRT", "tflite-runtime": "tflite-runtime", "tensorflow": "tf.lite", "tflm": "TFLM"}
    ok = [names.get(k, k) for k, v in interp.items() if v == "ok"]
    bad = [names.get(k, k) for k, v in interp.items() if v.startswith("fails")]
    return ", ".join(ok) + (f" (fails: {', '.join(bad)})" if bad else "")


def export(runs: Path) -> list[str]:
    path = runs / "export_all" / "report.json"
    if not path.is_file():
        return ["_export not measured: run `har-edge export RUNS/hapt_device --quant all --target mcu --out RUNS/export_all`_", ""]
    r = json.loads(path.read_text())
    k = r["keras"]["test_accuracy"]
    rows = ["| mode | test accuracy | Δ vs Keras | size (manifest embedded) | max / p99 \\|Δp\\| vs Keras | argmax agreement "
            "| LiteRT ms/window | runs in |", "|---|---|---|---|---|---|---|---|", f"| Keras | {k:.4f} | – | – | – | – | – | – |"]
    for mode, e in r["modes"].items():
        rows.append(f"| {mode} | {e['test_accuracy']:.4f} | {_pp(e['accuracy_delta_pp'] if 'accuracy_delta_pp' in e else -e['accuracy_drop_pp'])} | {e['size_bytes']:,} B | "
                    f"{e['max_abs_diff_vs_keras']:.1e} / {e['p99_abs_diff_vs_keras']:.1e} | {e['argmax_agreement']:.3f} | "
                    f"{e['latency_ms_per_window']:.2f} | {_runs_in(e.get('interpreters', {}))} |")
    out = _block("export", rows)
    mcu = r.get("mcu")
    if mcu:
        t = mcu.get("tflm") or {}
        ref = t.get("vs_litert_reference") or {}
        out += _block("mcu", [
            f"- int8 model {r['modes']['int8']['size_bytes']:,} B ({r['modes']['int8']['size_bytes_without_manifest']:,} B "
            f"without the manifest); TFLM tensor arena measured **{mcu['arena_bytes_measured']:,} B**, "
            f"{mcu['arena_bytes']:,} B with the margin written to `har_model_settings.h`.",
            f"- TFLM accuracy {t.get('accuracy', float('nan')):.4f}; TFLM vs LiteRT default kernels: max "
            f"{t.get('max_abs_diff_steps')} steps ({100 * (t.get('frac_within_1_step') or 0):.2f} % within 1 step, argmax "
            f"agreement {t.get('argmax_agreement', float('nan')):.3f}); vs LiteRT reference kernels: max "
            f"{ref.get('max_abs_diff_steps')} steps.",
        ])
    return out


def latency() -> list[str]:
    d = _load("export_latency_hapt_device")
    if d is None:
        return ["_latency not measured: run `python benchmarks/export_latency.py RUNS/hapt_device`_", ""]
    res = d["results"]
    names = list(res)
    rows = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names),
            "| " + " | ".join(f"{res[n]['median_ms']:.3g} ms ({res[n]['x_litert_float32']:.1f}×)" for n in names) + " |"]
    return _block("latency", rows)


def tflm_parity() -> list[str]:
    d = _load("tflm_parity_hapt_device")
    if d is None:
        return ["_TFLM parity not measured: run `python benchmarks/tflm_parity.py RUNS/export_all/int8 RUNS/hapt_device`_", ""]
    t = d["tflm"]
    rows = ["| comparison (int8 outputs, quantisation steps) | max | p99 | within 1 step | argmax agreement |",
            "|---|---|---|---|---|"]
    for label, key in (("TFLM vs LiteRT default kernels", "vs_litert_default"),
                       ("TFLM vs LiteRT reference kernels", "vs_litert_reference"),
                       ("LiteRT reference vs default kernels", "litert_reference_vs_default")):
        c = t.get(key)
        if c:
            rows.append(f"| {label} | {c['max_abs_diff_steps']} | {c['p99_abs_diff_steps']:.0f} | "
                        f"{100 * c['frac_within_1_step']:.2f} % | {c['argmax_agreement']:.3f} |")
    diag = t.get("kernel_diagnosis") or {}
    for p in diag.get("lstm", []):
        rows.append(f"| fused LSTM output vs reference kernels, per time step ({diag['n']} windows) | "
                    f"{p['max_diff_steps']} (step {p['first_step_of_max']} of {p['steps']}) | step 0: "
                    f"{p['step0_max_diff_steps']} | | |")
    return _block("tflm_parity", rows)


def _stream_row(d: dict[str, Any], key: str) -> str:
    r = d["results"][key]
    return f"{r['accuracy']:.3f} ({r['activity_changes_per_hour']:.0f} changes/hour)"


def device_runtime() -> list[str]:
    rows = ["| what | result | command |", "|---|---|---|"]
    sa = _load("stream_accuracy")
    if sa is not None:
        rows.append(f"| per-window streaming accuracy, {len(sa['subjects'])} held-out subjects' raw recordings; each "
                    f"classification scored against the majority label of its own window (transition / unlabelled windows "
                    f"not scored) | {_stream_row(sa, 'no smoothing')} unsmoothed; **{_stream_row(sa, 'default (mean of 2, no floor)')}** "
                    f"with the default smoothing | `python benchmarks/stream_accuracy.py --bundle RUNS/export_all/float32` |")
    st = _load("smoothing_tuning")
    if st is not None:
        c = st["chosen"]
        v = st["validation"][c["name"]]
        rows.append(f"| smoothing choice on the validation subjects {', '.join(map(str, st['validation_subjects']))} "
                    f"({st.get('validation_minutes', '?')} min), {st.get('variants', len(st['validation']))} variants; rule: "
                    f"fewest changes/hour within {st['tolerance_pp']} pp of the best validation accuracy | {c['name']} "
                    f"(validation {v['accuracy']:.3f}) | `python benchmarks/smoothing_tuning.py --bundle RUNS/export_all/float32` |")
    uci = [(n, _load(f"stream_accuracy_{n}")) for n in ("uci_har_9ch", "uci_har_acc3")]
    if all(d is not None for _, d in uci):
        figures = " / ".join(f"{d['results']['no smoothing']['accuracy']:.3f}" for _, d in uci if d)
        rows.append(f"| the same with the UCI-HAR-trained `uci_har_9ch` / `uci_har_acc3` fed raw acc+gyro (the device "
                    f"repeats the UCI filtering causally) | {figures} unsmoothed | `har-edge export RUNS/uci_har_9ch --quant "
                    f"float32 --out B`, then `stream_accuracy.py --bundle B --unsmoothed-only` |")
    th = _load("stream_throughput")
    if th is not None:
        t, a, la = th["throughput"], th["arrival"], th["latency"]
        rows.append(f"| throughput: all {th['recordings']} HAPT recordings ({th['data_hours']:.2f} h) → StreamClassifier → "
                    f"MQTT outbox → Mosquitto, runtime on one core, until the broker acknowledged every message | "
                    f"**{t['x_real_time_acked']:,.0f}× real time**; {t['classifications']:,} activity messages, "
                    f"{a['missing']} missing, {a['duplicates']} duplicates, in order: {'yes' if a['in_order'] else 'NO'} | "
                    f"`python benchmarks/stream_throughput.py --bundle RUNS/export_all/float32` |")
        rows.append(f"| latency, last sample of a window → message at a subscriber (paced, one sample per chunk) | "
                    f"p50 {la['p50_ms']:.1f} ms, p99 {la['p99_ms']:.1f} ms | same script |")
    di = _load("device_install")
    if di is not None:
        rows.append(f"| device install `pip install \".[device]\"` in a fresh venv | {di['venv_bytes'] / 1e6:.0f} MB, "
                    f"no TensorFlow: {'yes' if di['tensorflow_absent'] else 'NO'} | `python benchmarks/device_install.py` |")
    ref = _load("reference")
    if ref is not None:
        tp, ag = ref["throughput"], ref["agreement"]
        rows.append(f"| NumPy reference engine vs LiteRT float32 (`{ref['model']['name']}`) | batched "
                    f"{tp['numpy_float32_batched']['windows_per_s']:,.0f} windows/s vs {tp['litert_float32_one_window']['windows_per_s']:,.0f} "
                    f"({ref['ratio_numpy_batched_over_litert']:.1f}×); one window at a time "
                    f"{tp['numpy_float32_one_window']['windows_per_s']:,.0f}/s ({ref['ratio_numpy_one_window_over_litert']:.2f}×); "
                    f"max \\|Δp\\| vs Keras {ag['numpy_vs_keras']['max_abs_diff']:.1e} | "
                    f"`python benchmarks/bench_reference.py RUNS/uci_har_9ch` |")
    return _block("device_runtime", rows) if len(rows) > 2 else ["_device runtime not measured_", ""]


_EXPERIENCE = (("stream_experience", "`hapt_stream` float32 (streaming, its own smoothing)"),
               ("stream_experience_int8", "`hapt_stream` int8 (the MCU model, LiteRT)"),
               ("stream_experience_hapt_device", "`hapt_device` float32, hop 64, mean of 2 (the window model before)"))


def experience() -> list[str]:
    """What the user sees (benchmarks/stream_experience.py) for each bundle measured, side by side."""
    rows = ["| bundle | state accuracy | worst class | transitions shown as left / reached / uncertain | detection delay "
            "median / p90 | never shown | shown changes/h vs labels | per-window accuracy | `har-edge run` one core |",
            "|---|---|---|---|---|---|---|---|---|"]
    head = None
    for name, label in _EXPERIENCE:
        d = _load(name)
        if d is None:
            continue
        r = d["results"]["as configured"]
        head = head or d
        cli = r.get("cli")
        speed = f"{cli['x_real_time']:,}× wall ({cli['x_real_time_cpu']:,}× CPU)" if cli else "–"
        rows.append(f"| {label} | **{r['state_accuracy']:.3f}** | {r['worst_class']} {r['worst_class_accuracy']:.4f} | "
                    f"{r['transition_ok']:.3f} | {r['delay_median_s']:.2f} s / {r['delay_p90_s']:.2f} s | "
                    f"{r['never_shown']} of {r['segments']} | {r['shown_changes_per_hour']:.0f} vs {r['label_changes_per_hour']:.0f} "
                    f"({r['flicker_ratio']:.2f}×) | {r['per_window']['accuracy']:.3f} | {speed} |")
    if head is None:
        return ["_not measured: run `python benchmarks/stream_experience.py --bundle RUNS/export_stream/float32 --cli-throughput`_", ""]
    r = head["results"]["as configured"]
    per_class = ", ".join(f"{k} {v:.4f}" for k, v in r["state_accuracy_per_class"].items())
    notes = [f"- {len(head['subjects'])} held-out subjects, {head['minutes']} min; state accuracy per class: {per_class}.",
             f"- Shown changes per labelled hour {r['shown_changes_per_labelled_hour']:.0f} (labels: "
             f"{r['label_changes_per_hour'] / max(1e-9, 1 - r['unlabelled_time']):.0f}); "
             f"{100 * r['shown_changes_in_unlabelled_time']:.0f} % of the shown changes fall in the "
             f"{100 * r['unlabelled_time']:.0f} % of the time the data set leaves unlabelled.",
             *([("- Shown changes per hour by where they fall: " + ", ".join(
                 f"{k} {v:.0f}" for k, v in r["shown_changes_per_hour_by_context"].items())
                + f" (label changes {r['label_changes_per_hour']:.0f}).")] if "shown_changes_per_hour_by_context" in r else []),
             f"- Cost per hour of data: {r['cost_per_hour']['model_invokes']:,} model invokes, "
             f"{r['cost_per_hour']['feed_seconds']} s in the stream."]
    return _block("experience", rows) + notes + tuning_note() + recipe_note() + [""]


def tuning_note() -> list[str]:
    """The smoothing chosen on the validation subjects against the runtime default, on the test subjects (experience_tuning.py)."""
    d = _load("experience_tuning")
    if d is None or not d.get("test"):
        return []
    chosen = f"chosen: {d['chosen']}"  # experience_tuning's test rows: the runtime defaults, then its choice
    parts = [f"{'the choice (' + d['chosen'] + ')' if name == chosen else 'the runtime default (mean of the last 2)'}: "
             f"state accuracy {r['state_accuracy']:.3f}, {r['worst_class']} {r['worst_class_accuracy']:.4f}, "
             f"delay {r['delay_median_s']:.2f} s / {r['delay_p90_s']:.2f} s, {r['flicker_ratio']:.2f}× the label changes"
             for name, r in d["test"].items()]  # worst class to 4 places: 0.8496 is not 0.85
    return [f"- Smoothing for `hapt_stream` chosen on the validation subjects (`benchmarks/experience_tuning.py`, "
            f"{len(d['validation'])} variants), then on the test subjects once: " + "; ".join(parts) + "."]


def recipe_note() -> list[str]:
    """The streaming model's training recipe against the one before, on the validation subjects (stream_training_recipe.py)."""
    d = _load("stream_training_recipe")
    if d is None:
        return []
    parts = []
    for variant, seeds in d["variants"].items():
        sm = [r["smoothed"]["state_accuracy"] for r in seeds.values()]
        fl = [r["smoothed"]["flicker_ratio"] for r in seeds.values()]
        parts.append(f"{variant} {np.mean(sm):.3f} ({min(sm):.3f}–{max(sm):.3f}, flicker {np.mean(fl):.2f}×)")
    return [f"- Training recipe, validation subjects, seeds {', '.join(map(str, d['seeds']))} "
            f"(`benchmarks/stream_training_recipe.py`), state accuracy with the bundle's smoothing: " + "; ".join(parts) + "."]


def fault_suite() -> list[str]:
    """Hardening figures: the long fuzz run, repeated kills, the memory soak (docs/hardening.md)."""
    fuzz, kills, soak = _load("fault_fuzz"), _load("kill_recovery"), _load("memory_soak")
    if fuzz is None and kills is None and soak is None:
        return ["_not measured: run `python benchmarks/fault_fuzz.py`, `kill_recovery.py`, `memory_soak.py`_", ""]
    rows = ["| fault | command | result |", "|---|---|---|"]
    if fuzz is not None:
        paths = fuzz["paths"]
        bad = {k: sum(p[k] for p in paths) for k in ("crashes", "tracebacks", "miscounted")}
        models = next((p for p in paths if p["path"].startswith("corrupted models")), None)
        rows.append(f"| hostile input on every path (seed {fuzz['seed']}) | `benchmarks/fault_fuzz.py` | "
                    f"{fuzz['total_cases']:,} cases: {bad['crashes']} crashes, {bad['tracebacks']} tracebacks, "
                    f"{bad['miscounted']} miscounted / leaked / loaded"
                    + (f" (of which {models['cases']:,} corrupted models)" if models else "") + " |")
    if kills is not None:
        for key, label in (("broker_kill", "broker SIGKILLed mid-stream, restarted"),
                           ("runtime_kill", "runtime SIGKILLed with a full outbox")):
            runs = kills[key]
            sent = sum(r["published"] if key == "broker_kill" else r["assigned"] for r in runs)
            rows.append(f"| {label} | `benchmarks/kill_recovery.py` | {len(runs)} runs, {sent:,} seqs: "
                        f"{sum(r['lost'] for r in runs)} lost, {sum(r['dropped'] for r in runs):,} dropped (counted), "
                        f"{sum(r['duplicates'] for r in runs)} duplicates |")
    if soak is not None:
        rss = soak["rss_mb_by_hour"]
        rows.append(f"| memory soak, {soak['simulated_hours']:g} simulated hours with faults | `benchmarks/memory_soak.py` | "
                    f"RSS {rss[1][1] if len(rss) > 1 else rss[0][1]:.1f} → {rss[-1][1]:.1f} MB, slope "
                    f"{soak['rss_slope_mb_per_hour']:+.3f} MB/h; {soak['publisher']['published']:,} messages, "
                    f"{soak['publisher']['acked']:,} acknowledged, {soak['publisher']['dropped']} dropped |")
    return _block("fault_suite", rows)


FORECAST_NAMES = {"beijing_temp_24h": "Beijing temperature, 24 h", "melbourne_min_7d": "Melbourne daily minimum, 7 d",
                  "usd_idr_5d": "USD/IDR, 5 d", "bbca_close_5d": "BBCA close, 5 d"}
UNIT_TEXT = {"degC": "°C"}


def forecasting() -> list[str]:
    d = _load("forecast_backtest")
    if d is None:
        return ["_not measured: run `python benchmarks/forecast_backtest.py`_", ""]
    rows = ["| series (origins) | LSTM MAE step 1 / step H / mean | naive mean | best statistical peer | LSTM vs that peer "
            "| skill vs naive | direction accuracy / up-move share | int8 / float32 MAE vs Keras | served on the device | train |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in d["results"].items():
        s, p = r["scores"], r["protocol"]
        H, unit = p["horizon"], UNIT_TEXT.get(p["unit"], p["unit"])
        lstm = s["lstm (keras)"]
        peers = {m: v["mae_mean"] for m, v in s.items() if m[:1].isupper()}
        best = min(peers, key=lambda m: peers[m]) if peers else None
        modes, served = r["export"]["modes"], r["served"]
        skill = lstm["skill_mean"]
        vs = f"{_signed(100 * (lstm['mae_mean'] / peers[best] - 1), '+.1f')} %" if best else "–"
        rows.append(
            f"| {FORECAST_NAMES.get(name, name)} ({p['origins']}) | {lstm['mae_step1']:.3f} / {lstm[f'mae_step{H}']:.3f} / "
            f"**{lstm['mae_mean']:.3f}** {unit} | {s['naive']['mae_mean']:.3f} | "
            f"{best} {peers[best]:.3f} | {vs} | {_signed(skill, '+.3f')}{' ⚠ no skill' if skill <= 0 else ''} | "
            f"{lstm['direction_accuracy']:.3f} / {r['up_move_share']['all_steps']:.3f} | "
            f"{_signed(100 * modes['int8']['mae_rel_diff_vs_keras'], '+.3f')} % / "
            f"{abs(100 * modes['float32']['mae_rel_diff_vs_keras']):.4f} % | "
            f"MAE {served['float32']['served_mae']:.4f} (bundle {served['float32']['bundle_backtest_mae']:.4f}) | "
            f"{r['train_seconds']:.0f} s |")
    return _block("forecasting", rows)


def _best_elsewhere(tuning: dict[str, Any]) -> str:
    """``; the best mean there was X, but it did not improve every tuning person.`` when the rule chose another."""
    best = max(tuning["recipes"], key=lambda n: tuning["recipes"][n]["mean"])
    if best == tuning["chosen"]:
        return "."
    return f"; the best mean there, {tuning['recipes'][best]['mean']:.3f} ({best}), did not improve every tuning person."


def _window_stage(tuning: dict[str, Any], w80: dict[str, Any] | None, d: dict[str, Any]) -> list[str]:
    """The tuning's window stage in one sentence, with what its pick did on the test people."""
    windows = tuning.get("windows")
    if not windows:
        return []
    w = str(tuning["chosen_window_samples"])
    text = (f"The generic model's window, tried the same way with that recipe ({', '.join(windows)} samples): the rule "
            f"picked {w} ({windows[w]['mean']:.3f} on the tuning people")
    if w in windows and "40" in windows and w != "40":
        text += f" vs {windows['40']['mean']:.3f} with 40"
    text += ")"
    if w80 is not None and w == "80":
        worse = [p for p, r in w80["persons"].items() if r["fine_tuned"] <= r["generic"]]
        text += (f"; on these ten people (`personalisation.py --window-samples 80`) it gave {w80['mean']['fine_tuned']:.3f} "
                 f"fine-tuned against {w80['mean']['generic']:.3f} generic (40: {d['mean']['fine_tuned']:.3f}), "
                 f"{'not improving ' + ', '.join(worse) if worse else 'every person improved'}, "
                 "so `wisdm_watch.toml` keeps 40, a choice made on the test people.")
    return ["", text]


def _probes(probes: dict[str, Any] | None, units96: dict[str, Any] | None, d: dict[str, Any]) -> list[str]:
    """``personalisation_tuning.py --probe`` in one sentence, with what its generic pick did on the test people."""
    if probes is None:
        return []
    recipes = probes["recipes"]
    text = ("Probes on the tuning people (`personalisation_tuning.py --probe`; fine-tuned mean): "
            + "; ".join(f"{n} {r['mean']:.3f}" for n, r in recipes.items()) + "; generic models with that recipe: "
            + "; ".join(f"{n} {e['mean']:.3f}" for n, e in probes["generics"].items())
            + f" (the rule's pick: {probes['chosen_generic']})")
    if units96 is not None and probes["chosen_generic"] == "units 96":
        worse = units96["not_improved"]["fine_tuned"]
        text += (f"; on these ten people (`personalisation.py --lstm-units 96`) it gave {units96['mean']['fine_tuned']:.3f} "
                 f"fine-tuned against {units96['mean']['generic']:.3f} generic (48 units: {d['mean']['fine_tuned']:.3f}), "
                 f"{'not improving ' + ', '.join(worse) if worse else 'every person improved'}, "
                 "so `wisdm_watch.toml` keeps 48 units, a choice made on the test people")
    return ["", text + "."]


def _seeds(d: dict[str, Any], by_seed: dict[int, dict[str, Any] | None]) -> list[str]:
    """The same benchmark with other seeds for every model (the generic one too), in one sentence."""
    runs = {42: d, **{s: r for s, r in by_seed.items() if r is not None}}
    if len(runs) < 2:
        return []
    parts = []
    for seed, r in runs.items():
        m = r["mean"]
        worse = r["not_improved"]["fine_tuned"]
        parts.append(f"seed {seed}: {m['generic']:.3f} → {m['fine_tuned']:.3f} ({(m['fine_tuned'] - m['generic']) * 100:+.1f}"
                     f"{', not improved: ' + ', '.join(worse) if worse else ''})")
    return ["", "The same with other seeds for every model, the generic one included (`personalisation.py --seed N`; "
                "generic → fine-tuned mean): " + "; ".join(parts) + "."]


def personalisation() -> list[str]:
    d = _load("personalisation")
    if d is None:
        return ["_not measured: run `python benchmarks/personalisation.py`_", ""]
    cols = ("generic", "fine_tuned", "fine_tuned_plain", "scratch", "int8")

    def cell(r: dict[str, Any], c: str) -> str:
        return f"{r[c]:.3f}" if c in r else "-"

    ablation = d["ablation_name"]
    rows = [f"| person | generic | fine-tuned | {ablation} | from scratch | int8 (fine-tuned) | fine-tune wall s |",
            "|---|---|---|---|---|---|---|"]
    for p, r in d["persons"].items():
        rows.append(f"| {p} | " + " | ".join(cell(r, c) for c in cols) + f" | {r.get('fine_tuned_wall_seconds', '-')} |")
    rows.append("| **mean** | " + " | ".join(f"**{cell(d['mean'], c)}**" for c in cols)
                + f" | max {d['max_fine_tune_wall_seconds']} |")
    tuning = _load("personalisation_tuning")
    if tuning is not None:
        chosen = tuning["recipes"][tuning["chosen"]]
        rows += ["", f"The recipe (`fine_tune.toml`) was chosen on ten other people, 1631–1640, with a generic model that never "
                     f"saw them (`python benchmarks/personalisation_tuning.py`: {len(tuning['recipes'])} recipes, rule fixed in "
                     f"advance): **{tuning['chosen']}**, mean {chosen['mean']:.3f} on them vs {tuning['generic_mean']:.3f} "
                     "generic" + _best_elsewhere(tuning)]
        rows += _window_stage(tuning, _load("personalisation_w80"), d)
    rows += _probes(_load("personalisation_probes"), _load("personalisation_units96"), d)
    rows += _seeds(d, {s: _load(f"personalisation_seed{s}") for s in (1, 2)})
    targets = ", ".join(f"{k.replace('_', ' ')} {'✓' if v else '✗'}" for k, v in d["targets"].items())
    return _block("personalisation", rows) + [f"Targets: {targets}. `python benchmarks/personalisation.py`", ""]


def wall_times() -> list[str]:
    d = _load("run_all")
    if d is None:
        return []
    rows = ["| step | seconds | exit code |", "|---|---|---|"]
    rows += [f"| {name} | {s['seconds']:.0f} | {s['rc']} |" for name, s in d["steps"].items()]
    rows.append(f"| **total** | **{d['total_seconds']:.0f}** | |")
    return ["## `make bench` steps (this run)", "", *rows, ""]


SECTIONS: list[tuple[str, Callable[..., list[str]]]] = [
    ("Training (held-out test subjects)", lambda runs: training()),
    ("Seed spread and augmentation", lambda runs: seeds_and_augmentation()),
    ("Export of hapt_device", export),
    ("Latency per window, batch 1", lambda runs: latency()),
    ("TFLite Micro vs LiteRT (int8)", lambda runs: tflm_parity()),
    ("What the user sees (held-out subjects' whole recordings)", lambda runs: experience()),
    ("Device runtime", lambda runs: device_runtime()),
    ("Fault suite", lambda runs: fault_suite()),
    ("Forecasting", lambda runs: forecasting()),
    ("Personalisation: WISDM watch, 60 s per activity per person", lambda runs: personalisation()),
]


def render(runs: Path, only: tuple[str, ...] = (), previous: str = "") -> str:
    """The summary; with ``only`` (title prefixes) just those sections are rendered anew and every other
    section (and the ``make bench`` steps table) is kept as ``previous`` has it: a benchmark rerun on its own
    updates its figures without dropping the others, which it did not measure."""
    kept = _sections(previous) if only else {}
    unknown = [o for o in only if not any(t.startswith(o) for t, _ in SECTIONS)]
    if unknown:
        raise SystemExit(f"--only {unknown}: no such section; sections: {[t for t, _ in SECTIONS]}")
    lines = ["# Benchmark summary", "",
             "Written by `python benchmarks/summary.py` from `benchmarks/results/*.json` (what `make bench` measured; "
             "RUNS = the runs directory).", ""]
    for title, fn in SECTIONS:
        fresh = not only or any(title.startswith(o) for o in only)
        lines += [f"## {title}", "", *(fn(runs) if fresh or title not in kept else kept[title])]
    steps = "`make bench` steps (this run)"
    lines += ([f"## {steps}", "", *kept[steps]] if steps in kept else []) if only else wall_times()
    return "\n".join(lines).rstrip() + "\n"


def _sections(text: str) -> dict[str, list[str]]:
    """``{title: body lines}`` of a rendered summary's ``## `` sections."""
    out: dict[str, list[str]] = {}
    for part in re.split(r"^## ", text, flags=re.M)[1:]:
        title, _, body = part.partition("\n")
        out[title.strip()] = body.strip("\n").splitlines() + [""]
    return out


BLOCK = re.compile(r"<!-- readme:(?P<name>[\w-]+) -->\n(?P<body>.*?)<!-- /readme -->", re.S)


def update_readme(summary: str, readme: Path) -> list[str]:
    """Replace each ``readme:NAME`` block of ``readme`` with the summary's; returns the names replaced."""
    blocks = {m["name"]: m["body"] for m in BLOCK.finditer(summary)}
    text = readme.read_text()
    done: list[str] = []

    def swap(m: re.Match[str]) -> str:
        if m["name"] not in blocks:
            return m.group(0)
        done.append(m["name"])
        return f"<!-- readme:{m['name']} -->\n{blocks[m['name']]}<!-- /readme -->"

    readme.write_text(BLOCK.sub(swap, text))
    return done


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default=str(REPO / "runs" / "final"))
    ap.add_argument("--out", default=str(RESULTS / "summary.md"))
    ap.add_argument("--update-readme", action="store_true", help="copy the figure blocks into README.md")
    ap.add_argument("--only", nargs="+", default=[], metavar="TITLE",
                    help="render only the sections whose title starts with TITLE; keep the rest of --out as it is")
    args = ap.parse_args(argv)
    previous = Path(args.out).read_text() if args.only and Path(args.out).is_file() else ""
    text = render(Path(args.runs), tuple(args.only), previous)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)
    if args.update_readme:
        print("README.md blocks updated:", ", ".join(update_readme(text, REPO / "README.md")) or "none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
