"""Shared fixtures. The Mosquitto broker fixture lives in tests/fixtures/broker.py."""

from __future__ import annotations

pytest_plugins = ["tests.fixtures.broker"]
