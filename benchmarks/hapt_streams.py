"""HAPT raw recordings of chosen subjects through a device stream: shared by the streaming benchmarks."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from har_edge.config import DataConfig
from har_edge.data.datasets import load_recordings
from har_edge.data.loaders import UCI_TEST_SUBJECTS
from har_edge.data.recording import Recording
from har_edge.runtime.samples import SampleChunk
from har_edge.runtime.stream import StreamResult

RAW = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
UNITS = ("g", "g", "g", "rad/s", "rad/s", "rad/s")
VALIDATION_SUBJECTS = (1, 11, 21, 30)  # the training recipe's validation subjects (early stopping only)
CHUNK_SAMPLES = 512  # what `har-edge run --source csv:... --speed max` hands over per chunk


def subjects_arg(value: Sequence[str]) -> tuple[int, ...]:
    """``test`` | ``validation`` | subject ids, as given on a command line."""
    if list(value) == ["test"]:
        return UCI_TEST_SUBJECTS
    if list(value) == ["validation"]:
        return VALIDATION_SUBJECTS
    return tuple(int(v) for v in value)


def load_subjects(data_root: Path, subjects: Sequence[int], *, transitions: bool = False) -> list[Recording]:
    """The raw HAPT recordings of ``subjects`` (labels: six activities, or all twelve with ``transitions``)."""
    wanted = set(subjects)
    return [r for r in load_recordings(DataConfig(dataset="hapt_raw"), data_root, transitions=transitions) if r.subject in wanted]


def stream_recording(stream: Any, rec: Recording, *, chunk_samples: int = CHUNK_SAMPLES) -> tuple[list[StreamResult], float]:
    """Feed one recording (sample ``i`` at ``i / rate`` s) in chunks; ``(results, seconds spent in feed)``."""
    t = np.arange(rec.n_samples) / rec.sample_rate_hz
    x = rec.select_channels(RAW).signals.astype(np.float64)
    out: list[StreamResult] = []
    spent = 0.0
    for i in range(0, rec.n_samples, chunk_samples):
        chunk = SampleChunk(t[i : i + chunk_samples], x[i : i + chunk_samples], RAW, UNITS)
        t0 = time.perf_counter()
        out += stream.feed(chunk)
        spent += time.perf_counter() - t0
    return out, spent
