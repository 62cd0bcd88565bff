"""The forecaster's device loop: source rows → :class:`ForecastStream` → stdout JSON lines or MQTT.

``har-edge run --bundle FORECASTER`` lands here (the dispatch on ``bundle.task`` in
:mod:`har_edge.cli.run`). Every forecast is published retained, QoS ``[mqtt] qos`` (1), to
``<prefix>/<device>/forecast/<target>`` (:func:`~har_edge.transport.payloads.forecast_payload`),
with Home Assistant discovery for the +1 and +H step sensors. A bundle whose backtest skill is
≤ 0 is still served (a user may want to watch it) but every message says ``"useful": false`` with
a ``warning``, and the start is logged as a warning. Like the classifier's loop it never dies on a
bad row or chunk: counted, logged, skipped.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from typing import Any, TextIO

from har_edge.cli.service import state_directory, stop_on_sigterm, undelivered_error
from har_edge.errors import ConfigError, HarEdgeError
from har_edge.inference.forecaster import Forecaster
from har_edge.runtime.forecast_stream import ForecastResult, ForecastStream, SeriesReplaySource, series_spec_for
from har_edge.transport.payloads import forecast_payload

__all__ = ["run_forecast_service", "open_forecast_source", "ForecastStdoutSink", "ForecastPublisherSink"]

log = logging.getLogger(__name__)


def _payload(fc: Forecaster, r: ForecastResult, device_id: str, *, seq: int | None = None) -> dict[str, Any]:
    return forecast_payload(device_id=device_id, target=fc.target, values=r.forecast.values, unit=fc.unit,
                            issued_at=r.forecast.origin_time_s, step_s=fc.step_s, model_hash=fc.bundle.model_sha256,
                            skill_vs_naive=fc.skill_vs_naive, seq=seq)


class ForecastStdoutSink:
    """One JSON line per forecast (the payload, with the stream's seq and the latency)."""

    def __init__(self, stream: TextIO, forecaster: Forecaster, device_id: str) -> None:
        self.stream, self.fc, self.device_id = stream, forecaster, device_id

    def forecast(self, r: ForecastResult) -> None:
        line = _payload(self.fc, r, self.device_id, seq=r.seq)
        line["latency_ms"] = round(r.forecast.latency_ms, 4)
        self.stream.write(json.dumps(line, separators=(",", ":")) + "\n")

    def stats(self, counters: dict[str, Any]) -> None:
        log.info("stats: %s", counters)

    def close(self) -> None:
        self.stream.flush()


class ForecastPublisherSink:
    """Publishes each forecast retained to ``<prefix>/<device>/forecast/<target>`` (the publisher assigns seq)."""

    def __init__(self, publisher: Any, forecaster: Forecaster) -> None:
        self.publisher, self.fc = publisher, forecaster

    def forecast(self, r: ForecastResult) -> None:
        self.publisher.publish_forecast(_payload(self.fc, r, self.publisher.config.device_id))

    def stats(self, counters: dict[str, Any]) -> None:
        self.publisher.publish_stats({k: v for k, v in counters.items() if isinstance(v, (int, float))})

    def close(self) -> None:
        pass


def open_forecast_source(spec: str, forecaster: Forecaster, opts: dict[str, Any]) -> Any:
    """``csv:PATH`` → :class:`SeriesReplaySource` (dates, NA and year/month/day/hour columns understood);
    anything else → :func:`~har_edge.runtime.sources.open_source` with the bundle's columns and units as channels."""
    if spec.startswith("csv:"):
        allowed = {"speed", "chunk_samples"}
        unknown = sorted(set(opts) - allowed)
        if unknown:
            raise ConfigError(f"option(s) {unknown} do not apply to a forecaster's csv: source; accepted: {sorted(allowed)}")
        return SeriesReplaySource(series_spec_for(forecaster, spec[4:]), **opts)
    from har_edge.runtime.sources import open_source

    opts = {k: v for k, v in opts.items() if k != "speed"}
    return open_source(spec, channel_names=forecaster.columns, units=forecaster.column_units, **opts)


def run_forecast_service(source: Any, stream: ForecastStream, sink: Any, *, stats_interval_s: float = 60.0,
                         stop: threading.Event | None = None) -> dict[str, Any]:
    """Run until the source ends (or ``stop`` is set); returns the counters."""
    stop = stop or threading.Event()
    t0 = last = time.monotonic()
    errors = 0
    for chunk in source.chunks():
        try:
            results = stream.feed(chunk)
        except ConfigError:
            raise
        except (HarEdgeError, ValueError, FloatingPointError) as exc:
            errors += 1
            if errors <= 5 or errors % 1000 == 0:
                log.warning("chunk skipped (%d so far): %s", errors, exc)
            continue
        batch = getattr(getattr(sink, "publisher", None), "batch", None)
        if results and batch is not None:
            with batch():
                for r in results:
                    sink.forecast(r)
        else:
            for r in results:
                sink.forecast(r)
        now = time.monotonic()
        if stats_interval_s > 0 and now - last >= stats_interval_s:
            sink.stats(_counters(source, stream, errors))
            last = now
        if stop.is_set():
            break
    counters = _counters(source, stream, errors)
    sink.stats(counters)
    counters["seconds"] = round(time.monotonic() - t0, 3)
    return counters


def _counters(source: Any, stream: ForecastStream, errors: int) -> dict[str, Any]:
    return {**stream.stats.as_dict(), "bad_samples": source.stats.bad_samples, "bad_messages": source.stats.bad_messages,
            "loop_errors": errors}


def serve_forecaster(cfg: dict[str, Any], bundle: Any, *, backend: str | None, flush_timeout_s: float,
                     mqtt_config: Any) -> int:
    """``har-edge run`` for a forecast bundle (``cfg``: the resolved device config)."""
    speed: Any = cfg["speed"]
    opts = dict(cfg["source_options"])
    if str(cfg["source"]).startswith("csv:"):
        opts["speed"] = "max" if str(speed) == "max" else float(speed)
    if cfg["chunk_samples"] is not None:
        opts["chunk_samples"] = int(cfg["chunk_samples"])
    stop = threading.Event()
    with Forecaster(bundle, backend=backend) as fc:
        if fc.skill_vs_naive <= 0:
            log.warning("%s: backtest skill vs naive %+.4f <= 0: forecasts are published with \"useful\": false and a warning",
                        bundle.model_path, fc.skill_vs_naive)
        source = open_forecast_source(str(cfg["source"]), fc, opts)
        stream = ForecastStream(fc)

        stop_on_sigterm(stop, source)
        publisher = None
        delivered = True
        try:
            if mqtt_config is not None:
                from har_edge.transport.discovery import forecast_discovery_messages
                from har_edge.transport.mqtt import MqttPublisher

                state_dir = state_directory(cfg["state_dir"])
                disc = forecast_discovery_messages(mqtt_config, target=fc.target, unit=fc.unit, horizon=fc.horizon, step_s=fc.step_s)
                publisher = MqttPublisher(mqtt_config, state_dir=state_dir, discovery_configs=disc)
                sink: Any = ForecastPublisherSink(publisher, fc)
            else:
                sink = ForecastStdoutSink(sys.stdout, fc, cfg["device_id"])
            counters = run_forecast_service(source, stream, sink, stats_interval_s=float(cfg["stats_interval_s"]), stop=stop)
            sink.close()
            if publisher is not None:
                delivered = publisher.flush(flush_timeout_s)
        finally:
            source.close()
            if publisher is not None:
                publisher.close()
    print(f"har-edge run: {counters['forecasts']} forecasts from {counters['rows_used']}/{counters['rows_in']} rows; "
          f"{counters['gaps']} gaps, {counters['out_of_order']} out-of-order, {counters['off_grid']} off-grid, "
          f"{counters['bad_values'] + counters['bad_samples']} bad rows in {counters['seconds']:.1f} s", file=sys.stderr)
    if not delivered:
        print(undelivered_error(flush_timeout_s), file=sys.stderr)
        return 1
    return 0
