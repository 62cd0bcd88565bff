"""Streaming accuracy over the held-out subjects' raw HAPT recordings vs their labelled segments.

Run: ``python benchmarks/stream_accuracy.py --bundle BUNDLE_DIR [--data-root ../shared/data]``

Each test subject's continuous recording goes through the device's StreamClassifier (causal
preprocessing, one window per hop, smoothing) exactly as ``har-edge run`` does. A classification is
scored against the majority label of its window; windows that are mostly unlabelled or a postural
transition (not a model class) are not scored. Reported with and without smoothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import print_table, progress, write_json  # noqa: E402
from benchmarks import hapt_streams  # noqa: E402
from har_edge.data.loaders import UCI_TEST_SUBJECTS  # noqa: E402
from har_edge.data.paths import resolve_data_root  # noqa: E402
from har_edge.inference.classifier import Classifier  # noqa: E402
from har_edge.evaluation.stream_scoring import score_stream, window_truth  # noqa: E402
from har_edge.runtime.smoothing import SmoothingConfig  # noqa: E402
from har_edge.runtime.stream import StreamClassifier  # noqa: E402


def stream_recording(clf: Classifier, rec, smoothing: SmoothingConfig) -> tuple[list[float], list[str]]:
    out, _ = hapt_streams.stream_recording(StreamClassifier(clf, smoothing=smoothing), rec)
    return [r.timestamp for r in out], [r.activity for r in out]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--data-root")
    ap.add_argument("--backend")
    ap.add_argument("--unsmoothed-only", action="store_true", help="only the 'no smoothing' row (e.g. for other models)")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    recs = hapt_streams.load_subjects(resolve_data_root(args.data_root), UCI_TEST_SUBJECTS)
    variants = {
        "no smoothing": SmoothingConfig(method="none", confidence_floor=0.0),
        "default (mean of 2, no floor)": SmoothingConfig(),
        "mean of 3, floor 0.5 (the old default)": SmoothingConfig(method="mean", window=3, confidence_floor=0.5),
        "vote 2 of 3, no floor": SmoothingConfig(method="vote", window=3, votes=2, confidence_floor=0.0),
    }
    if args.unsmoothed_only:
        variants = {"no smoothing": variants["no smoothing"]}
    rows, results = [], {}
    with Classifier.from_bundle(args.bundle, backend=args.backend) as clf:
        labels = clf.labels
        for name, sm in variants.items():
            acts, truth, changes = [], [], 0
            for rec in progress(recs, f"{name}: recordings"):
                times, a = stream_recording(clf, rec, sm)
                acts += a
                changes += sum(x != y for x, y in zip(a, a[1:]))
                truth.append(window_truth(rec, times, clf.window_samples))
            sc = score_stream(acts, np.concatenate(truth), labels)
            hours = sum(r.duration_s for r in recs) / 3600
            sc["activity_changes_per_hour"] = round(changes / hours, 1)
            results[name] = sc
            rows.append([name, round(sc["accuracy"], 4), round(sc["macro_f1"], 4), sc["windows_scored"], sc["windows_total"], sc["uncertain"],
                         sc["activity_changes_per_hour"]])
    print(f"{len(recs)} recordings of held-out subjects {sorted({r.subject for r in recs})}, {sum(r.duration_s for r in recs) / 60:.1f} min")
    print_table(rows, ["smoothing", "accuracy", "macro-F1", "scored", "windows", "uncertain", "changes/hour"])
    write_json("stream_accuracy", {"bundle": args.bundle, "subjects": sorted({r.subject for r in recs}), "results": results}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
