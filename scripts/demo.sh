#!/usr/bin/env bash
# greenlight's main job, on one machine: a real blue/green deployment on the
# local cloud, end to end. Installs the pinned tools it needs (the project
# venv with moto), builds, starts moto + greenlight's emulation on free
# loopback ports, provisions the demo, uploads a revision, follows it to the
# end with progress, prints the timeline, and cleans up (Ctrl-C included).
#
#     scripts/demo.sh                               # a good revision
#     scripts/demo.sh --revision failing-health     # watch the gate stop it
#     scripts/demo.sh --time-scale 1                # real AWS timings
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
TOOLS="$ROOT/scripts/tools"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
unset AWS_PROFILE AWS_ENDPOINT_URL
# shellcheck source=tools/install.sh
source "$TOOLS/install.sh"
install_python_tools >/dev/null
echo "building greenlight (first build of the AWS SDK takes a few minutes on 2 cores) ..."
cargo build --quiet -p local-cloud --bin greenlight-local
exec "$ROOT/target/debug/greenlight-local" demo "$@"
