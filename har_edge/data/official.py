"""Convert the official downloads of UCI HAR, HAPT and WISDM 2019 into the files the loaders read.

``har-edge data prepare {uci-har,hapt,wisdm} --from ZIP_OR_DIR --out DIR`` calls :func:`prepare`;
``DIR`` then works as ``--data-root`` (or ``$HAR_EDGE_DATA``). What each reads (found by the end of
its path, in a folder, a zip or a zip inside a zip, see :mod:`har_edge.data.archive`) and writes:

=========  ===========================================================  ===============================================
data set   official files read                                          written (what :mod:`~har_edge.data.loaders` reads)
=========  ===========================================================  ===============================================
uci-har    ``{train,test}/Inertial Signals/*_{split}.txt``,             ``uci_har/uci_har_{train,test}.npz``
           ``y_{split}.txt``, ``subject_{split}.txt``                   (X ``(n, 128, 9)`` g / rad/s, y 0..5, subject)
hapt       ``RawData/acc_expNN_userNN.txt``, ``gyro_…``,                ``hapt_raw/hapt_raw_streams.npz`` (50 Hz acc g,
           ``RawData/labels.txt``, ``activity_labels.txt``              gyro rad/s, experiments, label rows)
wisdm      ``raw/watch/accel/data_<subject>_accel_watch.txt``           ``wisdm2019_watch_accel_subset/…subset.npz``
           (``subject,code,timestamp_ns,x,y,z;`` lines, m/s²)           (activities A B C D E M, 20 Hz, m/s²)
=========  ===========================================================  ===============================================

Each output folder also gets a ``SOURCE.md`` naming the input file (and its sha256) and the conversion.
Where to download: UCI Machine Learning Repository datasets 240 (UCI HAR), 341 (HAPT) and 507 (WISDM).
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from har_edge.data.archive import Archive
from har_edge.data.loaders import UCI_CHANNELS, UCI_LABELS, _read_matrix, _uci_official_split
from har_edge.errors import DataError

__all__ = ["DATASETS", "PreparedData", "prepare"]

log = logging.getLogger(__name__)

HAPT_RATE_HZ = 50
WISDM_RATE_HZ = 20
WISDM_ACTIVITIES = {"A": "walking", "B": "jogging", "C": "stairs", "D": "sitting", "E": "standing", "M": "kicking_soccer_ball"}


@dataclass(frozen=True)
class PreparedData:
    """What :func:`prepare` wrote: ``files`` (paths), and a one-line ``summary`` per file."""

    dataset: str
    out_dir: Path
    files: tuple[Path, ...]
    summary: tuple[str, ...]


def _sha256(path: Path) -> str:
    if path.is_dir():
        return "(a folder)"
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_source(folder: Path, dataset: str, source: Path, lines: list[str]) -> None:
    text = [f"# {dataset}: converted from the official download by `har-edge data prepare`", "",
            f"- input: `{source.name}` (sha256 `{_sha256(source)}`)",
            f"- converted: {time.strftime('%Y-%m-%d %H:%M:%S')}", *(f"- {line}" for line in lines), ""]
    (folder / "SOURCE.md").write_text("\n".join(text))


# --------------------------------------------------------------------------- UCI HAR


def _prepare_uci(archive: Archive, out: Path) -> tuple[list[Path], list[str]]:
    folder = out / "uci_har"
    folder.mkdir(parents=True, exist_ok=True)
    files, summary = [], []

    def read(rel: str) -> tuple[str, bytes]:
        name = archive.find(rel, what="the official UCI HAR layout: UCI HAR Dataset/<split>/...")
        return archive.where(name), archive.read(name)

    for split in ("train", "test"):
        ws = _uci_official_split(read, split)
        path = folder / f"uci_har_{split}.npz"
        np.savez_compressed(path, X=ws.X.astype(np.float32), y=ws.y.astype(np.int8), subject=ws.subject.astype(np.int8),
                            channels=np.array(UCI_CHANNELS), activity_names=np.array(UCI_LABELS),
                            fs_hz=np.int64(50))
        files.append(path)
        summary.append(f"{path}: {split} X {ws.X.shape}, {len(set(ws.subject.tolist()))} subjects")
    return files, summary


# --------------------------------------------------------------------------- HAPT

_HAPT_RAW = r"(?P<kind>acc|gyro)_exp(?P<exp>\d+)_user(?P<user>\d+)\.txt"


def _hapt_activity_names(archive: Archive) -> list[str]:
    name = archive.find("activity_labels.txt", what="HAPT's activity_labels.txt (id name per line)")
    rows = [line.split() for line in archive.read(name).decode("utf-8", "replace").splitlines() if line.strip()]
    try:
        table = {int(r[0]): r[1] for r in rows}
    except (ValueError, IndexError) as exc:
        raise DataError(f"{archive.where(name)}: expected lines '<id> <NAME>' ({exc})") from exc
    if sorted(table) != list(range(1, len(table) + 1)):
        raise DataError(f"{archive.where(name)}: activity ids {sorted(table)}; expected 1..{len(table)}")
    return [table[i] for i in range(1, len(table) + 1)]


def _prepare_hapt(archive: Archive, out: Path) -> tuple[list[Path], list[str]]:
    raw: dict[tuple[int, int], dict[str, str]] = {}
    for name in archive.matching(r"RawData/" + _HAPT_RAW):
        m = re.search(_HAPT_RAW + "$", name)
        if m is not None:
            raw.setdefault((int(m["exp"]), int(m["user"])), {})[m["kind"]] = name
    if not raw:
        archive.find("RawData/acc_exp01_user01.txt", what="HAPT's RawData/acc_expNN_userNN.txt files")
    incomplete = sorted(k for k, v in raw.items() if set(v) != {"acc", "gyro"})
    if incomplete:
        raise DataError(f"{archive.path}: experiments {incomplete} lack an acc or a gyro file in RawData/")
    labels_name = archive.find("RawData/labels.txt", what="HAPT's RawData/labels.txt")
    labels = _read_matrix(archive.where(labels_name), archive.read(labels_name), ncols=5).astype(np.int32)
    names = _hapt_activity_names(archive)
    acc, gyro, offsets, exp_ids, user_ids = [], [], [0], [], []
    for (exp, user), pair in sorted(raw.items()):
        a = _read_matrix(archive.where(pair["acc"]), archive.read(pair["acc"]), ncols=3)
        g = _read_matrix(archive.where(pair["gyro"]), archive.read(pair["gyro"]), ncols=3)
        if a.shape != g.shape:
            raise DataError(f"{archive.where(pair['acc'])}: {a.shape[0]} rows but the gyro file has {g.shape[0]}")
        rows = labels[labels[:, 0] == exp]
        if len(rows) and (rows[:, 4].max() > len(a) or rows[:, 3].min() < 1):
            raise DataError(f"{archive.where(labels_name)}: a segment of experiment {exp} lies outside its {len(a)} samples")
        acc.append(a.astype(np.float32))
        gyro.append(g.astype(np.float32))
        offsets.append(offsets[-1] + len(a))
        exp_ids.append(exp)
        user_ids.append(user)
    bad = labels[(labels[:, 2] < 1) | (labels[:, 2] > len(names))]
    if len(bad):
        raise DataError(f"{archive.where(labels_name)}: activity id {int(bad[0, 2])}; expected 1..{len(names)}")
    folder = out / "hapt_raw"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "hapt_raw_streams.npz"
    np.savez_compressed(path, acc=np.concatenate(acc), gyro=np.concatenate(gyro), exp_offsets=np.array(offsets, np.int64),
                        exp_id=np.array(exp_ids, np.int16), user_id=np.array(user_ids, np.int16), labels=labels,
                        label_columns=np.array(["exp_id", "user_id", "activity_id", "start_sample", "end_sample"]),
                        activity_names=np.array(names), fs_hz=np.int64(HAPT_RATE_HZ))
    return [path], [f"{path}: {len(exp_ids)} experiments of {len(set(user_ids))} volunteers, {offsets[-1]} samples "
                    f"({offsets[-1] / HAPT_RATE_HZ / 3600:.2f} h at {HAPT_RATE_HZ} Hz), {len(labels)} labelled segments"]


# --------------------------------------------------------------------------- WISDM 2019

_WISDM_FILE = r"raw/watch/accel/data_(?P<subject>\d+)_accel_watch\.txt"


def _wisdm_rows(text: str, where: str) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
    """``subject (n,)``, ``codes``, ``timestamp_ns (n,)``, ``xyz (n, 3)`` from ``subject,code,t,x,y,z;`` lines."""
    subj, codes, stamps, xyz = [], [], [], []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip().rstrip(";").strip()
        if not line:
            continue
        fields = line.split(",")
        if len(fields) != 6:
            raise DataError(f"{where}: line {lineno} has {len(fields)} fields; expected subject,activity,timestamp,x,y,z;")
        try:
            subj.append(int(fields[0]))
            stamps.append(int(fields[2]))
            xyz.append((float(fields[3]), float(fields[4]), float(fields[5])))
        except ValueError as exc:
            raise DataError(f"{where}: line {lineno}: {exc}") from exc
        codes.append(fields[1].strip())
    return np.array(subj, np.int64), codes, np.array(stamps, np.int64), np.array(xyz, np.float64).reshape(-1, 3)


def _prepare_wisdm(archive: Archive, out: Path) -> tuple[list[Path], list[str]]:
    found = archive.matching(_WISDM_FILE)
    if not found:
        archive.find("raw/watch/accel/data_1600_accel_watch.txt", what="WISDM 2019's raw/watch/accel/data_<id>_accel_watch.txt")
    codes_kept = list(WISDM_ACTIVITIES)
    acc, subject, activity, stamps, ids, offsets = [], [], [], [], [], [0]
    rates = []
    for name in found:
        m = re.search(_WISDM_FILE + "$", name)
        if m is None:
            continue
        sid = int(m["subject"])
        s, c, t, x = _wisdm_rows(archive.read(name).decode("utf-8", "replace"), archive.where(name))
        if len(s) and not (s == sid).all():
            raise DataError(f"{archive.where(name)}: subject ids {sorted(set(s.tolist()))} in a file named for {sid}")
        keep = np.array([code in WISDM_ACTIVITIES for code in c], dtype=bool)
        if not keep.any():
            log.info("%s: none of the activities %s; skipped", archive.where(name), codes_kept)
            continue
        dt = np.diff(t[keep]) / 1e9
        dt = dt[(dt > 0) & (dt < 1.0)]
        if dt.size:
            rates.append(1.0 / float(np.median(dt)))
        acc.append(x[keep].astype(np.float32))
        activity.append(np.array([codes_kept.index(code) for code, k in zip(c, keep) if k], np.int8))
        subject.append(np.full(int(keep.sum()), sid, np.int16))
        stamps.append(t[keep])
        ids.append(sid)
        offsets.append(offsets[-1] + int(keep.sum()))
    if not ids:
        raise DataError(f"{archive.path}: no samples of the activities {codes_kept} in {len(found)} watch accelerometer files")
    rate = float(np.median(rates)) if rates else float("nan")
    if not abs(rate - WISDM_RATE_HZ) <= 0.1 * WISDM_RATE_HZ:
        log.warning("WISDM watch accelerometer: median sample rate %.1f Hz, expected about %d Hz", rate, WISDM_RATE_HZ)
    folder = out / "wisdm2019_watch_accel_subset"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "wisdm2019_watch_accel_subset.npz"
    np.savez_compressed(path, acc=np.concatenate(acc), subject=np.concatenate(subject), activity=np.concatenate(activity),
                        subject_ids=np.array(ids, np.int16), subject_offsets=np.array(offsets, np.int64),
                        activity_codes=np.array(codes_kept), activity_names=np.array(list(WISDM_ACTIVITIES.values())),
                        channels=np.array(["x", "y", "z"]), fs_hz=np.int64(WISDM_RATE_HZ),
                        timestamp_ns=np.concatenate(stamps))
    return [path], [f"{path}: {len(ids)} subjects, {offsets[-1]} samples of activities {codes_kept} "
                    f"(median rate {rate:.1f} Hz), acceleration in m/s^2 with gravity"]


# --------------------------------------------------------------------------- entry point

DATASETS: dict[str, tuple[str, Callable[[Archive, Path], tuple[list[Path], list[str]]]]] = {
    "uci-har": ("UCI HAR v1.0 (UCI dataset 240): 'UCI HAR Dataset.zip'", _prepare_uci),
    "hapt": ("HAPT v2.1 raw data (UCI dataset 341)", _prepare_hapt),
    "wisdm": ("WISDM 2019 smartphone and smartwatch (UCI dataset 507): 'wisdm-dataset.zip'", _prepare_wisdm),
}


def prepare(dataset: str, source: str | Path, out_dir: str | Path) -> PreparedData:
    """Convert the official download ``source`` (zip or folder) of ``dataset`` into ``out_dir``.

    Raises:
        DataError: unknown data set, unreadable input, or a file of the official layout missing or malformed
            (the message names the file and what was expected).
    """
    if dataset not in DATASETS:
        raise DataError(f"unknown data set {dataset!r}; expected one of {', '.join(DATASETS)}")
    what, convert = DATASETS[dataset]
    out = Path(out_dir)
    source = Path(source)
    with Archive(source) as archive:
        log.info("%s: %d files found in %s", dataset, len(archive.names), source)
        files, summary = convert(archive, out)
    _write_source(files[0].parent, f"{dataset} — {what}", source, summary)
    return PreparedData(dataset, out, tuple(files), tuple(summary))
