"""``har-edge run`` and ``har-edge doctor``: the device side (no TensorFlow needed).

``run`` settings come from ``--config FILE.toml`` (see ``devices/raspberry-pi/config.example.toml``)
and are overridden by command-line flags.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import threading
import time
from pathlib import Path
from typing import Any

from har_edge.errors import ConfigError, HarEdgeError
from har_edge.runtime.smoothing import SmoothingConfig

__all__ = ["add_run_parsers", "cmd_run", "cmd_doctor", "load_device_config", "build_stream", "smoothing_config"]

log = logging.getLogger(__name__)

_DEFAULTS: dict[str, Any] = {
    "bundle": None, "source": None, "backend": "auto", "speed": "1", "broker": None, "device_id": "har-edge",
    "topic_prefix": "har", "qos": 1, "state_dir": None, "stats_interval_s": 60.0, "chunk_samples": None,
    "hop_samples": None, "timestamp_unit": "s", "input_check": "refuse", "device_name": None,
    "smoothing": {},  # unset keys: the bundle's own smoothing, then SmoothingConfig's defaults
    "mqtt": {}, "source_options": {}, "clock": {}, "plausibility": {},
}


def load_device_config(path: str | None) -> dict[str, Any]:
    """Read the device TOML (top-level keys as in ``_DEFAULTS``; ``[smoothing]``, ``[mqtt]``, ``[source_options]``,
    ``[clock]`` (:class:`~har_edge.data.clock.ClockConfig`), ``[plausibility]``
    (:class:`~har_edge.runtime.plausibility.PlausibilityLimits`))."""
    cfg = json.loads(json.dumps(_DEFAULTS))
    if not path:
        return cfg
    from har_edge.config import read_toml

    p = Path(path)
    data = read_toml(p, what="device config")
    unknown = sorted(set(data) - set(_DEFAULTS))
    if unknown:
        raise ConfigError(f"{p}: unknown key(s) {unknown}; allowed: {sorted(_DEFAULTS)}")
    for k, v in data.items():
        if isinstance(_DEFAULTS[k], dict):
            if not isinstance(v, dict):
                raise ConfigError(f"{p}: [{k}] must be a table")
            cfg[k].update(v)
        else:
            cfg[k] = v
    return cfg


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{value:g} is negative; expected >= 0")
    return value


def _speed(text: str) -> str:
    from har_edge.runtime.source_base import _parse_speed

    try:
        _parse_speed(text)
    except ConfigError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive number (1 = real time, 10 = ten times faster) "
                                         "or max (as fast as possible)") from None
    return text


def add_run_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from har_edge.cli.input_options import add_input_options

    p = sub.add_parser("run", help="classify a sensor stream with a bundle; print JSON lines or publish over MQTT",
                       description="Classify a sensor stream with a bundle: one result per hop, as JSON lines on stdout or "
                                   "published over MQTT (with Home Assistant discovery). Settings: --config TOML, "
                                   "overridden by these flags.")
    p.add_argument("--bundle", metavar="PATH", help="bundle directory, or a model.tflite exported by har-edge (it carries "
                   "its manifest) (no default: required here or as bundle in --config)")
    p.add_argument("--source", metavar="SPEC", help="csv:PATH | stdin | mqtt://host:port/topic | i2c:mpu6050[@bus:addr] | "
                   "i2c:adxl345[@bus:addr] (no default: required here or as source in --config)")
    p.add_argument("--speed", type=_speed, help="csv replay pace: 1 = real time, N = N× faster, max = as fast as possible (default: 1)")
    p.add_argument("--broker", metavar="URL", help="mqtt://[user:pass@]host:port (mqtts:// for TLS) (default: none: JSON lines to stdout)")
    p.add_argument("--device-id", help="device id in topics and Home Assistant unique ids, [A-Za-z0-9_-] (default: har-edge)")
    p.add_argument("--device-name", help="the device's name in Home Assistant, e.g. 'Kitchen wristband' (default: the device id)")
    p.add_argument("--topic-prefix", help="topic prefix: topics are PREFIX/DEVICE_ID/{activity,event,status,stats} (default: har)")
    p.add_argument("--backend", help="auto | litert | tflite-runtime | tensorflow | numpy (default: auto, the first installed of "
                   "litert, tflite-runtime, tensorflow)")
    p.add_argument("--config", metavar="TOML", help="device TOML config, e.g. devices/raspberry-pi/config.example.toml "
                   "(default: none; flags override it)")
    p.add_argument("--state-dir", metavar="DIR", help="directory for the MQTT outbox; messages and seq survive restarts "
                   "(default: ~/.local/state/har-edge)")
    p.add_argument("--stats-interval", type=_non_negative, dest="stats_interval_s", metavar="SECONDS",
                   help="seconds between stats messages; 0 = only at the end (default: 60)")
    p.add_argument("--confidence-floor", type=float, metavar="P",
                   help="below this smoothed confidence (0..1) the activity is 'uncertain' (default: the config's "
                        "[smoothing], else the bundle's, else 0.0 = never)")
    p.add_argument("--smoothing", choices=["none", "mean", "vote", "hmm"], help="prediction smoothing over the last windows "
                   "(default: the config's [smoothing], else the bundle's, else mean of the last 2)")
    p.add_argument("--hop-samples", type=int, dest="hop_samples", metavar="N",
                   help="classify every N samples (default: the bundle's hop)")
    p.add_argument("--flush-timeout", type=_non_negative, default=60.0, metavar="SECONDS",
                   help="seconds to wait at the end for the broker to take every message (default: 60)")
    add_input_options(p)

    p = sub.add_parser("doctor", help="check the interpreter backend, a bundle and the broker connection",
                       description="Check the interpreter backend, a bundle (load, state reset, latency) and the broker "
                                   "connection; exit code 1 if any check fails.")
    p.add_argument("--bundle", metavar="PATH", help="bundle directory or model.tflite to load and time (default: the config's, else skipped)")
    p.add_argument("--broker", metavar="URL", help="mqtt[s]://[user:pass@]host:port to connect to (default: the config's, else skipped)")
    p.add_argument("--backend", help="auto | litert | tflite-runtime | tensorflow | numpy (default: auto)")
    p.add_argument("--config", metavar="TOML", help="device TOML config; its [mqtt] TLS and credential settings are used (default: none)")


def _resolve(args: argparse.Namespace) -> dict[str, Any]:
    cfg = load_device_config(getattr(args, "config", None))
    for key in ("bundle", "source", "backend", "speed", "broker", "device_id", "topic_prefix", "state_dir", "stats_interval_s",
                "hop_samples", "device_name"):
        v = getattr(args, key, None)
        if v is not None:
            cfg[key] = v
    from har_edge.cli.input_options import apply_input_options

    apply_input_options(cfg, args)
    try:
        stats = float(cfg["stats_interval_s"])
    except (TypeError, ValueError):
        stats = float("nan")
    if not stats >= 0:
        raise ConfigError(f"stats_interval_s={cfg['stats_interval_s']!r}; expected seconds >= 0 (0 = only at the end)")
    if getattr(args, "confidence_floor", None) is not None:
        cfg["smoothing"]["confidence_floor"] = args.confidence_floor
    if getattr(args, "smoothing", None) is not None:
        cfg["smoothing"]["method"] = args.smoothing
    if not cfg["bundle"]:
        raise ConfigError("no bundle: pass --bundle PATH or set bundle in the --config file")
    return cfg


def _mqtt_config(cfg: dict[str, Any], broker: str) -> Any:
    from har_edge.transport.config import MqttConfig, parse_broker_url

    fields = {f.name for f in dataclasses.fields(MqttConfig)}
    extra = dict(cfg["mqtt"])
    unknown = sorted(set(extra) - fields)
    if unknown:
        raise ConfigError(f"[mqtt]: unknown key(s) {unknown}; allowed: {sorted(fields)}")
    for k in ("tls_ca_path", "tls_cert_path", "tls_key_path", "outbox_path"):
        if extra.get(k):
            extra[k] = Path(extra[k])
    if "tls" not in extra and str(broker).lower().startswith(("mqtts://", "ssl://")):
        extra["tls"] = True  # the URL's scheme turns TLS on: [mqtt] tls_* files need no separate tls = true
    if cfg.get("device_name"):
        extra["device_name"] = cfg["device_name"]
    base = MqttConfig(**{**extra, "device_id": cfg["device_id"], "topic_prefix": cfg["topic_prefix"], "qos": int(cfg["qos"])})
    return parse_broker_url(broker, base=base)


def build_stream(clf: Any, cfg: dict[str, Any], *, source_rate_hz: float | None = None) -> Any:
    """The :class:`~har_edge.runtime.stream.StreamClassifier` ``har-edge run`` builds from a resolved device config
    (benchmarks call this too, so they measure exactly what the device runs)."""
    from har_edge.data.clock import ClockConfig
    from har_edge.runtime.plausibility import PlausibilityLimits
    from har_edge.runtime.stream import StreamClassifier

    hop = cfg.get("hop_samples")
    return StreamClassifier(clf, smoothing=smoothing_config(clf.bundle, cfg), source_rate_hz=source_rate_hz,
                            clock=ClockConfig.from_dict(cfg.get("clock", {})),
                            plausibility=PlausibilityLimits.from_dict(cfg.get("plausibility", {})),
                            hop_samples=None if hop is None else int(hop))


def smoothing_config(bundle: Any, cfg: dict[str, Any]) -> SmoothingConfig:
    """The device config's ``[smoothing]`` keys over the bundle's own smoothing over the defaults."""
    settings = {**bundle.smoothing, **cfg["smoothing"]}
    unknown = sorted(set(settings) - {f.name for f in dataclasses.fields(SmoothingConfig)})
    if unknown:
        raise ConfigError(f"[smoothing]: unknown key(s) {unknown}; allowed: {[f.name for f in dataclasses.fields(SmoothingConfig)]}")
    return SmoothingConfig(**settings)


def cmd_run(args: argparse.Namespace) -> int:
    from har_edge.inference.classifier import Classifier
    from har_edge.data.clock import ClockConfig
    from har_edge.runtime.input_check import CheckedSource
    from har_edge.runtime.plausibility import PlausibilityLimits
    from har_edge.runtime.source_base import _parse_speed
    from har_edge.runtime.sources import open_source
    from har_edge.cli.service import PublisherSink, StdoutSink, run_service, state_directory, stop_on_sigterm, undelivered_error
    from har_edge.transport.config import MqttConfig

    cfg = _resolve(args)
    if not cfg["source"]:
        raise ConfigError("no source: pass --source (csv:PATH, stdin, mqtt://..., i2c:...) or set source in --config")
    # device id and topics are checked in every mode (stdout too), before anything is opened
    MqttConfig(device_id=cfg["device_id"], topic_prefix=cfg["topic_prefix"])
    mcfg = _mqtt_config(cfg, cfg["broker"]) if cfg["broker"] else None
    ClockConfig.from_dict(cfg["clock"]), PlausibilityLimits.from_dict(cfg["plausibility"])  # checked before anything opens
    backend = None if cfg["backend"] in (None, "auto") else cfg["backend"]
    pace = _parse_speed(cfg["speed"])  # ConfigError naming the value, never a traceback
    from har_edge.inference.bundle import load_bundle

    bundle = load_bundle(cfg["bundle"])
    if bundle.task == "forecast":  # a forecaster has its own loop (har_edge.cli.forecast_service)
        from har_edge.cli.forecast_service import serve_forecaster

        mcfg = _mqtt_config(cfg, cfg["broker"]) if cfg["broker"] else None
        return serve_forecaster(cfg, bundle, backend=backend, flush_timeout_s=args.flush_timeout, mqtt_config=mcfg)
    speed: Any = "max" if pace == float("inf") else pace
    opts = dict(cfg["source_options"])
    spec = str(cfg["source"])
    if cfg["chunk_samples"] is not None:
        opts["chunk_samples"] = int(cfg["chunk_samples"])
    if spec.startswith("csv:"):
        opts["speed"] = speed
        opts.setdefault("chunk_samples", 512 if speed == "max" else 16)
    stop = threading.Event()
    with Classifier(bundle, backend=backend) as clf:
        # units / timestamp scale that evidently do not fit the data are refused (or converted), not run silently
        raw_source = open_source(spec, **opts)
        try:
            source = CheckedSource(raw_source, expected_rate_hz=clf.bundle.sample_rate_hz,
                                   timestamp_unit=cfg["timestamp_unit"], mode=cfg["input_check"])
        except BaseException:
            raw_source.close()
            raise
        stream = build_stream(clf, cfg, source_rate_hz=source.nominal_rate_hz)

        stop_on_sigterm(stop, source)
        publisher = None
        try:
            if mcfg is not None:
                from har_edge.transport.mqtt import MqttPublisher

                state_dir = state_directory(cfg["state_dir"])
                shown = tuple(label for label in clf.labels if label not in clf.bundle.uncertain_labels)  # + "uncertain"
                publisher = MqttPublisher(mcfg, labels=shown, state_dir=state_dir)
                sink: Any = PublisherSink(publisher, model_hash=clf.bundle.model_sha256, device_id=mcfg.device_id)
            else:
                sink = StdoutSink(sys.stdout, model_hash=clf.bundle.model_sha256, device_id=cfg["device_id"])
            summary = run_service(source, stream, sink, stats_interval_s=float(cfg["stats_interval_s"]), stop=stop)
            sink.close()
            delivered = True
            if publisher is not None:
                delivered = publisher.flush(args.flush_timeout)
        finally:
            source.close()
            if publisher is not None:
                publisher.close()
    counters = summary.counters(source, stream)
    print(f"har-edge run: {summary.classifications} classifications, {summary.events} events, "
          f"{counters['bad_samples']} bad samples, {counters['out_of_order']} out-of-order, "
          f"{counters['bad_messages']} bad messages in {summary.seconds:.1f} s", file=sys.stderr)
    if not delivered:
        print(undelivered_error(args.flush_timeout), file=sys.stderr)
        return 1
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    import numpy as np

    cfg = load_device_config(args.config)
    for key in ("bundle", "broker", "backend"):
        if getattr(args, key, None):
            cfg[key] = getattr(args, key)
    ok = True

    def report(good: bool, what: str, detail: str) -> None:
        nonlocal ok
        ok &= good
        print(f"[{'ok' if good else 'FAIL'}] {what}: {detail}")

    from har_edge.inference.interpreter import load_backend

    backend = None if cfg["backend"] in (None, "auto") else cfg["backend"]
    try:
        if backend != "numpy":
            report(True, "backend", load_backend(backend).name)
    except HarEdgeError as exc:
        report(False, "backend", str(exc))
    if cfg["bundle"]:
        try:
            from har_edge.inference.classifier import Classifier

            with Classifier.from_bundle(cfg["bundle"], backend=backend) as clf:
                b = clf.bundle
                rng = np.random.default_rng(0)
                x = rng.standard_normal((b.window_samples, len(b.channel_names))).astype(np.float32)
                clf.reset_state()
                p1 = clf.probabilities_normalised(x)
                clf.probabilities_normalised(x * 2)
                clf.reset_state()  # a streaming model carries its state between windows; a stream's start resets it
                p2 = clf.probabilities_normalised(x)
                same = bool(np.array_equal(p1, p2))
                report(True, "bundle", f"{b.model_path} ({b.manifest['quantization']}, {len(b.model_bytes)} bytes, "
                       f"labels {list(b.labels)}, {b.window_samples} samples at {b.sample_rate_hz:g} Hz, hop {b.hop_samples})")
                if clf.carries_state:
                    report(same, "state reset", "streaming model: the LSTM state runs on between windows and resets at a "
                           "stream's start" if same else "resetting the LSTM state does not restore it")
                else:
                    report(same, "state reset", "two invokes of one window agree" if same else "LSTM state leaks between invokes")
                t0 = time.perf_counter()
                for _ in range(50):
                    clf.probabilities_normalised(x)
                report(True, "latency", f"{(time.perf_counter() - t0) / 50 * 1e3:.3f} ms per window ({clf.backend})")
        except HarEdgeError as exc:
            report(False, "bundle", str(exc))
    else:
        print("[skip] bundle: pass --bundle")
    if cfg["broker"]:
        from har_edge.redaction import redact
        from har_edge.transport.config import config_warnings

        try:
            mcfg = _mqtt_config(cfg, cfg["broker"])
            report(*_check_broker(mcfg))
            for warning in config_warnings(mcfg):
                print(f"[warn] mqtt: {warning}")
        except HarEdgeError as exc:
            report(False, "broker", redact(str(exc)))
    else:
        print("[skip] broker: pass --broker mqtt://host:port")
    return 0 if ok else 1


def _check_broker(mcfg: Any, timeout_s: float = 5.0) -> tuple[bool, str, str]:
    try:
        import paho.mqtt.client as mqtt
    except ImportError:
        return False, "broker", 'paho-mqtt is not installed: pip install "har-edge[device]"'
    done = threading.Event()
    result: dict[str, Any] = {}

    def on_connect(client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        result["rc"] = reason_code
        done.set()

    from har_edge.transport.paho_client import apply_credentials_and_tls

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    try:
        apply_credentials_and_tls(c, mcfg)
    except ConfigError as exc:
        return False, "broker", str(exc)
    c.on_connect = on_connect
    try:
        c.connect(mcfg.host, mcfg.port, keepalive=10)
    except OSError as exc:
        return False, "broker", f"cannot reach {mcfg.host}:{mcfg.port}: {exc}"
    c.loop_start()
    done.wait(timeout_s)
    c.loop_stop()
    c.disconnect()
    rc = result.get("rc")
    if rc is None:
        return False, "broker", f"{mcfg.host}:{mcfg.port} accepted TCP but sent no CONNACK within {timeout_s:.0f} s"
    if getattr(rc, "is_failure", False):
        return False, "broker", f"{mcfg.host}:{mcfg.port} refused the connection: {rc}"
    return True, "broker", f"connected to {mcfg.host}:{mcfg.port}"
