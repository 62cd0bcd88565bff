"""Read the files of a downloaded data set wherever they sit: a folder, a ``.zip``, or a ``.zip`` in either.

The official downloads nest differently (UCI's page wraps ``UCI HAR Dataset.zip`` in another zip;
unpacking by hand gives a folder, sometimes with the inner zip still in it), so files are found by
the end of their path (``train/y_train.txt``), never by a fixed prefix. ``__MACOSX`` resource
forks are ignored.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

from har_edge.errors import DataError

__all__ = ["Archive"]


class Archive:
    """The files under ``path`` (a directory or a zip), plus those of any zip found directly in it.

    Names are ``/``-separated paths relative to ``path``; a member of an inner zip is named
    ``<inner zip name>/<member>``.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise DataError(f"{self.path}: no such folder or zip file (expected the official download: a .zip or its unpacked folder)")
        self._files: dict[str, tuple[zipfile.ZipFile | None, str]] = {}
        self._zips: list[zipfile.ZipFile] = []
        if self.path.is_dir():
            for f in sorted(self.path.rglob("*")):
                if f.is_file():
                    self._add(None, f.relative_to(self.path).as_posix(), str(f))
        else:
            outer = self._open_zip(self.path, str(self.path))
            for name in outer.namelist():
                if not name.endswith("/"):
                    self._add(outer, name, name)
        for name, (owner, ref) in list(self._files.items()):
            if name.lower().endswith(".zip") and "__MACOSX" not in name:
                inner = self._open_zip(io.BytesIO(self._read(owner, ref)), f"{self.path}:{name}")
                for member in inner.namelist():
                    if not member.endswith("/"):
                        self._add(inner, f"{name}/{member}", member)

    def _open_zip(self, source: Path | io.BytesIO, where: str) -> zipfile.ZipFile:
        try:
            zf = zipfile.ZipFile(source)
        except (zipfile.BadZipFile, OSError) as exc:
            raise DataError(f"{where}: not a readable zip file ({exc})") from exc
        self._zips.append(zf)
        return zf

    def _add(self, owner: zipfile.ZipFile | None, name: str, ref: str) -> None:
        if "__MACOSX" not in name and not Path(name).name.startswith("._"):
            self._files[name] = (owner, ref)

    @staticmethod
    def _read(owner: zipfile.ZipFile | None, ref: str) -> bytes:
        if owner is None:
            return Path(ref).read_bytes()
        return owner.read(ref)

    @property
    def names(self) -> list[str]:
        """Every file name found, sorted."""
        return sorted(self._files)

    def where(self, name: str) -> str:
        """``name`` as a user can find it: ``archive.zip:inner/path`` or a file path."""
        return str(self.path / name) if self.path.is_dir() else f"{self.path}:{name}"

    def matching(self, pattern: str) -> list[str]:
        """Names whose last path components match the regular expression ``pattern`` (anchored at a ``/``)."""
        rx = re.compile(r"(?:^|/)" + pattern + r"$")
        return sorted(n for n in self._files if rx.search(n))

    def read(self, name: str) -> bytes:
        owner, ref = self._files[name]
        try:
            return self._read(owner, ref)
        except (OSError, zipfile.BadZipFile, KeyError) as exc:
            raise DataError(f"{self.where(name)}: cannot read ({exc})") from exc

    def find(self, suffix: str, *, what: str) -> str:
        """The shortest name ending with ``/suffix`` (or equal to it).

        Raises:
            DataError: nothing matches; the message says what was expected and shows a few names found.
        """
        hits = [n for n in self._files if n == suffix or n.endswith("/" + suffix)]
        if not hits:
            sample = ", ".join(self.names[:5]) or "nothing"
            raise DataError(f"{self.path}: {suffix}: file not found (expected {what}); "
                            f"found {len(self._files)} files, e.g. {sample}")
        return min(hits, key=len)

    def close(self) -> None:
        for zf in self._zips:
            zf.close()
        self._zips.clear()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
