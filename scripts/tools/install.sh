# Pinned tool installation shared by scripts/test.sh and scripts/demo.sh (sourced, not run).
# Needs ROOT, VENV and TOOLS set by the caller. Idempotent: keyed on the manifests' hashes.

sha_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

install_python_tools() {
  if [[ ! -x "$VENV/bin/python" ]]; then
    echo "creating $VENV"
    python3 -m venv "$VENV"
  fi
  local want have
  want="$(sha_of "$TOOLS/requirements.txt" "$TOOLS/constraints.txt")"
  have="$(cat "$VENV/.greenlight-tools.sha256" 2>/dev/null || true)"
  if [[ "$want" != "$have" ]]; then
    echo "installing pinned Python tools into $VENV"
    "$VENV/bin/python" -m pip install --quiet -r "$TOOLS/requirements.txt" -c "$TOOLS/constraints.txt"
    echo "$want" > "$VENV/.greenlight-tools.sha256"
  fi
  "$VENV/bin/cfn-lint" --version
  "$VENV/bin/sam" --version
  "$VENV/bin/python" -c 'import moto; print("moto", moto.__version__)'
  "$VENV/bin/cargo-lambda" lambda --version
}

install_node_tools() {
  command -v npm >/dev/null || { echo "npm not found: install Node.js 20 (Debian package nodejs/npm)"; return 1; }
  local want have
  want="$(sha_of "$TOOLS/package.json" "$TOOLS/package-lock.json")"
  have="$(cat "$TOOLS/node_modules/.greenlight-tools.sha256" 2>/dev/null || true)"
  if [[ "$want" != "$have" || ! -x "$TOOLS/node_modules/.bin/asl-validator" ]]; then
    echo "installing pinned Node tools into scripts/tools/node_modules (npm ci)"
    (cd "$TOOLS" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" > "$TOOLS/node_modules/.greenlight-tools.sha256"
  fi
  echo "asl-validator $("$TOOLS/node_modules/.bin/asl-validator" --version)"
}

install_rust_tools() {
  command -v cargo >/dev/null || { echo "cargo not found: install the Rust toolchain (rustup)"; return 1; }
  local component
  for component in rustfmt clippy; do
    local probe=fmt; [[ $component == clippy ]] && probe=clippy
    if ! cargo "$probe" --version >/dev/null 2>&1; then
      echo "adding rustup component $component"
      rustup component add "$component"
    fi
  done
  # Lambda runs the functions on arm64 (template.yaml Architectures); cargo-lambda and zig
  # (the cross linker) come from the venv, the standard library for the target from rustup.
  if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
    echo "adding rustup target aarch64-unknown-linux-gnu"
    rustup target add aarch64-unknown-linux-gnu
  fi
  cargo --version; cargo fmt --version; cargo clippy --version
}

# Debian's chromium, pinned: tests/faults/live_page.rs looks at the local cloud's live page
# with it (headless). Skipped only when a chromium is already installed; else apt-get
# (root, as on the project's machines and CI). A newer Debian security update replaces this
# version in the archive: bump the pin then.
CHROMIUM_DEB_VERSION="156.0.8078.114-1~deb12u1"

install_chromium() {
  if command -v chromium >/dev/null 2>&1; then
    chromium --version 2>/dev/null || true
    return 0
  fi
  command -v apt-get >/dev/null || { echo "chromium not found and no apt-get: install Debian's chromium $CHROMIUM_DEB_VERSION"; return 1; }
  echo "installing Debian's chromium $CHROMIUM_DEB_VERSION (apt-get)"
  apt-get update -qq
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "chromium=$CHROMIUM_DEB_VERSION"; then
    # Debian keeps only the newest security build in bookworm-security: once the pin is gone
    # from the archive, take the archive's build rather than fail every run; say so loudly.
    echo "WARNING: chromium $CHROMIUM_DEB_VERSION is no longer in the archive; installing its current build: bump CHROMIUM_DEB_VERSION in scripts/tools/install.sh" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium
  fi
  chromium --version 2>/dev/null || true
}

install_tools() {
  install_python_tools
  install_node_tools
  install_rust_tools
  install_chromium
}

