"""MqttPublisher against a real Mosquitto broker (see tests/fixtures/broker.py)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from har_edge.errors import BackendNotAvailable, ConfigError, TransportError
from har_edge.transport import payloads
from har_edge.transport.config import MqttConfig
from har_edge.transport.mqtt import MqttPublisher
from tests.fixtures.broker import (
    LABELS,
    MosquittoBroker,
    Received,
    collect_messages,
    make_config,
    publish_once,
    state,
    wait_until,
)

pytestmark = pytest.mark.mqtt

REPO_ROOT = Path(__file__).resolve().parents[2]
def seqs(messages: list[Received], topic: str) -> list[int]:
    return [payloads.decode(m.payload)["seq"] for m in messages if m.topic == topic]


def dedupe_by_seq(received: list[int]) -> list[int]:
    """What a subscriber that drops ``seq <= last_seen`` keeps."""
    kept: list[int] = []
    for s in received:
        if not kept or s > kept[-1]:
            kept.append(s)
    return kept


# -- happy path --------------------------------------------------------------------------------


def test_activity_messages_arrive_once_in_seq_order(
    mosquitto_broker: MosquittoBroker, publishers: Callable[..., MqttPublisher]
) -> None:
    cfg = make_config(mosquitto_broker, "happy")
    topic = cfg.topic("activity")
    with collect_messages(mosquitto_broker, ["har/#", "homeassistant/#"]) as sub:
        pub = publishers(cfg)
        assert pub.wait_connected(30)
        for n in range(25):
            assert pub.publish_activity(state(cfg.device_id, n)) == n + 1
        assert pub.flush(30)
        assert sub.wait_for(lambda ms: len([m for m in ms if m.topic == topic]) >= 25)
        time.sleep(0.1)  # would expose duplicates
        received = sub.messages
    assert seqs(received, topic) == list(range(1, 26))
    first = payloads.decode(next(m for m in received if m.topic == topic).payload)
    assert first["schema_version"] == 1 and first["device_id"] == "happy" and first["activity"] == "walking"
    assert set(first["probabilities"]) == set(LABELS)
    assert not [m for m in received if m.topic.startswith("homeassistant/")], "discovery=False"
    assert pub.stats.published == 25 and pub.stats.acked == 25 and pub.stats.queued == 0
    assert pub.connected


def test_activity_state_is_retained_and_events_are_not(
    mosquitto_broker: MosquittoBroker, publishers: Callable[..., MqttPublisher]
) -> None:
    """A subscriber that arrives later (Home Assistant after a restart) gets the newest state, no old events."""
    cfg = make_config(mosquitto_broker, "retained")
    pub = publishers(cfg)
    assert pub.wait_connected(30)
    for n in range(3):
        pub.publish_activity(state(cfg.device_id, n))
    pub.publish_event({"type": "start", "activity": "walking", "timestamp": 1.0})
    assert pub.flush(30)
    with collect_messages(mosquitto_broker, cfg.topic("activity")) as late:
        assert late.wait_for(lambda ms: len(ms) >= 1)
    assert len(late.messages) == 1 and late.messages[0].retain
    assert payloads.decode(late.messages[0].payload)["seq"] == 3
    with collect_messages(mosquitto_broker, cfg.topic("event")) as events:
        time.sleep(0.5)
    assert events.messages == []


def test_status_online_is_retained_and_close_publishes_offline(
    mosquitto_broker: MosquittoBroker, publishers: Callable[..., MqttPublisher]
) -> None:
    cfg = make_config(mosquitto_broker, "status")
    status = cfg.topic("status")
    with collect_messages(mosquitto_broker, status) as early:
        pub = publishers(cfg)
        # wait_connected() only means 'online' is queued: wait until the broker has delivered it
        assert early.wait_for(lambda ms: any(m.payload == b"online" for m in ms), timeout_s=30)
    with collect_messages(mosquitto_broker, status) as late:  # subscribes after the fact: the retained copy
        assert late.wait_for(lambda ms: any(m.payload == b"online" for m in ms), timeout_s=30)
        assert late.messages[0].retain, "online must be retained"
        pub.close()
        assert late.wait_for(lambda ms: ms[-1].payload == b"offline", timeout_s=30)
    assert not pub.connected
    with pytest.raises(TransportError, match="after close"):
        pub.publish_activity(state(cfg.device_id, 0))
    with collect_messages(mosquitto_broker, status) as after:
        assert after.wait_for(lambda ms: len(ms) >= 1, timeout_s=30)
        assert (after.messages[0].payload, after.messages[0].retain) == (b"offline", True)


def test_restart_clears_the_previous_runs_retained_activity(
    mosquitto_broker: MosquittoBroker, publishers: Callable[..., MqttPublisher], tmp_path: Path
) -> None:
    """With discovery on, nobody sees the last run's activity as current after a restart."""
    cfg = make_config(mosquitto_broker, "restart", discovery=True)
    activity, marker = cfg.topic("activity"), "har/restart/marker"
    first = publishers(cfg, labels=LABELS, state_dir=tmp_path)
    for n in range(3):
        first.publish_activity(state(cfg.device_id, n))
    assert first.flush(20)
    first.close()
    with collect_messages(mosquitto_broker, activity) as live:
        assert live.wait_for(lambda ms: len(ms) >= 1, timeout_s=30)  # the retained state of the first run
        assert payloads.decode(live.messages[0].payload)["seq"] == 3
        second = publishers(cfg, labels=LABELS, state_dir=tmp_path)
        assert second.flush(20)
        assert live.wait_for(lambda ms: len(ms) >= 2, timeout_s=30)
        assert live.messages[1].payload == b"", "the restart clears the retained activity first"
        with collect_messages(mosquitto_broker, "har/restart/#") as late:
            assert late.wait_for(lambda ms: any(m.payload == b"online" for m in ms), timeout_s=30)
            publish_once(mosquitto_broker, marker, b"m")  # delivered after anything retained
            assert late.wait_for(lambda ms: any(m.topic == marker for m in ms), timeout_s=30)
            assert not late.on_topic(activity), "no retained activity between the restart and the first classification"
            assert second.publish_activity(state(cfg.device_id, 4)) == 4  # seq survives the restart (outbox file)
            assert late.wait_for(lambda ms: bool([m for m in ms if m.topic == activity]), timeout_s=30)
    assert payloads.decode(late.on_topic(activity)[0].payload)["activity"] == LABELS[4 % len(LABELS)]
    assert second.stats.published == 2 and first.stats.published == 4  # each counts its clear
    # a forecaster brings its own discovery configs and has no activity topic to clear
    assert publishers(cfg, discovery_configs=[], state_dir=tmp_path / "fc").stats.published == 0


def test_last_will_offline_when_process_is_killed(mosquitto_broker: MosquittoBroker) -> None:
    device = "doomed"
    status = make_config(mosquitto_broker, device).topic("status")
    script = (
        "import sys, time\n"
        "from har_edge.transport import MqttConfig, MqttPublisher, parse_broker_url\n"
        "cfg = parse_broker_url(sys.argv[1], base=MqttConfig(device_id=sys.argv[2], discovery=False,"
        " stats_interval_s=0))\n"
        "pub = MqttPublisher(cfg)\n"
        "if not pub.wait_connected(30):\n"
        "    sys.exit(3)\n"
        "time.sleep(60)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    with collect_messages(mosquitto_broker, status) as sub:
        proc = subprocess.Popen(
            [sys.executable, "-c", script, mosquitto_broker.url, device],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            online = sub.wait_for(lambda ms: any(m.payload == b"online" for m in ms), timeout_s=30)
            if not online:
                proc.kill()
                _, err = proc.communicate(timeout=5)
                pytest.fail(f"publisher subprocess never came online: {err.decode(errors='replace')}")
            proc.send_signal(signal.SIGKILL)  # no clean DISCONNECT: the broker must send the will
            proc.wait(timeout=5)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=5)
            proc.stdout.close()  # type: ignore[union-attr]
            proc.stderr.close()  # type: ignore[union-attr]
        assert sub.wait_for(lambda ms: ms[-1].payload == b"offline", timeout_s=30)
    with collect_messages(mosquitto_broker, status) as after:
        assert after.wait_for(lambda ms: len(ms) >= 1)
        assert (after.messages[0].payload, after.messages[0].retain) == (b"offline", True)


def test_events_stats_and_qos0(
    mosquitto_broker: MosquittoBroker, publishers: Callable[..., MqttPublisher]
) -> None:
    cfg = make_config(mosquitto_broker, "misc", stats_interval_s=0.2)
    with collect_messages(mosquitto_broker, "har/misc/#") as sub:
        pub = publishers(cfg)
        assert pub.wait_connected(30)
        start = payloads.event_payload(device_id="misc", event_type="start", activity="walking", timestamp=1.0)
        end = payloads.event_payload(
            device_id="misc", event_type="end", activity="walking", timestamp=9.0, duration_s=8.0
        )
        assert (pub.publish_event(start), pub.publish_event(end)) == (1, 2)
        pub.publish("har/misc/raw", b"qos0", qos=0)
        assert pub.flush(30)
        assert sub.wait_for(lambda ms: any(m.topic == "har/misc/stats" for m in ms), timeout_s=30)
        assert sub.wait_for(lambda ms: any(m.topic == "har/misc/raw" for m in ms))
        received = sub.messages
    events = [payloads.decode(m.payload) for m in received if m.topic == "har/misc/event"]
    assert [(e["type"], e["seq"]) for e in events] == [("start", 1), ("end", 2)]
    assert events[1]["duration_s"] == 8.0
    stats = payloads.decode(next(m for m in received if m.topic == "har/misc/stats").payload)
    assert {"published", "acked", "queued", "dropped", "reconnects", "connected"} <= set(stats["counters"])
    assert next(m for m in received if m.topic == "har/misc/raw").qos == 0


# -- Home Assistant discovery ------------------------------------------------------------------


def test_discovery_is_retained_and_republished_on_ha_birth(
    mosquitto_broker: MosquittoBroker, publishers: Callable[..., MqttPublisher]
) -> None:
    cfg = make_config(mosquitto_broker, "ha", discovery=True)
    config_topic = "homeassistant/sensor/ha/activity/config"
    pub = publishers(cfg, labels=LABELS, sw_version="9.9")
    assert pub.wait_connected(30)
    with collect_messages(mosquitto_broker, "homeassistant/sensor/ha/+/config") as sub:
        # Once the config is on the broker, the publisher's subscription to
        # homeassistant/status (sent before it on the same connection) is in place too.
        assert sub.wait_for(lambda ms: len(ms) >= 2)
        with collect_messages(mosquitto_broker, config_topic) as late:
            assert late.wait_for(lambda ms: len(ms) >= 1)
            assert late.messages[0].retain
        body = payloads.decode(sub.on_topic(config_topic)[0].payload)
        assert body["options"] == [*LABELS, "uncertain"]
        assert body["state_topic"] == "har/ha/activity"
        assert body["availability_topic"] == "har/ha/status"
        assert body["device"]["sw_version"] == "9.9"
        before = len(sub.messages)

        publish_once(mosquitto_broker, "homeassistant/status", "online")
        assert sub.wait_for(lambda ms: len(ms) >= before + 2), "discovery not re-published after HA birth"
        republished = sub.messages[before:]
        assert {m.topic for m in republished} == {config_topic, "homeassistant/sensor/ha/confidence/config"}
        assert not any(m.retain for m in republished)  # live delivery, i.e. really re-sent

        publish_once(mosquitto_broker, "homeassistant/status", "offline")
        time.sleep(0.2)
        assert len(sub.messages) == before + 2, "only 'online' triggers a re-publish"


def test_callback_errors_are_logged_not_raised(
    mosquitto_broker: MosquittoBroker,
    publishers: Callable[..., MqttPublisher],
    caplog: pytest.LogCaptureFixture,
) -> None:
    cfg = make_config(mosquitto_broker, "faulty", discovery=True)
    pub = publishers(cfg, labels=LABELS)
    assert pub.wait_connected(30)
    with collect_messages(mosquitto_broker, "homeassistant/sensor/faulty/+/config") as sub:
        assert sub.wait_for(lambda ms: len(ms) >= 2)

    def boom(client: object) -> None:
        raise RuntimeError("boom in callback")

    pub._publish_discovery = boom  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="har_edge.transport.mqtt"):
        publish_once(mosquitto_broker, "homeassistant/status", "online")
        assert wait_until(lambda: any("on_message" in r.getMessage() for r in caplog.records))
    assert any(r.exc_info and "boom in callback" in str(r.exc_info[1]) for r in caplog.records)
    # the network thread survived: publishing still works
    pub.publish_activity(state(cfg.device_id, 0))
    assert pub.flush(30)
    assert pub.connected


# -- outages and restarts ----------------------------------------------------------------------


def test_broker_outage_loses_nothing_and_keeps_order(
    mosquitto_broker_factory: Callable[..., MosquittoBroker],
    publishers: Callable[..., MqttPublisher],
    tmp_path: Path,
) -> None:
    broker = mosquitto_broker_factory(persistence=True)
    cfg = make_config(broker, "outage")
    topic = cfg.topic("activity")
    total = 60
    # A persistent session (clean_session=False, persisted by the broker across its restart)
    # makes delivery independent of whether subscriber or publisher reconnects first.
    with collect_messages(broker, topic, client_id="outage-sub", clean_session=False) as sub:
        pub = publishers(cfg, state_dir=tmp_path / "state")
        assert pub.wait_connected(30)
        for n in range(20):
            pub.publish_activity(state(cfg.device_id, n))
        assert pub.flush(30)
        for n in range(20, 30):  # some of these are in flight when the broker dies
            pub.publish_activity(state(cfg.device_id, n))
        broker.stop()
        assert wait_until(lambda: not pub.connected)
        for n in range(30, total):
            pub.publish_activity(state(cfg.device_id, n))  # must not raise while the broker is down
        assert pub.stats.queued >= total - 30
        assert not pub.flush(0.2)
        broker.start()
        assert pub.flush(30), f"outbox not drained after restart: {pub.stats}"
        assert pub.stats.reconnects >= 1
        assert sub.wait_for(lambda ms: total in seqs(ms, topic), timeout_s=30)
        received = seqs(sub.messages, topic)
    assert dedupe_by_seq(received) == list(range(1, total + 1)), received
    assert pub.stats.queued == 0 and pub.stats.dropped == 0


def test_publisher_started_while_broker_down_delivers_later(
    mosquitto_broker_factory: Callable[..., MosquittoBroker],
    publishers: Callable[..., MqttPublisher],
) -> None:
    broker = mosquitto_broker_factory(persistence=True)
    cfg = make_config(broker, "late")
    topic = cfg.topic("activity")
    with collect_messages(broker, topic, client_id="late-sub", clean_session=False) as sub:
        broker.stop()
        pub = publishers(cfg)  # must not raise although nothing listens
        for n in range(5):
            pub.publish_activity(state(cfg.device_id, n))
        time.sleep(0.2)
        assert not pub.connected
        assert pub.stats.queued == 5 and pub.stats.acked == 0
        broker.start()
        assert pub.flush(30), f"not delivered after the broker came up: {pub.stats}"
        assert sub.wait_for(lambda ms: 5 in seqs(ms, topic), timeout_s=30)
        received = seqs(sub.messages, topic)
    assert dedupe_by_seq(received) == [1, 2, 3, 4, 5]
    assert pub.stats.reconnects == 0  # the first successful connect is not a reconnect


def test_unsent_messages_survive_a_publisher_restart(
    mosquitto_broker_factory: Callable[..., MosquittoBroker],
    publishers: Callable[..., MqttPublisher],
    tmp_path: Path,
) -> None:
    broker = mosquitto_broker_factory(persistence=True)
    cfg = make_config(broker, "restart", outbox_path=tmp_path / "outbox.sqlite3")
    topic = cfg.topic("activity")
    with collect_messages(broker, topic, client_id="restart-sub", clean_session=False) as sub:
        broker.stop()
        first = publishers(cfg)
        for n in range(4):
            first.publish_activity(state(cfg.device_id, n))
        first.close(timeout_s=0.2)  # broker down: the messages stay on disk
        assert first.stats.queued == 4
        broker.start()
        second = publishers(cfg)
        assert second.publish_activity(state(cfg.device_id, 4)) == 5, "seq continues across restarts"
        assert second.flush(30)
        assert sub.wait_for(lambda ms: 5 in seqs(ms, topic), timeout_s=30)
        received = seqs(sub.messages, topic)
    assert dedupe_by_seq(received) == [1, 2, 3, 4, 5]


def test_full_outbox_drops_oldest_during_outage(
    mosquitto_broker_factory: Callable[..., MosquittoBroker],
    publishers: Callable[..., MqttPublisher],
) -> None:
    broker = mosquitto_broker_factory(persistence=True)
    cfg = make_config(broker, "full", outbox_max_messages=5)
    topic = cfg.topic("activity")
    with collect_messages(broker, topic, client_id="full-sub", clean_session=False) as sub:
        broker.stop()
        pub = publishers(cfg)
        for n in range(12):
            pub.publish_activity(state("full", n))
        assert (pub.stats.queued, pub.stats.dropped, pub.stats.published) == (5, 7, 12)
        broker.start()
        assert pub.flush(30)
        assert sub.wait_for(lambda ms: 12 in seqs(ms, topic), timeout_s=30)
        received = seqs(sub.messages, topic)
    assert dedupe_by_seq(received) == [8, 9, 10, 11, 12], "the newest messages are kept"
    assert pub.stats.acked == 5


# -- construction errors -----------------------------------------------------------------------


def test_missing_paho_raises_backend_not_available(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "paho.mqtt.client", None)
    with pytest.raises(BackendNotAvailable, match=r'pip install "har-edge\[device\]"') as info:
        MqttPublisher(MqttConfig())
    assert isinstance(info.value, ImportError)


def test_unloadable_tls_files_raise_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "ca.pem"
    with pytest.raises(ConfigError, match="ca.pem"):
        MqttPublisher(MqttConfig(tls=True, tls_ca_path=missing, discovery=False))


def test_bad_labels_and_topics_raise_config_error(
    mosquitto_broker: MosquittoBroker, publishers: Callable[..., MqttPublisher]
) -> None:
    cfg = make_config(mosquitto_broker, "bad", discovery=True)
    with pytest.raises(ConfigError, match="appears twice"):
        MqttPublisher(cfg, labels=["a", "a"])
    pub = publishers(cfg, labels=["a"])
    before = pub.stats.published  # the retained-activity clear of a discovery publisher
    with pytest.raises(ConfigError, match="'har/\\+/x'"):
        pub.publish("har/+/x", b"x")
    with pytest.raises(ConfigError, match="qos=7"):
        pub.publish("har/x", b"x", qos=7)
    assert pub.stats.published == before == 1


@pytest.mark.parametrize("public_api", [True, False], ids=["paho>=2.2", "paho<2.2"])
def test_paho_copies_are_dropped_with_and_without_public_api(
    monkeypatch: pytest.MonkeyPatch, public_api: bool
) -> None:
    import paho.mqtt.client as mqtt

    from har_edge.transport.paho_client import drop_paho_copies

    if not public_api:
        monkeypatch.delattr(mqtt.Client, "drop_out_messages", raising=False)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    for n in range(3):  # not connected: paho keeps QoS 1 messages to re-send them later
        assert client.publish("t", b"%d" % n, qos=1).rc == mqtt.MQTT_ERR_NO_CONN
    assert drop_paho_copies(client) == 3
    assert drop_paho_copies(client) == 0
