#!/usr/bin/env python3
"""Unit tests of scripts/render-statemachine.py (strict ${Name} substitution)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "render-statemachine.py"
spec = importlib.util.spec_from_file_location("render_statemachine", SCRIPT)
render_statemachine = importlib.util.module_from_spec(spec)
assert spec.loader is not None
spec.loader.exec_module(render_statemachine)
render, RenderError = render_statemachine.render, render_statemachine.RenderError

ASL = '{"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "${Fn}", "Retry": [{"ErrorEquals": ["E"], "MaxAttempts": ${N}}], "End": true}}}'


class RenderTest(unittest.TestCase):
    def test_substitutes_text_so_numbers_become_json_numbers(self):
        out = json.loads(render(ASL, {"Fn": "arn:aws:lambda:us-east-1:1:function:f", "N": 3}))
        self.assertEqual(out["States"]["A"]["Resource"], "arn:aws:lambda:us-east-1:1:function:f")
        self.assertEqual(out["States"]["A"]["Retry"][0]["MaxAttempts"], 3)

    def test_string_values_are_inserted_verbatim_like_cloudformation(self):
        out = json.loads(render(ASL, {"Fn": "x", "N": "7"}))
        self.assertEqual(out["States"]["A"]["Retry"][0]["MaxAttempts"], 7)

    def test_unknown_placeholder_fails_and_names_it(self):
        with self.assertRaisesRegex(RenderError, r"no value for placeholder\(s\) N"):
            render(ASL, {"Fn": "x"})

    def test_unused_value_fails_and_names_it(self):
        with self.assertRaisesRegex(RenderError, r"value\(s\) given for Extra"):
            render(ASL, {"Fn": "x", "N": 1, "Extra": "y"})

    def test_invalid_result_fails(self):
        with self.assertRaisesRegex(RenderError, "not valid JSON"):
            render(ASL, {"Fn": "x", "N": "three"})

    def test_structured_values_are_refused(self):
        with self.assertRaisesRegex(RenderError, "string, number or boolean"):
            render(ASL, {"Fn": "x", "N": [1]})

    def test_intrinsic_format_braces_and_jsonpath_are_not_placeholders(self):
        text = '{"a": "States.Format(\'{} and {}\', $.x, $.y)", "b": "$.c"}'
        self.assertEqual(render(text, {}), text)

    def test_the_pipeline_placeholders_match_the_example_values(self):
        names = render_statemachine.placeholders((ROOT / "statemachine" / "pipeline.asl.json").read_text())
        example = json.loads((ROOT / "statemachine" / "substitutions.example.json").read_text())
        self.assertEqual(sorted(names), sorted(example))

    def test_cli_set_overrides_values_and_exit_codes(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out.json"
            ok = subprocess.run(
                [sys.executable, str(SCRIPT), "--values", str(ROOT / "statemachine" / "substitutions.example.json"),
                 "--set", "BusyRetryMaxAttempts=2", "-o", str(out)],
                capture_output=True, text=True, check=False,
            )
            self.assertEqual(ok.returncode, 0, ok.stderr)
            rendered = json.loads(out.read_text())
            self.assertEqual(rendered["States"]["Admit"]["Retry"][1]["MaxAttempts"], 2)
            bad = subprocess.run(
                [sys.executable, str(SCRIPT), "--set", "Nope=1"], capture_output=True, text=True, check=False
            )
            self.assertEqual(bad.returncode, 1)
            self.assertIn("no value for placeholder", bad.stderr)
            self.assertIn("Nope", bad.stderr)


if __name__ == "__main__":
    unittest.main()
