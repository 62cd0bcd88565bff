"""The fault suite's longer fuzz run: hostile inputs on every input path, corrupted models, passwords in URLs.

Run: ``python benchmarks/fault_fuzz.py --bundle BUNDLE_DIR [--cases 200000] [--model-cases 5000] [--seed 1]``

The same seeded generator and per-case checks as ``tests/runtime/test_fuzz_suite.py`` (``tests/fixtures/hostile.py``),
at a scale too slow for ``make test``. For each path: cases fed, crashes (an exception escaping the input path),
tracebacks logged, cases miscounted (samples yielded or reasons counted differ from the case's exact expectation)
and the speed. Corrupted models: mutations of the bundle's model re-sealed to manifest schema 3, each loaded with
the numpy backend and run once; "loaded" counts corruptions that loaded anyway (must be 0).
"""

from __future__ import annotations

import argparse
import io
import logging
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import print_table, write_json  # noqa: E402
from tests.fixtures.hostile import expected, generate, hostile_chunks, model_mutations, run_mqtt_cases, run_stdin_cases  # noqa: E402

RAW = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
UNITS = ("g", "g", "g", "rad/s", "rad/s", "rad/s")


class _TracebackCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.tracebacks = self.records = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.records += 1
        if record.exc_info or "Traceback" in record.getMessage():
            self.tracebacks += 1


def _batched(name: str, cases: list[Any], run: Callable[[list[Any]], list[str]], batch: int = 2000) -> dict[str, Any]:
    """Run ``run`` over batches of cases; an exception counts as a crash of that batch (and the run goes on)."""
    counter = _TracebackCounter()
    logging.getLogger().addHandler(counter)
    crashes, failures, t0 = 0, [], time.perf_counter()
    try:
        for i in range(0, len(cases), batch):
            try:
                failures += run(cases[i : i + batch])
            except Exception as exc:  # noqa: BLE001 - what the fuzz run hunts for
                crashes += 1
                failures.append(f"CRASH {type(exc).__name__}: {exc}")
    finally:
        logging.getLogger().removeHandler(counter)
    seconds = time.perf_counter() - t0
    return {"path": name, "cases": len(cases), "crashes": crashes, "tracebacks": counter.tracebacks,
            "miscounted": len(failures) - crashes, "log_records": counter.records, "seconds": round(seconds, 3),
            "cases_per_s": int(len(cases) / seconds), "examples": failures[:5]}


def _device_loop(cases: list[Any], bundle: str) -> list[str]:
    """All stdin cases as one stream through source → stream → sink; totals must equal the expectation."""
    from har_edge.cli.service import PublisherSink, run_service
    from har_edge.inference.classifier import Classifier
    from har_edge.runtime.sources import StdinSource
    from har_edge.runtime.stream import StreamClassifier
    from har_edge.transport.memory import InMemoryPublisher
    from tests.fixtures.hostile import LIMIT

    stdin_cases = [c for c in cases if not c.mqtt_only]
    samples, reasons = expected(stdin_cases)
    src = StdinSource(io.BytesIO(b"".join(c.payload + b"\n" for c in stdin_cases)), max_line_chars=LIMIT,
                      chunk_samples=256)
    pub = InMemoryPublisher()
    with Classifier.from_bundle(bundle) as clf:
        stream = StreamClassifier(clf)
        run_service(src, stream, PublisherSink(pub, model_hash="h", device_id="har-edge"), stats_interval_s=0)
    implausible = sum(c.implausible for c in stdin_cases)
    problems = []
    if src.stats.samples != samples or Counter(src.stats.reasons) != reasons:
        problems.append(f"source: {src.stats.samples} samples {dict(src.stats.reasons)}; expected {samples} {dict(reasons)}")
    if stream.stats.reasons != ({"implausible_value": implausible} if implausible else {}) or stream.stats.out_of_order:
        problems.append(f"stream: {stream.stats.as_dict()}; expected {implausible} implausible")
    return problems


def _stream_chunks(n_chunks: int, bundle: str, seed: int) -> list[str]:
    from har_edge.inference.classifier import Classifier
    from har_edge.runtime.samples import SampleChunk
    from har_edge.runtime.stream import StreamClassifier

    with Classifier.from_bundle(bundle) as clf:
        s = StreamClassifier(clf)
        for t, x in hostile_chunks(n_chunks, seed):
            s.feed(SampleChunk(t, x, RAW, UNITS))
        s.finish()
    st = s.stats
    ok = st.samples_in == st.samples_used + st.bad_samples + st.out_of_order
    return [] if ok else [f"samples unaccounted for: {st.as_dict()}"]


def _models(bundle: str, n: int, seed: int) -> dict[str, Any]:
    from har_edge.errors import BundleError, ModelError
    from har_edge.inference.bundle import load_bundle, reseal_model
    from har_edge.inference.classifier import Classifier

    sealed = reseal_model((Path(bundle) / "model.tflite").read_bytes())
    b = None
    counter = _TracebackCounter()
    logging.getLogger().addHandler(counter)
    crashes, loaded, t0 = [], 0, time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.tflite"
        path.write_bytes(sealed)
        b = load_bundle(path)
        window = np.zeros((b.window_samples, len(b.channel_names)), np.float32)
        for i, blob in enumerate(model_mutations(sealed, n, seed)):
            path.write_bytes(blob)
            try:
                with Classifier.from_bundle(path, backend="numpy") as clf:
                    clf.probabilities_normalised(window)
                loaded += blob != sealed
            except (BundleError, ModelError):
                pass
            except Exception as exc:  # noqa: BLE001
                crashes.append(f"case {i}: {type(exc).__name__}: {exc}")
    logging.getLogger().removeHandler(counter)
    seconds = time.perf_counter() - t0
    return {"path": "corrupted models (numpy backend)", "cases": n, "crashes": len(crashes), "tracebacks": counter.tracebacks,
            "miscounted": loaded, "log_records": counter.records, "seconds": round(seconds, 3),
            "cases_per_s": int(n / seconds), "examples": crashes[:5], "model_bytes": len(sealed)}


def _passwords(n: int, seed: int) -> list[str]:
    from urllib.parse import quote

    from har_edge.errors import ConfigError
    from har_edge.transport.config import MqttConfig, parse_broker_url

    rng = np.random.default_rng(seed)
    alphabet = np.array(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789!$&'()*+,;=-._~:@/?#[] %"))
    tails = [":notaport", ":99999", "/path", "?q=1", "", ":1883", "#frag", ":-1"]
    leaks = []
    for _ in range(n):
        password = "Zq" + "".join(rng.choice(alphabet, int(rng.integers(6, 24)))) + "9x"
        url = f"{rng.choice(['mqtt', 'mqtts', 'http', 'tcp'])}://user:{rng.choice([quote(password, safe=''), password])}@h{rng.choice(tails)}"
        for base in (None, MqttConfig(tls=True)):
            try:
                cfg = parse_broker_url(url, base=base)
                text = repr(cfg)
            except ConfigError as exc:
                text = f"{exc} {exc!r}"
            if password in text or quote(password, safe="") in text:
                leaks.append(text)
    return leaks


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--cases", type=int, default=200_000)
    ap.add_argument("--model-cases", type=int, default=5_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=io.StringIO())  # records are counted, not shown
    logging.getLogger().setLevel(logging.DEBUG)
    t0 = time.perf_counter()
    cases = generate(args.cases, args.seed)
    print(f"{len(cases)} cases in {len(Counter(c.category for c in cases))} categories generated in "
          f"{time.perf_counter() - t0:.1f} s")
    rows = [
        _batched("stdin (per line)", cases, lambda b: run_stdin_cases(b)[0]),
        _batched("mqtt (per payload)", cases, lambda b: run_mqtt_cases(b)[0]),
        _batched("device loop (stdin → stream → sink)", cases, lambda b: _device_loop(b, args.bundle), batch=len(cases)),
        _batched("stream (random chunks)", [None] * (args.cases // 10),
                 lambda b: _stream_chunks(len(b), args.bundle, args.seed), batch=args.cases // 10),
        _batched("broker URLs with passwords (leaks)", [None] * (args.cases // 20),
                 lambda b: _passwords(len(b), args.seed), batch=args.cases // 20),
        _models(args.bundle, args.model_cases, args.seed),
    ]
    print_table([[r["path"], r["cases"], r["crashes"], r["tracebacks"], r["miscounted"], r["cases_per_s"]] for r in rows],
                ["path", "cases", "crashes", "tracebacks", "miscounted / leaked / loaded", "cases/s"])
    for r in rows:
        for ex in r["examples"]:
            print(f"  {r['path']}: {ex[:300]}")
    total = sum(r["cases"] for r in rows)
    bad = sum(r["crashes"] + r["tracebacks"] + r["miscounted"] for r in rows)
    print(f"\n{total} cases, {bad} crashes + tracebacks + miscounted in {time.perf_counter() - t0:.1f} s")
    write_json("fault_fuzz", {"seed": args.seed, "bundle": str(args.bundle), "total_cases": total, "paths": rows,
                              "categories": dict(Counter(c.category for c in cases))}, args.out)
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
