#!/usr/bin/env bash
# greenlight's one test command (README and .ci/run call it). From the repo root:
#
#     scripts/test.sh                 # everything, in this order:
#
#   tools        install the pinned tools if missing or changed (idempotent):
#                .venv from scripts/tools/requirements.txt + constraints.txt (cfn-lint, SAM CLI, moto, awscli),
#                scripts/tools/node_modules from package-lock.json (asl-validator), rustfmt + clippy
#   fmt          cargo fmt --all --check
#   asl          render statemachine/pipeline.asl.json (strict placeholders) + asl-validator
#   asl-tests    state machine tests: flow on moto's Step Functions interpreter + the renderer
#   cfn-lint     cfn-lint template.yaml
#   sam          sam validate --lint (offline)
#   static       scripts/check-static.py (template <-> ASL <-> crates cross-checks, IAM)
#   clippy       cargo clippy --workspace --all-targets -- -D warnings
#   test         cargo test --workspace, in two passes over the same build: every test but the
#                fault scenarios (`-- --skip fault_`, default test threads), then the fault
#                scenarios alone (`-- fault_ --test-threads $FAULT_TEST_THREADS`, default 4): they
#                mostly wait on their own local cloud (time scale 0.1), so more of them than cores
#                can run at once; the summary adds both passes' counts
#   service      the local cloud as a service (greenlight-local up/down) driven by the pinned AWS CLI:
#                the greenlight-local binary the test step built + tests/service_cli_test.py
#   lambda       `sam build` as a user runs it: every function built for Lambda (provided.al2023,
#                arm64, release profile) in ONE cargo build (Makefile + scripts/lambda-build.sh),
#                then each function's deployment zip and its size (fails over Lambda's 50 MB limit).
#                When `test` runs too, that cargo build starts in the background (nice 19) as soon
#                as the test binaries are built, beside the test passes, and this step waits for it.
#
# The cheap checks run before the two Rust compilations so a mistake shows up in seconds.
# `scripts/test.sh STEP...` runs only the named steps (tools always runs first).
# Works with no stdin and CI=true; on CI the Rust build is tuned for a cold, one-shot compile.
# Fails fast: the first failing step is named and the script exits non-zero.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VENV="$ROOT/.venv"
TOOLS="$ROOT/scripts/tools"
LOG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/greenlight-test.XXXXXX")"
trap 'declare -F stop_background_build >/dev/null && stop_background_build; rm -rf "$LOG_DIR"' EXIT

# Offline AWS tooling: a region, no telemetry, and credentials that can only ever reach moto.
export AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 SAM_CLI_TELEMETRY=0
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing
unset AWS_PROFILE AWS_ENDPOINT_URL
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false

if [[ "${CI:-}" == "true" ]]; then
  # A fresh clone compiles everything once: incremental state is never reused, and debug
  # info for the AWS SDK would only cost link time and the runner's disk (a CI run once
  # ran out of space with line tables on and the SDK compiled twice).
  export CARGO_INCREMENTAL=0
  export CARGO_PROFILE_DEV_DEBUG=0
  export CARGO_TERM_COLOR=never
fi

ALL_STEPS=(fmt asl asl-tests cfn-lint sam static clippy test service lambda)
if [[ $# -gt 0 ]]; then
  STEPS=("$@")
  for s in "${STEPS[@]}"; do
    [[ " ${ALL_STEPS[*]} " == *" $s "* ]] || { echo "test.sh: unknown step '$s' (steps: ${ALL_STEPS[*]})" >&2; exit 2; }
  done
else
  STEPS=("${ALL_STEPS[@]}")
fi

STARTED=$SECONDS
DONE_STEPS=()

header() {
  printf '\n==================== %s ====================\n' "$1"
}

# run_step NAME COMMAND...: runs the command with no stdin, output shown and kept in $LOG_DIR/NAME.log.
run_step() {
  local name="$1"; shift
  header "$name"
  local t0=$SECONDS
  set +e
  ( set -e; "$@" ) </dev/null 2>&1 | tee "$LOG_DIR/$name.log"
  local rc=${PIPESTATUS[0]}
  set -e
  if [[ $rc -ne 0 ]]; then
    printf '\ntest.sh: FAILED at step "%s" (exit %d): %s\n' "$name" "$rc" "$*"
    printf 'test.sh: steps passed before it: %s\n' "${DONE_STEPS[*]:-none}"
    exit 1
  fi
  DONE_STEPS+=("$name")
  printf -- '--- %s ok (%ds)\n' "$name" "$((SECONDS - t0))"
}

# ------------------------------------------------------------------ tools (idempotent)
# shellcheck source=tools/install.sh
source "$ROOT/scripts/tools/install.sh"

# ------------------------------------------------------------------ steps

step_asl() {
  local rendered="$LOG_DIR/pipeline.rendered.json"
  "$VENV/bin/python" scripts/render-statemachine.py \
    --values statemachine/substitutions.example.json -o "$rendered"
  "$TOOLS/node_modules/.bin/asl-validator" --json-path "$rendered"
}

step_asl_tests() {
  "$VENV/bin/python" -m unittest discover -s statemachine/tests -v
}

step_cfn_lint() {
  "$VENV/bin/cfn-lint" template.yaml
  echo "cfn-lint: template.yaml has no findings"
}

step_sam() {
  "$VENV/bin/sam" validate --lint --template template.yaml --region us-east-1
}

step_service() {
  # The binary `cargo test --workspace` builds for crates/local-cloud/tests/cli.rs, with the
  # tests' dependency features: right after the test step this is a no-op. (`cargo build -p
  # local-cloud` would resolve the SDK without test-util: a second full SDK compile, and on CI
  # a second copy of it on disk.)
  cargo test --workspace --no-run
  GREENLIGHT_LOCAL_BIN="$ROOT/target/debug/greenlight-local" \
    "$VENV/bin/python" -m unittest tests/service_cli_test.py -v
}

# The Lambda build (release, arm64) shares nothing with the debug test build, so when both
# `test` and `lambda` run, it starts in the background, niced, as soon as the test binaries
# exist: the test passes mostly wait on their local clouds (the fault pass for ~9 minutes)
# and the build soaks up the idle cores. The lambda step then waits for it; `sam build`
# finds cargo up to date and only packages.
# (Steps run in subshells, so the build is tracked through files in $LOG_DIR, not a shell job.)
LAMBDA_BUILD_LOG="$LOG_DIR/lambda-build.log"
start_lambda_build_in_background() {
  [[ " ${STEPS[*]} " == *" lambda "* ]] || return 0
  echo "test.sh: the Lambda release build starts in the background (nice 19; its log follows in the lambda step)"
  date +%s >"$LOG_DIR/lambda-build.started"
  # Its own session (setsid), so a failing run can stop the whole cargo tree with one kill.
  setsid bash -c 'rc=0; nice -n 19 scripts/lambda-build.sh --all || rc=$?; echo "$rc" >"$1"' \
    lambda-build "$LOG_DIR/lambda-build.rc" </dev/null >"$LAMBDA_BUILD_LOG" 2>&1 &
  echo $! >"$LOG_DIR/lambda-build.pid"
}

stop_background_build() {
  if [[ -f "$LOG_DIR/lambda-build.pid" && ! -f "$LOG_DIR/lambda-build.rc" ]]; then
    kill -TERM -- "-$(cat "$LOG_DIR/lambda-build.pid")" 2>/dev/null || true
  fi
}

step_lambda() {
  if [[ -f "$LOG_DIR/lambda-build.started" ]]; then
    local started; started="$(cat "$LOG_DIR/lambda-build.started")"
    echo "test.sh: waiting for the background Lambda build (started $(( $(date +%s) - started ))s ago)"
    while [[ ! -f "$LOG_DIR/lambda-build.rc" ]]; do sleep 5; done
    cat "$LAMBDA_BUILD_LOG"
    local rc; rc="$(cat "$LOG_DIR/lambda-build.rc")"
    if [[ "$rc" != 0 ]]; then
      echo "test.sh: the background Lambda build failed (exit $rc)"
      return 1
    fi
    echo "test.sh: the background Lambda build took $(( $(date +%s) - started ))s (beside the test and service steps)"
  fi
  local t0=$SECONDS
  "$VENV/bin/sam" build --template template.yaml
  echo "test.sh: sam build (one cargo build for every function) took $((SECONDS - t0))s"
  "$VENV/bin/python" scripts/lambda-sizes.py .aws-sam/build
}

# Fault scenarios run side by side: each starts its own local cloud and shares nothing.
FAULT_TEST_THREADS="${FAULT_TEST_THREADS:-4}"

step_test() {
  # Both passes use the same `--workspace` build (never -p/--exclude: a subset of packages
  # unifies the AWS SDK's features differently and recompiles it). A test name containing
  # `fault_` runs in exactly one of the two passes, so the counts add up.
  cargo test --workspace --no-run
  start_lambda_build_in_background
  cargo test --workspace -- --skip fault_
  local t0=$SECONDS
  cargo test --workspace -- fault_ --test-threads "$FAULT_TEST_THREADS"
  echo "test.sh: fault scenarios ($FAULT_TEST_THREADS test threads) took $((SECONDS - t0))s"
}

step_static() {
  "$VENV/bin/python" scripts/check-static.py
}

run_step tools install_tools
for step in "${STEPS[@]}"; do
  case "$step" in
    fmt)      run_step fmt cargo fmt --all --check -- --color=never ;;
    asl)      run_step asl step_asl ;;
    asl-tests) run_step asl-tests step_asl_tests ;;
    cfn-lint) run_step cfn-lint step_cfn_lint ;;
    sam)      run_step sam step_sam ;;
    static)   run_step static step_static ;;
    clippy)   run_step clippy cargo clippy --workspace --all-targets -- -D warnings ;;
    test)     run_step test step_test ;;
    service)  run_step service step_service ;;
    lambda)   run_step lambda step_lambda ;;
  esac
done

# ------------------------------------------------------------------ summary
# Tests counted: cargo's "test result" lines, the state machine tests, the static checks.
passed=0; failed=0
count() { # count LOG SED_EXPR -> "P F" (0 0 when the log or the line is missing)
  local out=""
  [[ -f "$1" ]] && out="$(sed -n "$2" "$1" | awk '{ p += $1; f += $2 } END { print p+0, f+0 }')"
  echo "${out:-0 0}"
}
# cargo: "test result: ok. 12 passed; 0 failed; 0 ignored; ..."
read -r p f <<<"$(count "$LOG_DIR/test.log" 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1 \2/p')"
passed=$((passed + p)); failed=$((failed + f))
# unittest: "Ran 12 tests in 11.9s"
read -r p f <<<"$(count "$LOG_DIR/asl-tests.log" 's/^Ran \([0-9][0-9]*\) tests\{0,1\} in .*/\1 0/p')"
passed=$((passed + p)); failed=$((failed + f))
read -r p f <<<"$(count "$LOG_DIR/service.log" 's/^Ran \([0-9][0-9]*\) tests\{0,1\} in .*/\1 0/p')"
passed=$((passed + p)); failed=$((failed + f))
# check-static: "check-static: 8 passed, 0 failed"
read -r p f <<<"$(count "$LOG_DIR/static.log" 's/^check-static: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p')"
passed=$((passed + p)); failed=$((failed + f))
printf '\ntest.sh: all %d steps passed in %ds (%s)\n' "${#DONE_STEPS[@]}" "$((SECONDS - STARTED))" "${DONE_STEPS[*]}"
printf 'test.sh: %d passed, %d failed\n' "$passed" "$failed"
