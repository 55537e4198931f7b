#!/usr/bin/env python3
"""Render statemachine/pipeline.asl.json: replace its ${Name} placeholders.

The definition is written for CloudFormation's DefinitionSubstitutions, which
replaces the text `${Name}` with the value's text *before* the definition is
parsed (so `"MaxAttempts": ${BusyRetryMaxAttempts}` becomes a JSON number).
This script does exactly that, for the checks (asl-validator) and for the local
cloud, and is strict about it:

  * every placeholder in the definition must get a value (unknown -> error),
  * every value given must be used by the definition (unused -> error),
  * the result must be valid JSON.

Values come from JSON files (`--values FILE`, an object of name -> string,
number or boolean; later files override earlier ones) and `--set NAME=VALUE`
(always text, applied last).

    scripts/render-statemachine.py --values statemachine/substitutions.example.json
    scripts/render-statemachine.py --values v.json --set BusyRetryIntervalSeconds=1 -o out.json
    scripts/render-statemachine.py --list          # the placeholder names, one a line

Exit status: 0 rendered, 1 a placeholder problem or invalid result, 2 usage.
Python 3 standard library only.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DEFINITION = REPO_ROOT / "statemachine" / "pipeline.asl.json"

# CloudFormation's placeholder syntax for DefinitionSubstitutions keys.
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


class RenderError(Exception):
    """A placeholder problem or an invalid rendered definition."""


def placeholders(text: str) -> list[str]:
    """The distinct placeholder names in `text`, in order of first use."""
    seen: dict[str, None] = {}
    for match in PLACEHOLDER.finditer(text):
        seen.setdefault(match.group(1), None)
    return list(seen)


def value_text(name: str, value: object) -> str:
    """The text CloudFormation would put in place of a value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    raise RenderError(
        f"value for {name} must be a string, number or boolean, not {type(value).__name__}"
    )


def render(text: str, values: dict[str, object]) -> str:
    """Substitute every placeholder; fail on unknown or unused names or invalid JSON."""
    used = placeholders(text)
    unknown = [name for name in used if name not in values]
    unused = sorted(name for name in values if name not in used)
    problems = []
    if unknown:
        problems.append(
            "no value for placeholder(s) " + ", ".join(unknown)
            + " (add them with --values/--set, and to DefinitionSubstitutions in template.yaml)"
        )
    if unused:
        problems.append(
            "value(s) given for " + ", ".join(unused)
            + " but the definition has no such placeholder (remove them, or fix the name)"
        )
    if problems:
        raise RenderError("; ".join(problems))
    texts = {name: value_text(name, values[name]) for name in used}
    rendered = PLACEHOLDER.sub(lambda m: texts[m.group(1)], text)
    try:
        json.loads(rendered)
    except json.JSONDecodeError as err:
        raise RenderError(
            f"the rendered definition is not valid JSON: {err.msg} at line {err.lineno} "
            f"column {err.colno} (a numeric placeholder got a non-numeric value, or the file is broken)"
        ) from err
    return rendered


def load_values(files: list[str], sets: list[str]) -> dict[str, object]:
    values: dict[str, object] = {}
    for file in files:
        try:
            data = json.loads(Path(file).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise RenderError(f"cannot read values file {file}: {err}") from err
        if not isinstance(data, dict):
            raise RenderError(f"values file {file} must hold a JSON object of name -> value")
        values.update(data)
    for item in sets:
        name, sep, value = item.partition("=")
        if not sep or not PLACEHOLDER.fullmatch("${" + name + "}"):
            raise RenderError(f"--set {item!r}: expected NAME=VALUE with NAME made of [A-Za-z0-9_]")
        values[name] = value
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Substitute ${Name} placeholders in the state machine definition (strict).",
    )
    parser.add_argument(
        "--definition", default=str(DEFAULT_DEFINITION),
        help="ASL file with placeholders (default: statemachine/pipeline.asl.json)",
    )
    parser.add_argument(
        "--values", action="append", default=[], metavar="FILE",
        help="JSON object of placeholder values; may repeat, later files win",
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE",
        help="one placeholder value (text); may repeat; applied after --values",
    )
    parser.add_argument(
        "-o", "--output", default="-",
        help="where to write the rendered definition (default: stdout)",
    )
    parser.add_argument(
        "--list", action="store_true",
        help="print the placeholder names, one a line, and exit",
    )
    args = parser.parse_args(argv)

    try:
        text = Path(args.definition).read_text(encoding="utf-8")
    except OSError as err:
        print(f"render-statemachine: cannot read {args.definition}: {err}", file=sys.stderr)
        return 1

    if args.list:
        for name in placeholders(text):
            print(name)
        return 0

    try:
        rendered = render(text, load_values(args.values, args.set))
    except RenderError as err:
        print(f"render-statemachine: {args.definition}: {err}", file=sys.stderr)
        return 1

    if args.output == "-":
        sys.stdout.write(rendered)
    else:
        Path(args.output).write_text(rendered, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
