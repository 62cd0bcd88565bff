"""Where the data sets live: ``--data-root`` > ``$HAR_EDGE_DATA`` > ``../shared/data`` beside the repo."""

from __future__ import annotations

import os
from pathlib import Path

from har_edge.errors import DataError

__all__ = ["DATA_ENV_VAR", "resolve_data_root"]

DATA_ENV_VAR = "HAR_EDGE_DATA"
_REPO_ROOT = Path(__file__).resolve().parents[2]


def resolve_data_root(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Return the data root directory.

    Order: ``explicit`` (a CLI flag), the ``HAR_EDGE_DATA`` environment variable, then
    ``../shared/data`` relative to the repository (or to the current directory).
    """
    candidates: list[tuple[str, Path]] = []
    if explicit:
        candidates.append(("--data-root", Path(explicit)))
    elif os.environ.get(DATA_ENV_VAR):
        candidates.append((f"${DATA_ENV_VAR}", Path(os.environ[DATA_ENV_VAR])))
    else:
        candidates.append(("default", _REPO_ROOT.parent / "shared" / "data"))
        candidates.append(("default", Path.cwd().parent / "shared" / "data"))
    for _, path in candidates:
        if path.is_dir():
            return path
    origin, path = candidates[0]
    raise DataError(
        f"data root {path} ({origin}) is not a directory; pass --data-root DIR or set {DATA_ENV_VAR}=DIR "
        "(the repo ships a small sample in training/sample_data)"
    )
