"""The streaming model (carried LSTM state, one hop per invoke) and the runtime pieces for what the user sees:
the HMM smoother, uncertain classes, the hop setting, and the bundle fields."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from har_edge.errors import BundleError, ConfigError
from har_edge.inference.bundle import load_bundle
from har_edge.inference.classifier import Classifier
from har_edge.runtime.decoding import HmmSmoother, make_smoother
from har_edge.runtime.samples import SampleChunk
from har_edge.runtime.smoothing import UNCERTAIN, SmoothingConfig
from har_edge.runtime.stream import StreamClassifier

RAW = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
UNITS = ("g", "g", "g", "rad/s", "rad/s", "rad/s")


def _feed(stream: StreamClassifier, rec, size: int = 53) -> list:
    t = np.arange(rec.n_samples) / rec.sample_rate_hz
    x = rec.select_channels(RAW).signals.astype(np.float64)
    return [r for i in range(0, rec.n_samples, size) for r in stream.feed(SampleChunk(t[i : i + size], x[i : i + size], RAW, UNITS))]


# --------------------------------------------------------------------------- TF-free


def test_hmm_smoother_by_hand() -> None:
    labels = ("a", "b")
    sm = HmmSmoother(labels, SmoothingConfig(method="hmm", switch_probability=0.2))
    # A = [[0.9, 0.1], [0.1, 0.9]] (stay 1 - s + s/k); the first belief is the evidence itself
    act, conf, b = sm.update(np.array([0.8, 0.2], np.float32))
    assert act == "a" and conf == pytest.approx(0.8)
    # prior = A^T [0.8, 0.2] = [0.74, 0.26]; evidence [0.3, 0.7] -> [0.222, 0.182] / 0.404
    act, conf, b = sm.update(np.array([0.3, 0.7], np.float32))
    assert act == "a" and conf == pytest.approx(0.222 / 0.404, rel=1e-4)  # one stray window does not switch
    act, conf, _ = sm.update(np.array([0.1, 0.9], np.float32))
    assert act == "b"
    sm.reset()
    assert sm.update(np.array([0.1, 0.9], np.float32))[0] == "b"
    floor = HmmSmoother(labels, SmoothingConfig(method="hmm", switch_probability=0.5, confidence_floor=0.7))
    assert floor.update(np.array([0.6, 0.4], np.float32))[0] == UNCERTAIN
    # evidence weight 0.5: sqrt of the evidence, renormalised
    half = HmmSmoother(labels, SmoothingConfig(method="hmm", evidence_weight=0.5))
    assert half.update(np.array([0.8, 0.2], np.float32))[1] == pytest.approx(np.sqrt(0.8) / (np.sqrt(0.8) + np.sqrt(0.2)), rel=1e-5)
    with pytest.raises(ConfigError):
        SmoothingConfig(method="hmm", switch_probability=0.0)


def _run_hmm(labels: tuple[str, ...], hubs: tuple[str, ...], seq: list[tuple[str, float, int]], structure: str = "postural") -> list[str]:
    """Feed ``(class, probability, times)``: that class gets the probability, the rest share what is left."""
    sm = make_smoother(labels, SmoothingConfig(method="hmm", structure=structure, switch_probability=0.3),  # type: ignore[arg-type]
                       uncertain_labels=hubs)
    out = []
    for name, prob, times in seq:
        given = dict(zip(name.split("+"), [prob, *[(1 - prob) / 2] * (name.count("+"))]))  # "A+B": B gets half the rest
        rest = (1 - sum(given.values())) / (len(labels) - len(given))
        p = np.array([given.get(lab, rest) for lab in labels], np.float32)
        out += [sm.update(p)[0] for _ in range(times)]
    return out


def test_postural_hmm_follows_what_a_body_can_do() -> None:
    from har_edge.runtime.decoding import hmm_model

    labels = ("WALKING", "SITTING", "STANDING", "LAYING", "TRANSITION")
    hubs = ("TRANSITION",)
    m = hmm_model(labels, SmoothingConfig(method="hmm", structure="postural", switch_probability=0.3), hubs)
    np.testing.assert_allclose(m.transitions.sum(axis=1), 1.0)
    np.testing.assert_allclose(np.bincount(m.state_class, weights=m.initial), 1 / len(labels))
    # at the start of a stream the posture is a guess: it follows the evidence freely
    assert _run_hmm(labels, hubs, [("SITTING", 0.6, 5), ("STANDING", 0.6, 5)])[-1] == "STANDING"
    # seen sitting down, the posture holds longer against evidence for standing than the free HMM holds it
    # (the way out goes through a transition) ...
    seen = [("STANDING", 0.9, 5), ("TRANSITION", 0.9, 5), ("SITTING", 0.9, 5)]
    held = {st: _run_hmm(labels, hubs, [*seen, ("STANDING", 0.4, 30)], st)[15:].index("STANDING") for st in ("free", "postural")}
    assert held["postural"] > held["free"] + 1, held
    # ... and a transition out of sitting ends in another posture, even when the evidence leans to sitting
    assert _run_hmm(labels, hubs, [*seen, ("TRANSITION", 0.9, 5), ("SITTING", 0.3, 1), ("STANDING", 0.28, 10)])[-1] == "STANDING"
    # walking may stop into standing, but not into sitting without a transition
    walk = [("WALKING", 0.9, 10)]
    assert _run_hmm(labels, hubs, [*walk, ("STANDING", 0.8, 5)])[-1] == "STANDING"
    first = {st: _run_hmm(labels, hubs, [*walk, ("SITTING", 0.5, 20)], st)[10:].index("SITTING") for st in ("free", "postural")}
    assert first["postural"] > first["free"], first
    # directed transition classes: STAND_TO_SIT ends in sitting whatever the posture evidence says
    named = ("WALKING", "SITTING", "STANDING", "STAND_TO_SIT", "SIT_TO_STAND")
    seq = [("STANDING", 0.9, 5), ("STAND_TO_SIT", 0.9, 5), ("STANDING+SITTING", 0.55, 8)]  # standing 0.55, sitting 0.225
    assert _run_hmm(named, named[3:], seq)[-5:] == ["SITTING"] * 5
    assert _run_hmm(named, named[3:], seq, "free")[-1] == "STANDING"
    with pytest.raises(ConfigError, match="transition class"):
        make_smoother(labels, SmoothingConfig(method="hmm", structure="postural"))


def test_leaving_a_transition_class_has_its_own_probability() -> None:
    """``leave_transition_probability``: a transition (seconds) is left faster than an activity (minutes), so a
    slow filter still shows the posture reached soon after the transition."""
    from har_edge.runtime.decoding import hmm_model

    labels = ("WALKING", "SITTING", "STANDING", "TRANSITION")
    hubs = ("TRANSITION",)
    for structure in ("free", "postural"):
        slow = SmoothingConfig(method="hmm", structure=structure, switch_probability=0.01, evidence_weight=0.25)  # type: ignore[arg-type]
        fast = replace(slow, leave_transition_probability=0.6)
        a, b = hmm_model(labels, slow, hubs), hmm_model(labels, fast, hubs)
        hub_rows = b.state_class == 3
        np.testing.assert_allclose(b.transitions.sum(axis=1), 1.0)
        np.testing.assert_allclose(np.diag(b.transitions)[hub_rows], 0.4)
        np.testing.assert_array_equal(b.transitions[~hub_rows], a.transitions[~hub_rows])  # other states unchanged
        moves = a.transitions[hub_rows] - np.diag(np.diag(a.transitions))[hub_rows]
        np.testing.assert_allclose(b.transitions[hub_rows] - np.diag(np.diag(b.transitions))[hub_rows], moves * 0.6 / moves.sum(axis=1, keepdims=True))
        # standing, a transition, then sitting: the posture reached shows sooner
        probs = {2: [0.05, 0.05, 0.85, 0.05], 3: [0.05, 0.05, 0.05, 0.85], 1: [0.05, 0.85, 0.05, 0.05]}
        shown = {}
        for name, cfg in (("slow", slow), ("fast", fast)):
            sm = make_smoother(labels, cfg, uncertain_labels=hubs)
            out = [sm.update(np.array(probs[c], np.float32))[0] for c in [2] * 20 + [3] * 10 + [1] * 30]
            shown[name] = out[30:].index("SITTING")
        assert shown["fast"] < shown["slow"], shown
    # without a transition class among the bundle's uncertain labels the setting changes nothing
    free = replace(fast, structure="free")
    assert hmm_model(labels, free).transitions.tolist() == hmm_model(labels, replace(free, leave_transition_probability=0.0)).transitions.tolist()
    with pytest.raises(ConfigError, match="leave_transition_probability=1.5"):
        SmoothingConfig(method="hmm", leave_transition_probability=1.5)


def test_an_int8_outputs_zero_is_floored_at_half_its_quantisation_step() -> None:
    """A quantised probability of 0 stands for anything below half a step: flooring it at 1e-6 instead made int8
    evidence far more decisive than float32's (1.74x the label changes against 1.44x on the test subjects)."""
    from har_edge.inference.bundle import output_step
    from har_edge.runtime.decoding import evidence_floor

    assert output_step({"output": {"dtype": "int8", "scale": 1 / 256, "zero_point": -128}}) == 1 / 256
    assert output_step({"output": {"dtype": "float32", "scale": 0.0, "zero_point": 0}}) == 0.0
    assert evidence_floor(1 / 256) == 1 / 512 and evidence_floor(0.0) == 1e-6
    labels = ("a", "b")
    cfg = SmoothingConfig(method="hmm", switch_probability=0.2, evidence_weight=0.5)
    for step, floor in ((0.0, 1e-6), (1 / 256, 1 / 512)):
        sm = make_smoother(labels, cfg, output_step=step)
        conf = sm.update(np.array([1.0, 0.0], np.float32))[1]
        assert conf == pytest.approx(1 / (1 + np.sqrt(floor)), rel=1e-6)


def test_uncertain_labels_show_as_uncertain() -> None:
    labels = ("SITTING", "STANDING", "TRANSITION")
    sm = make_smoother(labels, SmoothingConfig(method="none"), uncertain_labels=("TRANSITION",))
    assert [sm.update(np.array(p, np.float32))[0] for p in ([0.1, 0.2, 0.7], [0.6, 0.3, 0.1])] == [UNCERTAIN, "SITTING"]
    assert make_smoother(labels, SmoothingConfig(method="hmm")).update(np.array([0.1, 0.2, 0.7], np.float32))[0] == "TRANSITION"


def test_hop_setting_and_bundle_fields(float32_bundle: Path, heldout_recording, tmp_path: Path) -> None:
    rec = heldout_recording
    short = type(rec)(rec.signals[:3000], rec.channel_names, rec.units, 50.0)
    with Classifier.from_bundle(float32_bundle) as clf:
        assert not clf.carries_state and clf.bundle.uncertain_labels == ()  # bundles without the fields: as before
        window, hop = clf.window_samples, clf.bundle.hop_samples
        every = _feed(StreamClassifier(clf, smoothing=SmoothingConfig(method="none"), hop_samples=8), short)
        base = _feed(StreamClassifier(clf, smoothing=SmoothingConfig(method="none")), short)
        assert len(every) == (3000 - window) // 8 + 1 and len(base) == (3000 - window) // hop + 1
        # the hop changes when windows are cut, not what a window gives (hop is a multiple of 8)
        step = hop // 8
        np.testing.assert_allclose([r.raw.probabilities for r in every[::step]], [r.raw.probabilities for r in base], atol=1e-6)
        with pytest.raises(ConfigError, match="hop_samples"):
            StreamClassifier(clf, hop_samples=0)
    from har_edge.inference import bundle as bundle_module

    good = load_bundle(float32_bundle)
    for bad, match in (({"recurrent_state": "sometimes"}, "recurrent_state"), ({"uncertain_labels": ["nope"]}, "uncertain_labels"),
                       ({"uncertain_labels": list(good.labels)}, "uncertain_labels"),
                       ({"recurrent_state": "carried", "hop_samples": good.window_samples + 1}, "hop_samples <= window")):
        with pytest.raises(BundleError, match=match):
            bundle_module._check_consistency(replace(good, manifest=dict(good.manifest, **bad)), tmp_path)
    carried = replace(good, manifest=dict(good.manifest, recurrent_state="carried", uncertain_labels=[good.labels[0]]))
    bundle_module._check_consistency(carried, tmp_path)
    assert carried.carries_state and carried.uncertain_labels == (good.labels[0],)


# --------------------------------------------------------------------------- the tiny streaming model (TensorFlow)


@pytest.mark.tf
def test_stream_equals_keras_on_the_whole_recording(tiny_stream_run: Path, tiny_stream_exports: Path, heldout_recording) -> None:
    """The device (float32 bundle, carried state, one hop per invoke, any chunking) computes what the training
    network computes on the whole recording at once: no train/serve skew for the streaming model."""
    from har_edge.data.preprocessing import preprocess_recording
    from har_edge.models.run_dir import load_run_info
    from har_edge.models.stream_model import predict_steps, total_pool
    from har_edge.models.training import load_keras_model

    info = load_run_info(tiny_stream_run)
    rec = heldout_recording.select_channels(RAW)
    feats = preprocess_recording(rec, info.preprocessing).signals  # type: ignore[arg-type]
    keras = predict_steps(load_keras_model(tiny_stream_run), info.normalisation.transform(feats))
    with Classifier.from_bundle(tiny_stream_exports / "float32") as clf:
        b = clf.bundle
        assert clf.carries_state and b.uncertain_labels == ("TRANSITION",) and b.labels[-1] == "TRANSITION"
        assert b.window_samples == b.hop_samples + 4  # conv kernel 5: 4 samples of context
        out = _feed(StreamClassifier(clf, smoothing=SmoothingConfig(method="none")), rec, size=37)
        again = _feed(StreamClassifier(clf, smoothing=SmoothingConfig(method="none")), rec, size=500)  # a new stream resets
    pool = total_pool(info.config.model)
    steps = (np.arange(len(out)) + 1) * b.hop_samples // pool - 1
    got = np.stack([r.raw.probabilities for r in out])
    # the stream starts with the context set to the normalisation mean (the network's causal zero padding), so
    # the first result comes after one hop and every result is the network's output at the step it ends on
    assert len(out) == rec.n_samples // b.hop_samples and out[0].timestamp == pytest.approx((b.hop_samples - 1) / 50)
    np.testing.assert_allclose(got, keras[steps], atol=2e-5)
    np.testing.assert_array_equal(got, np.stack([r.raw.probabilities for r in again]))


@pytest.mark.tf
def test_streaming_bundle_state_rules(tiny_stream_exports: Path) -> None:
    rng = np.random.default_rng(0)
    with Classifier.from_bundle(tiny_stream_exports / "float32") as clf:
        x = rng.standard_normal((clf.window_samples, clf.n_channels)).astype(np.float32)
        a = clf.probabilities_normalised(x)
        b = clf.probabilities_normalised(x)
        assert not np.array_equal(a, b)  # the state ran on
        clf.reset_state()
        np.testing.assert_array_equal(a, clf.probabilities_normalised(x))
        with pytest.raises(ConfigError, match="fixed"):
            StreamClassifier(clf, hop_samples=clf.bundle.hop_samples * 2)
    with pytest.raises(BundleError, match="numpy"):
        Classifier.from_bundle(tiny_stream_exports / "float32", backend="numpy")


@pytest.mark.tf
def test_streaming_int8_mcu_export_runs_under_tflm_with_carried_state(tiny_stream_exports: Path) -> None:
    report = json.loads((tiny_stream_exports / "int8" / "report.json").read_text())
    mcu = report["mcu"]
    tflm = mcu["tflm"]
    assert tflm["n"] > 100 and tflm["accuracy"] is not None
    assert "streaming" in tflm["diagnosis_unavailable"]
    # TFLM and LiteRT's reference kernels run the same stream of windows without resets in between
    assert tflm["vs_litert_reference"]["argmax_agreement"] > 0.95
    settings = (tiny_stream_exports / "int8" / "mcu" / "har_model_settings.h").read_text()
    assert "kHarCarryState = true" in settings and "kHarShowAsUncertain[kHarNumClasses] = {false, false, false, false, false, false, true}" in settings


@pytest.mark.tf
def test_a_gap_restarts_a_streaming_model_like_a_new_stream(tiny_stream_exports: Path, heldout_recording) -> None:
    """After a confirmed gap the LSTM state is zeroed and the context re-seeded: the results after the gap are
    those of a fresh stream fed only what follows it."""
    rec = heldout_recording.select_channels(RAW)
    n = 1600
    t = np.arange(n) / 50.0
    t[800:] += 30.0  # a 30 s hole
    x = rec.signals[:n].astype(np.float64)
    with Classifier.from_bundle(tiny_stream_exports / "float32") as clf:
        s = StreamClassifier(clf, smoothing=SmoothingConfig(method="none"))
        out = [r for i in range(0, n, 64) for r in s.feed(SampleChunk(t[i : i + 64], x[i : i + 64], RAW, UNITS))]
        assert s.stats.gaps == 1
        fresh = StreamClassifier(clf, smoothing=SmoothingConfig(method="none"))
        after = fresh.feed(SampleChunk(t[800:], x[800:], RAW, UNITS))
    resumed = [r for r in out if r.timestamp > t[799]]
    assert len(resumed) == len(after) == 800 // clf.bundle.hop_samples
    np.testing.assert_allclose([r.raw.probabilities for r in resumed], [r.raw.probabilities for r in after], atol=1e-6)
