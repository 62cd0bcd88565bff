"""The streaming model's pieces that need no TensorFlow: config checks, label mapping, context and step arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

from har_edge.config import ModelConfig, StreamingConfig, run_config_from_dict
from har_edge.data.recording import UNLABELLED
from har_edge.errors import ConfigError
from har_edge.models.stream_model import _class_labels, context_samples, step_targets, stream_label_names, total_pool

U = UNLABELLED


def _cfg(**streaming: object) -> dict:
    return {"data": {"dataset": "hapt_raw"}, "preprocessing": {}, "model": {"conv_filters": [8], "conv_kernel": 5, "units": [8]},
            "streaming": streaming}


def test_streaming_config_checks() -> None:
    assert run_config_from_dict(_cfg(hop_samples=16)).streaming == StreamingConfig(hop_samples=16)
    for bad, match in (({"hop_samples": 15}, "multiple of the pooling"), ({"sequence_samples": 33}, "multiple"),
                       ({"transition_classes": "some"}, "transition_classes"), ({"warmup_samples": 4096}, "warmup")):
        with pytest.raises(ConfigError, match=match):
            run_config_from_dict(_cfg(**bad))
    with pytest.raises(ConfigError, match="divisible by conv_pool"):
        run_config_from_dict({**_cfg(), "model": {"conv_filters": [8], "conv_kernel": 4, "units": [8]}})
    with pytest.raises(ConfigError, match="one LSTM layer"):
        run_config_from_dict({**_cfg(), "model": {"conv_filters": [8], "units": [8, 8]}})
    with pytest.raises(ConfigError, match="whole labelled recordings"):
        run_config_from_dict({**_cfg(), "data": {"dataset": "uci_har"}})
    assert run_config_from_dict({**_cfg(), "smoothing": {"method": "hmm"}}).smoothing == {"method": "hmm"}


def test_context_pool_and_step_targets() -> None:
    m = ModelConfig(conv_filters=(8, 8), conv_kernel=5, conv_pool=2)
    assert (total_pool(m), context_samples(m)) == (4, 4 + 4 * 2)  # the second conv reads 4 pooled steps = 8 samples
    assert (total_pool(ModelConfig(conv_filters=())), context_samples(ModelConfig(conv_filters=()))) == (1, 0)
    assert step_targets(np.array([0, 1, 2, 3, 4, 5, 6]), 2).tolist() == [1, 3, 5]  # each step: its last sample's label


def test_transition_labels() -> None:
    hapt = np.array([0, 5, 6, 11, U])
    assert _class_labels(hapt, "one").tolist() == [0, 5, 6, 6, U]
    assert _class_labels(hapt, "each").tolist() == [0, 5, 6, 11, U]
    assert _class_labels(hapt, "none").tolist() == [0, 5, U, U, U]
    names = tuple(f"A{i}" for i in range(6)) + ("STAND_TO_SIT", "SIT_TO_STAND")
    assert stream_label_names(StreamingConfig(), names)[-1] == "TRANSITION"
    assert stream_label_names(StreamingConfig(transition_classes="each"), names)[-2:] == ("STAND_TO_SIT", "SIT_TO_STAND")
    assert len(stream_label_names(StreamingConfig(transition_classes="none"), names)) == 6
