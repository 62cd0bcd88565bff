"""Every command-line option says what it does and what its default is; progress output; the export table."""

from __future__ import annotations

import argparse
import io

import pytest

from har_edge.cli import build_parser


def _subparsers(parser: argparse.ArgumentParser, prefix: str = "") -> list[tuple[str, argparse.ArgumentParser]]:
    out = [(prefix or parser.prog, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out += _subparsers(sub, f"{prefix} {name}".strip())
    return out


def test_every_option_has_help_and_names_its_default() -> None:
    missing, no_default = [], []
    for name, parser in _subparsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)):
                continue
            where = f"{name} {'/'.join(action.option_strings) or action.dest}"
            if not action.help:
                missing.append(where)
            elif action.option_strings and not action.required and "default" not in action.help:
                no_default.append(where)
    assert not missing, f"options without help: {missing}"
    assert not no_default, f"optional options whose help does not state the default: {no_default}"
    names = [n for n, _ in _subparsers(build_parser())]
    assert {"train", "evaluate", "export", "data prepare", "run", "doctor"} <= set(names)


@pytest.mark.parametrize(("argv", "message"), [
    (["export", "RUN", "--out", "o", "--arena-margin", "-0.1"], "outside 0..10"),
    (["export", "RUN", "--out", "o", "--arena-margin", "lots"], "is not a number"),
    (["data", "prepare", "mnist", "--from", "x", "--out", "y"], "invalid choice: 'mnist'"),
])
def test_bad_arguments_are_reported_by_the_parser(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(argv)
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_arena_margin_reaches_the_export() -> None:
    args = build_parser().parse_args(["export", "RUN", "--out", "o", "--target", "mcu", "--arena-margin", "0.5"])
    assert args.arena_margin == 0.5
    assert build_parser().parse_args(["export", "RUN", "--out", "o"]).arena_margin == 0.25


def test_step_progress_without_a_terminal_prints_one_line_per_step() -> None:
    from har_edge.cli.progress import StepProgress

    out = io.StringIO()
    with StepProgress("export", stream=out) as progress:
        for i, what in enumerate(["converting", "evaluating"]):
            progress(i, 2, what)
        progress(2, 2, "done")
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("export [1/2] converting") and lines[1].startswith("export [2/2] evaluating")
    assert lines[2].startswith("export done in")


def test_step_progress_draws_a_bar_on_a_terminal() -> None:
    from har_edge.cli.progress import StepProgress
    from tests.fixtures.requirements import import_or_skip

    import_or_skip("tqdm")
    out = io.StringIO()
    with StepProgress("export", stream=out, bar=True) as progress:
        progress(0, 3, "converting")
        progress(3, 3, "done")
    assert "export: 3/3" in out.getvalue()


# -- the export report: signed, rounded, expected conditions as information --------------------


def _report() -> dict[str, object]:
    mode = {"test_accuracy": 0.9576, "test_macro_f1": 0.9570, "size_bytes": 25520, "max_abs_diff_vs_keras": 0.62,
            "argmax_agreement": 0.984, "latency_ms_per_window": 0.92, "ops": ["UNIDIRECTIONAL_SEQUENCE_LSTM"]}
    return {
        "keras": {"test_accuracy": 0.9586, "test_macro_f1": 0.9580},
        "modes": {
            "float16": {**mode, "test_accuracy": 0.9586, "accuracy_delta_pp": 0.0,
                        "interpreters": {"litert": "ok", "tflm": "fails: har_edge.errors.BundleError: model: TFLM failed to "
                                         "allocate tensors", "tflite-runtime": "not installed"}},
            "int8": {**mode, "accuracy_delta_pp": -0.1, "interpreters": {"litert": "ok", "tflm": "ok",
                                                                         "tensorflow": "fails: RuntimeError: boom"}},
        },
        "n_test_windows": 2996, "test_subjects": [2, 4],
        "mcu": {"arena_bytes": 12640, "arena_bytes_measured": 10112, "arena_margin": 0.25,
                "tflm": {"accuracy": 0.8823529411764706, "max_abs_diff_steps": 10, "frac_within_1_step": 0.98961,
                         "argmax_agreement": 0.99933}},
    }


def test_export_report_signs_drops_negative_and_rounds() -> None:
    from har_edge.export.report import format_report

    text = format_report(_report())
    int8 = next(line for line in text.splitlines() if line.startswith("int8 "))
    assert " -0.10 " in int8 and "+0.10" not in text
    assert "TFLM accuracy 0.882," in text and "0.8823529411764706" not in text
    assert "measured 10112 B + 25 % margin" in text and "98.96 % within 1" in text
    assert "float16 in tflm: does not run, as expected (TFLite Micro runs float32 and full-int8 models only)" in text
    assert "float16 in tflite-runtime: not installed here" in text
    assert "int8 in tensorflow: FAILS: boom" in text  # the unexpected stays loud
