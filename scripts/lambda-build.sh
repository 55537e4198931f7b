#!/usr/bin/env bash
# Builds every Lambda function of the workspace (each crate under functions/) for Lambda's
# provided.al2023 runtime in ONE cargo build, so the AWS SDK compiles once for all of them,
# then copies BINARY's executable to ARTIFACTS_DIR/bootstrap.
#
#     scripts/lambda-build.sh BINARY ARTIFACTS_DIR      # what the Makefile's build-<LogicalId> runs
#     scripts/lambda-build.sh --all                     # just the build (the checks' `lambda` step)
#
# `sam build` calls the Makefile once per function (template.yaml: BuildMethod makefile,
# samconfig.toml: build_in_source): the first call builds, the others find cargo up to date.
# GREENLIGHT_LAMBDA_ARCH=arm64 (default, as template.yaml's Architectures) or x86_64.
# Needs the pinned cargo-lambda + zig from the project venv (scripts/tools/requirements.txt)
# and the Rust target (rustup target add aarch64-unknown-linux-gnu); both are installed by
# scripts/test.sh's tools step.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$ROOT/.venv/bin:$PATH"

arch="${GREENLIGHT_LAMBDA_ARCH:-arm64}"
case "$arch" in
  arm64|x86_64) ;;
  *) echo "lambda-build: GREENLIGHT_LAMBDA_ARCH must be arm64 or x86_64 (got '$arch')" >&2; exit 2 ;;
esac
command -v cargo-lambda >/dev/null || {
  echo "lambda-build: cargo-lambda is missing: run scripts/test.sh tools (installs it into .venv)" >&2; exit 1; }

packages=()
for manifest in functions/*/Cargo.toml; do
  packages+=(--package "$(basename "$(dirname "$manifest")")")
done
# Only the functions' packages: the SDK's features unify over them alone (not the CLI's or
# the local cloud's), which is what ships.
cargo lambda build --release "--$arch" "${packages[@]}"

if [[ "${1:-}" == "--all" ]]; then
  exit 0
fi
binary="${1:?usage: lambda-build.sh BINARY ARTIFACTS_DIR | --all}"
artifacts="${2:?usage: lambda-build.sh BINARY ARTIFACTS_DIR | --all}"
built="target/lambda/$binary/bootstrap"
[[ -x "$built" ]] || { echo "lambda-build: $built was not built: is '$binary' a bin of a crate under functions/?" >&2; exit 1; }
mkdir -p "$artifacts"
cp "$built" "$artifacts/bootstrap"
