"""The fault suite's process-level faults: the broker SIGKILLed mid-stream, the runtime SIGKILLed with a full
outbox, and failing configurations whose every output line is searched for the password.

"Lost" means: a seq that never reaches the (persistent-session) subscriber and is not counted in ``dropped``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.broker import free_port
from tests.fixtures.faults import REPO, RAW, broker_kill_run, runtime_kill_run

pytestmark = pytest.mark.mqtt


def test_broker_killed_mid_stream_loses_nothing(mosquitto_broker_factory, float32_bundle: Path, heldout_recording,
                                                 tmp_path: Path) -> None:
    broker = mosquitto_broker_factory(persistence=True, durable=True)
    x = heldout_recording.select_channels(RAW).signals
    r = broker_kill_run(broker, float32_bundle, x, tmp_path)
    assert r["published"] == (len(x) - 64) // 32 + 1 and r["flushed"] and r["reconnects"] >= 1 and r["dropped"] == 0
    assert r["lost"] == 0, f"{r['lost']} seqs lost: {r['lost_seqs']}"
    assert r["duplicates"] <= 2 * r["max_inflight"] + 2, r  # QoS 1 re-sends only what was in flight at the kill


def test_runtime_killed_with_a_full_outbox_loses_nothing(mosquitto_broker_factory, float32_bundle: Path,
                                                         heldout_csv: Path, tmp_path: Path) -> None:
    """`har-edge run` SIGKILLed while the broker is down and its outbox overflows; the next run delivers the rest.
    Every activity/event seq ever assigned reaches the subscriber or is counted in the (persisted) `dropped`."""
    broker = mosquitto_broker_factory(persistence=True)
    r = runtime_kill_run(broker, float32_bundle, heldout_csv, tmp_path)
    assert r["filled_before_kill"] and r["alive_at_kill"] and not r["traceback"], r
    assert r["killed"]["queued"] == 100 and r["killed"]["__dropped__"] >= 50, r  # full: the bound, nothing in flight
    assert r["rerun_rc"] == 0, r["rerun_stderr"]
    assert r["after"]["queued"] == 0 and r["dropped"] - r["killed"]["__dropped__"] <= 1, r
    assert r["lost"] == 0 and r["missing"] == r["dropped"], r  # 0 lost beyond `dropped`
    assert r["oldest_dropped"], r  # the bound dropped the oldest


SECRET = "s3cr3t-Pa55word"


def _run_cli_all(cases: dict[str, list[str]]) -> dict[str, tuple[int, str]]:
    """Run ``har-edge -vv ARGS`` for every case at once; ``{name: (returncode, stdout + stderr)}``."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = {name: subprocess.Popen([sys.executable, "-m", "har_edge", "-vv", *args], cwd=REPO, env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, args in cases.items()}
    out = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=180)
        out[name] = (proc.returncode, stdout + stderr)
    return out


def test_the_password_never_appears_in_any_output(float32_bundle: Path, heldout_csv: Path, tmp_path: Path) -> None:
    """Failing configurations (and a run against a dead broker), all output at -vv, searched for the password."""
    from urllib.parse import quote

    dead = free_port()
    conf = tmp_path / "device.toml"
    conf.write_text(f'[mqtt]\nusername = "pi"\npassword = "{SECRET}"\ntls = true\n')
    short = tmp_path / "short.csv"
    short.write_text(heldout_csv.read_text().splitlines()[0] + "\n" + "\n".join(heldout_csv.read_text().splitlines()[1:200]) + "\n")
    run = ["run", "--bundle", str(float32_bundle), "--source", f"csv:{short}", "--speed", "max",
           "--state-dir", str(tmp_path / "state")]
    cases = {
        "bad port": run + ["--broker", f"mqtt://pi:{SECRET}@127.0.0.1:notaport"],
        "unencoded bracket": run + ["--broker", f"mqtt://pi:[{SECRET}@127.0.0.1"],
        "tls in config, plain url": run + ["--config", str(conf), "--broker", f"mqtt://127.0.0.1:{dead}"],
        "dead broker": run + ["--broker", f"mqtt://pi:{SECRET}@127.0.0.1:{dead}", "--flush-timeout", "1"],
        "source url": ["run", "--bundle", str(float32_bundle), "--source", f"mqtt://pi:{SECRET}@127.0.0.1:x/t"],
        "source spec typo": ["run", "--bundle", str(float32_bundle), "--source", f"mqt://pi:{SECRET}@h/t"],
        "doctor": ["doctor", "--bundle", str(float32_bundle), "--broker", f"mqtt://pi:{SECRET}@127.0.0.1:{dead}"],
        "bad device id": run + ["--device-id", "a/b", "--broker", f"mqtt://pi:{SECRET}@127.0.0.1:{dead}"],
    }
    for name, (rc, out) in _run_cli_all(cases).items():
        assert rc != 0, f"{name}: expected a failure\n{out[-2000:]}"
        for form in (SECRET, quote(SECRET, safe="")):
            assert form not in out, f"{name}: the password appears in the output:\n{out[-3000:]}"
        assert "Traceback" not in out, f"{name}:\n{out[-3000:]}"
        if name == "dead broker":
            assert "password" in out and "plain mqtt://" in out  # the warning names the risk, not the secret
