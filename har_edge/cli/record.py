"""``har-edge record``: capture a labelled session from any sensor source into a folder of recordings.

One session per call: ``OUT/<session>.csv`` + ``OUT/<session>.json`` (see :mod:`har_edge.runtime.recorder`
and :mod:`har_edge.data.sidecar`). Labels: ``--label`` for a session of one activity, ``--labels-from
keyboard`` (type a label, or its number in ``--labels``, and Enter) or ``--labels-from mqtt://host/topic``;
a ``csv:`` source with a ``label`` column keeps its labels. Ctrl-C stops cleanly: samples the source
has already received are written (it keeps reading for up to :data:`DRAIN_S`), then the sidecar.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from har_edge.cli.input_options import as_argument_type, parse_units
from har_edge.errors import ConfigError, DataError
from har_edge.redaction import redact

__all__ = ["add_record_parser", "cmd_record"]

DRAIN_S = 0.5  # after Ctrl-C, keep reading this long so received samples are written


def add_record_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("record", help="record a labelled session from a sensor source (CSV + JSON sidecar)")
    p.add_argument("--source", help="csv:PATH | stdin | mqtt://host:port/topic (Sensor Logger too) | i2c:mpu6050[@bus:addr] | "
                                    "i2c:adxl345[@bus:addr] (default: source in --config)")
    p.add_argument("--out", required=True, help="recordings folder (created if absent)")
    p.add_argument("--label", help="activity label of the session (or the first label with --labels-from) (default: none)")
    p.add_argument("--labels-from", help="keyboard | mqtt://[user:pass@]host[:port]/topic: switch labels while recording "
                   "(default: one label for the session)")
    p.add_argument("--labels", help="comma-separated label names; with --labels-from keyboard, type 1, 2, ... to pick one "
                   "(default: none)")
    p.add_argument("--duration", type=float, help="seconds of source time to record (default: until Ctrl-C or the end)")
    p.add_argument("--person", default="me", help="who wears the sensor (the split by person uses it; default 'me')")
    p.add_argument("--session", help="session id = file name (default LABEL-PERSON-YYYYmmdd-HHMMSS)")
    p.add_argument("--device", help="device name (default: this host's name)")
    p.add_argument("--placement", default="", help="where the sensor is worn, e.g. 'left wrist', 'belt, right hip' "
                   "(default: not recorded)")
    p.add_argument("--split", choices=["train", "test"], default="",
                   help="test: always held out for testing (Edge Impulse's test category); train: never chosen for test; "
                        "default: the training config decides")
    p.add_argument("--channels", choices=["acc", "acc+gyro"], help="channels to record (default: what the source gives)")
    p.add_argument("--units", type=as_argument_type(parse_units), metavar="SPEC",
                   help="units as the source sends them: 'm/s^2' (acceleration) or 'acc=m/s^2,gyro=deg/s' "
                        "(default: g and rad/s, or the config's [source_options] units)")
    p.add_argument("--rate", type=float, help="expected sample rate in Hz (warns when the timestamps disagree) "
                   "(default: not checked)")
    p.add_argument("--speed", default="max", help="csv: replay pace: max (default, import) or 1 (real time)")
    p.add_argument("--config", help="device TOML of `har-edge run` (its source and [source_options] are used) (default: none)")
    p.add_argument("--quiet", action="store_true", help="no live status line (default: one status line, updated)")


def _open(args: argparse.Namespace) -> tuple[Any, str]:
    from har_edge.cli.run import load_device_config
    from har_edge.runtime.source_base import ACC_CHANNELS, DEFAULT_CHANNELS
    from har_edge.runtime.sources import open_source

    dev = load_device_config(args.config)
    spec = args.source or dev["source"]
    if not spec:
        raise ConfigError("no source: pass --source (csv:PATH, stdin, mqtt://..., i2c:...) or set source in --config")
    opts: dict[str, Any] = dict(dev["source_options"])
    if args.channels:
        opts["channel_names"] = ACC_CHANNELS if args.channels == "acc" else DEFAULT_CHANNELS
    if args.units:
        opts["units"] = args.units  # parsed by har_edge.cli.input_options.parse_units, as `har-edge run --units`
    if spec.startswith("csv:"):
        opts["speed"] = args.speed
    return open_source(spec, **opts), spec


class KeyboardLabels:
    """Reads lines from ``stream``: a label, its number in ``choices``, ``-`` (unlabelled) or ``q`` (stop)."""

    def __init__(self, state: Any, choices: list[str], stop: threading.Event, stream: TextIO, out: TextIO) -> None:
        self.state, self.choices, self.stop, self.stream, self.out = state, choices, stop, stream, out
        self.thread = threading.Thread(target=self._read, name="har-edge-labels", daemon=True)

    def start(self) -> None:
        menu = "  ".join(f"{i}={c}" for i, c in enumerate(self.choices, 1))
        print(f"labels: type a label{' or its number (' + menu + ')' if menu else ''} and Enter; "
              "'-' = unlabelled, 'q' = stop", file=self.out)
        self.thread.start()

    def _read(self) -> None:
        for line in self.stream:
            text = line.strip()
            if text == "q":
                self.stop.set()
                return
            if text.isdigit() and 1 <= int(text) <= len(self.choices):
                text = self.choices[int(text) - 1]
            try:
                label = self.state.set("" if text == "-" else text)
            except DataError as exc:
                print(f"\n{exc}", file=self.out)
                continue
            print(f"\nlabel: {label or '(unlabelled)'}", file=self.out)


def _status_printer(out: TextIO, live: bool) -> Any:
    def show(st: Any) -> None:
        rate = f"{st.rate_hz:.1f} Hz" if st.rate_hz else "- Hz"
        acc = f", |acc| {st.acc_magnitude_g:.2f} g" if st.acc_magnitude_g is not None else ""
        line = f"{st.samples} samples, {st.seconds:.1f} s, {rate}{acc}, label {st.label or '(none)'}"
        print(f"\r{line:<100}" if live else line, end="" if live else "\n", file=out, flush=True)

    return show


def cmd_record(args: argparse.Namespace) -> int:
    from har_edge.runtime.recorder import LabelState

    stop = threading.Event()
    choices = [c.strip() for c in args.labels.split(",") if c.strip()] if args.labels else []
    labels = LabelState(args.label or "") if (args.label or args.labels_from) else None
    if args.labels_from and args.labels_from != "keyboard" and not args.labels_from.startswith(("mqtt://", "mqtts://")):
        raise ConfigError(f"--labels-from {args.labels_from!r}: expected keyboard or mqtt://host[:port]/topic")
    source, spec = _open(args)
    try:
        final, csv_path, live = _record(args, source, spec, labels, choices, stop)
    finally:
        source.close()
    if live:
        print(file=sys.stderr)
    print(json.dumps({"csv": str(csv_path), "samples": final.samples, "duration_s": final.duration_s,
                      "sample_rate_hz": final.sample_rate_hz, "labels": final.labels, "unlabelled_samples": final.unlabelled_samples,
                      "stopped_by": final.stopped_by, "timestamps": final.timestamps, "warnings": len(final.warnings)}))
    return 0


def _record(args: argparse.Namespace, source: Any, spec: str, labels: Any, choices: list[str],
            stop: threading.Event) -> tuple[Any, Path, bool]:
    from har_edge.data.sidecar import RecordingInfo, check_name
    from har_edge.runtime.recorder import Recorder, RecordingWriter

    if args.labels_from == "keyboard" and spec.strip() in ("stdin", "-"):
        raise ConfigError("--labels-from keyboard reads stdin, which --source stdin already uses")
    person = check_name(args.person, what="--person")
    session = check_name(args.session or _session_id(Path(args.out), args.label or "session", person), what="--session")
    info = RecordingInfo(session=session, person=person, channels=tuple(source.channel_names), units=tuple(source.units),
                         device=args.device or socket.gethostname(), placement=args.placement, split=args.split,
                         label=args.label or "", source=redact(spec), nominal_rate_hz=_rounded(getattr(source, "nominal_rate_hz", None)))
    writer = RecordingWriter(args.out, info)
    live = sys.stderr.isatty() and not args.quiet
    recorder = Recorder(source, writer, labels=labels, duration_s=args.duration, expected_rate_hz=args.rate,
                        on_status=_status_printer(sys.stderr, live) if live else None,
                        on_warning=lambda m: print(f"\nwarning: {m}", file=sys.stderr))
    helpers: list[Any] = []
    if args.labels_from == "keyboard" and labels is not None:
        helpers.append(KeyboardLabels(labels, choices, stop, sys.stdin, sys.stderr))
    elif args.labels_from and labels is not None:
        from har_edge.transport.label_topic import LabelTopic

        helpers.append(LabelTopic(args.labels_from, labels.set))
    print(f"recording {writer.csv_path} from {redact(spec)} ({', '.join(info.channels)} in {', '.join(sorted(set(info.units)))}); "
          "Ctrl-C stops", file=sys.stderr)
    restore = _handle_signals(stop, source, wall_limit_s=None if args.duration is None or spec.startswith("csv:")
                              else 2 * args.duration + 10)
    try:
        for h in helpers:
            h.start()
        final = recorder.run(stop)
    finally:
        restore()
        for h in helpers:
            if hasattr(h, "close"):
                h.close()
    return final, writer.csv_path, live


def _rounded(rate_hz: float | None) -> float | None:
    return None if rate_hz is None else round(float(rate_hz), 4)


def _session_id(folder: Path, label: str, person: str) -> str:
    base = f"{label}-{person}-{datetime.now().strftime('%Y%m%d-%H%M%S')}".replace(" ", "_")
    session, k = base, 2
    while (folder / f"{session}.csv").exists():
        session, k = f"{base}-{k}", k + 1
    return session


def _handle_signals(stop: threading.Event, source: Any, *, wall_limit_s: float | None) -> Any:
    """SIGINT/SIGTERM set ``stop`` and close the source after :data:`DRAIN_S`; returns a function that undoes it."""
    timers: list[threading.Timer] = []

    def _stop(signum: int, frame: Any) -> None:
        stop.set()
        t = threading.Timer(DRAIN_S, source.close)
        t.daemon = True
        t.start()
        timers.append(t)

    def _time_up() -> None:
        stop.set()
        source.close()

    if wall_limit_s is not None:  # a live source whose clock is off must not record forever
        guard = threading.Timer(wall_limit_s, _time_up)
        guard.daemon = True
        guard.start()
        timers.append(guard)
    main = threading.current_thread() is threading.main_thread()
    old = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)} if main else {}

    def restore() -> None:
        for s, h in old.items():
            signal.signal(s, h)
        for t in timers:
            t.cancel()

    return restore
