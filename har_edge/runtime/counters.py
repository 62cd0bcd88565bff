"""The one vocabulary of the device loop's counters: every rejected input has one reason, every reason one counter.

Each input the loop rejects is counted exactly once, under the most specific unit it could read:

* ``bad_messages`` — a message or line from which no sample could be read (not JSON, too large, too deeply
  nested, not an object of the schema, no samples in it);
* ``bad_samples`` — one sample rejected for its content (unparsable or missing field, NaN/inf, a value outside
  the sensor's physical range, a failed sensor read, a malformed chunk);
* ``out_of_order`` — one sample dropped by the clock policy for its timestamp (a duplicate, a step back that was
  not confirmed as a new clock epoch, a lone jump forward that was not confirmed as the end of a gap);
* ``missed_samples`` — good samples lost because the device fell behind (the source queue overflowed, the sensor
  poller overran its schedule);
* ``dropped`` (the MQTT publisher's) — outgoing messages the outbox discarded, oldest first, at its bound.

A sample inside a message is a sample on every input path: a wrong-typed field counts one ``bad_samples`` over
stdin, MQTT and CSV alike, and a batch with two bad samples counts two. :data:`REASONS` maps each reason to its
counter; :func:`counter_for` is what every ``count`` uses, so no input path can file a reason under another
counter. Other stream counters (not rejections): ``gaps``, ``clock_epochs``, ``filter_resets``,
``rejected_windows``.
"""

from __future__ import annotations

__all__ = ["REASONS", "COUNTERS", "counter_for"]

COUNTERS = ("bad_samples", "bad_messages", "out_of_order", "missed_samples")

REASONS: dict[str, tuple[str, str]] = {
    # bad_messages: nothing readable in the message / line
    "invalid_json": ("bad_messages", "not JSON (also invalid UTF-8 that decodes to garbage)"),
    "json_too_deep": ("bad_messages", "JSON nested deeper than the schema allows"),
    "too_large": ("bad_messages", "a line or payload over the size limit"),
    "invalid_message": ("bad_messages", "JSON that is not an object of the sample / Sensor Logger schema"),
    "no_samples": ("bad_messages", "a well-formed message without any sample"),
    "unsupported_channels": ("bad_messages", "the message format cannot give the configured channels"),
    "internal_error": ("bad_messages", "handling the message failed unexpectedly (logged, never fatal)"),
    # bad_samples: one sample rejected for its content
    "wrong_field_count": ("bad_samples", "a CSV line with the wrong number of fields"),
    "non_numeric": ("bad_samples", "a field that is not a number"),
    "non_finite": ("bad_samples", "NaN, inf, or a number too large for a float"),
    "missing_field": ("bad_samples", "a sample without its timestamp or a channel"),
    "invalid_sample": ("bad_samples", "a batch member that is not an object"),
    "invalid_entry": ("bad_samples", "a Sensor Logger entry without name, time or values"),
    "accelerometer_without_gravity": ("bad_samples", "Sensor Logger linear acceleration with no gravity to add"),
    "missing_gyroscope": ("bad_samples", "Sensor Logger acceleration without any gyroscope reading"),
    "unpaired_gyroscope": ("bad_samples", "Sensor Logger acceleration with no gyroscope reading close enough"),
    "i2c_read_error": ("bad_samples", "a failed or garbled sensor read"),
    "implausible_value": ("bad_samples", "a value outside the channel's physical range (e.g. beyond ±16 g)"),
    "malformed_chunk": ("bad_samples", "a chunk whose arrays disagree in shape"),
    "filter_reset": ("bad_samples", "samples lost when a causal filter's state went non-finite and was reset"),
    # out_of_order: dropped by the clock policy
    "duplicate_timestamp": ("out_of_order", "the same timestamp as the previous sample"),
    "non_increasing_timestamp": ("out_of_order", "a step back not confirmed as a new clock epoch"),
    "timestamp_jump": ("out_of_order", "a jump forward beyond max_gap_s not confirmed by the samples after it"),
    # missed_samples: good samples the device could not keep up with
    "queue_overflow": ("missed_samples", "the consumer fell behind; samples arriving meanwhile were dropped"),
    "overrun": ("missed_samples", "the sensor poller fell behind schedule; the missed ticks were skipped"),
    # not a rejected input: a window the classifier refused (published as 'uncertain')
    "window_rejected": ("rejected_windows", "a window the classifier refused (e.g. non-finite features)"),
}
"""reason → (counter, meaning)."""


def counter_for(reason: str) -> str:
    """The counter a reason belongs to (an unknown reason counts as a bad sample)."""
    entry = REASONS.get(reason)
    return entry[0] if entry is not None else "bad_samples"
