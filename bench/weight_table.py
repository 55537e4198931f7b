#!/usr/bin/env python3
"""Renders bench/lambda_harness.py's results as BENCHMARKS.md sections.

    weight_table.py weight RESULTS.json                 # the Lambda-weight table (bench/weight)
    weight_table.py profiles RESULTS.json VARIANT_DIR...  # the release-profile table (bench/profiles)

A VARIANT_DIR is a target-prof-<variant> folder of bench/profiles: its build-time.txt
(/usr/bin/time -v of the cold cargo build), build-started.txt and settings.txt.
"""
from __future__ import annotations

import json
import os
import platform
import re
import sys
from pathlib import Path

ACTION = {"deployment-watcher": "status", "health-check-tuner": "tune"}
ZIP_LIMIT_GOAL = 5 * 1000 * 1000  # "every zip < 5 MB"
ROOT = Path(__file__).resolve().parent.parent


def ms(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds * 1000:.1f} ms"


def mib(n: int) -> str:
    return f"{n / 1048576:.1f} MiB"


def mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "–"


def weight(results: dict) -> str:
    runs = results["runs"]
    py = results.get("python") or ["?", "?", "?", "?"]
    out = [
        "## Lambda weight: Rust against a Python twin",
        "",
        f"Command: `bench/run` (runs `bench/weight {results['coldStarts']} {results['warmInvokes']}`). "
        f"Each function built for release with Cargo.toml's `[profile.release]` "
        f"({os.environ.get('WEIGHT_BUILD_NOTE', 'built by `bench/weight`')}) for this machine, "
        f"{platform.machine()} (Lambda runs the shipped build on arm64: `sam build`), against its Python twin "
        f"(`bench/twins/`: Python {py[0]}, boto3 {py[1]}, botocore {py[2]}, under awslambdaric {py[3]}, the runtime "
        "interface client of Lambda's managed Python runtimes). Both under the same local Lambda Runtime API "
        "(`bench/lambda_harness.py`) with template.yaml's environment, against the same local cloud "
        f"(time scale {results['timeScale']}, rate limits off), on a deployment greenlight had just finished "
        f"({results['deploymentId']}, its targets and lifecycle events: what `status` reads) and the demo "
        "group's target group (put back untuned before each cold start, so every first `tune` writes the tag "
        f"and both settings). {results['coldStarts']} cold starts per function, interleaved; init and first "
        f"invoke are their medians; then {results['warmInvokes']} warm invokes in the last environment. "
        "Init: process start → first `GET /next`; invoke: event handed out → response posted; peak RSS: the "
        "process's VmHWM after the warm invokes; zip: the deployment zip (deflate 9) of what the runtime needs "
        "beyond itself (the Rust `bootstrap`; the twin's `.py`, boto3 coming with the managed runtime).",
        "",
        "| function / action | runtime | init | first invoke | warm p50 | warm p99 | CPU per warm invoke | peak RSS | zip | same answer |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    goals = []
    for function, action in ACTION.items():
        rust = next((r for r in runs if r["function"] == function and r["kind"] == "rust"), None)
        python = next((r for r in runs if r["function"] == function and r["kind"] == "python"), None)
        for r in (rust, python):
            if r is None:
                continue
            same = "yes" if r["answersStable"] and r["answerMatchesFirstRun"] else "**no**"
            out.append(
                f"| {function} `{action}` | {'Rust' if r['kind'] == 'rust' else 'Python 3.12'} | "
                f"{ms(r['initMedian'])} | {ms(r['firstInvokeMedian'])} | {ms(r['warmP50'])} | {ms(r['warmP99'])} | "
                f"{ms(r['cpuPerWarmInvoke'])} | {mib(r['peakRssBytes'])} | {mb(r['zipBytes'])} | {same} |"
            )
        if rust and python:
            out.append(
                f"| {function} `{action}` | **Rust ÷ Python** | **{ratio(rust['initMedian'], python['initMedian'])}** | "
                f"{ratio(rust['firstInvokeMedian'], python['firstInvokeMedian'])} | "
                f"{ratio(rust['warmP50'], python['warmP50'])} | {ratio(rust['warmP99'], python['warmP99'])} | "
                f"{ratio(rust['cpuPerWarmInvoke'] or 0, python['cpuPerWarmInvoke'] or 0)} | "
                f"**{ratio(rust['peakRssBytes'], python['peakRssBytes'])}** | | |"
            )
            init_ratio = rust["initMedian"] / python["initMedian"]
            rss_ratio = rust["peakRssBytes"] / python["peakRssBytes"]
            goals.append(
                f"- {function}: init {init_ratio:.2f} of Python's (goal ≤ 0.25: "
                f"{'met' if init_ratio <= 0.25 else f'missed by {init_ratio - 0.25:.2f}'}); peak RSS "
                f"{rss_ratio:.2f} of Python's (goal ≤ 0.5: "
                f"{'met' if rss_ratio <= 0.5 else f'missed by {rss_ratio - 0.5:.2f}'})."
            )
    out += ["", "Goals:", ""] + goals
    rust_zips = [r for r in runs if r["kind"] == "rust"]
    biggest = max((r["zipBytes"] for r in rust_zips), default=0)
    zip_line = (f"- zips: the two measured here ({platform.machine()}) are at most {mb(biggest)} "
                f"(goal < 5 MB: {'met' if biggest < ZIP_LIMIT_GOAL else 'missed'})")
    shipped = ROOT / ".aws-sam" / "build" / "lambda-sizes.json"
    if shipped.exists():
        sizes = json.loads(shipped.read_text())
        rows = sizes if isinstance(sizes, list) else sizes.get("functions", [])
        zips = {row.get("function") or row.get("name"): row.get("zipBytes") or row.get("zip_bytes") for row in rows}
        zips = {k: v for k, v in zips.items() if k and isinstance(v, int)}
        if zips:
            worst = max(zips.values())
            zip_line += (f"; all {len(zips)} as shipped (arm64, `sam build`, `.aws-sam/build/lambda-sizes.json`): "
                         + ", ".join(f"{k} {mb(v)}" for k, v in sorted(zips.items()))
                         + f" (goal: {'met' if worst < ZIP_LIMIT_GOAL else 'missed'})")
    else:
        zip_line += ("; the six shipped arm64 zips are measured by `scripts/test.sh lambda` "
                     "(`scripts/lambda-sizes.py`; README, step 3), not by this run")
    out.append(zip_line + ".")
    out += [
        "",
        "Limits: every invoke includes the local cloud's own time to answer (its emulation, moto behind it for "
        "some services), the same for both sides, so latency ratios understate the difference in the functions' "
        "own work; the CPU column is that work alone (the function process's user+sys over the warm invokes). "
        "Measured while other builds ran on the machine's 2 cores (runs interleaved so both sides share the "
        "load). The twins port the decision "
        "code they need (`status`'s phase/ledger/wait, `tune`'s plan) and make the same calls; their error "
        "mapping is reduced to the error types the state machine matches. Lambda's own sandbox start (before "
        "the runtime process) is not part of either init.",
    ]
    return "\n".join(out)


def time_v(path: Path) -> dict:
    text = path.read_text()

    def grab(label: str) -> str:
        m = re.search(rf"^\s*{re.escape(label)}: (.+)$", text, re.M)
        return m.group(1).strip() if m else ""

    wall = grab("Elapsed (wall clock) time (h:mm:ss or m:ss)")
    parts = [float(p) for p in wall.split(":")] if wall else [0.0]
    seconds = 0.0
    for p in parts:
        seconds = seconds * 60 + p
    return {
        "cpu": float(grab("User time (seconds)") or 0) + float(grab("System time (seconds)") or 0),
        "wall": seconds,
        "maxrss": int(grab("Maximum resident set size (kbytes)") or 0) * 1024,
        "ok": grab("Exit status") == "0",
    }


def profiles(results: dict, dirs: list[str]) -> str:
    runs = {r["label"]: r for r in results["runs"]}
    out = [
        "## Release profile chosen by measurement",
        "",
        "Command: `bench/profiles` (not part of `bench/run`: each variant is a cold release build of the AWS "
        "SDK). deployment-watcher and health-check-tuner built cold under each `[profile.release]` variant "
        "(strip and panic=abort in all), each in its own target dir, `nice -n 10`, for "
        f"{platform.machine()} (the shipped build is arm64: same profile, other back end), on this 2-core "
        "machine while other builds ran, so wall time is shown but CPU time is the figure to compare. Build "
        "CPU: user+sys of the whole `cargo build` (`/usr/bin/time -v`); compiler peak: its largest process's "
        f"max RSS. Init and peak RSS from `bench/lambda_harness.py` ({results['coldStarts']} cold starts, "
        f"{results['warmInvokes']} warm invokes each), on {results['date']}.",
        "",
        "| variant (opt-level / lto / codegen-units) | build CPU | build wall | compiler peak RSS | "
        "watcher binary / zip | tuner binary / zip | watcher init / RSS | tuner init / RSS |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for d in dirs:
        path = Path(d)
        variant = path.name.removeprefix("target-prof-")
        t = time_v(path / "build-time.txt")
        settings = (path / "settings.txt").read_text().strip() if (path / "settings.txt").exists() else variant
        cells = [f"`{variant}` ({settings})" + ("" if t["ok"] else " **build failed**"),
                 f"{t['cpu']:.0f} s", f"{t['wall'] / 60:.1f} min", mib(t["maxrss"])]
        for short in ("watcher", "tuner"):
            r = runs.get(f"{variant}-{short}")
            cells.append(f"{mb(r['unzippedBytes'])} / {mb(r['zipBytes'])}" if r else "–")
        for short in ("watcher", "tuner"):
            r = runs.get(f"{variant}-{short}")
            cells.append(f"{ms(r['initMedian'])} / {mib(r['peakRssBytes'])}" if r else "–")
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def main() -> int:
    if len(sys.argv) < 3 or sys.argv[1] not in ("weight", "profiles"):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    results = json.loads(Path(sys.argv[2]).read_text())
    print(weight(results) if sys.argv[1] == "weight" else profiles(results, sys.argv[3:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
