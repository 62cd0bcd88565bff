"""Choose the runtime's hop and smoothing for what the user sees, on the *validation* subjects; report the choice on the test subjects once.

Run: ``python benchmarks/experience_tuning.py --bundle BUNDLE [--hops 16 32 64] [--write-config OUT.toml] [--data-root ../shared/data]``

Each validation recording is streamed once per hop through the stream ``har-edge run`` builds
(:func:`har_edge.cli.run.build_stream`) without smoothing; every smoother of a grid (none, mean of
the last n, vote, the HMM filter with its switch probability and evidence weight — free, or postural
for a bundle with a transition class, whose leaving probability is then tried too — and confidence floors) then replays the raw probabilities through the runtime's own
:func:`~har_edge.runtime.decoding.make_smoother`, and :mod:`har_edge.evaluation.experience` scores what
a dashboard would show (state accuracy, worst class, transitions, detection delay, flicker).
A streaming bundle (carried LSTM state) has one hop: its own.

Rule, fixed before looking at the test subjects: the variants that miss the fewest experience targets on
the validation subjects (state accuracy ≥ 0.93, no class < 0.85, delay median ≤ 1.0 s and p90 ≤ 2.0 s,
shown changes ≤ 1.5 × label changes, transitions ≥ 0.90); among them, those within ``--tolerance-pp``
(1.0) of their best state accuracy; of those, the fewest shown changes per hour. The test subjects are used once, for
the chosen variant and the runtime's defaults side by side.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import print_table, write_json  # noqa: E402
from benchmarks.hapt_streams import VALIDATION_SUBJECTS, load_subjects, stream_recording  # noqa: E402
from har_edge.cli.run import build_stream, load_device_config  # noqa: E402
from har_edge.data.loaders import UCI_LABELS, UCI_TEST_SUBJECTS  # noqa: E402
from har_edge.data.paths import resolve_data_root  # noqa: E402
from har_edge.data.recording import Recording  # noqa: E402
from har_edge.evaluation.experience import ExperienceCounts, score_recording, summarise  # noqa: E402
from har_edge.inference.classifier import Classifier  # noqa: E402
from har_edge.runtime.decoding import make_smoother  # noqa: E402
from har_edge.runtime.smoothing import SmoothingConfig  # noqa: E402

Stream = tuple[Recording, np.ndarray, np.ndarray]  # recording, publication times (n,), raw probabilities (n, k)


def grid(postural: bool) -> dict[str, SmoothingConfig]:
    """The variants: none, mean, vote, the HMM filter (free, and postural when the bundle has a transition class); floors."""
    out = {"none": SmoothingConfig(method="none")}
    for floor in (0.0, 0.6):
        for w in (2, 3):
            out[f"mean {w}, floor {floor}"] = SmoothingConfig(method="mean", window=w, confidence_floor=floor)
        out[f"vote 2/3, floor {floor}"] = SmoothingConfig(method="vote", window=3, votes=2, confidence_floor=floor)
        for s, ew, leave in itertools.product((0.3, 0.1, 0.03, 0.01, 0.003), (0.25, 0.5, 1.0), (0.0, 0.1, 0.3, 0.6) if postural else (0.0,)):
            if leave and leave <= s:
                continue
            tail = f" leave={leave}" if leave else ""
            out[f"hmm s={s} w={ew}{tail}, floor {floor}"] = SmoothingConfig(
                method="hmm", switch_probability=s, evidence_weight=ew, leave_transition_probability=leave, confidence_floor=floor)
            for fb in (1e-4, 1e-8) if postural else ():
                out[f"hmm postural s={s} w={ew} fb={fb:g}{tail}, floor {floor}"] = SmoothingConfig(
                    method="hmm", switch_probability=s, evidence_weight=ew, structure="postural", forbidden_probability=fb,
                    leave_transition_probability=leave, confidence_floor=floor)
    return out


def raw_streams(clf: Classifier, recs: list[Recording], hop: int | None) -> list[Stream]:
    cfg = load_device_config(None)
    cfg = dict(cfg, hop_samples=hop, smoothing=dict(cfg["smoothing"], method="none", confidence_floor=0.0))
    out = []
    for rec in recs:
        results, _ = stream_recording(build_stream(clf, cfg, source_rate_hz=rec.sample_rate_hz), rec)
        out.append((rec, np.array([r.timestamp for r in results]), np.stack([r.raw.probabilities for r in results])))
    return out


def evaluate(streams: list[Stream], cfg: SmoothingConfig, clf: Classifier) -> dict[str, Any]:
    counts = ExperienceCounts()
    for rec, times, probs in streams:
        sm = make_smoother(clf.labels, cfg, uncertain_labels=clf.bundle.uncertain_labels, output_step=clf.bundle.output_step)
        acts = [sm.update(p)[0] for p in probs]
        counts.add(score_recording(rec.labels, rec.label_names, rec.sample_rate_hz, times, acts, scored=UCI_LABELS))  # type: ignore[arg-type]
    return summarise(counts)


def missed(s: dict[str, Any]) -> int:
    checks = [s["state_accuracy"] >= 0.93, s["worst_class_accuracy"] >= 0.85,
              s["delay_median_s"] is not None and s["delay_median_s"] <= 1.0, s["delay_p90_s"] is not None and s["delay_p90_s"] <= 2.0,
              s["flicker_ratio"] <= 1.5, s["transition_ok"] >= 0.90]
    return sum(not c for c in checks)


def choose(scores: dict[str, dict[str, Any]], tolerance_pp: float) -> str:
    """The rule: fewest missed targets; among those, within ``tolerance_pp`` of their best state accuracy, the
    fewest shown changes per hour (then the higher state accuracy)."""
    fewest = min(missed(s) for s in scores.values())
    pool = {k: s for k, s in scores.items() if missed(s) == fewest}
    best = max(s["state_accuracy"] for s in pool.values())
    near = [k for k, s in pool.items() if s["state_accuracy"] >= best - tolerance_pp / 100]
    return min(near, key=lambda k: (pool[k]["shown_changes_per_hour"], -pool[k]["state_accuracy"]))


def row(name: str, s: dict[str, Any]) -> list[Any]:
    return [name, s["state_accuracy"], f"{s['worst_class']} {s['worst_class_accuracy']}", s["transition_ok"],
            s["delay_median_s"], s["delay_p90_s"], s["never_shown"], s["shown_changes_per_hour"], s["label_changes_per_hour"],
            missed(s)]


HEADER = ["variant", "state acc", "worst class", "transitions", "delay p50", "delay p90", "never", "changes/h", "labels/h", "missed"]


def toml_snippet(hop: int | None, cfg: SmoothingConfig) -> str:
    lines = [f"hop_samples = {hop}"] if hop is not None else []
    lines += ["", "[smoothing]", f'method = "{cfg.method}"']
    if cfg.method in ("mean", "vote"):
        lines.append(f"window = {cfg.window}")
    if cfg.method == "vote":
        lines.append(f"votes = {cfg.votes}")
    if cfg.method == "hmm":
        lines += [f"switch_probability = {cfg.switch_probability}", f"evidence_weight = {cfg.evidence_weight}",
                  f'structure = "{cfg.structure}"']
        if cfg.structure == "postural":
            lines.append(f"forbidden_probability = {cfg.forbidden_probability:g}")
        if cfg.leave_transition_probability:
            lines.append(f"leave_transition_probability = {cfg.leave_transition_probability}")
    lines.append(f"confidence_floor = {cfg.confidence_floor}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--hops", type=int, nargs="+", help="hops to try (default: the bundle's only)")
    ap.add_argument("--validation-subjects", type=int, nargs="+", default=list(VALIDATION_SUBJECTS))
    ap.add_argument("--tolerance-pp", type=float, default=1.0, help="state accuracy given up for less flicker (default 1.0)")
    ap.add_argument("--write-config", help="write the chosen hop and smoothing as a device TOML")
    ap.add_argument("--no-test", action="store_true", help="validation only (while exploring: keep the test subjects unseen)")
    ap.add_argument("--data-root")
    ap.add_argument("--backend")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    root = resolve_data_root(args.data_root)
    val_recs = load_subjects(root, args.validation_subjects, transitions=True)
    scores: dict[str, dict[str, Any]] = {}
    keys: dict[str, tuple[int | None, SmoothingConfig]] = {}
    with Classifier.from_bundle(args.bundle, backend=args.backend) as clf:
        variants = grid(postural=bool(clf.bundle.uncertain_labels))
        hops: list[int | None] = [None] if clf.bundle.carries_state or not args.hops else list(args.hops)
        for hop in hops:
            streams = raw_streams(clf, val_recs, hop)
            for name, cfg in variants.items():
                key = f"hop {hop or clf.bundle.hop_samples}, {name}"
                scores[key], keys[key] = evaluate(streams, cfg, clf), (hop, cfg)
        chosen = choose(scores, args.tolerance_pp)
        hop, cfg = keys[chosen]
        test: dict[str, dict[str, Any]] = {}
        if not args.no_test:
            test_recs = load_subjects(root, UCI_TEST_SUBJECTS, transitions=True)
            test = {f"defaults (hop {clf.bundle.hop_samples}, SmoothingConfig())": evaluate(raw_streams(clf, test_recs, None), SmoothingConfig(), clf),
                    f"chosen: {chosen}": evaluate(raw_streams(clf, test_recs, hop), cfg, clf)}
    minutes = sum(r.duration_s for r in val_recs) / 60
    print(f"validation: {len(val_recs)} recordings of subjects {sorted(args.validation_subjects)}, {minutes:.1f} min; "
          f"{len(scores)} variants")
    top = sorted(scores, key=lambda k: (missed(scores[k]), -scores[k]["state_accuracy"]))[:15]
    top = top if chosen in top else [*top[:14], chosen]
    print_table([row(k + (" <- chosen" if k == chosen else ""), scores[k]) for k in top], HEADER)
    if test:
        print(f"\ntest: subjects {list(UCI_TEST_SUBJECTS)}")
        print_table([row(k, s) for k, s in test.items()], HEADER)
    snippet = toml_snippet(hop, cfg)
    print("\nchosen device settings:\n" + snippet)
    if args.write_config:
        Path(args.write_config).write_text(f"# chosen by benchmarks/experience_tuning.py on validation subjects {sorted(args.validation_subjects)}\n"
                                           + snippet)
    write_json("experience_tuning", {"bundle": args.bundle, "validation_subjects": sorted(args.validation_subjects),
                                     "chosen": chosen, "device_settings": snippet, "validation": scores, "test": test}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
