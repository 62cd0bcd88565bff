"""`make test` runs every suite even when one fails, fails overall, and skips the tflite-runtime leg with a reason.

Runs the real Makefile in a scratch directory whose virtual environments are fakes: each ``bin/python``
records how it was called and exits with the code the test chose. Nothing is installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.requirements import skip_or_fail

REPO = Path(__file__).resolve().parents[2]


def _fake_python(path: Path, log: Path, name: str, rc: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho \"{name} $*\" >> {log}\nexit {rc}\n")
    path.chmod(0o755)


def _scratch(tmp_path: Path, *, main_rc: int, device_rc: int, tflite: str) -> tuple[Path, Path]:
    """A directory where every make prerequisite is up to date; returns ``(dir, call log)``."""
    d, log = tmp_path / "repo", tmp_path / "calls.log"
    old = 1_000_000_000
    for rel in ("pyproject.toml", "tests/fixtures/tiny.toml"):
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_text("")
        os.utime(d / rel, (old, old))
    _fake_python(d / "v/bin/python", log, "main", main_rc)
    _fake_python(d / "v-device/bin/python", log, "litert", device_rc)
    _fake_python(d / "v-tflite/bin/python", log, "tflite-runtime", 0)
    stamps = {"v/.installed": "", "v-device/.installed": "", "v-tflite/.installed": tflite,
              "build/test-bundle/model.tflite": ""}
    for i, (rel, text) in enumerate(stamps.items()):
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_text(text)
        os.utime(d / rel, (old + 100 + i, old + 100 + i))  # each newer than what it depends on
    return d, log


def _make(d: Path, target: str = "test") -> subprocess.CompletedProcess[str]:
    make = shutil.which("make")
    if make is None:
        skip_or_fail("make is not installed")
    return subprocess.run([make, "-f", str(REPO / "Makefile"), "-C", str(d), target, "VENV=v", "PYTHON=false"],
                          capture_output=True, text=True, timeout=120)


def test_device_suites_run_after_a_main_failure_and_the_exit_code_is_a_failure(tmp_path: Path) -> None:
    d, log = _scratch(tmp_path, main_rc=1, device_rc=0, tflite="skip: pip finds no tflite-runtime==2.14.0 wheel for Python 3.13")
    result = _make(d)
    calls = log.read_text().splitlines()
    assert result.returncode != 0, result.stdout
    assert [c.split()[0] for c in calls] == ["main", "litert"], result.stdout + result.stderr
    assert "-m pytest" in calls[1] and "tests/runtime" in calls[1]
    assert "SKIPPED the tflite-runtime device suite: pip finds no tflite-runtime==2.14.0 wheel for Python 3.13" in result.stdout
    assert "make test: FAILED" in result.stdout


def test_all_legs_run_and_pass(tmp_path: Path) -> None:
    d, log = _scratch(tmp_path, main_rc=0, device_rc=0, tflite="ok\n")
    result = _make(d)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [c.split()[0] for c in log.read_text().splitlines()] == ["main", "litert", "tflite-runtime"]
    assert "make test: all suites passed" in result.stdout


def test_a_failing_device_leg_still_runs_the_next_one(tmp_path: Path) -> None:
    d, log = _scratch(tmp_path, main_rc=0, device_rc=1, tflite="ok\n")
    result = _make(d)
    assert result.returncode != 0
    assert [c.split()[0] for c in log.read_text().splitlines()] == ["main", "litert", "tflite-runtime"]


@pytest.mark.parametrize("target", ["dist", "demo", "bench", "clean"])
def test_documented_targets_exist(target: str, tmp_path: Path) -> None:
    make = shutil.which("make")
    if make is None:
        skip_or_fail("make is not installed")
    (tmp_path / "pyproject.toml").write_text("")
    result = subprocess.run([make, "-n", "-f", str(REPO / "Makefile"), "-C", str(tmp_path), target, "VENV=v"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "No rule to make target" not in result.stderr, result.stderr
