"""Types of command-line values: each turns a string into a value or names the string and the fix."""

from __future__ import annotations

import argparse
from typing import Any


def whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number, e.g. 10") from None


def positive_int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of whole numbers, e.g. 1,32"
        ) from None
    if not values:
        raise argparse.ArgumentTypeError("give at least one batch size, e.g. 1,32")
    return values


def name_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_value(text: str) -> Any:
    """Read a --set value as a number or boolean when it looks like one."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def variant_setting(text: str) -> tuple[str, str, Any]:
    name, separator, value = text.partition("=")
    variant, dot, parameter = name.partition(".")
    if not separator or not dot or not variant or not parameter:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not of the form VARIANT.PARAMETER=VALUE, e.g. pruned.target_sparsity=0.9"
        )
    return variant.strip(), parameter.strip(), parse_value(value.strip())
