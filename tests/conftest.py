"""Shared fixtures: the Mosquitto broker (tests/fixtures/broker.py) and tiny models (tests/fixtures/models.py)."""

from __future__ import annotations

import os
import tempfile

pytest_plugins = ["tests.fixtures.broker", "tests.fixtures.models", "tests.fixtures.recordings"]

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HAR_EDGE_TEST_TMP", tempfile.gettempdir())
