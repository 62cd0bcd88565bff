"""har_edge.transport must import (and work) on a device without TensorFlow."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import har_edge.transport as transport

REPO_ROOT = Path(__file__).resolve().parents[2]

_SCRIPT = """
import importlib.abc
import sys

BLOCKED = ("tensorflow", "tf_keras", "keras")


class BlockTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"blocked import of {name} (simulating a device without TensorFlow)")
        return None


sys.meta_path.insert(0, BlockTensorFlow())

import har_edge.transport as transport
from har_edge.transport import InMemoryPublisher, MqttConfig, activity_payload

pub = InMemoryPublisher(MqttConfig(device_id="pi"))
pub.publish_activity(activity_payload(device_id="pi", activity="walking", confidence=1.0,
                                      probabilities={"walking": 1.0}, timestamp=0.0, model_hash="x"))
heavy = sorted(
    m for m in sys.modules
    if m.split(".")[0] in BLOCKED or m.startswith(("har_edge.models", "har_edge.export"))
)
if heavy:
    sys.exit(f"heavy modules imported: {heavy}")
print("ok")
"""


def test_transport_imports_with_tensorflow_blocked() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_all_matches_public_names() -> None:
    public = {
        name
        for name, value in vars(transport).items()
        if not name.startswith("_") and not inspect.ismodule(value) and name != "annotations"
    }
    assert set(transport.__all__) == public
    assert len(transport.__all__) == len(set(transport.__all__))
