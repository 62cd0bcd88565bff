"""The unit of data that flows from a sensor source into the streaming classifier."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from har_edge.runtime.counters import counter_for

__all__ = ["SampleChunk", "SourceStats"]


@dataclass(frozen=True)
class SampleChunk:
    """Consecutive samples from one source.

    Attributes:
        timestamps_s: ``(n,)`` float64 sample times in seconds (monotonic within a source).
        values: ``(n, c)`` float64 sensor values, columns in ``channel_names`` order.
        channel_names: e.g. ``("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")``.
        units: one unit per channel, e.g. ``("g", "g", "g", "rad/s", "rad/s", "rad/s")``.
    """

    timestamps_s: NDArray[np.float64]
    values: NDArray[np.float64]
    channel_names: tuple[str, ...]
    units: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.timestamps_s.shape[0])


@dataclass
class SourceStats:
    """Counters a source keeps; a bad sample or message is counted, logged and skipped.

    ``count(reason, n)`` files ``n`` under ``reason`` and under the reason's counter
    (:mod:`har_edge.runtime.counters`: ``bad_samples``, ``bad_messages`` or ``missed_samples``).
    """

    samples: int = 0
    bad_samples: int = 0
    bad_messages: int = 0
    missed_samples: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def count(self, reason: str, n: int = 1) -> str:
        """Count ``n`` rejected inputs under ``reason``; returns the counter it went to."""
        counter = counter_for(reason)
        if counter in ("bad_samples", "bad_messages", "missed_samples"):
            setattr(self, counter, getattr(self, counter) + n)
        else:  # a stream-only reason reported by a source: still a bad sample
            counter = "bad_samples"
            self.bad_samples += n
        self.reasons[reason] = self.reasons.get(reason, 0) + n
        return counter

    def as_dict(self) -> dict[str, object]:
        return {
            "samples": self.samples,
            "bad_samples": self.bad_samples,
            "bad_messages": self.bad_messages,
            "missed_samples": self.missed_samples,
            "reasons": dict(self.reasons),
        }
