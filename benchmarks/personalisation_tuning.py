"""Choosing the fine-tuning recipe without looking at the test people.

Run: ``python benchmarks/personalisation_tuning.py [--work runs/personalisation_tuning] [--reuse]
[--data-root ../shared/data]`` (about 105 min on 2 cores: 67 recipes × 10 people, three tuning generic
models of 2 min each, and the chosen recipe from two of them)

``benchmarks/personalisation.py`` reports fine-tuning on the held-out people 1641–1650. The recipe it uses
(``training/configs/fine_tune.toml``: epochs, learning rate, ``keep_source`` …) and the window of the
generic model (``training/configs/wisdm_watch.toml``) must not be chosen on them. This benchmark chooses
both on ten other people, 1631–1640 (*tuning people*):

1. a *tuning generic model*: ``training/configs/wisdm_watch.toml`` with 1631–1650 all held out (so it
   has seen neither the tuning people nor the test people; validation 1600–1604 as before) and windows
   of :data:`SEARCH_WINDOW_SAMPLES` (2 s, the window the search was started with);
2. each tuning person becomes a user exactly as in ``personalisation.py``: the first 60 s of each
   activity through ``har-edge record`` as their own recording, the rest marked test;
3. every recipe in :data:`STAGE_1` (the current recipe, then one setting changed at a time), then
   :func:`stage_2` (the settings that helped, combined), then :func:`stage_3` (the choice so far with one
   setting changed at a time), is fine-tuned for every tuning person in
   process (:func:`har_edge.models.training.train_run`, what ``har-edge train`` runs) and scored on the
   rest of their data;
4. the rule, fixed before running: the recipe with the highest mean accuracy over the tuning people,
   among those that improve every tuning person over the tuning generic model (all recipes if none does);
5. :func:`window_stage`: the chosen recipe from tuning generic models with each of
   :data:`GENERIC_WINDOWS` (a longer window sees more of a movement, and the generic model changes with
   it); the same rule, each window against its own generic model, picks the window.

It prints the chosen recipe as ``[data]`` / ``[train]`` keys for ``fine_tune.toml`` and the rule's window.

The window stage was added later. Its pick, 80 samples, was run once on the test people
(``personalisation.py --window-samples 80``), and it did worse there than 40: 0.885 against 0.909, with 1644
ending 10 points below its generic model. So ``wisdm_watch.toml`` keeps 40. That decision was taken on the
test people, and ``docs/your-own-data.md`` says so.

``--probe`` (about 35 min; a ``make bench`` step) runs no search: it scores the recipe ``fine_tune.toml`` has and
each of :data:`PROBES` on top of it (replaying the generic model's own training windows), then that recipe
from larger tuning generic models (:data:`GENERIC_PROBES`), each judged against its own generic model by the
same rule. Ideas tried after the search go there, so they are measured on the tuning people first.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import print_table, write_json  # noqa: E402
from benchmarks.personalisation import CONFIGS, RATE_HZ, derived_config, har_edge, record_person, toml_text, write_raw  # noqa: E402
from har_edge.config import load_run_config, read_toml  # noqa: E402
from har_edge.data.paths import resolve_data_root  # noqa: E402

TUNING_PERSONS = tuple(range(1631, 1641))
HELD_OUT = tuple(range(1631, 1651))  # tuning + test people: neither trains the tuning generic model
SEARCH_WINDOW_SAMPLES = 40  # stages 1-3 fine-tune a tuning generic model with 2 s windows (20 Hz)
GENERIC_WINDOWS = (40, 80, 100)  # stage 4: the generic model's window, 2, 4 and 5 s
BASE: dict[str, dict[str, Any]] = {
    "data": {"train_hop_samples": 4, "split_block_s": 10.0},
    "train": {"epochs": 8, "learning_rate": 0.002, "keep_source": 0.5, "freeze": [], "patience": 8,
              "augment_rotation_deg": 0.0, "augment_scale": 0.0, "augment_noise": 0.0,
              "average_weights": 0.0},
}
AUGMENT = {"augment_rotation_deg": 15.0, "augment_scale": 0.1, "augment_noise": 0.01}
AUGMENT_STRONG = {"augment_rotation_deg": 30.0, "augment_scale": 0.2, "augment_noise": 0.02}
# Stage 1: (name, knob, changes). The knob groups alternatives of one setting for stage 2.
STAGE_1: tuple[tuple[str, str, dict[str, dict[str, Any]]], ...] = (
    ("base", "", {}),
    ("keep 0", "keep", {"train": {"keep_source": 0.0}}),
    ("keep 0.25", "keep", {"train": {"keep_source": 0.25}}),
    ("keep 0.75", "keep", {"train": {"keep_source": 0.75}}),
    ("keep by validation", "keep", {"train": {"keep_source": 0.0, "keep_source_choices": [0.5, 0.25, 0.0]}}),
    # the other way to average weights: along the fine-tuning path (an EMA after every batch) instead of toward
    # the generic model; an alternative to blending, so the same knob
    ("keep 0 + average 0.9", "keep", {"train": {"keep_source": 0.0, "average_weights": 0.9}}),
    ("keep 0 + average 0.95", "keep", {"train": {"keep_source": 0.0, "average_weights": 0.95}}),
    ("keep 0 + average 0.98", "keep", {"train": {"keep_source": 0.0, "average_weights": 0.98}}),
    ("epochs 4", "epochs", {"train": {"epochs": 4}}),
    ("epochs 16", "epochs", {"train": {"epochs": 16, "patience": 16}}),
    ("epochs 30", "epochs", {"train": {"epochs": 30, "patience": 30}}),
    ("epochs 60", "epochs", {"train": {"epochs": 60, "patience": 60}}),
    ("lr 0.001", "lr", {"train": {"learning_rate": 0.001}}),
    ("lr 0.005", "lr", {"train": {"learning_rate": 0.005}}),
    ("augment", "augment", {"train": AUGMENT}),
    ("augment strong", "augment", {"train": AUGMENT_STRONG}),
    ("freeze conv0", "freeze", {"train": {"freeze": ["conv0"]}}),
    ("hop 2", "hop", {"data": {"train_hop_samples": 2}}),
    ("hop 8", "hop", {"data": {"train_hop_samples": 8}}),
    ("blocks 5 s", "blocks", {"data": {"split_block_s": 5.0}}),
    # no validation blocks: all 60 s per activity train, and the last (averaged) weights are kept
    ("no validation", "validation", {"data": {"validation_fraction": 0.0}}),
)

# Probes (``--probe``): ideas tried after the search, each a change on top of the recipe fine_tune.toml has.
# Replay: the generic model's own training windows (people 1605-1630 here) beside the person's minute per
# activity, so the batches keep what holds for everyone while the weights move towards the person.
PROBES: tuple[tuple[str, dict[str, dict[str, Any]]], ...] = (
    ("replay 600", {"train": {"replay_source_windows": 600}}),
    ("replay 1800", {"train": {"replay_source_windows": 1800}}),
    ("replay 1800 | epochs 30", {"train": {"replay_source_windows": 1800, "epochs": 30, "patience": 30}}),
)
# ... and a larger generic model (name → (tag, changes to wisdm_watch.toml)), fine-tuned with the chosen recipe and
# judged against its own tuning generic model, as the window stage does
GENERIC_PROBES: dict[str, tuple[str, dict[str, dict[str, Any]]]] = {
    "wisdm_watch.toml": ("w40", {}),
    "units 96": ("w40_units96", {"model": {"units": [96]}}),
    "conv 64, units 64": ("w40_conv64_units64", {"model": {"conv_filters": [64], "units": [64]}}),
}


def merged(*changes: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """BASE with ``changes`` applied in order (table by table)."""
    out = {t: dict(v) for t, v in BASE.items()}
    for c in changes:
        for table, values in c.items():
            out[table].update(values)
    return out


def stage_2(scores: dict[str, float], stage_1: dict[str, tuple[str, dict[str, dict[str, Any]]]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Combinations of the stage-1 winners: for each knob its best alternative if it beat ``base``;
    all of them together, all but one (the recipes are nested, so a harmful pair shows), and every pair
    (two settings that only work together, e.g. no blending but a moving average plus augmentation)."""
    best: dict[str, str] = {}
    for name, (knob, _) in stage_1.items():
        if knob and scores[name] > scores["base"] and (knob not in best or scores[name] > scores[best[knob]]):
            best[knob] = name
    if len(best) < 2:
        return {}
    winners = sorted(best.values(), key=lambda n: -scores[n])
    combos = {" + ".join(winners): merged(*(stage_1[n][1] for n in winners))}
    if len(winners) > 2:
        for left_out in winners:
            rest = [n for n in winners if n != left_out]
            combos[" + ".join(rest)] = merged(*(stage_1[n][1] for n in rest))
        for pair in itertools.combinations(winners, 2):
            combos.setdefault(" + ".join(pair), merged(*(stage_1[n][1] for n in pair)))
    return combos


def stage_3(chosen: str, recipes: dict[str, dict[str, Any]],
            stage_1: dict[str, tuple[str, dict[str, dict[str, Any]]]]) -> dict[str, dict[str, dict[str, Any]]]:
    """A local search around the choice of stages 1 and 2: its recipe with each stage-1 change applied on top
    (``"CHOSEN | CHANGE"``; an alternative of a setting it has replaces it), leaving out recipes already scored."""
    base = recipes[chosen]["recipe"]
    seen = [r["recipe"] for r in recipes.values()]
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for name, (_, change) in stage_1.items():
        recipe = merged(base, change)
        if name != "base" and recipe not in seen and recipe not in out.values():
            out[f"{chosen} | {name}"] = recipe
    return out


def current_recipe() -> dict[str, dict[str, Any]]:
    """The recipe ``training/configs/fine_tune.toml`` has, as BASE's keys (what the search chose)."""
    toml = read_toml(CONFIGS / "fine_tune.toml")
    return {table: {key: toml[table][key] for key in keys} for table, keys in BASE.items()}


def probe_stage(folders: dict[int, Path], generic: Path, work: Path, data_root: Path, results: dict[str, Any],
                done: dict[str, Any] | None, reuse: bool) -> None:
    """``--probe``: fine_tune.toml's recipe and each of :data:`PROBES` on top of it, on the tuning people; the
    search's rule says whether a probe would replace the recipe (``results["chosen"]``). Then the chosen recipe
    from each of :data:`GENERIC_PROBES` (``results["generics"]``, ``results["chosen_generic"]``). ``done``: an
    earlier probe run's results (``--reuse``)."""
    current = current_recipe()
    recipes = {"fine_tune.toml": current, **{f"fine_tune.toml | {n}": merged(current, c) for n, c in PROBES}}
    evaluate_recipes(recipes, folders, generic, data_root, results, done["recipes"] if done else None)
    results["chosen"] = choose(results)
    generics = results["generics"] = generic_stage(results["recipes"][results["chosen"]]["recipe"], GENERIC_PROBES, folders,
                                                   work, data_root, results, done.get("generics") if done else None, reuse)
    results["chosen_generic"] = choose_among(generics, {n: e["generic_per_person"] for n, e in generics.items()})


def fine_tune(person: int, folder: Path, generic: Path, recipe: dict[str, dict[str, Any]], data_root: Path) -> tuple[float, float]:
    """Fine-tune ``generic`` on ``folder`` with ``recipe`` in process; returns (test accuracy, fit seconds)."""
    from har_edge.models.keras_backend import import_keras
    from har_edge.models.training import train_run

    overrides = {"data": dict(recipe["data"], path=str(folder.resolve())),
                 "train": dict(recipe["train"], init_from=str(generic.resolve()))}
    cfg = load_run_config(CONFIGS / "fine_tune.toml", overrides=overrides)
    with tempfile.TemporaryDirectory() as tmp:
        info = train_run(cfg, data_root, Path(tmp) / f"ft_{person}", verbose=0)
    import_keras().backend.clear_session()
    return float(info.metrics["test_accuracy"]), float(info.metrics["train_seconds"])


def tuning_generic(work: Path, data_root: Path, reuse: bool, changes: dict[str, dict[str, Any]] | None = None,
                   tag: str | None = None) -> Path:
    """Train a tuning generic model (wisdm_watch.toml with 1631–1650 held out, windows of
    :data:`SEARCH_WINDOW_SAMPLES` and ``changes``) into ``WORK/generic_TAG`` (TAG: ``wW`` by default); ``reuse``
    keeps one trained from the same config."""
    changes = changes or {}
    data = {"test_subjects": list(HELD_OUT), "window_samples": SEARCH_WINDOW_SAMPLES, **changes.get("data", {})}
    tag = tag or f"w{data['window_samples']}"
    run, cfg = work / f"generic_{tag}", work / f"wisdm_watch_tuning_{tag}.toml"
    stale = derived_config("wisdm_watch.toml", cfg, {**changes, "data": data}, name="wisdm_watch_tuning")
    if reuse and not stale and (run / "metrics.json").is_file():
        return run
    har_edge("train", "--config", str(cfg), "--out", str(run), "--quiet", "--data-root", str(data_root))
    return run


def generic_accuracy(generic: Path, folder: Path) -> float:
    _, out = har_edge("evaluate", str(generic), "--recordings", str(folder), "--split", "test")
    return float(json.loads(out.strip().splitlines()[-1])["test_accuracy"])


def evaluate_recipes(recipes: dict[str, dict[str, dict[str, Any]]], folders: dict[int, Path], generic: Path,
                     data_root: Path, results: dict[str, Any], done: dict[str, Any] | None = None) -> None:
    """Fine-tune every person with each recipe into ``results["recipes"]``; a recipe ``done`` (an earlier
    run's results, ``--reuse``) already scored with the same settings is taken from there (training is seeded)."""
    for name, recipe in recipes.items():
        if done and name in done and done[name]["recipe"] == recipe:
            results["recipes"][name] = done[name]
            print(f"{name}: mean {done[name]['mean']:.4f} (reused)", flush=True)
            continue
        t0 = time.monotonic()
        per = {}
        fits = []
        for p, folder in folders.items():
            acc, fit_s = fine_tune(p, folder, generic, recipe, data_root)
            per[str(p)] = round(acc, 4)
            fits.append(fit_s)
        results["recipes"][name] = {"recipe": recipe, "per_person": per, "mean": round(float(np.mean(list(per.values()))), 4),
                                    "max_fit_seconds": round(max(fits), 1)}
        print(f"{name}: mean {results['recipes'][name]['mean']:.4f} ({time.monotonic() - t0:.0f} s)", flush=True)


def choose(results: dict[str, Any]) -> str:
    """The rule: highest mean among recipes improving every tuning person (all recipes if none does)."""
    return choose_among(results["recipes"], {n: results["generic_per_person"] for n in results["recipes"]})


def choose_among(candidates: dict[str, dict[str, Any]], generic: dict[str, dict[str, float]]) -> str:
    """Highest ``mean`` among the candidates whose ``per_person`` beats ``generic[candidate]`` for every
    person (all candidates if none does)."""
    improving = [n for n, r in candidates.items() if all(r["per_person"][p] > g for p, g in generic[n].items())]
    return max(improving or list(candidates), key=lambda n: candidates[n]["mean"])


def generic_stage(recipe: dict[str, dict[str, Any]], variants: dict[str, tuple[str, dict[str, dict[str, Any]]]],
                  folders: dict[int, Path], work: Path, data_root: Path, results: dict[str, Any],
                  done: dict[str, Any] | None, reuse: bool) -> dict[str, dict[str, Any]]:
    """``recipe`` from a tuning generic model per variant (name → (tag, changes to wisdm_watch.toml); no changes: the
    search's own generic model, whose score for the chosen recipe exists). Each entry keeps its generic model's
    per-person accuracy, so :func:`choose_among` judges each against its own generic model."""
    out = {}
    for name, (tag, changes) in variants.items():
        if not changes:
            entry = {"generic_run": results["generic_run"], "generic_per_person": results["generic_per_person"],
                     **results["recipes"][results["chosen"]]}
        elif done and name in done and done[name]["recipe"] == recipe and done[name].get("changes", changes) == changes:
            entry = done[name]
            print(f"generic {name}: mean {entry['mean']:.4f} (reused)", flush=True)
        else:
            generic = tuning_generic(work, data_root, reuse, changes, tag)
            entry = {"generic_run": str(generic),
                     "generic_per_person": {str(p): round(generic_accuracy(generic, f), 4) for p, f in folders.items()}}
            scored: dict[str, Any] = {"recipes": {}}
            evaluate_recipes({f"generic {name}": recipe}, folders, generic, data_root, scored)
            entry.update(scored["recipes"][f"generic {name}"])
        entry["changes"] = changes
        entry["generic_mean"] = round(float(np.mean(list(entry["generic_per_person"].values()))), 4)
        out[name] = entry
    return out


def window_stage(recipe: dict[str, dict[str, Any]], folders: dict[int, Path], work: Path, data_root: Path,
                 results: dict[str, Any], done: dict[str, Any] | None, reuse: bool) -> None:
    """Stage 4: the chosen recipe from a tuning generic model with each of :data:`GENERIC_WINDOWS`
    (``results["windows"]``; the search window's entry is the recipe's own score); the same rule picks one."""
    variants = {str(w): (f"w{w}", {} if w == SEARCH_WINDOW_SAMPLES else {"data": {"window_samples": w}}) for w in GENERIC_WINDOWS}
    windows = results["windows"] = generic_stage(recipe, variants, folders, work, data_root, results, done, reuse)
    results["chosen_window_samples"] = int(choose_among(windows, {w: e["generic_per_person"] for w, e in windows.items()}))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="runs/personalisation_tuning")
    ap.add_argument("--reuse", action="store_true",
                    help="keep the tuning generic model, the recordings and the recipe scores (same settings) that exist")
    ap.add_argument("--data-root")
    ap.add_argument("--probe", action="store_true",
                    help="no search: fine_tune.toml's recipe, the PROBES on top of it and the GENERIC_PROBES, on the tuning people")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    work, data_root = Path(args.work), resolve_data_root(args.data_root)
    t0 = time.monotonic()
    generic = tuning_generic(work, data_root, args.reuse)
    activities = write_raw(data_root, work / "raw", TUNING_PERSONS)
    folders = {}
    for p in TUNING_PERSONS:
        folders[p] = folder = work / "persons" / str(p)
        if not (args.reuse and folder.is_dir()):
            shutil.rmtree(folder, ignore_errors=True)
            record_person(p, activities[p], work / "raw", folder)
    results: dict[str, Any] = {"tuning_persons": list(TUNING_PERSONS), "generic_run": str(generic),
                               "generic_per_person": {str(p): round(generic_accuracy(generic, f), 4) for p, f in folders.items()},
                               "recipes": {}}
    results["generic_mean"] = round(float(np.mean(list(results["generic_per_person"].values()))), 4)
    print(f"tuning generic model: mean {results['generic_mean']:.4f} on the tuning people's test parts", flush=True)
    name, previous = ("personalisation_probes", work / "probes.json") if args.probe else ("personalisation_tuning",
                                                                                       work / "tuning.json")
    done = json.loads(previous.read_text()) if args.reuse and previous.is_file() else None  # --reuse: earlier scores
    (probe_stage if args.probe else search)(folders, generic, work, data_root, results, done, args.reuse)
    results["wall_minutes"] = round((time.monotonic() - t0) / 60, 1)
    report(results)
    write_json(name, results, args.out)
    previous.write_text(json.dumps(results, indent=1))  # make bench --reuse-runs keeps a finished run
    return 0


def search(folders: dict[int, Path], generic: Path, work: Path, data_root: Path, results: dict[str, Any],
           done: dict[str, Any] | None, reuse: bool) -> None:
    """Stages 1-3 (``results["recipes"]``, ``results["chosen"]``) and the window stage; ``done``: an earlier
    search's results (``--reuse``)."""
    stage_1 = {name: (knob, change) for name, knob, change in STAGE_1}
    recipes = done["recipes"] if done else None
    evaluate_recipes({n: merged(c) for n, (_, c) in stage_1.items()}, folders, generic, data_root, results, recipes)
    scores = {n: r["mean"] for n, r in results["recipes"].items()}
    evaluate_recipes(stage_2(scores, stage_1), folders, generic, data_root, results, recipes)
    evaluate_recipes(stage_3(choose(results), results["recipes"], stage_1), folders, generic, data_root, results, recipes)
    results["chosen"] = choose(results)
    window_stage(results["recipes"][results["chosen"]]["recipe"], folders, work, data_root, results,
                 done.get("windows") if done else None, reuse)


def report(results: dict[str, Any]) -> None:
    g = results["generic_per_person"]
    rows = []
    for name, r in results["recipes"].items():
        worse = [p for p in g if r["per_person"][p] <= g[p]]
        rows.append([name + (" ←" if name == results["chosen"] else ""), r["mean"], f"{(r['mean'] - results['generic_mean']) * 100:+.1f}",
                     min(r["per_person"].values()), ", ".join(worse) or "none", r["max_fit_seconds"]])
    print_table(rows, ["recipe (tuning people 1631-1640)", "mean accuracy", "gain pp", "worst person", "not improved", "max fit s"])
    chosen = results["recipes"][results["chosen"]]["recipe"]
    print(f"\nchosen: {results['chosen']} ({results['wall_minutes']} min). For fine_tune.toml:\n" + toml_text(chosen))
    if "generics" in results:  # --probe
        generic_table(results["generics"], results["chosen_generic"], "generic model (chosen recipe)")
        return
    generic_table(results["windows"], str(results["chosen_window_samples"]), "generic window (chosen recipe)",
                  lambda w: f"{w} ({int(w) / RATE_HZ:g} s)")
    in_use = read_toml(CONFIGS / "wisdm_watch.toml")["data"]["window_samples"]
    print(f"\nthe rule's window: window_samples = {results['chosen_window_samples']}; wisdm_watch.toml has {in_use}"
          " (docs/your-own-data.md, section 8, says why)")


def generic_table(entries: dict[str, dict[str, Any]], chosen: str, title: str, label: Any = str) -> None:
    """One row per tuning generic model (:func:`generic_stage`): its mean, the fine-tuned mean, who is not improved."""
    rows = []
    for name, e in entries.items():
        worse = [p for p, a in e["generic_per_person"].items() if e["per_person"][p] <= a]
        rows.append([label(name) + (" ←" if name == chosen else ""), e["generic_mean"], e["mean"],
                     f"{(e['mean'] - e['generic_mean']) * 100:+.1f}", min(e["per_person"].values()), ", ".join(worse) or "none",
                     e["max_fit_seconds"]])
    print_table(rows, [title, "generic mean", "fine-tuned mean", "gain pp", "worst person", "not improved", "max fit s"])


if __name__ == "__main__":
    sys.exit(main())
