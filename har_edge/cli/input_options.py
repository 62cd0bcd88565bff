"""``har-edge run`` options that describe the input: ``--units``, ``--columns``, ``--timestamp-unit``, ``--input-check``.

They end up as source options (``units``, ``columns``) and as the :class:`~har_edge.runtime.input_check.CheckedSource`
settings, overriding the device TOML (``[source_options]``, ``timestamp_unit``, ``input_check``).
"""

from __future__ import annotations

import argparse
from typing import Any

from har_edge.data.units import KNOWN_UNITS, normalise_unit_name, unit_scale
from har_edge.errors import ConfigError, DataError
from har_edge.runtime.input_check import CHECK_MODES, TIMESTAMP_UNITS

__all__ = ["add_input_options", "parse_units", "parse_columns", "apply_input_options", "as_argument_type"]


def _pairs(text: str, option: str, example: str) -> list[tuple[str | None, str]]:
    out: list[tuple[str | None, str]] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, sep, value = part.partition("=")
        if sep and (not key.strip() or not value.strip()):
            raise ConfigError(f"{option} {text!r}: {part!r} is not KEY=VALUE; e.g. {option} {example}")
        out.append((key.strip(), value.strip()) if sep else (None, part))
    if not out:
        raise ConfigError(f"{option} {text!r} is empty; e.g. {option} {example}")
    return out


def parse_units(text: str) -> dict[str, str]:
    """``"acc=m/s^2,gyro=deg/s"`` (keys: ``acc``, ``gyro`` or a channel name) → a units mapping.

    A bare unit applies to the sensor whose quantity it measures: ``"m/s^2"`` → acc, ``"deg/s"`` → gyro.
    """
    units: dict[str, str] = {}
    for key, value in _pairs(text, "--units", "acc=m/s^2,gyro=deg/s"):
        try:
            unit = normalise_unit_name(value)
        except DataError as exc:
            raise ConfigError(f"--units {text!r}: {exc}") from None
        if key is None:
            key = "acc" if _is(unit, "g") else "gyro"
        units[key] = unit
    return units


def _is(unit: str, reference: str) -> bool:
    try:
        unit_scale(unit, reference)
        return True
    except DataError:
        return False


def parse_columns(text: str) -> dict[str, str]:
    """``"timestamp=time,acc_x=ax,..."`` → ``{canonical: name in the file}``."""
    columns: dict[str, str] = {}
    for key, value in _pairs(text, "--columns", "timestamp=time_ms,acc_x=ax,acc_y=ay,acc_z=az"):
        if key is None:
            raise ConfigError(f"--columns {text!r}: {value!r} lacks '='; expected CANONICAL=NAME, e.g. acc_x=ax")
        columns[key] = value
    return columns


def add_input_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--units", type=as_argument_type(parse_units), metavar="SPEC",
                   help=f"units of the input as it arrives: acc=UNIT,gyro=UNIT (or per channel, acc_x=UNIT); units: "
                        f"{', '.join(KNOWN_UNITS)} (default: g and rad/s, or the config's [source_options] units)")
    p.add_argument("--columns", type=as_argument_type(parse_columns), metavar="SPEC",
                   help="CSV/stdin column names when they differ from timestamp,acc_x,...: CANONICAL=NAME,... e.g. "
                        "timestamp=time,acc_x=ax (default: the canonical names)")
    p.add_argument("--timestamp-unit", choices=list(TIMESTAMP_UNITS),
                   help="unit of the input's timestamps (default: s, or the config's timestamp_unit)")
    p.add_argument("--input-check", choices=list(CHECK_MODES),
                   help="the first seconds are checked for an evidently wrong acceleration unit (gravity is not ~1 g) or "
                        "timestamp unit (the sample rate is far from the model's): refuse with the likely cause and fix, "
                        "convert, only warn, or off (default: refuse)")


def as_argument_type(parse: Any) -> Any:
    """``parse`` as an argparse ``type``: a :class:`ConfigError` becomes the parser's usage error."""

    def wrapped(text: str) -> Any:
        try:
            return parse(text)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    wrapped.__name__ = parse.__name__
    return wrapped


def apply_input_options(cfg: dict[str, Any], args: argparse.Namespace) -> None:
    """Fold the command-line input options into the resolved device config ``cfg`` (in place)."""
    if getattr(args, "units", None):
        current = cfg["source_options"].get("units")
        cfg["source_options"]["units"] = {**(current if isinstance(current, dict) else {}), **args.units}
    if getattr(args, "columns", None):
        cfg["source_options"]["columns"] = {**cfg["source_options"].get("columns", {}), **args.columns}
    for key in ("timestamp_unit", "input_check"):
        if getattr(args, key, None) is not None:
            cfg[key] = getattr(args, key)
    if cfg["timestamp_unit"] not in TIMESTAMP_UNITS:
        raise ConfigError(f"timestamp_unit={cfg['timestamp_unit']!r}; expected one of {', '.join(TIMESTAMP_UNITS)}")
    if cfg["input_check"] not in CHECK_MODES:
        raise ConfigError(f"input_check={cfg['input_check']!r}; expected one of {', '.join(CHECK_MODES)}")
