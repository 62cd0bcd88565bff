"""The device loop: source → :class:`StreamClassifier` → sink (stdout JSON lines or MQTT).

It never dies on one bad sample, chunk or message: errors are counted, logged (rate-limited)
and skipped; the broker going away is the publisher's business (outbox + reconnect). Only a
configuration mismatch (the source lacks a channel the model needs) stops it, at the start.

:meth:`ServiceSummary.counters` merges the counters of source, stream and loop into the one set the
stats message carries (definitions in :mod:`har_edge.runtime.counters`), with a ``reasons`` breakdown.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from contextlib import nullcontext
from pathlib import Path
from typing import Any, ContextManager, Protocol, TextIO

from har_edge.errors import ConfigError, HarEdgeError
from har_edge.data.clock import SegmentEvent
from har_edge.runtime.smoothing import ActivityEvent
from har_edge.runtime.sources import Source
from har_edge.runtime.stream import StreamClassifier, StreamResult
from har_edge.transport.base import ActivityPublisher
from har_edge.transport.payloads import activity_payload, event_payload, stream_event_payload

__all__ = ["Sink", "StdoutSink", "PublisherSink", "ServiceSummary", "run_service", "wall_timestamp", "stop_on_sigterm",
           "state_directory", "undelivered_error"]

log = logging.getLogger(__name__)


def wall_timestamp(source_time_s: float) -> float:
    """Unix time for a payload: the source's own time if it is a Unix time, else now."""
    return source_time_s if source_time_s > 1e9 else time.time()


class Sink(Protocol):
    def batch(self) -> ContextManager[None]: ...
    def activity(self, result: StreamResult) -> None: ...
    def event(self, event: ActivityEvent) -> None: ...
    def segment(self, event: SegmentEvent) -> None: ...
    def stats(self, counters: dict[str, Any]) -> None: ...
    def close(self) -> None: ...


class StdoutSink:
    """One JSON line per classification (its events embedded) to ``stream``."""

    def __init__(self, stream: TextIO, *, model_hash: str, device_id: str = "har-edge") -> None:
        self.stream = stream
        self.model_hash = model_hash
        self.device_id = device_id

    def batch(self) -> ContextManager[None]:
        return nullcontext()

    def activity(self, result: StreamResult) -> None:
        line = activity_payload(
            device_id=self.device_id, activity=result.activity, confidence=result.confidence,
            probabilities=result.probabilities, timestamp=wall_timestamp(result.timestamp), model_hash=self.model_hash,
            seq=result.seq, window_end_s=result.timestamp,
        )
        line["latency_ms"] = round(result.raw.latency_ms, 4)
        line["raw_activity"] = result.raw.label
        if result.events:
            line["events"] = [_event_dict(e) for e in result.events]
        self.stream.write(json.dumps(line, separators=(",", ":")) + "\n")

    def event(self, event: ActivityEvent) -> None:  # events ride on the activity line
        pass

    def segment(self, event: SegmentEvent) -> None:  # stdout carries classifications only; the stream logs gaps
        pass

    def final_events(self, events: list[ActivityEvent]) -> None:
        # stdout carries exactly one JSON object per classification; the closing event goes to the log
        for e in events:
            log.info("end of stream: %s", _event_dict(e))

    def stats(self, counters: dict[str, Any]) -> None:
        log.info("stats: %s", counters)

    def close(self) -> None:
        self.stream.flush()


def _event_dict(e: ActivityEvent) -> dict[str, Any]:
    d: dict[str, Any] = {"type": e.type, "activity": e.activity, "window_end_s": e.timestamp}
    if e.duration_s is not None:
        d["duration_s"] = e.duration_s
    return d


class PublisherSink:
    """Publishes activity states, events and stats through an :class:`ActivityPublisher`."""

    def __init__(self, publisher: ActivityPublisher, *, model_hash: str, device_id: str) -> None:
        self.publisher = publisher
        self.model_hash = model_hash
        self.device_id = device_id

    def batch(self) -> ContextManager[None]:
        """One outbox transaction for a chunk's messages, when the publisher supports it."""
        batch = getattr(self.publisher, "batch", None)
        return batch() if batch is not None else nullcontext()

    def activity(self, result: StreamResult) -> None:
        self.publisher.publish_activity(activity_payload(
            device_id=self.device_id, activity=result.activity, confidence=result.confidence,
            probabilities=result.probabilities, timestamp=wall_timestamp(result.timestamp), model_hash=self.model_hash,
            window_end_s=result.timestamp,
        ))

    def event(self, event: ActivityEvent) -> None:
        self.publisher.publish_event(event_payload(
            device_id=self.device_id, event_type=event.type, activity=event.activity,
            timestamp=wall_timestamp(event.timestamp), duration_s=event.duration_s,
        ))

    def segment(self, event: SegmentEvent) -> None:
        self.publisher.publish_event(stream_event_payload(
            device_id=self.device_id, event_type=event.kind, timestamp=wall_timestamp(event.timestamp), jump_s=event.jump_s,
        ))

    def final_events(self, events: list[ActivityEvent]) -> None:
        for e in events:
            self.event(e)

    def stats(self, counters: dict[str, Any]) -> None:
        flat = {k: v for k, v in counters.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        reasons = counters.get("reasons")
        self.publisher.publish_stats(flat, reasons=reasons if isinstance(reasons, dict) else None)

    def close(self) -> None:
        pass


@dataclass
class ServiceSummary:
    classifications: int = 0
    events: int = 0
    errors: int = 0
    seconds: float = 0.0
    error_reasons: dict[str, int] = field(default_factory=dict)

    def counters(self, source: Source, stream: StreamClassifier) -> dict[str, Any]:
        """Source, stream and loop counters merged; each counter means one thing (:mod:`har_edge.runtime.counters`).

        ``bad_samples`` adds the source's (unparsable fields, ...) and the stream's (NaN, implausible values,
        ...); ``reasons`` adds their breakdowns (and ``loop_error`` for chunks the loop skipped).
        """
        s, src = stream.stats, source.stats
        reasons = dict(getattr(src, "reasons", {}))
        for reason, n in s.reasons.items():
            reasons[reason] = reasons.get(reason, 0) + n
        if self.errors:
            reasons["loop_error"] = self.errors
        return {
            "classifications": s.classifications, "samples_in": s.samples_in, "samples_used": s.samples_used,
            "bad_samples": s.bad_samples + src.bad_samples, "out_of_order": s.out_of_order,
            "bad_messages": src.bad_messages, "missed_samples": getattr(src, "missed_samples", 0),
            "gaps": s.gaps, "clock_epochs": s.clock_epochs, "filter_resets": s.filter_resets,
            "rejected_windows": s.rejected_windows, "loop_errors": self.errors, "reasons": reasons,
        }


def run_service(
    source: Source,
    stream: StreamClassifier,
    sink: Sink,
    *,
    stats_interval_s: float = 60.0,
    stop: threading.Event | None = None,
) -> ServiceSummary:
    """Run until the source ends (or ``stop`` is set); returns what happened."""
    summary = ServiceSummary()
    t0 = last_stats = time.monotonic()
    stop = stop or threading.Event()
    for chunk in source.chunks():
        try:
            items = stream.feed_ordered(chunk)
        except ConfigError:
            raise
        except (HarEdgeError, ValueError, FloatingPointError) as exc:  # one bad chunk never stops the device
            summary.errors += 1
            key = type(exc).__name__
            summary.error_reasons[key] = summary.error_reasons.get(key, 0) + 1
            if summary.errors <= 5 or summary.errors % 1000 == 0:
                log.warning("chunk skipped (%d so far): %s", summary.errors, exc)
            continue
        if items:
            with sink.batch():
                for item in items:  # in stream order: windows, a gap's activity end and the gap, windows after it
                    if isinstance(item, StreamResult):
                        sink.activity(item)
                        for e in item.events:
                            sink.event(e)
                        summary.events += len(item.events)
                        summary.classifications += 1
                    elif isinstance(item, SegmentEvent):
                        sink.segment(item)
                    else:
                        sink.event(item)
                        summary.events += 1
        now = time.monotonic()
        if stats_interval_s > 0 and now - last_stats >= stats_interval_s:
            sink.stats(summary.counters(source, stream))
            last_stats = now
        if stop.is_set():
            break
    final = stream.finish()
    summary.events += len(final)
    sink.final_events(final)  # type: ignore[attr-defined]
    sink.stats(summary.counters(source, stream))
    summary.seconds = time.monotonic() - t0
    return summary


def stop_on_sigterm(stop: threading.Event, source: Any) -> None:
    """SIGTERM (systemd stop) ends the loop after the current chunk: ``stop`` is set and ``source`` closed."""

    def _stop(signum: int, frame: Any) -> None:
        log.warning("signal %d: stopping after the current chunk", signum)
        stop.set()
        source.close()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop)


def state_directory(configured: str | None) -> Path:
    """The device's state directory (the outbox lives there), created: ``configured`` or ``~/.local/state/har-edge``."""
    state_dir = Path(configured or Path.home() / ".local" / "state" / "har-edge")
    state_dir.mkdir(parents=True, exist_ok=True)
    return state_dir


def undelivered_error(flush_timeout_s: float) -> str:
    """The CLI's line when the broker did not take every message before exit."""
    return (f"har-edge run: error: the broker did not take every message within {flush_timeout_s:.0f} s; "
            "they stay in the outbox and are sent on the next run")
