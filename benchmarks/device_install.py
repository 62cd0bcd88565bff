"""Size of a fresh device install: ``pip install ".[device]"`` in a new venv, with no TensorFlow.

Run: ``python benchmarks/device_install.py``  (needs the package registry)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import print_table, write_json  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def du_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        venv = Path(tmp) / "venv"
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        py = venv / "bin" / "python"
        base = du_bytes(venv)
        subprocess.run([str(py), "-m", "pip", "install", "-q", f"{REPO}[device]"], check=True)
        seconds = time.monotonic() - t0
        size = du_bytes(venv)
        freeze = subprocess.run([str(py), "-m", "pip", "freeze"], capture_output=True, text=True, check=True).stdout.splitlines()
        check = subprocess.run([str(py), "-c", "import importlib.util as u; print(u.find_spec('tensorflow') is None)"],
                               capture_output=True, text=True, check=True).stdout.strip()
        smoke = subprocess.run([str(venv / "bin" / "har-edge"), "doctor"], capture_output=True, text=True)
    sp = {line.split("==")[0].lower(): line for line in freeze}
    res = {"venv_bytes": size, "packages_bytes": size - base, "install_seconds": round(seconds, 1),
           "tensorflow_absent": check == "True", "packages": sorted(freeze), "doctor_exit": smoke.returncode,
           "doctor": smoke.stdout.strip()}
    print_table([[f"{size / 1e6:.1f}", f"{(size - base) / 1e6:.1f}", len(freeze), check == "True", res["install_seconds"]]],
                ["venv MB", "added MB", "packages", "no tensorflow", "install s"])
    print("packages:", ", ".join(sorted(sp.values())))
    print(smoke.stdout.strip())
    write_json("device_install", res, args.out)
    return 0 if res["tensorflow_absent"] and smoke.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
