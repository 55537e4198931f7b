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

install_tools() {
  install_python_tools
  install_node_tools
  install_rust_tools
}

