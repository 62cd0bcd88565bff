"""The rule that picks the fine-tuning recipe on the tuning people (benchmarks/personalisation_tuning.py):
stage 2 combines only the settings that beat the base recipe, and the choice prefers recipes that improve
every tuning person over a higher mean."""

from __future__ import annotations

from typing import Any

from benchmarks.personalisation_tuning import BASE, choose, choose_among, merged, stage_2, stage_3

STAGE_1 = {"base": ("", {}), "keep 0": ("keep", {"train": {"keep_source": 0.0}}),
           "keep 0.25": ("keep", {"train": {"keep_source": 0.25}}), "lr hi": ("lr", {"train": {"learning_rate": 0.01}}),
           "hop 2": ("hop", {"data": {"train_hop_samples": 2}}), "freeze": ("freeze", {"train": {"freeze": ["conv0"]}})}


def test_stage_2_combines_the_best_alternative_of_each_knob_that_beat_base() -> None:
    scores = {"base": 0.80, "keep 0": 0.85, "keep 0.25": 0.84, "lr hi": 0.82, "hop 2": 0.81, "freeze": 0.70}
    combos = stage_2(scores, STAGE_1)
    assert set(combos) == {"keep 0 + lr hi + hop 2", "lr hi + hop 2", "keep 0 + hop 2", "keep 0 + lr hi"}
    full = combos["keep 0 + lr hi + hop 2"]
    assert full["train"]["keep_source"] == 0.0 and full["train"]["learning_rate"] == 0.01
    assert full["data"]["train_hop_samples"] == 2 and full["train"]["freeze"] == BASE["train"]["freeze"]


def test_stage_2_has_nothing_to_combine_with_one_winner() -> None:
    assert stage_2({"base": 0.80, "keep 0": 0.85, "keep 0.25": 0.7, "lr hi": 0.7, "hop 2": 0.7, "freeze": 0.7}, STAGE_1) == {}


def test_merged_leaves_base_unchanged() -> None:
    merged({"train": {"epochs": 99}})
    assert BASE["train"]["epochs"] != 99


def _results(recipes: dict[str, dict[str, float]]) -> dict[str, Any]:
    return {"generic_per_person": {"1": 0.5, "2": 0.9},
            "recipes": {n: {"per_person": pp, "mean": sum(pp.values()) / 2} for n, pp in recipes.items()}}


def test_choose_prefers_improving_everyone_over_a_higher_mean() -> None:
    res = _results({"high mean": {"1": 0.99, "2": 0.85}, "everyone": {"1": 0.7, "2": 0.91}, "weak": {"1": 0.6, "2": 0.92}})
    assert choose(res) == "everyone"


def test_choose_falls_back_to_the_highest_mean_when_no_recipe_improves_everyone() -> None:
    res = _results({"a": {"1": 0.99, "2": 0.85}, "b": {"1": 0.7, "2": 0.8}})
    assert choose(res) == "a"


def test_the_ablation_takes_away_the_recipes_weight_averaging() -> None:
    from benchmarks.personalisation import weight_averaging_ablation

    assert weight_averaging_ablation({"keep_source": 0.5, "average_weights": 0.95}) == {"keep_source": 0.0}
    assert weight_averaging_ablation({"keep_source": 0.0, "average_weights": 0.95}) == {"average_weights": 0.0}
    assert weight_averaging_ablation({"epochs": 8}) == {"keep_source": 0.5}


def test_stage_2_with_four_winners_also_tries_every_pair() -> None:
    stage_1 = dict(STAGE_1, epochs=("epochs", {"train": {"epochs": 30}}))
    scores = {"base": 0.80, "keep 0": 0.85, "keep 0.25": 0.84, "lr hi": 0.82, "hop 2": 0.81, "freeze": 0.70, "epochs": 0.83}
    combos = stage_2(scores, stage_1)
    assert len(combos) == 1 + 4 + 6  # all, all but one, every pair
    pair = combos["keep 0 + lr hi"]
    assert pair["train"]["keep_source"] == 0.0 and pair["train"]["epochs"] == BASE["train"]["epochs"]


def test_stage_3_changes_one_setting_of_the_choice_and_skips_what_was_scored() -> None:
    chosen = merged(STAGE_1["keep 0"][1], STAGE_1["lr hi"][1])
    recipes = {"keep 0 + lr hi": {"recipe": chosen}, "keep 0": {"recipe": merged(STAGE_1["keep 0"][1])}}
    out = stage_3("keep 0 + lr hi", recipes, STAGE_1)
    assert set(out) == {"keep 0 + lr hi | keep 0.25", "keep 0 + lr hi | hop 2", "keep 0 + lr hi | freeze"}
    swapped = out["keep 0 + lr hi | keep 0.25"]["train"]
    assert swapped["keep_source"] == 0.25 and swapped["learning_rate"] == 0.01  # the alternative replaces, the rest stays


def test_a_person_config_that_changed_marks_its_run_stale(tmp_path: Any) -> None:
    """--reuse must not keep a run trained from an older recipe (personalisation.py retrains it)."""
    from benchmarks.personalisation import person_config

    folder, out = tmp_path / "me", tmp_path / "configs" / "me.toml"
    assert person_config("fine_tune.toml", 1, folder, out, tmp_path / "generic") == (out, False)  # new: nothing stale
    assert person_config("fine_tune.toml", 1, folder, out, tmp_path / "generic") == (out, False)  # same recipe
    assert person_config("fine_tune.toml", 1, folder, out, tmp_path / "generic", {"epochs": 3}) == (out, True)
    assert "epochs = 3" in out.read_text()


def test_a_window_is_judged_against_its_own_generic_model() -> None:
    # window 100 has the higher mean but does not improve person 2 over *its* generic model (0.93)
    windows = {"40": {"per_person": {"1": 0.9, "2": 0.90}, "mean": 0.9},
               "80": {"per_person": {"1": 0.93, "2": 0.93}, "mean": 0.93},
               "100": {"per_person": {"1": 0.97, "2": 0.92}, "mean": 0.945}}
    generic = {"40": {"1": 0.6, "2": 0.8}, "80": {"1": 0.7, "2": 0.9}, "100": {"1": 0.7, "2": 0.93}}
    assert choose_among(windows, generic) == "80"
    generic["80"]["1"] = 0.95
    assert choose_among(windows, generic) == "40"


def test_the_window_and_seed_overrides_reach_the_person_config(tmp_path: Any) -> None:
    from benchmarks.personalisation import person_config
    from har_edge.config import read_toml

    out = tmp_path / "scratch.toml"
    person_config("recordings_scratch.toml", 1, tmp_path / "me", out, None, {"seed": 0}, {"window_samples": 80})
    d = read_toml(out)
    assert d["data"]["window_samples"] == 80 and d["train"]["seed"] == 0
    person_config("recordings_scratch.toml", 1, tmp_path / "me", out, None, None, None, {"units": [96]})
    assert read_toml(out)["model"]["units"] == [96]


def test_the_generic_config_takes_the_window_and_lstm_width(tmp_path: Any) -> None:
    from benchmarks.personalisation import CONFIGS, generic_config
    from har_edge.config import read_toml

    assert generic_config(tmp_path, None, None) == CONFIGS / "wisdm_watch.toml"
    d = read_toml(generic_config(tmp_path, 80, 96))
    assert d["data"]["window_samples"] == 80 and d["model"]["units"] == [96]
    assert d["model"]["conv_filters"] == read_toml(CONFIGS / "wisdm_watch.toml")["model"]["conv_filters"]
    assert read_toml(generic_config(tmp_path, None, 96))["data"]["window_samples"] == 40


def test_a_probe_of_the_generic_model_is_judged_against_its_own_generic_model(tmp_path: Any) -> None:
    """generic_stage: a variant without changes is the search's own generic model and score; entries
    keep the changes, and an earlier run's entry for the same recipe and changes is reused."""
    from benchmarks.personalisation_tuning import generic_stage

    recipe = {"train": {"epochs": 1}}
    results = {"generic_run": "g40", "generic_per_person": {"1": 0.5}, "chosen": "r",
               "recipes": {"r": {"recipe": recipe, "per_person": {"1": 0.9}, "mean": 0.9, "max_fit_seconds": 1.0}}}
    done = {"big": {"recipe": recipe, "changes": {"model": {"units": [96]}}, "generic_run": "g96",
                    "generic_per_person": {"1": 0.6}, "per_person": {"1": 0.95}, "mean": 0.95, "max_fit_seconds": 2.0}}
    out = generic_stage(recipe, {"own": ("w40", {}), "big": ("w40_units96", {"model": {"units": [96]}})}, {},
                        tmp_path, tmp_path, results, done, reuse=True)
    assert out["own"]["generic_run"] == "g40" and out["own"]["mean"] == 0.9 and out["own"]["changes"] == {}
    assert out["big"]["generic_run"] == "g96" and out["big"]["generic_mean"] == 0.6
    assert choose_among(out, {n: e["generic_per_person"] for n, e in out.items()}) == "big"


def test_the_summary_names_the_probes_and_what_the_pick_did_on_the_test_people() -> None:
    from benchmarks.summary import _probes

    probes = {"recipes": {"fine_tune.toml": {"mean": 0.914}, "fine_tune.toml | replay 600": {"mean": 0.906}},
              "generics": {"wisdm_watch.toml": {"mean": 0.914}, "units 96": {"mean": 0.925}}, "chosen_generic": "units 96"}
    units96 = {"mean": {"fine_tuned": 0.901, "generic": 0.856}, "not_improved": {"fine_tuned": ["1645"]}}
    text = _probes(probes, units96, {"mean": {"fine_tuned": 0.909}})[1]
    assert "replay 600 0.906" in text and "the rule's pick: units 96" in text
    assert "0.901 fine-tuned against 0.856 generic (48 units: 0.909), not improving 1645" in text
    assert "--lstm-units" not in _probes(probes, None, {"mean": {"fine_tuned": 0.909}})[1]
    assert _probes(None, units96, {}) == []
