"""Loaders for the public HAR data sets: UCI-HAR windows, HAPT raw streams, WISDM 2019 watch.

Each returns arrays with explicit channel names, units and sample rate. Bad or missing input
raises :class:`~har_edge.errors.DataError` naming the file and what was expected.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from har_edge.data.archive import Archive
from har_edge.data.recording import UNLABELLED, Recording, WindowSet, check_finite
from har_edge.errors import DataError

__all__ = [
    "UCI_LABELS",
    "UCI_CHANNELS",
    "UCI_TEST_SUBJECTS",
    "load_uci_har_npz",
    "uci_har_npz_path",
    "load_uci_har_official",
    "load_hapt_raw",
    "load_wisdm_watch",
]

UCI_LABELS = ("WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING", "LAYING")
UCI_CHANNELS = tuple(f"{k}_{a}" for k in ("body_acc", "body_gyro", "total_acc") for a in "xyz")
UCI_UNITS = ("g", "g", "g", "rad/s", "rad/s", "rad/s", "g", "g", "g")
UCI_TEST_SUBJECTS = (2, 4, 9, 10, 12, 13, 18, 20, 24)
UCI_RATE_HZ = 50.0


def _load_npz(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in keys if k not in z.files]
            if missing:
                raise DataError(f"{path}: missing array(s) {missing}; found {sorted(z.files)}")
            return {k: z[k] for k in keys}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from exc


def uci_har_npz_path(data_root: Path, split: str) -> Path:
    """``<root>/uci_har/uci_har_<split>.npz`` (the official windows, from ``har-edge data prepare uci-har``)
    when present, else ``uci_har_reconstructed_<split>.npz`` (re-derived from the raw HAPT streams)."""
    folder = Path(data_root) / "uci_har"
    official = folder / f"uci_har_{split}.npz"
    return official if official.is_file() else folder / f"uci_har_reconstructed_{split}.npz"


def load_uci_har_npz(data_root: Path, split: str) -> WindowSet:
    """UCI-HAR windows from :func:`uci_har_npz_path`: X ``(n, 128, 9)``."""
    if split not in ("train", "test"):
        raise DataError(f"split {split!r}; expected 'train' or 'test'")
    path = uci_har_npz_path(data_root, split)
    d = _load_npz(path, ("X", "y", "subject", "channels"))
    X = d["X"].astype(np.float32)
    if X.ndim != 3 or X.shape[2] != 9:
        raise DataError(f"{path}: X has shape {X.shape}; expected (n, 128, 9)")
    check_finite(X.reshape(X.shape[0], -1), where=f"{path} X")
    channels = tuple(str(c) for c in d["channels"])
    if channels != UCI_CHANNELS:
        raise DataError(f"{path}: channels {channels}; expected {UCI_CHANNELS}")
    return WindowSet(
        X=X,
        y=d["y"].astype(np.int64),
        subject=d["subject"].astype(np.int64),
        channel_names=UCI_CHANNELS,
        units=UCI_UNITS,
        label_names=UCI_LABELS,
        sample_rate_hz=UCI_RATE_HZ,
    )


def _read_matrix(name: str, data: bytes, *, ncols: int | None) -> np.ndarray:
    try:
        arr = np.loadtxt(io.BytesIO(data), dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise DataError(f"{name}: not a whitespace-separated numeric table ({exc})") from exc
    if ncols is not None and arr.shape[1] != ncols:
        raise DataError(f"{name}: {arr.shape[1]} columns per row; expected {ncols}")
    check_finite(arr, where=name)
    return arr


def load_uci_har_official(path: str | Path, split: str) -> WindowSet:
    """The official UCI HAR layout: a ``UCI HAR Dataset`` folder, its ``.zip``, or UCI's zip around that zip.

    Reads ``<split>/Inertial Signals/<channel>_<split>.txt`` (9 files of ``(n, 128)``),
    ``<split>/y_<split>.txt`` (1..6) and ``<split>/subject_<split>.txt``.
    """
    if split not in ("train", "test"):
        raise DataError(f"split {split!r}; expected 'train' or 'test'")
    with Archive(path) as archive:

        def read(rel: str) -> tuple[str, bytes]:
            name = archive.find(rel, what="the official UCI HAR layout: UCI HAR Dataset/<split>/...")
            return archive.where(name), archive.read(name)

        return _uci_official_split(read, split)


def _uci_official_split(read: Callable[[str], tuple[str, bytes]], split: str) -> WindowSet:
    chans = []
    for ch in UCI_CHANNELS:
        name, data = read(f"{split}/Inertial Signals/{ch}_{split}.txt")
        chans.append(_read_matrix(name, data, ncols=None))
    n, t = chans[0].shape
    for ch, arr in zip(UCI_CHANNELS, chans):
        if arr.shape != (n, t):
            raise DataError(f"{ch}_{split}.txt: shape {arr.shape}; expected {(n, t)} like {UCI_CHANNELS[0]}_{split}.txt")
    name_y, data_y = read(f"{split}/y_{split}.txt")
    y = _read_matrix(name_y, data_y, ncols=1)[:, 0].astype(np.int64)
    name_s, data_s = read(f"{split}/subject_{split}.txt")
    subject = _read_matrix(name_s, data_s, ncols=1)[:, 0].astype(np.int64)
    if y.shape[0] != n or subject.shape[0] != n:
        raise DataError(f"{name_y}/{name_s}: {y.shape[0]} labels and {subject.shape[0]} subjects for {n} windows")
    bad = (y < 1) | (y > 6)
    if bad.any():
        raise DataError(f"{name_y}: label {int(y[bad][0])} at row {int(np.argmax(bad))}; expected 1..6")
    return WindowSet(
        X=np.stack(chans, axis=2).astype(np.float32),
        y=y - 1,
        subject=subject,
        channel_names=UCI_CHANNELS,
        units=UCI_UNITS,
        label_names=UCI_LABELS,
        sample_rate_hz=UCI_RATE_HZ,
    )


def load_hapt_raw(data_root: Path, *, path: Path | None = None) -> list[Recording]:
    """HAPT v2.1 raw 50 Hz streams, one :class:`Recording` per experiment.

    Channels ``acc_{x,y,z}`` (g) and ``gyro_{x,y,z}`` (rad/s); per-sample labels are 0-based
    activity indices (0..11 = WALKING … LIE_TO_STAND), :data:`UNLABELLED` between segments.
    ``labels.txt`` rows are 1-based inclusive sample numbers.
    """
    path = path or Path(data_root) / "hapt_raw" / "hapt_raw_streams.npz"
    d = _load_npz(path, ("acc", "gyro", "exp_offsets", "exp_id", "user_id", "labels", "activity_names", "fs_hz"))
    acc, gyro, offsets = d["acc"], d["gyro"], d["exp_offsets"]
    if acc.shape != gyro.shape or acc.ndim != 2 or acc.shape[1] != 3:
        raise DataError(f"{path}: acc {acc.shape} and gyro {gyro.shape} must both be (n, 3)")
    if offsets[-1] != acc.shape[0] or np.any(np.diff(offsets) <= 0):
        raise DataError(f"{path}: exp_offsets must increase and end at {acc.shape[0]}")
    names = tuple(str(n) for n in d["activity_names"])
    fs = float(d["fs_hz"])
    recs = []
    table = d["labels"]
    for k, (exp, user) in enumerate(zip(d["exp_id"], d["user_id"])):
        s, e = int(offsets[k]), int(offsets[k + 1])
        sig = np.concatenate([acc[s:e], gyro[s:e]], axis=1).astype(np.float32)
        check_finite(sig, where=f"{path} experiment {int(exp)}")
        labels = np.full(e - s, UNLABELLED, dtype=np.int16)
        for _, _, act, a, b in table[table[:, 0] == exp]:
            if not (1 <= act <= len(names)) or a < 1 or b > e - s or a > b:
                raise DataError(f"{path}: label row exp={exp} act={act} [{a}, {b}] outside 1..{e - s} or unknown activity")
            labels[a - 1 : b] = act - 1
        recs.append(
            Recording(
                signals=sig,
                channel_names=("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"),
                units=("g", "g", "g", "rad/s", "rad/s", "rad/s"),
                sample_rate_hz=fs,
                labels=labels,
                label_names=names,
                subject=int(user),
                name=f"hapt exp{int(exp):02d} user{int(user):02d}",
            )
        )
    return recs


def load_wisdm_watch(data_root: Path) -> list[Recording]:
    """WISDM 2019 watch accelerometer subset: one :class:`Recording` per subject and activity block.

    20 Hz, channels ``acc_{x,y,z}`` in m/s² (gravity included); labels 0..5 = walking, jogging,
    stairs, sitting, standing, kicking_soccer_ball. Blocks are split where the activity changes,
    since the joins between blocks are not continuous in time.
    """
    path = Path(data_root) / "wisdm2019_watch_accel_subset" / "wisdm2019_watch_accel_subset.npz"
    d = _load_npz(path, ("acc", "subject", "activity", "subject_ids", "subject_offsets", "activity_names", "fs_hz"))
    acc, act, offsets = d["acc"].astype(np.float32), d["activity"].astype(np.int16), d["subject_offsets"]
    check_finite(acc, where=str(path))
    names = tuple(str(n) for n in d["activity_names"])
    recs = []
    for k, subj in enumerate(d["subject_ids"]):
        s, e = int(offsets[k]), int(offsets[k + 1])
        change = np.flatnonzero(np.diff(act[s:e])) + 1
        for a, b in zip(np.concatenate([[0], change]), np.concatenate([change, [e - s]])):
            recs.append(
                Recording(
                    signals=acc[s + a : s + b],
                    channel_names=("acc_x", "acc_y", "acc_z"),
                    units=("m/s^2",) * 3,
                    sample_rate_hz=float(d["fs_hz"]),
                    labels=act[s + a : s + b].copy(),
                    label_names=names,
                    subject=int(subj),
                    name=f"wisdm subject {int(subj)} block {names[int(act[s + a])]}",
                )
            )
    return recs
