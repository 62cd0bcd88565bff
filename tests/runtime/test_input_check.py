"""Input plausibility: wrong acceleration units and timestamp scales are refused (or converted), naming the fix."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from har_edge.errors import ConfigError, ImplausibleInputError
from har_edge.runtime.input_check import CheckedSource, check_gravity, check_sample_interval
from har_edge.runtime.sources import open_source

G = 9.80665


def _rest(n: int = 200, g: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.tile([0.1, -0.2, 0.97], (n, 1)) * g + rng.normal(0, 0.02 * g, (n, 3))


@pytest.mark.parametrize(("values", "declared", "likely"), [
    (_rest(g=G), "g", "m/s^2"),          # m/s² read as g: ~9.8 g
    (_rest(), "m/s^2", "g"),              # g read as m/s²: ~0.1 g
    (_rest(g=1000), "g", "mg"),           # mg read as g
])
def test_gravity_names_the_unit_the_values_are_in(values: np.ndarray, declared: str, likely: str) -> None:
    finding = check_gravity(values, declared)
    assert finding is not None and finding.what == "acc_unit" and finding.likely == likely
    assert f"--units acc={likely}" in finding.declare and "gravity alone is 1 g" in finding.message


def test_plausible_gravity_and_moving_wearer_pass() -> None:
    assert check_gravity(_rest(), "g") is None
    assert check_gravity(_rest(g=2.01), "g") is None  # jogging with a watch (WISDM 1645) reads a median 2.01 g
    assert check_gravity(_rest(g=G), "m/s^2") is None
    rng = np.random.default_rng(1)
    walking = _rest(500) + rng.normal(0, 0.4, (500, 3))  # vigorous motion still has a ~1 g median magnitude
    assert check_gravity(walking, "g") is None


def test_gravity_removed_is_not_a_unit_problem() -> None:
    finding = check_gravity(np.random.default_rng(2).normal(0, 0.01, (200, 3)), "g")
    assert finding is not None and finding.likely is None and "gravity seems to be removed" in finding.message


@pytest.mark.parametrize(("scale", "declared", "likely"), [(1e3, "s", "ms"), (1e6, "s", "us"), (1e9, "s", "ns"), (1.0, "ms", "s")])
def test_sample_interval_names_the_timestamp_unit(scale: float, declared: str, likely: str) -> None:
    t = np.arange(300) / 50.0 * scale
    finding = check_sample_interval(t, declared, 50.0)
    assert finding is not None and finding.likely == likely and f"--timestamp-unit {likely}" in finding.declare


def test_sample_interval_accepts_other_plausible_rates() -> None:
    for rate in (20.0, 50.0, 100.0, 400.0):
        assert check_sample_interval(np.arange(300) / rate, "s", 50.0) is None
    with pytest.raises(ConfigError, match="timestamp unit 'h'"):
        check_sample_interval(np.arange(10.0), "h", 50.0)


def _csv(path: Path, *, time_scale: float = 1.0, acc_scale: float = 1.0, n: int = 400) -> Path:
    rows = ["timestamp,acc_x,acc_y,acc_z"]
    for i, (x, y, z) in enumerate(_rest(n)):
        rows.append(f"{i / 50.0 * time_scale:.6f},{x * acc_scale:.6f},{y * acc_scale:.6f},{z * acc_scale:.6f}")
    path.write_text("\n".join(rows) + "\n")
    return path


def _drain(source: CheckedSource) -> tuple[np.ndarray, list[tuple[str, ...]]]:
    ts, units = [], []
    for chunk in source.chunks():
        ts.append(chunk.timestamps_s)
        units.append(chunk.units)
    return np.concatenate(ts), units


def test_milliseconds_are_refused_at_open_and_converted_on_request(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = _csv(tmp_path / "ms.csv", time_scale=1000.0)
    with pytest.raises(ImplausibleInputError, match="look like milliseconds.*--timestamp-unit ms"):
        CheckedSource(open_source(f"csv:{path}", speed="max"), expected_rate_hz=50.0)
    declared = CheckedSource(open_source(f"csv:{path}", speed="max"), expected_rate_hz=50.0, timestamp_unit="ms")
    assert declared.nominal_rate_hz == pytest.approx(50.0)
    t, _ = _drain(declared)
    np.testing.assert_allclose(np.diff(t), 0.02, rtol=1e-6)
    with caplog.at_level(logging.WARNING, logger="har_edge.runtime.input_check"):
        converted = CheckedSource(open_source(f"csv:{path}", speed="max"), expected_rate_hz=50.0, mode="convert")
    assert converted.timestamp_unit == "ms" and converted.nominal_rate_hz == pytest.approx(50.0)
    assert "timestamps read as milliseconds" in caplog.text
    np.testing.assert_allclose(_drain(converted)[0], t)


def test_live_source_timestamps_are_checked_from_the_data(tmp_path: Path) -> None:
    """Without a nominal rate (a live source), the first samples give the timestamps away."""
    import io

    lines = io.StringIO("".join(f'{{"t": {i * 20}, "acc": [0.1, -0.2, 0.97]}}\n' for i in range(300)))
    source = CheckedSource(open_source("stdin", stream=lines, channel_names=("acc_x", "acc_y", "acc_z")),
                           expected_rate_hz=50.0)
    with pytest.raises(ImplausibleInputError, match="median interval .* is 20 s .*look like milliseconds"):
        _drain(source)


def test_m_per_s2_is_refused_after_the_first_samples_and_converted_on_request(tmp_path: Path) -> None:
    path = _csv(tmp_path / "ms2.csv", acc_scale=G)
    source = CheckedSource(open_source(f"csv:{path}", speed="max"), expected_rate_hz=50.0)
    with pytest.raises(ImplausibleInputError, match=r"look like m/s\^2, not g.*--units acc=m/s\^2"):
        _drain(source)
    converted = CheckedSource(open_source(f"csv:{path}", speed="max"), expected_rate_hz=50.0, mode="convert")
    _, units = _drain(converted)
    assert set(units) == {("m/s^2",) * 3} and converted.units == ("m/s^2",) * 3
    declared = CheckedSource(open_source(f"csv:{path}", speed="max", units={"acc": "m/s^2"}), expected_rate_hz=50.0)
    assert not _drain(declared)[0].size == 0 and declared.findings == []


def test_warn_and_off_modes_pass_data_through(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = _csv(tmp_path / "ms2.csv", acc_scale=G)
    with caplog.at_level(logging.WARNING, logger="har_edge.runtime.input_check"):
        warned = CheckedSource(open_source(f"csv:{path}", speed="max"), expected_rate_hz=50.0, mode="warn")
        _, units = _drain(warned)
    assert set(units) == {("g",) * 3} and "going on unchanged" in caplog.text
    off = CheckedSource(open_source(f"csv:{path}", speed="max"), expected_rate_hz=50.0, mode="off")
    assert len(_drain(off)[0]) == 400 and off.findings == []
    with pytest.raises(ConfigError, match="input check 'maybe'"):
        CheckedSource(open_source(f"csv:{path}", speed="max"), expected_rate_hz=50.0, mode="maybe")


def test_short_stream_is_checked_too(tmp_path: Path) -> None:
    path = _csv(tmp_path / "short.csv", acc_scale=G, n=30)
    with pytest.raises(ImplausibleInputError, match="m/s"):
        _drain(CheckedSource(open_source(f"csv:{path}", speed="max"), expected_rate_hz=50.0))


# -- through the CLI ---------------------------------------------------------------------------


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from har_edge.cli import main

    rc = main(args)
    out, err = capsys.readouterr()
    return rc, out, err


def _rewrite(src: Path, dst: Path, *, time_scale: float = 1.0, acc_scale: float = 1.0, rename: dict[str, str] | None = None) -> Path:
    lines = src.read_text().splitlines()
    header = lines[0].split(",")
    out = [",".join((rename or {}).get(h, h) for h in header)]
    for line in lines[1:]:
        f = line.split(",")
        f[0] = f"{float(f[0]) * time_scale:.3f}"
        for i, h in enumerate(header):
            if h.startswith("acc_"):
                f[i] = f"{float(f[i]) * acc_scale:.6f}"
        out.append(",".join(f))
    dst.write_text("\n".join(out) + "\n")
    return dst


def test_cli_refuses_wrong_units_with_the_fix_and_runs_with_the_flags(
    float32_bundle: Path, heldout_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["run", "--bundle", str(float32_bundle), "--speed", "max"]
    rc, ref, _ = _run([*base, "--source", f"csv:{heldout_csv}"], capsys)
    assert rc == 0
    reference = [json.loads(line)["activity"] for line in ref.splitlines()]

    wrong = _rewrite(heldout_csv, tmp_path / "ms2_ms.csv", time_scale=1000.0, acc_scale=G,
                     rename={"timestamp": "time_ms", "acc_x": "ax"})
    rc, out, err = _run([*base, "--source", f"csv:{wrong}"], capsys)
    assert rc == 1 and out == "" and "missing column(s) ['timestamp', 'acc_x']" in err and "--columns timestamp=NAME" in err
    rc, out, err = _run([*base, "--source", f"csv:{wrong}", "--columns", "timestamp=time_ms,acc_x=ax"], capsys)
    assert rc == 1 and "--timestamp-unit ms" in err and "Traceback" not in err
    rc, out, err = _run([*base, "--source", f"csv:{wrong}", "--columns", "timestamp=time_ms,acc_x=ax", "--timestamp-unit", "ms"], capsys)
    assert rc == 1 and "--units acc=m/s^2" in err
    rc, out, _ = _run([*base, "--source", f"csv:{wrong}", "--columns", "timestamp=time_ms,acc_x=ax", "--timestamp-unit", "ms",
                       "--units", "acc=m/s^2"], capsys)
    assert rc == 0 and [json.loads(line)["activity"] for line in out.splitlines()] == reference
    rc, out, _ = _run([*base, "--source", f"csv:{wrong}", "--columns", "timestamp=time_ms,acc_x=ax", "--input-check", "convert"], capsys)
    assert rc == 0 and [json.loads(line)["activity"] for line in out.splitlines()] == reference


@pytest.mark.parametrize(("flags", "message"), [
    (["--speed", "fast"], "--speed: 'fast': expected a positive number"),
    (["--stats-interval", "-1"], "--stats-interval: -1 is negative"),
    (["--units", "acc=furlongs"], "unknown unit 'furlongs'"),
    (["--columns", "ax"], "'ax' lacks '='"),
    (["--timestamp-unit", "h"], "invalid choice: 'h'"),
])
def test_cli_rejects_bad_input_options_without_a_traceback(
    flags: list[str], message: str, heldout_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from har_edge.cli import main

    with pytest.raises(SystemExit) as info:
        main(["run", "--bundle", "b", "--source", f"csv:{heldout_csv}", *flags])
    err = capsys.readouterr().err
    assert info.value.code == 2 and message in err and "Traceback" not in err


def test_device_config_values_are_checked_too(float32_bundle: Path, heldout_csv: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    for body, message in (('speed = "fast"\n', "speed='fast'; expected a positive number"),
                          ("stats_interval_s = -1\n", "stats_interval_s=-1; expected seconds >= 0"),
                          ('timestamp_unit = "h"\n', "timestamp_unit='h'; expected one of s, ms, us, ns")):
        toml = tmp_path / "device.toml"
        toml.write_text(body)
        rc, _, err = _run(["run", "--config", str(toml), "--bundle", str(float32_bundle), "--source", f"csv:{heldout_csv}"], capsys)
        assert rc == 1 and message in err, err
