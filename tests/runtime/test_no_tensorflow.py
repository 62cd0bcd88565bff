"""The device path never imports TensorFlow: runtime, transport, bundle loading and `har-edge run`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.no_tensorflow import BLOCK_TENSORFLOW as BLOCKER


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", BLOCKER + code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])


def test_device_modules_import_without_tensorflow() -> None:
    p = _run(
        "import importlib, pkgutil, har_edge.inference, har_edge.runtime, har_edge.transport\n"
        "mods = ['har_edge.cli', 'har_edge.cli.run', 'har_edge.cli.service']\n"
        "for pkg in (har_edge.inference, har_edge.runtime, har_edge.transport):\n"
        "    mods += [pkg.__name__ + '.' + m.name for m in pkgutil.iter_modules(pkg.__path__)]\n"
        "for m in mods: importlib.import_module(m)\n"
        "assert not any(k.split('.')[0] in ('tensorflow', 'tf_keras') for k in sys.modules)\n"
        "upward = [k for k in sys.modules if k.startswith(('har_edge.export', 'har_edge.models'))]\n"
        "assert not upward, upward\n"
        "print(len(mods))\n"
    )
    assert p.returncode == 0, p.stderr[-2000:]
    assert int(p.stdout.strip()) > 10


def _run_cli_without_tensorflow(bundle: Path, csv: Path) -> list[dict[str, object]]:
    """``har-edge run --bundle BUNDLE --source csv:CSV --speed max`` with TensorFlow blocked; its JSON lines."""
    p = _run(
        "from har_edge.cli import main\n"
        f"rc = main(['run', '--bundle', {str(bundle)!r}, '--source', 'csv:{csv}', '--speed', 'max'])\n"
        "assert not any(k.split('.')[0] in ('tensorflow', 'tf_keras') for k in sys.modules)\n"
        "sys.exit(rc)\n"
    )
    assert p.returncode == 0, p.stderr[-2000:]
    return [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]


def test_har_edge_run_works_without_tensorflow(float32_bundle: Path, heldout_csv: Path) -> None:
    lines = _run_cli_without_tensorflow(float32_bundle, heldout_csv)
    assert len(lines) > 100 and {"activity", "confidence", "seq", "timestamp"} <= set(lines[0])


@pytest.mark.skipif(os.environ.get("HAR_EDGE_DEVICE_ENV") != "1", reason="only in the device-only virtual environments")
def test_device_env_has_no_tensorflow() -> None:
    import importlib.util

    assert importlib.util.find_spec("tensorflow") is None, "the device install pulled TensorFlow"


@pytest.mark.skipif(not os.environ.get("HAR_EDGE_EXPECT_BACKEND"), reason="only where the expected backend is declared")
def test_expected_backend_is_picked_first() -> None:
    from har_edge.inference.interpreter import load_backend

    assert load_backend().name == os.environ["HAR_EDGE_EXPECT_BACKEND"]


def test_a_lone_model_file_runs_without_tensorflow(float32_bundle: Path, heldout_csv: Path, tmp_path: Path) -> None:
    """The manifest is embedded in model.tflite: a copy of that one file is enough on the device."""
    import shutil

    lone = tmp_path / "har-model.tflite"
    shutil.copyfile(float32_bundle / "model.tflite", lone)
    lines = _run_cli_without_tensorflow(lone, heldout_csv)
    sidecar = json.loads((float32_bundle / "manifest.json").read_text())
    assert len(lines) > 100 and sidecar["model_sha256"].startswith(str(lines[0]["model_hash"]))
