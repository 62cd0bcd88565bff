"""Choose the stream smoothing on the *validation* subjects' raw recordings, then report it on the test subjects.

Run: ``python benchmarks/smoothing_tuning.py --bundle BUNDLE_DIR [--data-root ../shared/data]``

Each recording is streamed once through the device's StreamClassifier without smoothing (causal
preprocessing, one window per hop, exactly as ``har-edge run``); every smoothing variant of a grid
is then replayed over those raw probabilities with the runtime's own :class:`Smoother`. Scoring is
that of ``stream_accuracy.py`` (majority label of the window; ``uncertain`` counts as an error).

Rule, fixed before looking at the test subjects: among the variants whose validation accuracy is
within ``--tolerance-pp`` (default 1.0) points of the best, take the one with the fewest activity
changes per hour (flicker is what smoothing is for). The test subjects are used once, at the end.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import print_table, progress, write_json  # noqa: E402
from benchmarks.hapt_streams import VALIDATION_SUBJECTS, load_subjects, stream_recording  # noqa: E402
from har_edge.data.loaders import UCI_TEST_SUBJECTS  # noqa: E402
from har_edge.data.paths import resolve_data_root  # noqa: E402
from har_edge.inference.classifier import Classifier  # noqa: E402
from har_edge.evaluation.stream_scoring import score_stream, window_truth  # noqa: E402
from har_edge.runtime.smoothing import SmoothingConfig, Smoother  # noqa: E402
from har_edge.runtime.stream import StreamClassifier  # noqa: E402


def grid() -> dict[str, SmoothingConfig]:
    out = {"none": SmoothingConfig(method="none", confidence_floor=0.0)}
    for floor in (0.0, 0.4, 0.5, 0.6):
        for w in (2, 3, 4, 5, 7):
            out[f"mean {w}, floor {floor}"] = SmoothingConfig(method="mean", window=w, confidence_floor=floor)
        for w, v in ((3, 2), (5, 3), (5, 4), (7, 4)):
            out[f"vote {v}/{w}, floor {floor}"] = SmoothingConfig(method="vote", window=w, votes=v, confidence_floor=floor)
    return out


def raw_streams(clf: Classifier, recs: list[Any]) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Per recording: ``(raw probabilities (n, k), truth (n,), duration_s)``."""
    out = []
    for rec in progress(recs, "streaming recordings"):
        s = StreamClassifier(clf, smoothing=SmoothingConfig(method="none", confidence_floor=0.0))
        results, _ = stream_recording(s, rec)
        probs = np.stack([r.raw.probabilities for r in results])
        truth = window_truth(rec, [r.timestamp for r in results], clf.window_samples)
        out.append((probs, np.asarray(truth), rec.duration_s))
    return out


def evaluate(streams: list[tuple[np.ndarray, np.ndarray, float]], cfg: SmoothingConfig, labels: tuple[str, ...]) -> dict[str, Any]:
    acts: list[str] = []
    changes = 0
    for probs, _, _ in streams:
        sm = Smoother(labels, cfg)
        a = [sm.update(p)[0] for p in probs]
        changes += sum(x != y for x, y in zip(a, a[1:]))
        acts += a
    sc = score_stream(acts, np.concatenate([t for _, t, _ in streams]), labels)
    hours = sum(d for _, _, d in streams) / 3600
    sc["activity_changes_per_hour"] = round(changes / hours, 1)
    sc.pop("confusion_matrix", None)
    return sc


def truth_changes_per_hour(streams: list[tuple[np.ndarray, np.ndarray, float]]) -> float:
    changes = 0
    for _, truth, _ in streams:
        valid = truth[truth >= 0]
        changes += int(np.sum(valid[1:] != valid[:-1]))
    return round(changes / (sum(d for _, _, d in streams) / 3600), 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--data-root")
    ap.add_argument("--backend")
    ap.add_argument("--validation-subjects", type=int, nargs="+", default=list(VALIDATION_SUBJECTS))
    ap.add_argument("--tolerance-pp", type=float, default=1.0)
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    root = resolve_data_root(args.data_root)
    val_recs = load_subjects(root, args.validation_subjects)
    test_recs = load_subjects(root, UCI_TEST_SUBJECTS)
    variants = grid()
    with Classifier.from_bundle(args.bundle, backend=args.backend) as clf:
        labels = clf.labels
        val = raw_streams(clf, val_recs)
        val_scores = {name: evaluate(val, cfg, labels) for name, cfg in variants.items()}
        best = max(s["accuracy"] for s in val_scores.values())
        eligible = [n for n, s in val_scores.items() if s["accuracy"] >= best - args.tolerance_pp / 100]
        chosen = min(eligible, key=lambda n: (val_scores[n]["activity_changes_per_hour"], -val_scores[n]["accuracy"]))
        test = raw_streams(clf, test_recs)
        compare = {"none": variants["none"],
                   "old default (mean 3, floor 0.5)": SmoothingConfig(method="mean", window=3, confidence_floor=0.5),
                   "current default (SmoothingConfig())": SmoothingConfig(), f"chosen: {chosen}": variants[chosen]}
        test_scores = {name: evaluate(test, cfg, labels) for name, cfg in compare.items()}

    print(f"validation: {len(val_recs)} recordings of subjects {sorted({r.subject for r in val_recs})}, "
          f"{sum(r.duration_s for r in val_recs) / 60:.1f} min; true label changes/hour {truth_changes_per_hour(val)}")
    top = sorted(val_scores.items(), key=lambda kv: -kv[1]["accuracy"])[:12]
    print_table([[n, round(s["accuracy"], 4), round(s["macro_f1"], 4), s["uncertain"], s["activity_changes_per_hour"],
                  "<- chosen" if n == chosen else ""] for n, s in top],
                ["variant (top 12 by validation accuracy)", "accuracy", "macro-F1", "uncertain", "changes/hour", ""])
    print(f"\n{len(variants)} variants tried on the validation subjects")
    print(f"rule: fewest changes/hour within {args.tolerance_pp} pp of the best validation accuracy ({best:.4f}) -> {chosen}")
    print(f"\ntest: {len(test_recs)} recordings of subjects {sorted({r.subject for r in test_recs})}, "
          f"{sum(r.duration_s for r in test_recs) / 60:.1f} min; true label changes/hour {truth_changes_per_hour(test)}")
    print_table([[n, round(s["accuracy"], 4), round(s["macro_f1"], 4), s["windows_scored"], s["uncertain"], s["activity_changes_per_hour"]]
                 for n, s in test_scores.items()], ["smoothing", "accuracy", "macro-F1", "scored", "uncertain", "changes/hour"])
    cfg = variants[chosen]
    write_json("smoothing_tuning", {
        "bundle": args.bundle, "validation_subjects": sorted({r.subject for r in val_recs}),
        "test_subjects": sorted({r.subject for r in test_recs}), "tolerance_pp": args.tolerance_pp,
        "variants": len(variants), "validation_minutes": round(sum(r.duration_s for r in val_recs) / 60, 1),
        "chosen": {"name": chosen, "method": cfg.method, "window": cfg.window, "votes": cfg.votes,
                   "confidence_floor": cfg.confidence_floor},
        "validation": val_scores, "test": test_scores,
        "truth_changes_per_hour": {"validation": truth_changes_per_hour(val), "test": truth_changes_per_hour(test)},
    }, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
